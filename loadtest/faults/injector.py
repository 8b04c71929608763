"""The faults of a run: a schedule drawn from the seed alone, and its injection into a stack.

    planned = plan_faults(7, 300.0, short=False)     # the same seed, the same schedule
    faults = await inject(stack, planned, started, stop, print)

A schedule never overlaps two faults: each is given the time it needs to be put back (its down
time plus what a restart takes here, ``RECOVERY_S``) and the rest of the run is spread between
them at random. The injection runs them one after the other; one that runs late pushes the next
back rather than overlap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadtest.faults import model

if TYPE_CHECKING:
    from loadtest.faults.stack import FaultStack

Say = Callable[[str], None]

# Seconds each kind takes to be put back beyond its down time, on a busy 2-core machine (a
# gateway process starts Python and joins Ray; a host is restarted by Ray; Postgres replays
# its log). Planning room, not a promise: a fault that runs longer pushes the next one back.
RECOVERY_S = {
    "host_kill": 4.0,
    "gateway_kill": 8.0,
    "webhook_outage": 0.5,
    "postgres_restart": 3.0,
    "redis_restart": 1.5,
}
# Down times (outage lengths for the webhook), seconds: the short form's, and the long form's.
SHORT_DOWN_S = (1.0, 3.0)
LONG_DOWN_S = {
    "host_kill": (0.0, 0.0),  # Ray restarts a host at once
    "gateway_kill": (1.0, 8.0),
    "webhook_outage": (3.0, 20.0),
    "postgres_restart": (1.0, 6.0),
    "redis_restart": (1.0, 6.0),
}
LEAD_S = 3.0  # the load runs this long before the first fault (at least)
TAIL_S = 3.0  # and this long after the last one is put back
LONG_EVERY_S = 30.0  # the long form: about one fault this often
LONG_BUSY = 0.6  # the long form: at most this share of the run spent in faults


@dataclass(frozen=True)
class Planned:
    """One fault of the schedule. ``down_s``: how long the thing stays down (the outage's
    length for the webhook; 0 for a host kill). ``pick``: seeds the choice of which host or
    gateway is hit, so that it too follows from the run's seed."""

    at: float  # seconds after the start of the load
    kind: str
    down_s: float
    pick: int

    @property
    def span_s(self) -> float:
        """The time planned for it: its down time and its recovery."""
        return self.down_s + RECOVERY_S[self.kind]


def plan_faults(
    seed: int, seconds: float, kinds: Sequence[str] = model.FAULT_KINDS, *, short: bool
) -> list[Planned]:
    """The faults of a run of ``seconds``, from ``random.Random(seed)`` alone, in time order.

    Every kind of ``kinds`` comes at least once; ``short``: each exactly once, down 1–3 s;
    otherwise rounds of every kind, about one fault every ``LONG_EVERY_S`` (several of each
    kind on a long run), with longer down times. ``ValueError`` when the arguments are bad or
    the run too short for them.

    >>> [p.kind for p in plan_faults(7, 60, ("host_kill", "redis_restart"), short=True)]
    ['host_kill', 'redis_restart']
    """
    kinds = _checked(seed, seconds, kinds)
    rng = random.Random(seed)
    chosen = list(kinds) if short else _long_kinds(seconds, kinds)
    rng.shuffle(chosen)
    faults = [Planned(0.0, kind, _down(rng, kind, short), rng.randrange(2**31)) for kind in chosen]
    room = seconds - LEAD_S - TAIL_S - sum(p.span_s for p in faults)
    if room < 0:
        need = LEAD_S + TAIL_S + sum(p.span_s for p in faults)
        raise ValueError(f"{seconds:g} s is too short for these faults: they need {need:.0f} s")
    weights = [rng.random() + 0.05 for _ in range(len(faults) + 1)]
    gaps = [room * w / sum(weights) for w in weights]
    at, planned = LEAD_S, []
    for gap, fault in zip(gaps, faults, strict=False):
        at += gap
        planned.append(Planned(round(at, 2), fault.kind, fault.down_s, fault.pick))
        at += fault.span_s
    return planned


