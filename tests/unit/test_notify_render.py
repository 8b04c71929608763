"""Texts, pushes and the new emails rendered from outbox events, without a server: lengths and
content per kind, string data for FCM, a stable collapse key, personal data scrubbed from
errors, the FCM message rules, and the service account's assertion."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from notifications.fcm_catcher import new_service_account
from notifications.fcm_rules import Invalid, check_request
from notifications.notifier import PushMessage, SmsMessage, redact
from notifications.push import SCOPE, ServiceAccount, fcm_message
from notifications.render import MailContext, compose
from notifications.texts import KIND_OF_TOPIC, SMS_LIMIT, message_for, push_content, sms_text
from storage.notify import CHANNELS, DEFAULTS, KINDS

UTC = dt.UTC
STARTS = dt.datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # 7:30 PM the 3rd in New York


def _context(**kw: object) -> MailContext:
    values: dict[str, object] = {
        "email": "ada@example.com",
        "display_name": "Ada",
        "movie_title": "Dune: Part Two",
        "theater_name": "Main Street",
        "theater_address": "1 Main St",
        "time_zone": "America/New_York",
        "screen_name": "4",
        "starts_at": STARTS,
        "ends_at": STARTS + dt.timedelta(hours=3),
        "currency": "USD",
    }
    values.update(kw)
    return MailContext(**values)  # type: ignore[arg-type]


BOOKING = "3f2b8c1e-0d4a-4a8e-9c7b-1a2b3c4d5e6f"
PAYLOADS = {
    "booking.confirmed": {
        "booking_id": BOOKING,
        "show_id": 7,
        "seats": ["C5", "C6"],
        "price_cents": 2400,
        "at": 1.0,
    },
    "booking.reminder": {"booking_id": BOOKING, "show_id": 7, "seats": ["C5"], "at": 1.0},
    "booking.cancelled": {"booking_id": BOOKING, "show_id": 7, "seats": ["C5"], "at": 1.0},
    "refund.succeeded": {
        "booking_id": BOOKING,
        "show_id": 7,
        "amount_cents": 1200,
        "currency": "usd",
        "reason": "customer_cancel",
    },
    "queue.admitted": {
        "show_id": 7,
        "number": 3,
        "at": STARTS.timestamp() - 7200,
        "expires_at": STARTS.timestamp() - 6600,
    },
}


def test_every_topic_has_a_kind_a_text_a_push_and_an_email() -> None:
    assert set(PAYLOADS) == set(KIND_OF_TOPIC) and set(KIND_OF_TOPIC.values()) == set(KINDS)
    for topic, payload in PAYLOADS.items():
        text = sms_text(topic, payload, _context())
        assert text.startswith("SeatServer: ") and len(text) <= 160, text
        title, body, data = push_content(topic, payload, _context())
        assert title and body and data["kind"] == KIND_OF_TOPIC[topic] and data["show_id"] == "7"
        assert all(isinstance(v, str) for v in data.values())
        mail = compose(topic, payload, _context(), dedup_key="k", mail_from="x@y.z")
        assert mail["Subject"] and "Ada" in mail["To"]


def test_the_texts_say_what_happened_in_the_theaters_time() -> None:
    context = _context()
    confirmed = sms_text("booking.confirmed", PAYLOADS["booking.confirmed"], context)
    assert confirmed == (
        "SeatServer: Booked: Dune: Part Two, Thu 3 Dec 7:30 PM, Main Street. Seats C5,C6. "
        "Ref 3F2B8C1E"
    )
    reminder = sms_text("booking.reminder", PAYLOADS["booking.reminder"], context)
    assert (
        reminder == "SeatServer: Dune: Part Two starts at 7:30 PM, Main Street screen 4. Seats C5"
    )
    refund = sms_text("refund.succeeded", PAYLOADS["refund.succeeded"], context)
    assert refund == "SeatServer: Refunded $12.00 for Dune: Part Two, Thu 3 Dec 7:30 PM"
    admitted = sms_text("queue.admitted", PAYLOADS["queue.admitted"], context)
    assert admitted.endswith("hold your seats by 5:40 PM")
    _, _, data = push_content("queue.admitted", PAYLOADS["queue.admitted"], context)
    assert data == {"kind": "admission", "show_id": "7", "link": "/#/show/7"}


def test_the_new_emails() -> None:
    reminder = compose(
        "booking.reminder", PAYLOADS["booking.reminder"], _context(), dedup_key="r", mail_from="x"
    )
    assert reminder["Subject"].startswith("Starting soon: Dune: Part Two")
    assert "Seats: C5" in reminder.get_body(("plain",)).get_content()
    assert list(reminder.iter_attachments()) == []
    admitted = compose(
        "queue.admitted", PAYLOADS["queue.admitted"], _context(), dedup_key="a", mail_from="x"
    )
    text = admitted.get_body(("plain",)).get_content()
    assert admitted["Subject"] == "It is your turn: Dune: Part Two" and "5:40 PM EST" in text


@given(title=st.text(min_size=1, max_size=400), seats=st.lists(st.text("ABC123", min_size=2,
       max_size=4), min_size=1, max_size=10))  # fmt: skip
def test_a_text_stays_within_two_segments(title: str, seats: list[str]) -> None:
    payload = {**PAYLOADS["booking.confirmed"], "seats": seats}
    text = sms_text("booking.confirmed", payload, _context(movie_title=title))
    assert len(text) <= SMS_LIMIT and "\n" not in text.replace(title, "")


def test_a_push_is_built_per_platform_with_a_stable_collapse_key() -> None:
    first = message_for("push", "booking.confirmed", PAYLOADS["booking.confirmed"], _context(),
                        ("tok:en", "ios"), dedup_key="booking.confirmed:b")  # fmt: skip
    again = message_for("push", "booking.confirmed", PAYLOADS["booking.confirmed"], _context(),
                        ("tok:en", "ios"), dedup_key="booking.confirmed:b")  # fmt: skip
    assert isinstance(first, PushMessage) and first == again and len(first.collapse_id) == 32
    ios, web, android = (
        fcm_message(PushMessage("t" * 20, platform, "T", "B", {"a": "b"}, first.collapse_id))
        for platform in ("ios", "web", "android")
    )
    assert ios["apns"]["headers"]["apns-collapse-id"] == first.collapse_id
    assert web["webpush"]["headers"]["Topic"] == first.collapse_id and "android" not in web
    assert android["android"]["collapse_key"] == first.collapse_id
    for body in (ios, web, android):
        assert check_request({"message": body}, "application/json") == (body, False)
    text = message_for("sms", "booking.cancelled", PAYLOADS["booking.cancelled"], _context(),
                       "+14155550100", dedup_key="c")  # fmt: skip
    assert text == SmsMessage("+14155550100", text.body) and text.body.startswith("SeatServer")


@pytest.mark.parametrize(
    "message",
    [
        {"token": "t" * 20, "topic": "x"},
        {"notification": {"title": "no target"}},
        {"token": "t" * 20, "data": {"gcm.x": "y"}},
        {"token": "t" * 20, "notification": {"title": 1}},
        {"token": "t" * 20, "apns": {"headers": {"apns-priority": 10}}},
        {"token": "t" * 20, "webpush": {"notification": "text"}},
    ],
)
def test_fcm_rules_refuse_what_fcm_would(message: dict[str, object]) -> None:
    with pytest.raises(Invalid):
        check_request({"message": message}, "application/json")


def test_errors_lose_personal_data() -> None:
    said = "550 5.1.1 <ada@example.com> unknown; To +1 (415) 555-0100; token dGVzdA:" + "x" * 60
    assert redact(said) == "550 5.1.1 <<email>> unknown; To <number>; token <token>"


def test_the_defaults() -> None:
    on = {cell for cell, enabled in DEFAULTS.items() if enabled}
    assert on == {("confirmation", "email"), ("reminder", "email"), ("cancellation", "email")} | {
        (kind, "push") for kind in KINDS
    }
    assert set(DEFAULTS) == {(k, c) for k in KINDS for c in CHANNELS}


def test_the_service_account_assertion() -> None:
    account = ServiceAccount.from_info(new_service_account("proj-1", "http://127.0.0.1:9/token"))
    assertion = account.assertion(1_900_000_000)
    assert jwt.get_unverified_header(assertion) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": account.private_key_id,
    }
    public = serialization.load_pem_private_key(account.private_key.encode(), None).public_key()
    claims = jwt.decode(
        assertion,
        public,  # type: ignore[arg-type]
        algorithms=["RS256"],
        audience="http://127.0.0.1:9/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": "http://127.0.0.1:9/token",
        "iat": 1_900_000_000,
        "exp": 1_900_003_600,
    }
    with pytest.raises(ValueError, match="service_account"):
        ServiceAccount.from_info({"type": "authorized_user"})
