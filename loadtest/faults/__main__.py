"""The fault-injection suite's long form.

    python -m loadtest.faults                          # a random seed (printed), 300 s
    python -m loadtest.faults --seed 7 --seconds 120   # replay a run
    python -m loadtest.faults --short --seconds 30     # the test command's form

It starts a local Ray and a stack of its own on loopback (its own Postgres and Redis, which it
restarts; localstripe; two gateway processes; the show hosts), runs customers, seat-map watchers
and waiting-room visitors while faults drawn from the seed hit it, checks the history, runs the
security checks, and writes ``report.md`` (with ``timeline.png``, ``report.json`` and
``history.json``) to ``--out``. Exits 1 when the checker or a security check finds a violation.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import report  # noqa: E402
from loadtest.faults.model import FAULT_KINDS  # noqa: E402
from loadtest.faults.runner import Outcome, RunOptions, new_seed, run_faults  # noqa: E402

LATEST = Path(__file__).resolve().parents[1] / "reports" / "faults"  # git-ignored
RAY_CPUS = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.faults", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--seed", type=report.positive(int, 2**31), help="the faults' seed (default: random)")
    add("--seconds", type=report.positive(float, 3600), default=300.0, help="of load")
    add("--short", action="store_true", help="each fault kind once, short down times")
    add("--customers", type=report.positive(int, 1000), default=24)
    add("--watchers", type=report.positive(int, 1000), default=6)
    add("--visitors", type=report.positive(int, 1000), default=30)
    add("--hold-ttl", type=report.positive(float, 600), default=15.0, help="seconds")
    add("--kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds")
    add("--out", type=Path, help=f"the report's directory (default {LATEST}, emptied first)")
    args = parser.parse_args(argv)
    args.kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(args.kinds) - set(FAULT_KINDS)
    if unknown or not args.kinds:
        parser.error(f"--kinds: unknown {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
    try:  # RunOptions checks the ranges: one place
        args.options = RunOptions(
            seed=args.seed or new_seed(),
            seconds=args.seconds,
            out_dir=args.out or LATEST,
            short=args.short,
            customers=args.customers,
            watchers=args.watchers,
            visitors=args.visitors,
            hold_ttl_s=args.hold_ttl,
            kinds=args.kinds,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args


def headline(outcome: Outcome) -> list[str]:
    summary = outcome.figures["summary"]
    lines = [f"seed {outcome.history.seed}: replay with --seed {outcome.history.seed}"]
    lines.append(f"operations: {summary.get('operations_total', len(outcome.history.calls))}")
    for kind, figure in outcome.figures["unavailability"].items():
        lines.append(f"  {kind}: longest unavailability a customer saw {figure['longest_s']:.1f} s")
    lines.append(f"violations: {len(outcome.violations)}")
    for v in outcome.violations[:20]:
        lines.append(f"  {v.check}: {v.message}")
    failed = outcome.security_failures
    lines.append(f"security checks: {len(outcome.security) - len(failed)}/{len(outcome.security)}")
    for s in failed:
        lines.append(f"  {s['name']}: expected {s['expected_status']}, got {s['got_status']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or LATEST
    if args.out is None and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    options = args.options
    print(f"seed {options.seed}", flush=True)  # first, so a run that dies can be replayed
    started = report.start_local_ray(RAY_CPUS)
    try:
        outcome = asyncio.run(run_faults(options, report.say))
    finally:
        if started:
            import ray

            ray.shutdown()
    for line in headline(outcome):
        print(line)
    print(f"report: {outcome.report}")
    return 1 if outcome.violations or outcome.security_failures else 0


if __name__ == "__main__":
    sys.exit(main())
