"""The locust load suite's standard set and its one-page report.

    python -m loadtest                       # a stack of its own on loopback, 30 s a run
    python -m loadtest --quick               # 10 s a run
    python -m loadtest --scenarios funnel,mixed --run-time 60 --out /tmp/load
    python -m loadtest --host http://127.0.0.1:8080 --admin-password demo-password

Without ``--host`` it starts a local Ray, fills a schema of its own with the demo data (small
scale) and customers, and runs the show hosts, a local Stripe and one gateway process on
127.0.0.1 (``loadtest.locust.stack``); with ``--host`` it registers customers at that server
through its API and uses its admin's login to put one show in a flash sale (for
``seatserver up``: turn its per-address rate limits off, all the load comes from one address).

Then each scenario runs headless with the locust CLI for ``--run-time`` seconds: the baseline
(``GET /api/v1/health``), browse and search, seat-map watchers on websockets, the booking
funnel, the flash sale; and the mixed day (100 reads for each write) at doubling user counts
until a step misses its goals (read p99 < 200 ms, hold p99 < 50 ms), with one more step
halfway. The CPU of each process group is sampled meanwhile. ``--out`` (default
``loadtest/reports/latest``, git-ignored) gets locust's CSVs, PNG plots, ``results.json`` and
``report.md``; the figures are printed at the end. Everything it started is ended by its pid,
and its schema and Redis keys are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL  # noqa: E402
from loadtest.locust.local import open_local  # noqa: E402
from loadtest.locust.remote import open_remote  # noqa: E402
from loadtest.locust.scenarios import SCENARIOS, STANDARD  # noqa: E402
from loadtest.locust.stack import StackOptions, Target  # noqa: E402
from loadtest.locust.suite import Suite, SuiteOptions, document, run_suite  # noqa: E402
from loadtest.locust.writeup import headline, write_report  # noqa: E402

LATEST = Path(__file__).resolve().parent / "reports" / "latest"  # git-ignored
QUICK_S = 10.0
LOCAL_ACCOUNTS = 600
HOST_ACCOUNTS = 200
RAY_CPUS = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--run-time", type=report.positive(float, 600), default=30.0, help="seconds a run")
    add("--quick", action="store_true", help=f"{QUICK_S:g} s a run")
    add(
        "--scenarios",
        default=",".join(STANDARD),
        help="comma-separated, of: " + ", ".join(STANDARD),
    )
    add("--out", type=Path, help=f"the report's directory (default {LATEST}, emptied first)")
    add("--host", help="a running server's URL (default: a stack of its own on loopback)")
    add("--admin-email", default="admin@seatserver.local", help="--host: an admin's login")
    add("--admin-password", default="demo-password")
    add("--start-users", type=report.positive(int, 10_000), default=25, help="mixed day")
    add("--max-users", type=report.positive(int, 10_000), default=800, help="mixed day")
    add("--max-steps", type=report.positive(int, 12), default=6, help="mixed day")
    add("--gateways", type=report.positive(int, 8), default=1, help="gateway processes")
    add("--scale", type=report.positive(float, 1.0), default=0.02, help="the demo data's")
    add("--admission-rate", type=report.positive(int, 60_000), default=600, help="a minute")
    add("--database-url", default=DEFAULT_DATABASE_URL)
    add("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown or not args.scenarios:
        parser.error(f"--scenarios: unknown {sorted(unknown)}; known: {', '.join(STANDARD)}")
    if args.host and not args.host.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--host: the load stays on this machine (http://127.0.0.1:PORT)")
    if args.start_users > args.max_users:
        parser.error("--start-users is above --max-users")
    if args.quick:
        args.run_time = QUICK_S
    return args


def _stack_options(args: argparse.Namespace) -> StackOptions:
    flash = SCENARIOS["flash"].users
    return StackOptions(
        # A running server registers them through its API, hashing each password at its
        # deployment's cost: fewer there (the funnel's logins rotate through them).
        accounts=HOST_ACCOUNTS if args.host else LOCAL_ACCOUNTS,
        database_url=args.database_url,
        redis_url=args.redis_url,
        scale=args.scale,
        # Visitors of the flash sale keep their one place: enough for a whole run's admissions.
        flash_accounts=int(args.admission_rate / 60 * args.run_time * 1.5) + 2 * flash + 50,
        gateways=args.gateways,
        admission_per_min=args.admission_rate,
        admin_email=args.admin_email,
        admin_password=args.admin_password,
    )


async def _run(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], Suite]:
    stack = _stack_options(args)
    options = SuiteOptions(
        seconds=args.run_time,
        scenarios=args.scenarios,
        start_users=args.start_users,
        max_users=args.max_users,
        max_steps=args.max_steps,
        gateways=args.gateways,
        admission_per_min=args.admission_rate,
    )
    if args.host:
        target: Target = await open_remote(args.host, stack, report.say)
    else:
        target = await open_local(stack, report.say)
    try:
        suite = await run_suite(target, options, out, report.say)
    finally:
        report.say("closing: gateway, localstripe, show hosts, schema, Redis keys")
        await target.close()
    command = " ".join(["python -m loadtest", *(args.argv or [])])
    return document(target, options, suite, command), suite


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or LATEST
    if args.out is None and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = False if args.host else report.start_local_ray(RAY_CPUS)
    try:
        doc, suite = asyncio.run(_run(args, out))
    finally:
        if started:
            import ray

            ray.shutdown()
    paths = write_report(out, doc, suite)
    for line in headline(doc):
        print(line)
    print(f"report: {paths['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
