"""Figures from locust runs (the driver's side, plain functions of the recorded samples): the
measured window, requests a second and latency percentiles by group and by request, their
course over time, a mixed-day step's verdict, and where the CPU went.

    samples = read_samples(Path("out/funnel_samples.csv"))
    t0, t1 = window(summary, samples)              # after every user started, until the end
    groups = by_group(samples, t0, t1)             # {"read": Stats, "hold": Stats, "http": ...}
    verdict = judge_step(groups)                   # p99 goals of the mixed day, failures
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.flash_report import percentile
from loadtest.locust.cpu import OTHER
from loadtest.locust.scenarios import (
    HOLD,
    HOLD_P99_GOAL_MS,
    JOURNEY,
    MAX_FAILURE_SHARE,
    READ,
    READ_P99_GOAL_MS,
    WRITE,
    WS,
    group_of,
)

SETTLE_S = 1.0  # after the last user started, before the measured window opens
HTTP = "http"  # every HTTP request: read, hold and write
TRAILING_S = 5.0  # the window of the percentiles drawn over time


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the epoch, when the request ended
    method: str
    name: str
    ms: float
    ok: bool

    @property
    def group(self) -> str:
        return group_of(self.method, self.name)


def read_samples(path: Path) -> list[Sample]:
    with path.open(newline="") as f:
        return [
            Sample(float(r["t"]), r["method"], r["name"], float(r["ms"]), r["ok"] == "1")
            for r in csv.DictReader(f)
        ]


@dataclass(frozen=True)
class Stats:
    requests: int
    failures: int
    seconds: float
    p50: float
    p95: float
    p99: float
    max: float

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failure_share(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(x, 2) if math.isfinite(x) else None

        return {
            "requests": self.requests,
            "failures": self.failures,
            "per_s": round(self.per_s, 2),
            "p50_ms": num(self.p50),
            "p95_ms": num(self.p95),
            "p99_ms": num(self.p99),
            "max_ms": num(self.max),
        }


def stats(samples: Iterable[Sample], seconds: float) -> Stats:
    items = list(samples)
    ms = sorted(s.ms for s in items)
    return Stats(
        len(items),
        sum(not s.ok for s in items),
        seconds,
        percentile(ms, 50),
        percentile(ms, 95),
        percentile(ms, 99),
        ms[-1] if ms else math.nan,
    )


def window(summary: Mapping[str, Any], samples: Sequence[Sample]) -> tuple[float, float]:
    """The measured window: from ``SETTLE_S`` after every user started to the last request."""
    marks = summary.get("marks", {})
    first = samples[0].t if samples else 0.0
    start = float(marks.get("spawned", marks.get("started", first))) + SETTLE_S
    end = max((s.t for s in samples), default=start)
    return start, max(start, end)


def _inside(samples: Iterable[Sample], t0: float, t1: float) -> list[Sample]:
    return [s for s in samples if t0 <= s.t <= t1]


def by_group(samples: Sequence[Sample], t0: float, t1: float) -> dict[str, Stats]:
    """Stats per group in [t0, t1], and ``http`` for every HTTP request together."""
    inside = _inside(samples, t0, t1)
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in inside:
        groups[s.group].append(s)
        if s.group in (READ, HOLD, WRITE):
            groups[HTTP].append(s)
    return {name: stats(items, t1 - t0) for name, items in sorted(groups.items())}


def by_name(samples: Sequence[Sample], t0: float, t1: float) -> dict[str, Stats]:
    """Stats per request ("GET /cities", "WS delta", "JOURNEY booking (funnel)") in [t0, t1]."""
    names: dict[str, list[Sample]] = defaultdict(list)
    for s in _inside(samples, t0, t1):
        names[f"{s.method} {s.name}"].append(s)
    return {name: stats(items, t1 - t0) for name, items in sorted(names.items())}


def timeline(samples: Sequence[Sample], origin: float) -> list[dict[str, Any]]:
    """Per second since ``origin``: requests that second by group, and the p50/p95/p99 of the
    HTTP requests (and p99 per group) over the trailing ``TRAILING_S`` seconds."""
    if not samples:
        return []
    buckets: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        buckets[int(s.t - origin)].append(s)
    out = []
    for second in range(min(buckets), max(buckets)):  # the last second is cut short: left out
        recent = [s for k in range(second - int(TRAILING_S) + 1, second + 1) for s in buckets[k]]
        http = sorted(s.ms for s in recent if s.group in (READ, HOLD, WRITE))
        point: dict[str, Any] = {"t": second, "per_s": defaultdict(int), "p99_by_group": {}}
        for s in buckets[second]:
            point["per_s"][s.group] += 1
        for q in (50, 95, 99):
            point[f"p{q}"] = percentile(http, q)
        for group in (READ, HOLD, WS):
            values = sorted(s.ms for s in recent if s.group == group)
            if values:
                point["p99_by_group"][group] = percentile(values, 99)
        point["per_s"] = dict(point["per_s"])
        out.append(point)
    return out


def journey_stats(samples: Sequence[Sample], t0: float, t1: float, name: str) -> Stats:
    """A journey's completions (``JOURNEY`` events named ``name``) in [t0, t1]."""
    return stats(
        (s for s in _inside(samples, t0, t1) if s.group == JOURNEY and s.name == name), t1 - t0
    )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    # Missed only for want of holds: not a miss of the goals, the next step (more users, more
    # holds) is judged instead.
    undecided: bool = False


