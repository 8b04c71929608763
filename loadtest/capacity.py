"""The capacity benchmark: how many active shows the shared hosts hold, and what that costs a hold.

    python -m loadtest.capacity                       # 100,000 shows of 300 seats
    python -m loadtest.capacity --shows 20000 --seconds 5 --json out/cap.json --plot out/cap.png

Shows are bulk-inserted into a throwaway schema (one 300-seat screen shared by all, dropped at
the end), then activated on the shared hosts with ``ShowHost.activate_many``, the host process's
resident memory (VmRSS) read before, during and after: the growth divided by the shows added is
the memory a show costs. Hold latency is measured twice in the same run, with 64 clients holding
(and releasing) two random seats of uniformly random shows: first with only ``--baseline`` shows
active, then with all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

import storage  # noqa: E402
from loadtest import report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402
from loadtest.engines import create_schema, create_screen_and_movie, drop_schema  # noqa: E402
from loadtest.workload import Result, Workload, drive, labels, new_id, plain_layout  # noqa: E402

SEATS = 300
MACHINE_BYTES = 24 * 1024**3
HOST_SHARE = 0.75  # of the machine's memory for show hosts; the rest: Postgres, Redis, Ray, OS
ACTIVATION_STEP = 10_000  # shows activated between two memory readings
MAX_SHOWS = 2_000_000

Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    shows: int = 100_000
    baseline: int = 100
    seconds: float = 10.0
    clients: int = 64
    shared_hosts: int = 2
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    run: str = field(default_factory=lambda: f"cap_{uuid.uuid4().hex[:8]}")


async def insert_shows(conn: Any, count: int) -> list[int]:
    """``count`` shows on sale, all on one screen, over the next 60 days; their ids.

    One statement (``generate_series``) instead of the admin operations: they check overlaps
    show by show, which takes minutes for 100,000 shows.
    """
    now = dt.datetime.now(dt.UTC)
    screen, movie = await create_screen_and_movie(
        conn, "Capacity", plain_layout(SEATS), runtime_min=100
    )
    first = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    await storage.ensure_partitions(conn, first.date(), (first + dt.timedelta(days=60)).date())
    rows = await conn.fetch(
        """INSERT INTO shows (screen_id, movie_id, starts_at, busy_until, prices, status)
           SELECT $1, $2, t, t + interval '2 hours', '{"standard": 1200}'::jsonb, 'on_sale'
           FROM (SELECT $3::timestamptz + (i % 60) * interval '1 day'
                        + (i / 60 % 1440) * interval '1 minute' AS t
                 FROM generate_series(0, $4 - 1) AS i) AS slots
           RETURNING id""",
        screen,
        movie,
        first,
        count,
    )
    return [row["id"] for row in rows]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class _Routes:
    """The directory's placement (show id modulo the shared hosts), answered in the caller:
    ``ShowClient`` asks ``host_for.remote(show)`` once per show, and 100,000 lookups through
    the directory actor would be measured as hold latency. Checked against the directory."""

    def __init__(self, hosts: Sequence[Any]) -> None:
        self._hosts = list(hosts)
        self.host_for = self

    def host(self, show_id: int) -> Any:
        return self._hosts[show_id % len(self._hosts)]

    def remote(self, show_id: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(self.host(show_id))
        return future


class _Holds:
    """The driver's engine: holds and releases through ``ShowClient`` on the first ``active``
    shows."""

    name = "actor"

    def __init__(self, client: Any, ids: Sequence[int]) -> None:
        self._client = client
        self._ids = ids

    async def start(self, workload: Workload, layout: dict[str, Any]) -> None:
        return None

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        from actors import HoldSeats, SeatUnavailable

        try:
            hold = await self._client.execute(
                self._ids[show], HoldSeats(new_id(), str(client + 1), seats)
            )
        except SeatUnavailable:
            return None
        return hold.hold_id

    async def release(self, client: int, show: int, token: Any) -> None:
        from actors import Release

        await self._client.execute(self._ids[show], Release(token, str(client + 1)))

    async def stop(self) -> None:
        return None


@dataclass
class Capacity:
    shows: int
    hosts: int
    base_rss: list[int] = field(default_factory=list)  # per host, before any show
    curve: list[tuple[int, int]] = field(default_factory=list)  # (active shows, total RSS)
    activation_s: float = 0.0
    baseline: Result | None = None
    loaded: Result | None = None

    @property
    def bytes_per_show(self) -> float:
        (shows0, rss0), (shows1, rss1) = self.curve[0], self.curve[-1]
        return (rss1 - rss0) / max(1, shows1 - shows0)

    @property
    def shows_per_machine(self) -> int:
        usable = MACHINE_BYTES * HOST_SHARE - sum(self.base_rss)
        return int(usable / self.bytes_per_show)


async def run_capacity(options: Options, say: Say) -> Capacity:
    """Activate ``options.shows`` shows on the shared hosts and measure; Ray must be up."""
    import actors

    schema = f"{options.run}_capacity"
    await create_schema(options.database_url, schema)
    directory = None
    try:
        conn = await storage.connect(options.database_url, schema=schema)
        try:
            began = time.perf_counter()
            ids = await insert_shows(conn, options.shows)
            say(f"inserted {len(ids):,} shows in {time.perf_counter() - began:.1f} s")
        finally:
            await conn.close()
        config = actors.HostConfig(
            database_url=options.database_url,
            schema=schema,
            redis_url=options.redis_url,
            channel_prefix=f"{schema}:",  # deltas on channels of this run's own
        )
        directory = actors.start_directory(
            config, shared_hosts=options.shared_hosts, namespace=schema
        )
        return await _measure(options, directory, ids, say)
    finally:
        if directory is not None:
            import ray

            await directory.shutdown.remote()
            ray.kill(directory, no_restart=True)
        await drop_schema(options.database_url, schema)


async def _measure(options: Options, directory: Any, ids: list[int], say: Say) -> Capacity:
    import actors

    hosts = await directory.hosts.remote()
    routes = _Routes(hosts)
    for show_id in ids[:: max(1, len(ids) // 10)]:
        assert await directory.host_for.remote(show_id) == routes.host(show_id), "placement"
    pids = [(await host.stats.remote())["pid"] for host in hosts]
    say(f"hosts pids {pids}")
    cap = Capacity(options.shows, len(hosts), base_rss=[rss_bytes(pid) for pid in pids])
    client = actors.ShowClient(routes)
    baseline = min(options.baseline, len(ids))
    await _activate(ids[:baseline], hosts, routes)
    cap.curve.append((baseline, sum(rss_bytes(pid) for pid in pids)))
    cap.baseline = await _latency(client, ids[:baseline], options, say, f"{baseline:,} shows")
    began = time.perf_counter()
    for start in range(baseline, len(ids), ACTIVATION_STEP):
        await _activate(ids[start : start + ACTIVATION_STEP], hosts, routes)
        active = min(len(ids), start + ACTIVATION_STEP)
        cap.curve.append((active, sum(rss_bytes(pid) for pid in pids)))
        say(
            f"activated {active:,} shows, {time.perf_counter() - began:.1f} s, "
            f"hosts RSS {cap.curve[-1][1] / 2**20:,.0f} MiB"
        )
    cap.activation_s = time.perf_counter() - began
    counts = [(await host.stats.remote())["active_shows"] for host in hosts]
    assert sum(counts) == len(ids), f"active shows {counts}, wanted {len(ids)}"
    cap.loaded = await _latency(client, ids, options, say, f"{len(ids):,} shows")
    return cap


async def _activate(show_ids: Sequence[int], hosts: Sequence[Any], routes: _Routes) -> None:
    by_host: dict[int, list[int]] = {}
    for show_id in show_ids:
        by_host.setdefault(show_id % len(hosts), []).append(show_id)
    await asyncio.gather(*(hosts[i].activate_many.remote(batch) for i, batch in by_host.items()))


async def _latency(
    client: Any, ids: Sequence[int], options: Options, say: Say, label: str
) -> Result:
    workload = Workload(
        shows=len(ids),
        seats=SEATS,
        clients=options.clients,
        seconds=options.seconds,
        best=SEATS,
        hot_share=0.0,
    )
    result = await drive(_Holds(client, ids), workload, labels(plain_layout(SEATS)), say)
    result.engine = label
    say(
        f"{label}: {result.ops_per_s:,.0f} ops/s, hold p50 "
        f"{result.percentile(50, holds_only=True):.1f} ms p99 "
        f"{result.percentile(99, holds_only=True):.1f} ms"
    )
    return result


def document(cap: Capacity) -> dict[str, Any]:
    assert cap.baseline is not None and cap.loaded is not None

    def latency(result: Result) -> dict[str, Any]:
        return {
            "shows_active": result.engine,
            "ops_per_s": round(result.ops_per_s, 1),
            "hold_p50_ms": round(result.percentile(50, holds_only=True), 2),
            "hold_p99_ms": round(result.percentile(99, holds_only=True), 2),
            "op_p99_ms": round(result.percentile(99), 2),
            "errors": result.errors,
            "double_holds": result.double_holds,
        }

    p99 = cap.loaded.percentile(99, holds_only=True)
    base_p99 = cap.baseline.percentile(99, holds_only=True)
    return {
        "shows": cap.shows,
        "seats_per_show": SEATS,
        "shared_hosts": cap.hosts,
        "host_base_rss_mib": [round(b / 2**20, 1) for b in cap.base_rss],
        "bytes_per_show": round(cap.bytes_per_show),
        "activation_s": round(cap.activation_s, 1),
        "shows_per_24_gib": cap.shows_per_machine,
        "assumption": f"{HOST_SHARE:.0%} of 24 GiB for show hosts, less their base RSS",
        "rss_curve": [{"shows": s, "rss_mib": round(r / 2**20, 1)} for s, r in cap.curve],
        "baseline": latency(cap.baseline),
        "loaded": latency(cap.loaded),
        "hold_p99_ratio_loaded_baseline": round(p99 / base_p99, 2),
    }


def plot(path: Path, cap: Capacity) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert cap.baseline is not None and cap.loaded is not None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot([s for s, _ in cap.curve], [r / 2**20 for _, r in cap.curve], marker="o")
    left.set_xlabel("active shows")
    left.set_ylabel("show hosts' RSS (MiB)")
    left.set_title(f"{cap.bytes_per_show / 1024:,.1f} KiB a show of {SEATS} seats")
    names = [cap.baseline.engine, cap.loaded.engine]
    for i, q in enumerate((50, 99)):
        values = [r.percentile(q, holds_only=True) for r in (cap.baseline, cap.loaded)]
        right.bar([n + (i - 0.5) * 0.35 for n in range(2)], values, 0.35, label=f"p{q}")
    right.set_xticks(range(2), names)
    right.set_ylabel("hold latency (ms)")
    right.set_title("hold latency")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.capacity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--shows", type=report.positive(int, MAX_SHOWS), default=100_000)
    parser.add_argument(
        "--baseline",
        type=report.positive(int, 10_000),
        default=100,
        help="shows active in the baseline latency run",
    )
    parser.add_argument(
        "--seconds",
        type=report.positive(float, 600),
        default=10.0,
        help="seconds of holds in each latency run",
    )
    parser.add_argument("--clients", type=report.positive(int, 1000), default=64)
    parser.add_argument(
        "--hosts", type=report.positive(int, 16), default=2, help="shared show hosts"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of memory and latency here")
    args = parser.parse_args(argv)
    if args.baseline > args.shows:
        parser.error("--baseline must not exceed --shows")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        shows=args.shows,
        baseline=args.baseline,
        seconds=args.seconds,
        clients=args.clients,
        shared_hosts=args.hosts,
        database_url=args.database_url,
        redis_url=args.redis_url,
    )
    started = ensure_ray()
    try:
        cap = asyncio.run(run_capacity(options, report.say))
    finally:
        if started:
            import ray

            ray.shutdown()
    out = document(cap)
    if args.json:
        report.write_json(args.json, out)
    if args.plot:
        plot(args.plot, cap)
    base, loaded = out["baseline"], out["loaded"]
    print(f"bytes per show ({SEATS} seats): {out['bytes_per_show']:,}")
    print(f"shows per 24 GiB: {out['shows_per_24_gib']:,} ({out['assumption']})")
    print(f"activation of {cap.shows:,} shows: {out['activation_s']} s")
    for row in (base, loaded):
        print(
            f"hold latency with {row['shows_active']} active: p50 {row['hold_p50_ms']} ms, "
            f"p99 {row['hold_p99_ms']} ms ({row['ops_per_s']:,} ops/s)"
        )
    print(
        f"hold p99 ratio, {loaded['shows_active']} / {base['shows_active']}: "
        f"{out['hold_p99_ratio_loaded_baseline']:.2f}"
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
