"""One fault run, start to finish: the stack, the load and the faults at once, then the stack
settled and read, the history checked, the security checks, the report.

    outcome = await run_faults(RunOptions(seed=7, seconds=30, short=True, out_dir=...), say)
    outcome.violations      # [] when nobody got a seat someone else has and nothing was lost
    outcome.report          # out_dir/report.md

Ray must be up in this process. Everything the run starts (its Postgres, Redis, localstripe,
gateway processes and show hosts) is ended by the stack's ``close``, also after a failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.faults import checker, clients, final, injector, report, security
from loadtest.faults.model import FAULT_KINDS, History, Violation
from loadtest.faults.stack import FaultStackOptions, open_fault_stack

Say = Callable[[str], None]
HOLD_SLACK_S = 10.0  # a hold must have ended this long after its expiry at the latest
SETTLE_TIMEOUT_S = 90.0  # customers finishing their journeys once the load stops


@dataclass(frozen=True)
class RunOptions:
    seed: int
    seconds: float  # of load with faults
    out_dir: Path
    short: bool = False  # each fault kind once, short down times (the test command's form)
    customers: int = 24
    watchers: int = 6
    visitors: int = 30
    hold_ttl_s: float = 15.0
    hold_slack_s: float = HOLD_SLACK_S
    kinds: tuple[str, ...] = FAULT_KINDS
    work_dir: Path | None = None  # the stack's servers' files (default: a temporary directory)

    def __post_init__(self) -> None:
        if not 5 <= self.seconds <= 3600:
            raise ValueError(f"seconds: {self.seconds:g} is not within 5..3600")
        for name in ("customers", "watchers", "visitors"):
            if not 0 <= getattr(self, name) <= 1000:
                raise ValueError(f"{name}: {getattr(self, name)} is not within 0..1000")
        if self.customers < 2:
            raise ValueError("customers: at least 2 (the security checks need two)")
        if not 5 <= self.hold_ttl_s <= 600:
            raise ValueError(f"hold_ttl_s: {self.hold_ttl_s:g} is not within 5..600")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds: unknown {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")


@dataclass
class Outcome:
    history: History
    violations: list[Violation]
    security: list[dict[str, Any]]
    report: Path
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def security_failures(self) -> list[dict[str, Any]]:
        return [s for s in self.security if not s["passed"]]


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


async def run_faults(options: RunOptions, say: Say) -> Outcome:
    """The whole run; see the module's doc."""
    say(f"fault run: seed {options.seed}, {options.seconds:g} s of load")
    with tempfile.TemporaryDirectory(prefix="faults") as temp:
        work_dir = options.work_dir or Path(temp) / "stack"  # the stack makes it, removes it
        stack = await open_fault_stack(
            FaultStackOptions(
                work_dir=work_dir,
                customers=options.customers,
                visitors=options.visitors,
                hold_ttl_s=options.hold_ttl_s,
                payment_ttl_s=2 * options.hold_ttl_s,  # an unpaid checkout lapses within the run
                shows=3 + int(options.seconds // 20),  # seats enough for the run's bookings
            ),
            say,
        )
        try:
            history = await _load_with_faults(stack, options, say)
            violations = checker.check(history)
            say(f"history checked: {len(violations)} violation(s)")
            victim = await security.make_victim(stack.plan)
            results = [r.as_dict() for r in await security.run_security_checks(stack.plan, victim)]
            say(f"security: {sum(r['passed'] for r in results)}/{len(results)} refused rightly")
        finally:
            say("closing the stack")
            await stack.close()
    path = report.write_report(history, violations, options.out_dir, security=results)
    figures = {
        "summary": checker.summary(history),
        "unavailability": checker.unavailability(history),
    }
    return Outcome(history, violations, results, path, figures)


async def _load_with_faults(stack: Any, options: RunOptions, say: Say) -> History:
    planned = injector.plan_faults(
        options.seed, options.seconds, options.kinds, short=options.short
    )
    history = History(seed=options.seed, started=time.time(), ended=0.0)
    stop, finish = asyncio.Event(), asyncio.Event()
    crowd = clients.Clients(
        stack.plan,
        history,
        seed=options.seed,
        stop=stop,
        finish=finish,
        customers=options.customers,
        watchers=options.watchers,
        visitors=options.visitors,
        say=say,
        # Visitors arrive over most of the run: the line lives through the faults.
        tuning=clients.Tuning(visitor_spread_s=options.seconds * 0.7),
    )
    load = asyncio.create_task(crowd.run())
    faults = asyncio.create_task(injector.inject(stack, planned, history.started, stop, say))
    try:
        await _until(history.started + options.seconds, load)
        stop.set()
        history.faults = await faults
        await _drained(crowd, load)
        history.ended = time.time()
        say(f"load stopped: {len(history.calls)} calls, {len(history.faults)} faults")
        history.final = await final.settle_and_collect(
            stack,
            last_hold_expiry=last_hold_expiry(history),
            hold_slack_s=options.hold_slack_s,
            say=say,
        )
        finish.set()
        await asyncio.wait_for(load, SETTLE_TIMEOUT_S)
    finally:
        stop.set()
        finish.set()
        for task in (faults, load):
            if not task.done():
                task.cancel()
        await asyncio.gather(faults, load, return_exceptions=True)
    return history


async def _until(moment: float, load: asyncio.Task[Any]) -> None:
    """Sleep until ``moment``; the load ending early (a client bug) is raised at once."""
    while (left := moment - time.time()) > 0:
        done, _ = await asyncio.wait({load}, timeout=min(left, 1.0))
        if done:
            load.result()
            raise RuntimeError("the clients ended before the load was stopped")


async def _drained(crowd: clients.Clients, load: asyncio.Task[Any]) -> None:
    """Wait until every customer and visitor has ended its journey (bounded)."""
    waiting = asyncio.create_task(crowd.drained.wait())
    try:
        await asyncio.wait({waiting, load}, timeout=SETTLE_TIMEOUT_S, return_when="FIRST_COMPLETED")
    finally:
        waiting.cancel()
    if load.done():
        load.result()
        raise RuntimeError("the clients ended before they were told to finish")
    if not crowd.drained.is_set():
        raise RuntimeError(f"the customers' journeys did not end in {SETTLE_TIMEOUT_S:g} s")


def last_hold_expiry(history: History) -> float:
    """The latest expiry of any hold a client was told of (epoch seconds), or now."""
    latest = time.time()
    for call in history.calls:
        expires = (call.body or {}).get("expires_at")
        if call.ok and isinstance(expires, str):
            latest = max(latest, dt.datetime.fromisoformat(expires).timestamp())
    return latest
