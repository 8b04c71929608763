"""The local assistant's booking flows: status, and a cancellation summarised with the refund
the policy gives, done only after the customer's yes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.assistant import local_read as read
from gateway.assistant.base import Reply
from gateway.assistant.local import MAX_LISTED
from gateway.assistant.local_fail import tool_failed as _tool_failed
from gateway.assistant.tools import ToolError

if TYPE_CHECKING:
    from gateway.assistant.local import _Turn


def _bookings(found: Any) -> list[dict[str, Any]]:
    if isinstance(found, dict) and "bookings" in found:
        return [b for b in found["bookings"] if isinstance(b, dict)]
    if isinstance(found, dict) and "booking_id" in found:
        return [found]
    return []


def _booking_line(b: dict[str, Any]) -> str:
    return (f"{b.get('movie_title', 'booking')} on {read.when(b.get('starts_at'))}, seats "
            f"{read.seats_text(b.get('seats'))} ({b.get('status')})")  # fmt: skip


async def status(t: _Turn) -> Reply:
    try:
        found = _bookings(await t.tools.booking_status(read.booking_id(t.text)))
    except ToolError as exc:
        return _tool_failed(t, exc)
    t.understood()
    if not found:
        return Reply("You have no upcoming bookings.")
    lines = "; ".join(_booking_line(b) for b in found[:MAX_LISTED])
    return Reply(f"Your bookings: {lines}. Say \"cancel\" to cancel one.",
                 cards=[{"type": "booking", **b} for b in found[:MAX_LISTED]])  # fmt: skip


async def cancel(t: _Turn) -> Reply:
    try:
        found = _bookings(await t.tools.booking_status(read.booking_id(t.text)))
    except ToolError as exc:
        return _tool_failed(t, exc)
    live = [b for b in found if b.get("status") == "confirmed"]
    t.understood()
    if not live:
        return Reply("You have no booking I can cancel.")
    if len(live) == 1:
        return await cancel_summary(t, live[0])
    t.slots["bookings"] = [b["booking_id"] for b in live[:MAX_LISTED]]
    t.slots["asked"] = "booking"
    lines = "; ".join(f"{i}. {_booking_line(b)}" for i, b in enumerate(live[:MAX_LISTED], 1))
    return Reply(f"Which booking? {lines}.",
                 cards=[{"type": "booking", **b} for b in live[:MAX_LISTED]])  # fmt: skip


def chosen_booking(t: _Turn) -> dict[str, Any] | None:
    ids: list[str] = t.slots.get("bookings") or []
    index = read.ordinal(t.text)
    given = read.booking_id(t.text)
    if given:
        return {"booking_id": given}
    if index is not None and -len(ids) <= index < len(ids):
        return {"booking_id": ids[index]}
    return None


async def cancel_summary(t: _Turn, booking: dict[str, Any]) -> Reply:
    if "starts_at" not in booking:
        try:
            found = _bookings(await t.tools.booking_status(booking["booking_id"]))
        except ToolError as exc:
            return _tool_failed(t, exc)
        if not found:
            return _tool_failed(t, None, "not_found")
        booking = found[0]
    refund = t.owner.refund_cents(booking)
    paid = booking.get("price_cents")
    back = (
        f"By our policy you get back {read.money(refund, booking.get('currency'))} of "
        f"{read.money(paid, booking.get('currency'))}."
        if refund is not None
        else "You get back what our refund policy gives."
    )
    t.slots["cancel"] = booking["booking_id"]
    t.understood()
    return Reply(f"Cancel {_booking_line(booking)}? {back} Say yes to cancel, no to keep it.",
                 cards=[{"type": "booking", **booking}])  # fmt: skip


async def do_cancel(t: _Turn, booking_id: str) -> Reply:
    try:
        done = await t.tools.cancel_booking(booking_id)
    except ToolError as exc:
        return _tool_failed(t, exc)
    t.understood()
    booking = done.get("booking", done) if isinstance(done, dict) else {}
    refund = done.get("refund_cents", (done.get("refund") or {}).get("amount_cents"))
    back = (
        f" {read.money(refund, booking.get('currency'))} goes back to your card." if refund else ""
    )
    return Reply(f"Cancelled.{back} The seats are back on sale.",
                 cards=[{"type": "booking", "booking_id": booking_id, **booking}])  # fmt: skip
