"""Every confirmation a client was told of is in Postgres, and so is every cancellation:
what clients were told of each booking, against the booking rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from loadtest.faults.checker.reading import final_of, id_of, settled, when
from loadtest.faults.model import Call, History, Violation


@dataclass(frozen=True)
class Told:
    """A client was told something of a booking: ``what`` is "confirmed", "cancelled" or
    "cancel_unknown" (a cancel tried with no answer, a 5xx or a 202: outcome not known)."""

    booking_id: str
    what: str
    client: str
    op: str
    at: float


def _told_of(call: Call) -> Told | None:
    body = call.body or {}
    if call.op == "cancel":
        inner = body.get("booking")
        booking_id = id_of(call, "booking_id") or (
            inner.get("booking_id") if isinstance(inner, dict) else None
        )
        unknown = call.status is None or call.status >= 500 or call.status == 202
        what = "cancelled" if settled(call) else "cancel_unknown" if unknown else None
    elif not settled(call):
        return None
    elif call.op in ("pay", "payment_status"):
        booking_id = body.get("booking_id") if body.get("status") == "booked" else None
        what = "confirmed"
    elif call.op == "booking":
        booking_id = id_of(call, "booking_id")
        what = {"confirmed": "confirmed", "cancelled": "cancelled"}.get(body.get("status", ""))
    else:
        return None
    if booking_id is None or what is None:
        return None
    return Told(str(booking_id), what, call.client, call.op, call.ended)


def told_bookings(history: History) -> dict[str, dict[str, Told]]:
    """booking id -> what -> the first time a client was told it (see ``Told``)."""
    told: dict[str, dict[str, Told]] = defaultdict(dict)
    for call in sorted(history.calls, key=lambda c: c.ended):
        fact = _told_of(call)
        if fact is not None:
            told[fact.booking_id].setdefault(fact.what, fact)
    return told


def confirmation_lost(history: History) -> list[Violation]:
    """Every booking a client was told is confirmed (a payment answered "booked" with its
    booking id, a booking fetched as confirmed) is confirmed in Postgres, unless a client was
    told it was cancelled (a 2xx cancel, or a fetch that said cancelled); if a cancel of it
    got no answer, a 5xx or a 202, it may be confirmed or cancelled but must exist. Every
    cancellation a client was told of is in Postgres and not confirmed. A payment still
    answering "booked" after its booking was cancelled says nothing new (the payment keeps
    that status), so a told cancellation wins whenever it came."""
    final = final_of(history)
    rows = {str(b["booking_id"]): b for b in final.bookings}
    found = []
    for booking_id, facts in sorted(told_bookings(history).items()):
        status = rows.get(booking_id, {}).get("status")
        fact, allowed = _expected(facts)
        if fact is None or status in allowed:
            continue
        found.append(
            Violation(
                "confirmation_lost",
                f"booking {booking_id}: {fact.client} was told {fact.what} ({fact.op}, "
                f"{when(history, fact.at)}) but Postgres has "
                f"{'no such booking' if status is None else status!r}",
                {"booking_id": booking_id, "told": fact.what, "client": fact.client},
            )
        )
    return found


def _expected(facts: Mapping[str, Told]) -> tuple[Told | None, tuple[str, ...]]:
    """The fact that decides a booking's end state, and the states Postgres may hold."""
    if "cancelled" in facts:
        return facts["cancelled"], ("cancelled",)
    if "cancel_unknown" in facts:
        return facts["cancel_unknown"], ("confirmed", "cancelled")
    return facts.get("confirmed"), ("confirmed",)
