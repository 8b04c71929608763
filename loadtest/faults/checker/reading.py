"""Reading a history for the checks: its final state, times as the run's clock, seat states
and ids however they came, which answers settled something, and a few ids for a message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loadtest.faults.model import Call, FinalState, History

_SHOWN = 6  # ids or seats named in one message


def final_of(history: History) -> FinalState:
    """The final state every check compares with; ``ValueError`` when the run has none."""
    if history.final is None:
        raise ValueError("the history has no final state: there is nothing to check it against")
    return history.final


def when(history: History, at: float | None) -> str:
    """``at`` as seconds into the run, as a message names a moment ("t=?": not known)."""
    return "t=?" if at is None else f"t+{at - history.started:.1f}s"


def some(items: Iterable[Any]) -> str:
    """A few of ``items`` for a message, with how many were left out."""
    listed = sorted(str(i) for i in items)
    more = f" (+{len(listed) - _SHOWN} more)" if len(listed) > _SHOWN else ""
    return ", ".join(listed[:_SHOWN]) + more


def seat_state(name: Any) -> str:
    """A seat state as its lower-case value, whether it came as "BOOKED", "booked" or
    "SeatState.BOOKED"."""
    return str(name).rsplit(".", 1)[-1].lower()


def id_of(call: Call, key: str) -> str | None:
    """An id the call recorded, else the one its answer named."""
    value = call.ids.get(key) or (call.body or {}).get(key)
    return None if value is None else str(value)


def settled(call: Call) -> bool:
    """A 2xx that says what happened (a 202 says the outcome is not known yet)."""
    return call.ok and call.status != 202