MIN_HOLDS = 10  # a step's hold p99 rests on at least this many holds, or it is not met
FULL_P99 = 100  # below this many requests, a p99 is one of the few slowest: near the maximum


def judge_step(groups: Mapping[str, Stats]) -> Verdict:
    """Whether a mixed-day step met the goals: reads p99 < 200 ms, holds p99 < 50 ms over at
    least ``MIN_HOLDS`` holds, and at most 1 % of requests failed. Too few holds alone leaves
    the step ``undecided``."""
    reasons = []
    reads, holds, http = groups.get(READ), groups.get(HOLD), groups.get(HTTP)
    if reads is None or not reads.requests:
        return Verdict(False, ["no reads measured"])
    if not reads.p99 < READ_P99_GOAL_MS:
        reasons.append(f"read p99 {reads.p99:.0f} ms ≥ {READ_P99_GOAL_MS:g}")
    held = holds.requests if holds is not None else 0
    few = f"{held} holds in the window, fewer than {MIN_HOLDS} to judge their p99"
    if held < MIN_HOLDS:
        reasons.append(few)
    elif holds is not None and not holds.p99 < HOLD_P99_GOAL_MS:
        reasons.append(f"hold p99 {holds.p99:.0f} ms ≥ {HOLD_P99_GOAL_MS:g}")
    if http is not None and http.failure_share > MAX_FAILURE_SHARE:
        reasons.append(f"{http.failure_share:.1%} of requests failed")
    return Verdict(not reasons, reasons, undecided=reasons == [few])


def rests_on(n: int) -> str:
    """How much a p99 over ``n`` requests says, in words.

    >>> rests_on(40)
    '40 holds: the p99 is near the maximum'
    """
    return f"{n} holds" + (": the p99 is near the maximum" if n < FULL_P99 else "")


SINGLE_LOOP_BUSY = 0.85  # of a core: a process with one event loop is as busy as it gets


