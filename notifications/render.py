"""Emails from outbox rows: pure, given the row's payload and what the database knows of it.

``booking.confirmed`` carries an .ics invitation (METHOD:PUBLISH) and ``booking.cancelled`` its
cancellation (METHOD:CANCEL, same UID, so calendars drop the event); ``refund.succeeded`` says
how much came back and why; ``booking.reminder`` says the show starts soon and
``queue.admitted`` that a waiting room let the customer in. Times are shown in the theater's
zone. The Message-ID follows from the row's dedup key, so a message sent again after a crash is
recognisably the same. (``notifications.texts`` writes the same events as texts and pushes.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

# Currencies without minor units (ISO 4217 exponent 0), and symbols of the common ones.
_ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "ISK",
    "JPY",
    "KMF",
    "KRW",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}
# Currencies with three decimals (ISO 4217 exponent 3).
_THREE_DECIMAL = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "INR": "₹",
    "CAD": "CA$",
    "AUD": "A$",
    "KRW": "₩",
    "CHF": "CHF ",
}
_REASONS = {
    "customer_cancel": "you cancelled your booking",
    "show_cancelled": "the show was cancelled",
    "hold_lost": "your payment arrived after your seats' hold had ended, so no seats were booked",
    "duplicate_payment": "the seats were already paid for by another payment",
}


class UnknownTopic(ValueError):
    """An outbox topic this worker cannot write an email for."""


@dataclass(frozen=True)
class MailContext:
    """What the database knows around an outbox row."""

    email: str
    display_name: str
    movie_title: str
    theater_name: str
    theater_address: str
    time_zone: str
    screen_name: str
    starts_at: dt.datetime  # aware
    ends_at: dt.datetime  # aware
    currency: str


def money(minor: int, currency: str) -> str:
    """An amount in minor units, e.g. ``money(1250, "USD") == "$12.50"``, ``money(1500, "JPY")
    == "¥1,500"``, ``money(1250, "KWD") == "KWD 1.250"``."""
    code = currency.upper()
    symbol = _SYMBOLS.get(code, code + " ")
    sign, minor = ("-" if minor < 0 else ""), abs(minor)
    if code in _ZERO_DECIMAL:
        return f"{sign}{symbol}{minor:,}"
    places = 3 if code in _THREE_DECIMAL else 2
    units, rest = divmod(minor, 10**places)
    return f"{sign}{symbol}{units:,}.{rest:0{places}d}"


def _header(value: str) -> str:
    """A header value on one line: titles and names come from user input."""
    return " ".join(value.split())


def local_time(moment: dt.datetime, zone: str) -> str:
    """e.g. "Friday 4 December 2026, 7:30 PM EST"."""
    local = moment.astimezone(ZoneInfo(zone))
    hour = local.strftime("%I").lstrip("0")
    return f"{local:%A} {local.day} {local:%B %Y}, {hour}:{local:%M %p} {local.tzname()}"


def message_id(dedup_key: str) -> str:
    """The Message-ID of a row's email: the same for every attempt at sending it."""
    return f"<{hashlib.sha256(dedup_key.encode()).hexdigest()[:32]}@seatserver>"


def compose(
    topic: str, payload: dict[str, Any], context: MailContext, *, dedup_key: str, mail_from: str
) -> EmailMessage:
    """The email for one outbox row; ``UnknownTopic`` for a topic it has no email for.

    >>> mail = compose("booking.confirmed", payload, context, dedup_key=row.dedup_key,
    ...                mail_from="SeatServer <tickets@example.com>")
    """
    if topic == "booking.confirmed":
        subject, lines, ics = _confirmed(payload, context)
    elif topic == "booking.cancelled":
        subject, lines, ics = _cancelled(payload, context)
    elif topic == "refund.succeeded":
        subject, lines = _refunded(payload, context)
        ics = None
    elif topic in _PLAIN:
        subject, lines = _PLAIN[topic](payload, context)
        ics = None
    else:
        raise UnknownTopic(topic)
    message = EmailMessage()
    message["Subject"] = _header(subject)
    message["From"] = mail_from
    message["To"] = formataddr((_header(context.display_name), _header(context.email)))
    message["Message-ID"] = message_id(dedup_key)
    message["Date"] = formatdate(usegmt=True)
    greeting = f"Hello {context.display_name}," if context.display_name else "Hello,"
    text = "\n".join([greeting, "", *lines, "", "SeatServer"])
    message.set_content(text)
    body = "".join(f"<p>{html.escape(line)}</p>" for line in [greeting, *lines] if line)
    message.add_alternative(f"<html><body>{body}<p>SeatServer</p></body></html>", subtype="html")
    if ics is not None:
        method = "CANCEL" if topic == "booking.cancelled" else "PUBLISH"
        message.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="booking.ics",
            params={"method": method},
        )
    return message


