"""The rollup triggers' cost to write-behind: the same flushes into two schemas, one without them.

    python -m loadtest.rollup_overhead                    # 40 shows × 500 seats, 2,000 flushes
    python -m loadtest.rollup_overhead --batches 300 --json out/rollup.json --plot out/rollup.png

Migration 0009 logs every show a write touches into ``show_stats_dirty`` with statement-level
triggers on holds, bookings, shows, payments, … (the ``*_stats_*`` triggers). Two schemas get
the same migrations and catalog; the baseline's ``*_stats_*`` triggers are dropped. The pure
seat core (``actors.SeatMap``) makes one sequence of write-behind flushes: each places
``--holds`` holds of two seats on random shows and settles the holds of the flush before, a
share confirmed and the rest released. Every flush is written to both schemas with
``actors.persistence.write_batch``, one connection each, in alternating order (A B, B A, …) so
that the machine's drift falls on both alike. The figures: flush latency p50/p99 and flushes a
second (back to back on one connection) per schema, and their ratio triggers/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray (``actors`` does): keep it on loopback

import storage  # noqa: E402
from actors import Confirm, Event, HoldSeats, Layout, Release, SeatMap  # noqa: E402
from actors.persistence import ShowBatch, write_batch  # noqa: E402
from loadtest import report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL  # noqa: E402
from loadtest.engines import create_schema, create_shows, drop_schema  # noqa: E402
from loadtest.workload import Result, labels, plain_layout  # noqa: E402

SIDES = ("baseline", "triggers")
PER_HOLD = 2  # seats a hold takes
FLUSH_S = 0.010  # the seat core's clock moves this much between two flushes
MAX_SHOWS = 1000
MAX_SEATS = 600
MAX_BATCHES = 20_000
MAX_SECONDS = 3600.0

Say = Callable[[str], None]
Flush = dict[int, list[Event]]  # show index -> the events of one flush


@dataclass(frozen=True)
class Options:
    shows: int = 40
    seats: int = 500
    batches: int = 2000
    holds: int = 16  # new holds a flush; the previous flush's holds are settled in it
    confirm_share: float = 0.25  # of the settled holds, confirmed; the rest released
    warmup: int = 50  # first flushes written but not measured
    max_seconds: float = 600.0  # measuring stops here, whatever is left
    seed: int = 1
    database_url: str = DEFAULT_DATABASE_URL
    run: str = field(default_factory=lambda: f"rollup_{uuid.uuid4().hex[:8]}")

    @property
    def confirmed_per_flush(self) -> int:
        return round(self.confirm_share * self.holds)

    def seats_needed(self) -> int:
        """Seats the sequence takes at most: the confirmed ones, two flushes of live holds
        and one spare seat a show (so that a hold always finds a show with two free)."""
        booked = self.batches * self.confirmed_per_flush * PER_HOLD
        return booked + 2 * self.holds * PER_HOLD + self.shows


@dataclass
class Comparison:
    options: Options
    schemas: dict[str, str]  # side -> schema name
    results: dict[str, Result]
    dropped: list[str]  # the baseline's triggers
    dirty_rows: dict[str, int]  # rows the flushes logged into show_stats_dirty, per side
    flushes: int  # written to each side (measured: less the warm-up)


def make_flushes(options: Options, start: float) -> list[Flush]:
    """The sequence of flushes, made by the pure seat core from epoch second ``start`` (same
    seed and start, same sequence)."""
    rng = random.Random(options.seed)
    layout = plain_layout(options.seats)
    core = Layout.from_dict(layout)
    maps = [SeatMap(str(i), core, prices={"standard": 1200}) for i in range(options.shows)]
    every = labels(layout)
    free = [rng.sample(every, len(every)) for _ in maps]  # each show's free seats, shuffled

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    pending: list[tuple[int, str, str]] = []  # (show, hold id, user) placed in the flush before
    now = start
    flushes: list[Flush] = []
    for n in range(options.batches):
        rng.shuffle(pending)
        for k, (show, hold_id, user) in enumerate(pending):
            if k < options.confirmed_per_flush:
                maps[show].confirm(Confirm(hold_id, user, new_id()), now)
            else:
                freed = maps[show].release(Release(hold_id, user), now)
                free[show].extend(freed.seats)
        pending = []
        for h in range(options.holds):
            show = rng.choice([i for i, seats in enumerate(free) if len(seats) >= PER_HOLD])
            seats = tuple(free[show].pop() for _ in range(PER_HOLD))
            user = str(n * options.holds + h + 1)
            hold = maps[show].hold(HoldSeats(new_id(), user, seats), now)
            pending.append((show, hold.hold_id, user))
        flushes.append({i: events for i, m in enumerate(maps) if (events := m.pull_events())})
        now += FLUSH_S
    return flushes


async def prepare(
    options: Options, schema: str, *, triggers: bool
) -> tuple[list[tuple[int, dt.date, str]], list[str]]:
    """A migrated schema with the catalog, its rollup triggers dropped unless ``triggers``:
    per show index, what a ``ShowBatch`` needs (id, date, currency); and the triggers dropped."""
    await create_schema(options.database_url, schema)
    conn = await storage.connect(options.database_url, schema=schema)
    try:
        dropped = [] if triggers else await drop_rollup_triggers(conn)
        ids = await create_shows(conn, plain_layout(options.seats), options.shows)
        rows = await conn.fetch(
            "SELECT id, starts_at, currency FROM shows WHERE id = ANY($1::bigint[]) ORDER BY id",
            ids,
        )
    finally:
        await conn.close()
    shows = [(r["id"], r["starts_at"].astimezone(dt.UTC).date(), r["currency"]) for r in rows]
    return shows, dropped


async def drop_rollup_triggers(conn: Any) -> list[str]:
    """Drop the ``*_stats_*`` triggers of the connection's schema; "table.trigger" of each."""
    rows = await conn.fetch(
        r"""SELECT c.relname AS tab, t.tgname AS name FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
                  AND t.tgparentid = 0 AND t.tgname LIKE '%\_stats\_%'
            ORDER BY 1, 2"""
    )
    for r in rows:
        await conn.execute(f'DROP TRIGGER "{r["name"]}" ON "{r["tab"]}"')
    return [f"{r['tab']}.{r['name']}" for r in rows]


