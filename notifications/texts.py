"""Text messages and push notifications from outbox events: pure, like ``notifications.render``.

An SMS is short (one or two segments: the title is cut, the reference shortened) and signed
"SeatServer:"; a push has a title, a body and string data with the kind, the show and (for a
booking) the booking, plus the page it opens. Times are the theater's, short.

    >>> sms = sms_text("booking.confirmed", payload, context)
    >>> title, body, data = push_content("booking.confirmed", payload, context)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any
from zoneinfo import ZoneInfo

from notifications.notifier import PushMessage, SmsMessage
from notifications.render import MailContext, UnknownTopic, compose, money

SMS_LIMIT = 320  # two segments
TITLE_LIMIT = 40

KIND_OF_TOPIC = {
    "booking.confirmed": "confirmation",
    "booking.reminder": "reminder",
    "booking.cancelled": "cancellation",
    "refund.succeeded": "cancellation",
    "queue.admitted": "admission",
}


def short_time(moment: dt.datetime, zone: str, *, with_day: bool = True) -> str:
    """e.g. "Fri 4 Dec 7:30 PM" (or "7:30 PM")."""
    local = moment.astimezone(ZoneInfo(zone))
    clock = f"{local.strftime('%I').lstrip('0')}:{local:%M %p}"
    return f"{local:%a} {local.day} {local:%b} {clock}" if with_day else clock


def _title(c: MailContext) -> str:
    title = " ".join(c.movie_title.split())
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1].rstrip() + "…"


def _ref(payload: dict[str, Any]) -> str:
    return str(payload.get("booking_id") or "")[:8].upper()


def _seats(payload: dict[str, Any]) -> str:
    return ",".join(payload["seats"])


def _lines(topic: str, payload: dict[str, Any], c: MailContext) -> tuple[str, str]:
    """(push title, the sentence both an SMS and a push say)."""
    title, when = _title(c), short_time(c.starts_at, c.time_zone)
    if topic == "booking.confirmed":
        return "Your tickets", (
            f"Booked: {title}, {when}, {c.theater_name}. Seats {_seats(payload)}. "
            f"Ref {_ref(payload)}"
        )
    if topic == "booking.reminder":
        clock = short_time(c.starts_at, c.time_zone, with_day=False)
        return "Starting soon", (
            f"{title} starts at {clock}, {c.theater_name} screen {c.screen_name}. "
            f"Seats {_seats(payload)}"
        )
    if topic == "booking.cancelled":
        return "Booking cancelled", f"Cancelled: {title}, {when}. Ref {_ref(payload)}"
    if topic == "refund.succeeded":
        amount = money(payload["amount_cents"], payload.get("currency") or c.currency)
        return "Refund on its way", f"Refunded {amount} for {title}, {when}"
    if topic == "queue.admitted":
        until = dt.datetime.fromtimestamp(float(payload["expires_at"]), dt.UTC)
        clock = short_time(until, c.time_zone, with_day=False)
        return "It's your turn", (f"Your turn for {title}, {when}: hold your seats by {clock}")
    raise UnknownTopic(topic)


def sms_text(topic: str, payload: dict[str, Any], context: MailContext) -> str:
    """The SMS of one event; ``UnknownTopic`` for a topic it has no text for."""
    _, sentence = _lines(topic, payload, context)
    text = f"SeatServer: {sentence}"
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 1] + "…"


def push_content(
    topic: str, payload: dict[str, Any], context: MailContext
) -> tuple[str, str, dict[str, str]]:
    """(title, body, data) of the push of one event; data values are strings, as FCM wants."""
    title, sentence = _lines(topic, payload, context)
    show_id = str(payload["show_id"])
    data = {"kind": KIND_OF_TOPIC[topic], "show_id": show_id}
    if payload.get("booking_id"):
        data["booking_id"] = str(payload["booking_id"])
    data["link"] = f"/#/show/{show_id}" if topic == "queue.admitted" else "/#/bookings"
    return title, sentence, data


def message_for(
    channel: str,
    topic: str,
    payload: dict[str, Any],
    context: MailContext,
    recipient: Any,
    *,
    dedup_key: str,
    mail_from: str = "",
) -> Any:
    """The message of one event on one channel, to ``recipient`` (the email address is the
    context's; an E.164 number; a device's (token, platform))."""
    if channel == "email":
        return compose(topic, payload, context, dedup_key=dedup_key, mail_from=mail_from)
    if channel == "sms":
        return SmsMessage(to=str(recipient), body=sms_text(topic, payload, context))
    if channel == "push":
        token, platform = recipient
        title, body, data = push_content(topic, payload, context)
        collapse = hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
        return PushMessage(token, platform, title, body, data, collapse, data["link"])
    raise ValueError(f"no channel {channel!r}")
