"""The flash-sale scenario: a burst of visitors through the waiting room, to a sold-out house.

    python -m loadtest.flash_sale --visitors 1000 --rate 600 --seats 400 --seconds 180
    python -m loadtest.flash_sale --visitors 60 --seats 40 --json out/f.json --plot out/f.png

One show of exactly ``--seats`` seats in a schema of the run's own (``loadtest.http``), its
show hosts on a local Ray, a local Stripe (localstripe) and one gateway process. The show goes
into flash-sale mode with ``--rate`` admissions a minute and a sale that opens ``--sale-lead``
seconds after the visitors start arriving, so that the early ones get the random order. Then
``--visitors`` customers (registered through the API) arrive in one burst: locust, headless,
in a process of its own (``loadtest.flash_visitors``): join, poll about every second until
admitted, hold the best 2 seats with the admission token, check out, pay, leave; a full house
sends them away. The driver samples the queue's counters every 0.5 s and prints a line every
few seconds.

It reports, as text and JSON: the seats sold (Postgres bookings) against capacity (or the
visitors' whole demand, when smaller) and any seat booked twice; the admission rate achieved
while the line was not empty against the configured one (goal: within 10 %); the wait from
joining to admission (p50/p90/p99/max); who got seats, who found the house full, errors by
code; and a PNG of the line and the admissions over time. Everything it started is ended by
pid, and the schema and Redis keys are dropped, also on failure or Ctrl-C. Exit status 1 when
a seat was sold twice, someone was admitted twice or the house did not sell exactly out.

Per-IP rate limits are off (all the load comes from 127.0.0.1); the per-user ones are the
deployment defaults of ``seatserver.settings``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import flash_report, report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402
from loadtest.flash_sale_stack import SaleStack, close_sale_stack, open_sale_stack  # noqa: E402

API = "/api/v1"
GOAL_RATE_WITHIN = 0.10  # the achieved admission rate is within 10 % of the configured one
SAMPLE_S = 0.5
RESULTS = Path(__file__).resolve().parent / "results"  # git-ignored
Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    visitors: int = 1000
    rate: int = 600  # admissions a minute
    seats: int = 400
    seconds: float = 180.0  # the visitors' time limit, from their arrival
    sale_lead_s: float = 5.0  # the sale opens this long after the first arrivals
    poll_s: float = 1.0
    token_ttl_s: int = 600
    progress_s: float = 3.0
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    out: Path | None = None  # the run's output directory (RESULTS/<run> when None)
    run: str = field(default_factory=lambda: f"flash_{uuid.uuid4().hex[:8]}")

    @property
    def out_dir(self) -> Path:
        return self.out if self.out is not None else RESULTS / self.run

    @property
    def demand(self) -> int:
        """The seats the visitors would buy, all of them: what can be sold at most."""
        return min(self.seats, 2 * self.visitors)


@dataclass
class Sale:
    """What one run saw: the visitors' stories (from their process), the queue's counters
    over time, and the bookings in Postgres at the end."""

    options: Options
    show_id: int
    began_at: float  # when the visitors were let go
    sale_opens_at: float
    visitors: dict[str, Any]  # ``loadtest.flash_visitors`` result
    samples: list[dict[str, Any]]
    samples_failed: int  # reads of the queue's counters that the gateway failed
    final_stats: dict[str, Any] | None  # None: they could not be read
    bookings: list[tuple[int, list[str]]]  # (user, seats) of the live bookings


# -- the run ---------------------------------------------------------------------------------


async def run_sale(options: Options, say: Say) -> Sale:
    """Open the stack, run the visitors against it, read the outcome, close the stack."""
    stack = await open_sale_stack(options, say)
    try:
        return await _sale(stack, options, say)
    finally:
        say("closing: visitors, gateway, localstripe, show hosts, schema, Redis keys")
        await close_sale_stack(stack)


async def _sale(stack: SaleStack, options: Options, say: Say) -> Sale:
    plan = {
        "url": stack.url,
        "show_id": stack.show_id,
        "tokens": stack.tokens,
        "poll_s": options.poll_s,
        "seconds": options.seconds,
        "token_ttl_s": options.token_ttl_s,
        "payment_method": "pm_card_visa",  # localstripe's test card
    }
    await stack.start_visitors(plan, options.out_dir)
    now = time.time()
    await stack.open_flash_sale(
        queue_opens_at=now - 60,
        sale_opens_at=now + options.sale_lead_s,
        admission_per_min=options.rate,
        token_ttl_s=options.token_ttl_s,
    )
    began = await stack.let_visitors_go()
    say(f"{options.visitors} visitors arriving; the sale opens in {options.sale_lead_s:g} s")
    samples, failed = await _watch(stack, options, began, say)
    result = await stack.visitors_result(timeout_s=30.0)
    final: dict[str, Any] | None = None
    try:
        final = await stack.queue_stats()
        samples.append(_sample(final, await stack.sold_seats()))  # the line as they left it
    except RuntimeError as exc:
        failed += 1
        say(f"the line's final counters could not be read: {exc}")
    return Sale(
        options,
        stack.show_id,
        began,
        now + options.sale_lead_s,
        result,
        samples,
        failed,
        final,
        await stack.bookings(),
    )


async def _watch(
    stack: SaleStack, options: Options, began: float, say: Say
) -> tuple[list[dict[str, Any]], int]:
    """Sample the line every ``SAMPLE_S`` until the visitors' process ends (or overstays its
    time limit); a progress line every ``progress_s``."""
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + options.seconds + 30.0
    next_say = time.monotonic() + options.progress_s
    failed = 0
    while stack.visitors_running() and time.monotonic() < deadline:
        tick = time.monotonic()
        try:
            stats, sold = await asyncio.gather(stack.queue_stats(), stack.sold_seats())
        except RuntimeError as exc:  # the gateway's answer: counted, the run goes on
            failed += 1
            if failed == 1:
                say(f"a sample of the line failed (more are counted, not shown): {exc}")
            await asyncio.sleep(SAMPLE_S)
            continue
        samples.append(_sample(stats, sold))
        at = samples[-1]["at"]
        if time.monotonic() >= next_say:
            next_say += options.progress_s
            say(
                f"t={at - began:5.1f} s  joined {stats['joined']}, waiting {stats['waiting']}, "
                f"admitted {stats['admitted']}, expired {stats['expired']}, "
                f"sold {sold}/{options.seats}"
            )
        await asyncio.sleep(max(0.0, SAMPLE_S - (time.monotonic() - tick)))
    if failed:
        say(f"{failed} samples of the line failed")
    return samples, failed


def _sample(stats: dict[str, Any], sold: int) -> dict[str, Any]:
    names = ("waiting", "admitted", "expired", "joined")
    sample: dict[str, Any] = {"at": time.time(), **{n: stats[n] for n in names}, "sold": sold}
    if "supply" in stats:  # what the show has left, when the queue's counters say
        sample["supply"] = stats["supply"]
    return sample


# -- the report ------------------------------------------------------------------------------


def document(sale: Sale) -> dict[str, Any]:
    o, visits = sale.options, sale.visitors["visits"]
    ended = float(sale.visitors["ended_at"])
    flash_report.mark_open(sale.samples, sale.visitors.get("phases", []))
    rate, admissions, busy = flash_report.sampled_rate(
        sale.samples, sale_opens_at=sale.sale_opens_at
    )
    ratio = rate / o.rate if math.isfinite(rate) else math.nan
    seen = flash_report.admission_rate(visits, sale_opens_at=sale.sale_opens_at, ended_at=ended)
    let_in = flash_report.admitted(visits)
    numbers = [v["number"] for v in let_in]
    seats = [s for _, s in sale.bookings]
    sold = sum(len(s) for s in seats)
    twice = flash_report.seats_booked_twice(seats)
    users = [u for u, _ in sale.bookings]
    booked = [v for v in visits if v["outcome"] == "booked"]
    final = sale.final_stats or {}
    checks = {
        "sold_as_expected": sold == o.demand,
        "no_seat_booked_twice": not twice,
        "one_booking_per_buyer": len(set(users)) == len(users),
        # No place admitted twice, nobody admitted anew after a lapse, and no more
        # admissions than places; the visitors saw each of theirs.
        "admitted_once_each": bool(final)
        and len(set(numbers)) == len(numbers)
        and final["lapsed"] == 0
        and final["admitted"] + final["expired"] <= final["joined"] + final["returned"]
        and len(let_in) <= final["admitted"],
        "queue_counters_read": sale.samples_failed == 0 and bool(final),
    }
    return {
        "run": o.run,  # names its schema and prefixes its Redis keys
        "ok": all(checks.values()),
        "checks": checks,
        "seats": {
            "capacity": o.seats,
            "expected_sold": o.demand,
            "sold": sold,
            "bookings": len(seats),
            "visitors_told_booked": len(booked),
            "booked_twice": twice,
        },
        "admission": {
            "configured_per_min": o.rate,
            "achieved_per_min": _num(rate, 1),
            "ratio": _num(ratio, 3),
            "goal_within": GOAL_RATE_WITHIN,
            "goal_met": math.isfinite(ratio) and abs(ratio - 1) <= GOAL_RATE_WITHIN,
            "admissions": admissions,
            "busy_s": round(busy, 2),
            "source": "the queue's admitted counter, sampled every 0.5 s while someone "
            "waited and the line was open (not paused or sold out)",
            # The same from the admission instants the visitors were told (their tokens):
            # lower when some visitors' answers were lost (their admissions are not seen).
            "seen_by_visitors": {
                "per_min": _num(seen[0], 1),
                "admissions": seen[1],
                "busy_s": round(seen[2], 2),
            },
        },
        "wait_s": {
            "all": flash_report.spread(v["admitted_at"] - v["joined_at"] for v in let_in),
            "arrived_before_sale": flash_report.spread(
                v["admitted_at"] - v["joined_at"]
                for v in let_in
                if v["phase_at_join"] == "pre_sale"
            ),
        },
        "visitors": {
            "total": o.visitors,
            "arrived": len(visits),
            "before_sale": sum(v.get("phase_at_join") == "pre_sale" for v in visits),
            "admitted": len(let_in),
            "admitted_by_the_queue": final.get("admitted"),
            "expired_from_the_queue": final.get("expired"),
            "got_seats": len(booked),
            # Refused a hold (409 no_seats_available), or told by the line (sold out).
            "house_full": sum(v["outcome"] in ("house_full", "sold_out") for v in visits),
            "outcomes": flash_report.outcomes(visits),
            "timed_out": sale.visitors["timed_out"],
        },
        "errors": flash_report.errors(visits),
        "locust_errors": sale.visitors["locust_errors"],
        "requests": sale.visitors["requests"],
        "queue_stats": sale.final_stats,
        "queue_stats_failed": sale.samples_failed,
        "workload": {
            "visitors": o.visitors,
            "admission_per_min": o.rate,
            "seats": o.seats,
            "seconds": o.seconds,
            "sale_lead_s": o.sale_lead_s,
            "poll_s": o.poll_s,
            "seats_per_visitor": 2,
            "machine_cores": os.cpu_count(),
        },
        "timeline": {
            "visitors_began_at": sale.began_at,
            "sale_opened_at": sale.sale_opens_at,
            "visitors_ended_at": ended,
            "samples": sale.samples,
        },
    }


def _num(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def summary(out: dict[str, Any]) -> str:
    s, a, v = out["seats"], out["admission"], out["visitors"]
    waits = out["wait_s"]["all"]
    lines = [
        f"seats sold: {s['sold']} of {s['capacity']} (expected {s['expected_sold']}); "
        f"seats booked twice: {len(s['booked_twice'])}",
        f"admission rate: {a['achieved_per_min']}/min against {a['configured_per_min']}/min, "
        f"ratio {a['ratio']} (goal within {a['goal_within']:.0%}: "
        f"{'met' if a['goal_met'] else 'missed'}); {a['admissions']} admitted over "
        f"{a['busy_s']} s of non-empty line (as the visitors saw it: "
        f"{a['seen_by_visitors']['per_min']}/min)",
        "wait join → admitted (s): "
        + ", ".join(f"{k} {'n/a' if x is None else f'{x:.1f}'}" for k, x in waits.items()),
        f"visitors: {v['total']}, {v['before_sale']} told they were early; admitted "
        f"{v['admitted']} (the queue admitted {v['admitted_by_the_queue']}, expired "
        f"{v['expired_from_the_queue']}), got seats {v['got_seats']}, found the house full "
        f"{v['house_full']}; outcomes {v['outcomes']}",
        f"errors by code: {out['errors'] or 'none'}",
    ]
    for name, r in out["requests"].items():
        lines.append(
            f"  {name:<14} {r['requests']:>7} requests, {r['failures']} failed, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"
        )
    failed = [name for name, passed in out["checks"].items() if not passed]
    lines.append("checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.flash_sale", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--visitors", type=report.positive(int, 5000), default=1000)
    add("--rate", type=report.positive(int, 60_000), default=600, help="admissions a minute")
    add("--seats", type=report.positive(int, 600), default=400, help="the show's seats, even")
    add(
        "--seconds",
        type=report.positive(float, 1800),
        default=180.0,
        help="the visitors' time limit, from their arrival",
    )
    add("--sale-lead", type=report.positive(float, 120), default=5.0, help="seconds")
    add("--poll", type=report.positive(float, 30), default=1.0, help="seconds between polls")
    add("--progress", type=report.positive(float, 600), default=3.0, help="seconds")
    add("--database-url", default=DEFAULT_DATABASE_URL)
    add("--redis-url", default=DEFAULT_REDIS_URL)
    add("--out", type=Path, help=f"the run's output directory (default {RESULTS}/RUN)")
    add("--json", type=Path, help="write the results here (default OUT/flash_sale.json)")
    add("--plot", type=Path, help="write the PNG here (default OUT/flash_sale.png)")
    args = parser.parse_args(argv)
    if args.seats < 2 or args.seats % 2:
        parser.error("--seats: every visitor buys 2 seats, so an even number, at least 2")
    if args.poll < 0.2:
        parser.error("--poll: at least 0.2 s")
    sell_out_s = args.sale_lead + min(args.visitors, args.seats // 2) * 60 / args.rate
    if sell_out_s + 5 > args.seconds:
        parser.error(
            f"--seconds: the house needs about {sell_out_s:.0f} s to sell out at --rate "
            f"{args.rate}/min (after the {args.sale_lead:g} s lead); give it at least "
            f"{math.ceil(sell_out_s + 5)}"
        )
    return args


def _off_redis_port() -> None:
    import ray

    address = ray.get_runtime_context().gcs_address
    if address.endswith(":6379"):
        raise RuntimeError(f"Ray listens on {address}, Redis's port: start it on another")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        visitors=args.visitors,
        rate=args.rate,
        seats=args.seats,
        seconds=args.seconds,
        sale_lead_s=args.sale_lead,
        poll_s=args.poll,
        progress_s=args.progress,
        database_url=args.database_url,
        redis_url=args.redis_url,
        out=args.out,
    )
    if options.visitors * 60 / options.rate + options.sale_lead_s > options.seconds:
        report.say(
            "note: the whole line cannot be admitted in --seconds; the house still sells out"
        )
    started = ensure_ray()
    try:
        _off_redis_port()
        sale = asyncio.run(run_sale(options, report.say))
    finally:
        if started:
            import ray

            ray.shutdown()
    out = document(sale)
    plot = args.plot or options.out_dir / "flash_sale.png"
    out["plot"] = str(plot)
    report.write_json(args.json or options.out_dir / "flash_sale.json", out)
    flash_report.plot(
        plot,
        sale.samples,
        sale_opens_at=sale.sale_opens_at,
        began_at=sale.began_at,
        rate=options.rate,
        title=f"flash sale: {options.visitors} visitors, {options.seats} seats, "
        f"{options.rate}/min, {os.cpu_count()} cores",
    )
    print(summary(out))
    print(f"JSON {args.json or options.out_dir / 'flash_sale.json'}; plot {plot}")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