async def compare(options: Options, say: Say) -> Comparison:
    """Prepare both schemas, write every flush to both in alternating order, drop them."""
    schemas = {side: f"{options.run}_{side}" for side in SIDES}
    say(f"making {options.batches} flushes of {options.holds} holds on {options.shows} shows")
    flushes = make_flushes(options, time.time())
    conns: dict[str, Any] = {}
    try:
        shows, dropped = await prepare(options, schemas["baseline"], triggers=False)
        if not dropped:
            raise RuntimeError("the baseline schema has no *_stats_* triggers to drop")
        say(f"baseline: dropped {len(dropped)} triggers; triggers: migrating")
        await prepare(options, schemas["triggers"], triggers=True)
        for side in SIDES:
            conns[side] = await storage.connect(options.database_url, schema=schemas[side])
        before = {side: await _dirty(conns[side]) for side in SIDES}
        results, written = await _write_all(options, flushes, shows, conns, say)
        after = {side: await _dirty(conns[side]) for side in SIDES}
        tallies = {side: await _tally(conns[side]) for side in SIDES}
        if tallies["baseline"] != tallies["triggers"]:
            raise RuntimeError(f"the schemas differ after the same flushes: {tallies}")
    finally:
        for conn in conns.values():
            await conn.close()
        for schema in schemas.values():
            await drop_schema(options.database_url, schema)
    dirty = {side: after[side] - before[side] for side in SIDES}
    return Comparison(options, schemas, results, dropped, dirty, written)


async def _dirty(conn: Any) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM show_stats_dirty"))


async def _tally(conn: Any) -> list[tuple[str, int]]:
    """Holds by status and bookings, to check both schemas got the same writes."""
    rows = await conn.fetch(
        """SELECT status, count(*)::int AS n FROM holds GROUP BY 1
           UNION ALL SELECT 'bookings', count(*)::int FROM bookings ORDER BY 1"""
    )
    return [(r["status"], r["n"]) for r in rows]