def _seats(payload: dict[str, Any]) -> str:
    return ", ".join(payload["seats"])


def _where(context: MailContext) -> str:
    where = f"{context.theater_name}, screen {context.screen_name}"
    return f"{where} ({context.theater_address})" if context.theater_address else where


def _confirmed(payload: dict[str, Any], c: MailContext) -> tuple[str, list[str], bytes]:
    when = local_time(c.starts_at, c.time_zone)
    lines = [
        f"Your booking for {c.movie_title} is confirmed.",
        f"When: {when}",
        f"Where: {_where(c)}",
        f"Seats: {_seats(payload)}",
        f"Paid: {money(payload['price_cents'], c.currency)}",
        f"Booking reference: {payload['booking_id']}",
    ]
    subject = f"Your tickets: {c.movie_title}, {when}"
    return subject, lines, _calendar(payload, c, cancelled=False)


def _cancelled(payload: dict[str, Any], c: MailContext) -> tuple[str, list[str], bytes]:
    when = local_time(c.starts_at, c.time_zone)
    lines = [
        f"Your booking for {c.movie_title} on {when} is cancelled.",
        f"Seats: {_seats(payload)} (back on sale)",
        f"Booking reference: {payload['booking_id']}",
        "Any refund comes in a separate message.",
    ]
    return (
        f"Booking cancelled: {c.movie_title}, {when}",
        lines,
        _calendar(payload, c, cancelled=True),
    )


def _refunded(payload: dict[str, Any], c: MailContext) -> tuple[str, list[str]]:
    amount = money(payload["amount_cents"], payload.get("currency") or c.currency)
    reason = _REASONS.get(payload.get("reason", ""), "of a change to your booking")
    lines = [
        f"We have refunded {amount} because {reason}.",
        f"Show: {c.movie_title}, {local_time(c.starts_at, c.time_zone)}",
    ]
    if payload.get("booking_id"):
        lines.append(f"Booking reference: {payload['booking_id']}")
    lines.append("It may take a few days to appear on your statement.")
    return f"Refund of {amount}: {c.movie_title}", lines


def _reminder(payload: dict[str, Any], c: MailContext) -> tuple[str, list[str]]:
    when = local_time(c.starts_at, c.time_zone)
    lines = [
        f"{c.movie_title} starts soon: {when}.",
        f"Where: {_where(c)}",
        f"Seats: {_seats(payload)}",
        f"Booking reference: {payload['booking_id']}",
    ]
    return f"Starting soon: {c.movie_title}, {when}", lines


def _admitted(payload: dict[str, Any], c: MailContext) -> tuple[str, list[str]]:
    until = dt.datetime.fromtimestamp(float(payload["expires_at"]), dt.UTC)
    lines = [
        f"It is your turn: the waiting room let you in for {c.movie_title}, "
        f"{local_time(c.starts_at, c.time_zone)}, at {c.theater_name}.",
        f"Hold your seats before {local_time(until, c.time_zone)}; after that your place "
        "goes to the next in line.",
    ]
    return f"It is your turn: {c.movie_title}", lines


_PLAIN = {"booking.reminder": _reminder, "queue.admitted": _admitted}


def _calendar(payload: dict[str, Any], c: MailContext, *, cancelled: bool) -> bytes:
    zone = ZoneInfo(c.time_zone)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//SeatServer//Tickets//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"{payload['booking_id']}@seatserver")
    event.add("dtstamp", dt.datetime.fromtimestamp(float(payload["at"]), dt.UTC))
    event.add("dtstart", c.starts_at.astimezone(zone))
    event.add("dtend", c.ends_at.astimezone(zone))
    event.add("summary", c.movie_title)
    event.add("location", _where(c))
    event.add("description", f"Seats: {_seats(payload)}. Booking {payload['booking_id']}.")
    event.add("sequence", 1 if cancelled else 0)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    cal.add_component(event)
    cal.add_missing_timezones()  # the VTIMEZONE that TZID names
    ics: bytes = cal.to_ical()
    return ics
