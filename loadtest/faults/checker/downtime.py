"""What customers saw of the faults: each client's outages (from a call that got no service
to the next answered one), laid at the door of the fault they overlap, the longest per kind."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from loadtest.faults.model import FAULT_KINDS, Call, History

# An outage that starts this long after a fault was put back is still laid at its door.
FAULT_TAIL_S = 5.0


@dataclass(frozen=True)
class Outage:
    """A run of calls of one client that got no service, until its next answered call ended."""

    client: str
    started: float
    ended: float
    recovered: bool  # False: the client never got an ok answer again

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def customer_calls(history: History) -> dict[str, list[Call]]:
    """Each client's calls in the order made, watchers left out."""
    watchers = {w.client for w in history.watchers}
    calls: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(history.calls, key=lambda c: c.started):
        if call.client not in watchers and not call.client.startswith("watcher"):
            calls[call.client].append(call)
    return calls


def outages(calls: list[Call]) -> list[Outage]:
    """One client's outages: from the start of an unavailable call (no answer, 5xx, 429)
    until the next call that got any other answer ended (a 2xx, or a 4xx such as a sold-out
    show: the service answered); the unavailable calls in between belong to it."""
    found: list[Outage] = []
    start: Call | None = None
    for call in calls:
        if start is None and call.unavailable:
            start = call
        elif start is not None and not call.unavailable:
            found.append(Outage(call.client, start.started, call.ended, True))
            start = None
    if start is not None:
        found.append(Outage(start.client, start.started, max(c.ended for c in calls), False))
    return found


def fault_kind_at(history: History, started: float, ended: float | None = None) -> str:
    """The kind of the latest fault whose span [started, ended + FAULT_TAIL_S] overlaps the
    outage [``started``, ``ended``] (a call in flight when the fault struck began before it),
    else "none"."""
    until = started if ended is None else ended
    kind, latest = "none", float("-inf")
    for fault in history.faults:
        overlaps = fault.started <= until and started <= fault.ended + FAULT_TAIL_S
        if overlaps and fault.started > latest:
            kind, latest = fault.kind, fault.started
    return kind


def unavailability(history: History) -> dict[str, dict[str, Any]]:
    """Per fault kind (every kind of FAULT_KINDS, and "none" for outages during no fault):
    the longest outage a customer saw (seconds), whose it was, when it started (seconds
    since the run began), whether the client recovered, and how many outages there were."""
    table: dict[str, dict[str, Any]] = {
        kind: {"longest_s": 0.0, "client": None, "at_s": None, "recovered": None, "runs": 0}
        for kind in (*FAULT_KINDS, "none")
    }
    for calls in customer_calls(history).values():
        for outage in outages(calls):
            row = table.setdefault(
                fault_kind_at(history, outage.started, outage.ended),
                {"longest_s": 0.0, "client": None, "at_s": None, "recovered": None, "runs": 0},
            )
            row["runs"] += 1
            if outage.seconds > row["longest_s"]:
                row.update(
                    longest_s=round(outage.seconds, 3),
                    client=outage.client,
                    at_s=round(outage.started - history.started, 3),
                    recovered=outage.recovered,
                )
    return table