async def _write_all(
    options: Options,
    flushes: Sequence[Flush],
    shows: Sequence[tuple[int, dt.date, str]],
    conns: dict[str, Any],
    say: Say,
) -> tuple[dict[str, Result], int]:
    samples: dict[str, list[float]] = {side: [] for side in SIDES}
    deadline = time.monotonic() + options.max_seconds
    step = max(1, len(flushes) // 10)
    written = 0
    for n, flush in enumerate(flushes):
        batches = [ShowBatch(*shows[i], events) for i, events in flush.items()]
        for side in SIDES if n % 2 == 0 else SIDES[::-1]:
            started = time.perf_counter()
            await write_batch(conns[side], batches)
            if n >= options.warmup:
                samples[side].append((time.perf_counter() - started) * 1000)
        written = n + 1
        if written % step == 0:
            say(f"{written}/{len(flushes)} flushes written to both")
        if time.monotonic() > deadline:
            say(f"--max-seconds reached after {written} flushes")
            break
    results = {
        side: Result(side, sum(ms) / 1000, len(ms), latencies_ms=ms) for side, ms in samples.items()
    }
    return results, written


def _ratio(top: float, bottom: float) -> float | None:
    return round(top / bottom, 3) if math.isfinite(top) and bottom > 0 else None


def document(c: Comparison) -> dict[str, Any]:
    o = c.options
    sides = {
        side: {
            "flushes": r.ops,
            "flushes_per_s": round(r.ops_per_s, 1),
            "p50_ms": round(r.percentile(50), 3),
            "p99_ms": round(r.percentile(99), 3),
            "mean_ms": round(r.seconds * 1000 / r.ops, 3) if r.ops else None,
            "dirty_rows_logged": c.dirty_rows[side],
        }
        for side, r in c.results.items()
    }
    base, trig = c.results["baseline"], c.results["triggers"]
    return {
        **sides,
        "ratio_triggers_baseline": {
            "p50": _ratio(trig.percentile(50), base.percentile(50)),
            "p99": _ratio(trig.percentile(99), base.percentile(99)),
            "flushes_per_s": _ratio(trig.ops_per_s, base.ops_per_s),
        },
        "triggers_dropped_in_baseline": c.dropped,
        "schemas": list(c.schemas.values()),
        "workload": {
            "shows": o.shows,
            "seats": o.seats,
            "flushes_written": c.flushes,
            "warmup": o.warmup,
            "holds_per_flush": o.holds,
            "confirmed_per_flush": o.confirmed_per_flush,
            "released_per_flush": o.holds - o.confirmed_per_flush,
            "seed": o.seed,
        },
        "operation": "one write_batch (a flush: new holds, confirmations, releases), awaited",
    }


def table(out: dict[str, Any]) -> str:
    head = f"{'schema':<10} {'flushes':>8} {'flushes/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
    head += f"{'mean ms':>8} {'dirty rows':>11}"
    lines = [head, "-" * len(head)]
    for side in SIDES:
        s = out[side]
        lines.append(
            f"{side:<10} {s['flushes']:>8} {s['flushes_per_s']:>10.1f} {s['p50_ms']:>8.3f} "
            f"{s['p99_ms']:>8.3f} {s['mean_ms'] or 0:>8.3f} {s['dirty_rows_logged']:>11}"
        )
    return "\n".join(lines)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1]")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.rollup_overhead", description=__doc__.split("\n\n")[0]
    )
    defaults = Options()
    parser.add_argument("--shows", type=report.positive(int, MAX_SHOWS), default=defaults.shows)
    parser.add_argument(
        "--seats", type=report.positive(int, MAX_SEATS), default=defaults.seats, help="per show"
    )
    parser.add_argument(
        "--batches",
        type=report.positive(int, MAX_BATCHES),
        default=defaults.batches,
        help="flushes written to each schema",
    )
    parser.add_argument(
        "--holds", type=report.positive(int, 1000), default=defaults.holds, help="a flush"
    )
    parser.add_argument(
        "--confirm-share",
        type=_share,
        default=defaults.confirm_share,
        help="of the holds settled in a flush, confirmed (the rest released)",
    )
    parser.add_argument(
        "--warmup", type=int, default=defaults.warmup, help="first flushes not measured"
    )
    parser.add_argument(
        "--max-seconds",
        type=report.positive(float, MAX_SECONDS),
        default=defaults.max_seconds,
        help="stop measuring after this long",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of latency and throughput here")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup < args.batches:
        parser.error("--warmup must be at least 0 and less than --batches")
    if args.seats < PER_HOLD:
        parser.error(f"--seats: a hold takes {PER_HOLD} seats")
    needed = options_of(args).seats_needed()
    if needed > args.shows * args.seats:
        parser.error(
            f"the flushes book up to {needed:,} seats: raise --shows or --seats, or lower "
            "--batches, --holds or --confirm-share"
        )
    return args


def options_of(args: argparse.Namespace) -> Options:
    return Options(
        shows=args.shows,
        seats=args.seats,
        batches=args.batches,
        holds=args.holds,
        confirm_share=args.confirm_share,
        warmup=args.warmup,
        max_seconds=args.max_seconds,
        seed=args.seed,
        database_url=args.database_url,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_of(args)
    comparison = asyncio.run(compare(options, report.say))
    out = document(comparison)
    print(table(out))
    if args.json:
        report.write_json(args.json, out)
    if args.plot:
        title = (
            f"write-behind flushes: {options.holds} holds each, {options.shows} shows "
            f"(an operation: one flush)"
        )
        report.plot(args.plot, [comparison.results[side] for side in SIDES], title)
    ratio = out["ratio_triggers_baseline"]
    print(
        f"triggers/baseline: flush p50 {ratio['p50']}, p99 {ratio['p99']}, "
        f"flushes/s {ratio['flushes_per_s']}"
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
