"""Figures a host keeps about itself, as plain values the gateway turns into Prometheus metrics.

A host runs in a Ray worker process of its own, so its counters cannot live in the gateway's
registry: the host counts into these small structures, ``ShowHost.describe()`` hands them out,
and each gateway polls every host every few seconds (``gateway.metrics``).

    decisions = Buckets(DECISION_BUCKETS)
    decisions.observe(0.00004)
    decisions.export()   # {"bounds": [...], "counts": [...cumulative], "sum": ..., "count": 1}
"""

from __future__ import annotations

import bisect
from typing import Any

__all__ = [
    "BATCH_BUCKETS",
    "DECISION_BUCKETS",
    "LAG_BUCKETS",
    "LOAD_HALF_LIFE_S",
    "Buckets",
    "event_name",
]

# Seconds one command's decision takes inside the host (no I/O: tens of microseconds).
DECISION_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01)
# Seconds from an event's decision to the commit of the flush that wrote it.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Events per flush, and commands per call.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# A show's load (commands a second) decays with this half-life.
LOAD_HALF_LIFE_S = 30.0


class Buckets:
    """A histogram's buckets (upper bounds, Prometheus's ``le``), their counts and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def export(self) -> dict[str, Any]:
        """Cumulative counts per bound (the last is +Inf, the total count), and the sum."""
        cumulative, total = [], 0
        for count in self.counts:
            total += count
            cumulative.append(total)
        return {"bounds": list(self.bounds), "counts": cumulative, "sum": self.sum, "count": total}


_EVENT_NAMES: dict[str, str] = {}


def event_name(kind: str, reason: str | None = None) -> str:
    """``HoldPlaced`` → ``hold_placed``; a hold released because it expired is
    ``hold_expired``."""
    if reason == "expired":
        return "hold_expired"
    name = _EVENT_NAMES.get(kind)
    if name is None:
        name = _EVENT_NAMES[kind] = "".join(
            f"_{c.lower()}" if c.isupper() else c for c in kind
        ).lstrip("_")
    return name