def _checked(seed: int, seconds: float, kinds: Sequence[str]) -> tuple[str, ...]:
    if type(seed) is not int:
        raise ValueError(f"the seed must be an integer, not {seed!r}")
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be a positive number, not {seconds!r}")
    if isinstance(kinds, str):
        raise ValueError("kinds must be a sequence of fault kinds, not one string")
    unknown = [k for k in kinds if k not in model.FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be some of {', '.join(model.FAULT_KINDS)}; got {kinds!r}")
    return tuple(dict.fromkeys(kinds))


def _long_kinds(seconds: float, kinds: tuple[str, ...]) -> list[str]:
    """Rounds of every kind once, about one fault every ``LONG_EVERY_S``, while the faults'
    planned spans stay under ``LONG_BUSY`` of the run (the first round always)."""
    chosen = list(kinds)
    budget = LONG_BUSY * seconds - sum(_mean_span(kind) for kind in kinds)
    for _ in range(round(seconds / LONG_EVERY_S / len(kinds)) - 1):
        for kind in kinds:
            if _mean_span(kind) > budget:
                return chosen
            budget -= _mean_span(kind)
            chosen.append(kind)
    return chosen


def _mean_span(kind: str) -> float:
    low, high = LONG_DOWN_S[kind]
    return (low + high) / 2 + RECOVERY_S[kind]


def _down(rng: random.Random, kind: str, short: bool) -> float:
    if kind == "host_kill":
        return 0.0
    low, high = SHORT_DOWN_S if short else LONG_DOWN_S[kind]
    return round(rng.uniform(low, high), 1)


async def inject(
    stack: FaultStack, planned: Sequence[Planned], started: float, stop: asyncio.Event, say: Say
) -> list[model.Fault]:
    """Run the schedule on ``stack`` (a ``FaultStack``): each fault at ``started`` (a
    ``time.time()``) plus its offset, one after the other. Returns the faults injected, when
    the schedule is done or ``stop`` is set; a fault under way is always put back first. A
    fault that fails is recorded with its error in ``detail`` and the stack restored."""
    faults: list[model.Fault] = []
    for fault in sorted(planned, key=lambda p: p.at):
        delay = started + fault.at - time.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, delay))
        if stop.is_set():
            break
        began = time.time()
        try:
            done = await _one(stack, fault)
        except asyncio.CancelledError:
            await asyncio.shield(stack.restore())
            raise
        except Exception as exc:
            done = await _failed(stack, fault, began, exc)
        say(f"fault {done.kind} on {done.target}: {done.ended - done.started:.1f} s {done.detail}")
        faults.append(done)
    return faults


async def _one(stack: FaultStack, fault: Planned) -> model.Fault:
    rng = random.Random(fault.pick)
    if fault.kind == "host_kill":
        return await stack.kill_host(rng)
    if fault.kind == "gateway_kill":
        return await stack.kill_gateway(rng, fault.down_s)
    if fault.kind == "webhook_outage":
        return await stack.webhook_outage(fault.down_s)
    if fault.kind == "postgres_restart":
        return await stack.restart_postgres(fault.down_s)
    if fault.kind == "redis_restart":
        return await stack.restart_redis(fault.down_s)
    raise ValueError(f"unknown fault kind {fault.kind!r}")


async def _failed(stack: FaultStack, fault: Planned, started: float, exc: Exception) -> model.Fault:
    """The record of a fault that went wrong, once the stack is put back (as far as it can)."""
    detail = f"failed: {type(exc).__name__}: {exc}"
    try:
        put_back = await stack.restore()
        detail += f"; restored {', '.join(put_back) or 'nothing'}"
    except Exception as again:
        detail += f"; restoring failed too: {type(again).__name__}: {again}"
    return model.Fault(fault.kind, started, time.time(), "?", detail)