def bottleneck(mean: Mapping[str, Any], cores: int, gateways: int = 1) -> str:
    """Where the CPU went, in words: a gateway's one event loop near a whole core, or the
    machine's cores all busy (and who had them), or neither (then the limit is not CPU)."""
    used = {k: v for k, v in mean.get("cores", {}).items() if v > 0}
    if not used:
        return "no CPU samples"
    shares = ", ".join(
        f"{name} {value:.2f}" for name, value in sorted(used.items(), key=lambda kv: -kv[1])[:5]
    )
    machine = float(mean.get("machine", 0.0))
    per_gateway = used.get("gateway", 0.0) / max(1, gateways)
    if per_gateway >= SINGLE_LOOP_BUSY:
        head = (
            f"the gateway: its event loop is busy {per_gateway:.2f} of a core "
            f"(one process, one loop)"
        )
    elif machine >= 0.9 * cores:
        mine = {k: v for k, v in used.items() if k != OTHER}
        top = max(mine, key=lambda k: mine[k]) if mine else OTHER
        head = f"the machine's {cores} cores ({machine:.2f} busy); the largest share of the stack's"
        if used.get(OTHER, 0.0) > sum(mine.values()):
            head = (
                f"the machine's {cores} cores ({machine:.2f} busy), mostly with other work "
                f"({used[OTHER]:.2f}); the largest share of the stack's"
            )
        head += f": {top}"
    else:
        head = f"not the CPU ({machine:.2f} of {cores} cores busy): waits (I/O, locks, timers)"
    return f"{head}. Cores by group: {shares}"


def where_time_went(what: str, client_p99_ms: float | None, server_p99_le_ms: float | None) -> str:
    """The client's p99 beside the gateway handlers' (a bucket bound), in words; "" when
    either is unknown.

    >>> where_time_went("holds", 80.0, 10.0).endswith("(the event loop's queue, or the client)")
    True
    """
    if client_p99_ms is None or server_p99_le_ms is None:
        return ""
    head = (
        f"{what}: p99 {client_p99_ms:.0f} ms at the client, ≤ {server_p99_le_ms:g} ms in the "
        "gateway's handlers"
    )
    if client_p99_ms > 2 * server_p99_le_ms:
        return head + ": most of it waited outside them (the event loop's queue, or the client)"
    if client_p99_ms >= server_p99_le_ms / 2.5:  # within the bucket below the bound, or in it
        return head + ": the time is spent inside them (the show actor, Redis, Postgres, …)"
    return head + " (too coarse a bucket to say more)"


HOST_PHASES = ("host_lane", "host_call")


def phase_at_p99(
    what: str, phases: Mapping[str, Mapping[str, Any]], request_p99_le_ms: float | None,
    decision: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """The phase whose p99 is the largest (the one holding the requests' p99), its bucket and
    its share of the requests' p99 in the gateway; for the show host's phases, the host's own
    decision time beside it. "" when no phase was timed.

    >>> phases = {"host_call": {"p99_le_ms": 150.0}, "auth": {"p99_le_ms": 0.1}}
    >>> phase_at_p99("holds by phase", phases, 200.0, {"p99_le_ms": 0.05})[:59]
    'holds by phase: host_call p99 ≤ 150 ms (75% of the ≤ 200 ms'
    """
    bounds = {p: f["p99_le_ms"] for p, f in phases.items() if f.get("p99_le_ms") is not None}
    if not bounds:
        return ""
    top = max(bounds.values())
    slowest = sorted(p for p, bound in bounds.items() if bound == top)
    head = f"{what}: {' and '.join(slowest)} p99 ≤ {top:g} ms"
    if request_p99_le_ms:
        head += f" ({min(1.0, top / request_p99_le_ms):.0%} of the ≤ {request_p99_le_ms:g} ms"
        head += " request p99)"
    others = sorted(((b, p) for p, b in bounds.items() if p not in slowest), reverse=True)[:3]
    if others:
        head += "; next " + ", ".join(f"{p} ≤ {b:g} ms" for b, p in others)
    if set(slowest) & set(HOST_PHASES):
        head += _host_words(slowest, top, decision)
    return head


def _host_words(slowest: Sequence[str], top_ms: float, decision: Mapping[str, Any] | None) -> str:
    decided = None if decision is None else decision.get("p99_le_ms")
    where = (
        "waiting in the show host's lane behind the call in flight"
        if "host_lane" in slowest
        else "the Ray call to the show host and back (Ray, the host's event loop, this loop's "
        "turn to wake the request)"
    )
    if decided is None:
        return f": {where}; the host's decision time was not read"
    if decided >= top_ms / 2:
        return f": the host's decision itself (its p99 ≤ {decided:g} ms)"
    return f": {where}, not the host's decision (its p99 ≤ {decided:g} ms)"
