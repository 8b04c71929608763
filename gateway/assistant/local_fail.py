"""A tool's refusal, as the local assistant says it: plainly, and someone else's booking exactly
like one that does not exist ("not found")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.assistant.base import Reply

if TYPE_CHECKING:
    from gateway.assistant.local import _Turn

_ERRORS = {
    "login_required": "Please log in first (top right); then I can hold seats and see your "
    "bookings.",
    "not_found": 'I can\'t find that. Check the number, or say "my bookings".',
    "seat_unavailable": 'Those seats were just taken. Say "best available" or name other seats.',
    "no_seats_available": "There aren't enough seats together for that. Try fewer seats or "
    "another category.",
    "hold_expired": "That hold has expired, so the seats are back on sale. Shall I hold again?",
    "confirmation_required": "Please confirm the summary first: say yes to go to checkout.",
    "show_not_on_sale": "That show isn't on sale right now. Pick another one.",
}


def tool_failed(t: _Turn, exc: BaseException | None, code: str | None = None) -> Reply:
    """A tool's refusal said plainly; anything unexpected counts towards the handover."""
    code = code or str(getattr(exc, "code", "") or "")
    if code in _ERRORS:
        if code == "not_found":
            t.slots.pop("cancel", None)
        return Reply(_ERRORS[code], failed=code not in {"login_required", "confirmation_required"})
    if exc is not None and not hasattr(exc, "code"):
        raise exc
    message = str(getattr(exc, "message", "") or "")
    return Reply(f"That didn't work{': ' + message if message else ''}. Try again, or ask for a "
                 "person.", failed=True)  # fmt: skip
