"""Emails rendered from outbox rows, without a server: money by currency, times in the
theater's zone across DST, escaping, and the calendar attachment."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest

from notifications.render import MailContext, UnknownTopic, compose, local_time, money

UTC = dt.UTC


@pytest.mark.parametrize(
    ("cents", "currency", "shown"),
    [
        (1250, "USD", "$12.50"),
        (1500, "JPY", "¥1,500"),
        (123456, "eur", "€1,234.56"),
        (5, "SEK", "SEK 0.05"),
        (1250, "KWD", "KWD 1.250"),  # three decimals
        (-150, "USD", "-$1.50"),
    ],
)
def test_money(cents: int, currency: str, shown: str) -> None:
    assert money(cents, currency) == shown


def test_local_time_follows_the_theaters_zone_across_dst() -> None:
    summer = dt.datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    winter = dt.datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    assert local_time(summer, "America/New_York") == "Wednesday 1 July 2026, 7:30 PM EDT"
    assert local_time(winter, "America/New_York") == "Monday 30 November 2026, 7:30 PM EST"


def _context(**kw: object) -> MailContext:
    values: dict[str, object] = {
        "email": "ada@example.com",
        "display_name": "Ada <admin>",
        "movie_title": "Tom & Jerry",
        "theater_name": "Main",
        "theater_address": "1 Main St",
        "time_zone": "Europe/Berlin",
        "screen_name": "2",
        "starts_at": dt.datetime(2026, 3, 29, 18, 0, tzinfo=UTC),
        "ends_at": dt.datetime(2026, 3, 29, 20, 0, tzinfo=UTC),
        "currency": "EUR",
    }
    values.update(kw)
    return MailContext(**values)  # type: ignore[arg-type]


def test_a_confirmation_escapes_html_and_carries_the_event() -> None:
    payload = {"booking_id": "b-1", "seats": ["A1", "A2"], "price_cents": 2400, "at": 1.0}
    mail = compose("booking.confirmed", payload, _context(), dedup_key="k", mail_from="x@y.z")
    html = mail.get_body(("html",)).get_content()
    assert "Tom &amp; Jerry" in html and "<admin>" not in html
    assert "8:00 PM CEST" in mail.get_body(("plain",)).get_content()  # DST began that morning
    (part,) = list(mail.iter_attachments())
    event = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")[0]
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTSTART").hour == 20
    again = compose("booking.confirmed", payload, _context(), dedup_key="k", mail_from="x@y.z")
    assert mail["Message-ID"] == again["Message-ID"]  # the same message, if sent again


def test_unknown_topics_are_refused() -> None:
    with pytest.raises(UnknownTopic):
        compose("nope", {}, _context(), dedup_key="k", mail_from="x@y.z")


def test_headers_stay_on_one_line() -> None:
    payload = {"booking_id": "b-1", "seats": ["A1"], "price_cents": 1200, "at": 1.0}
    context = _context(movie_title="Evil\r\nBcc: victim@example.com", display_name="Ada\nX")
    mail = compose("booking.confirmed", payload, context, dedup_key="k", mail_from="x@y.z")
    assert "\n" not in mail["Subject"] and "Bcc" not in mail
    assert mail["Subject"].startswith("Your tickets: Evil Bcc: victim@example.com")


def test_a_cancellation_cancels_the_same_event() -> None:
    payload = {"booking_id": "b-1", "seats": ["A1"], "price_cents": 1200, "at": 1.0}
    mail = compose("booking.cancelled", payload, _context(), dedup_key="c", mail_from="x@y.z")
    (part,) = list(mail.iter_attachments())
    assert part.get_param("method") == "CANCEL"
    calendar = icalendar.Calendar.from_ical(part.get_content())
    event = calendar.walk("VEVENT")[0]
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == "b-1@seatserver" and int(event["SEQUENCE"]) == 1
