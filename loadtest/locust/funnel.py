"""The booking funnel (locust process only): log in, get a quote, hold the best 2 seats,
check out, pay with a test card through the payment provider, and see the booking confirmed.

    login → GET quote → POST holds (best available, the quote's prices) → POST checkout
          → POST payments/{id}/confirm (pm_card_visa) → "booked"

Each journey is a different customer of the plan's. A show with no 2 seats left answers 409
``no_seats_available``: the customer tries another show. A completed booking fires a
``JOURNEY`` event (its time from login, or from the quote) and counts ``bookings_<source>``.
"""

from __future__ import annotations

import random
import time
from typing import Any

import locust

from loadtest.locust import recorder
from loadtest.locust.customer import PLAN, Customer, next_account
from loadtest.locust.scenarios import PAYMENT_METHOD

SEATS = 2
NO_SEATS = ((409, "no_seats_available"),)
SHOWS_TRIED = 3


def _check_tokens(js: Any) -> None:
    assert js.get("access_token"), "a login without an access token,"


def _check_hold(js: Any) -> None:
    assert len(js.get("seats", ())) == SEATS, f"a hold of {js.get('seats')}, not {SEATS} seats,"


def _check_booked(js: Any) -> None:
    assert js.get("status") == "booked" and js.get("booking_id"), (
        f"a payment {js.get('status')}, not booked,"
    )


def login(user: Customer, account: dict[str, str]) -> str | None:
    body = {"email": account["email"], "password": account["password"]}
    resp = user.call(
        "POST", "/auth/login", "/auth/login", body=body, keyed=False, check=_check_tokens
    )
    return None if resp is None else str(resp.js["access_token"])


def book(user: Customer, token: str, source: str, began: float) -> bool:
    """Quote, hold, check out and pay on one of the plan's shows (another when one is full);
    True once the booking is confirmed."""
    shows = PLAN["bookable_shows"]
    for show in random.sample(shows, min(SHOWS_TRIED, len(shows))):
        quote = user.call(
            "GET", f"/shows/{show}/quote", "/shows/{id}/quote", token=token,
            check=lambda js: None if js.get("quote_token") else _fail("a quote without a token"),
        )  # fmt: skip
        if quote is None:
            return False
        body = {
            "count": SEATS,
            "category": "standard",
            "allow_split": True,
            "quote_token": quote.js["quote_token"],
        }
        hold = user.call(
            "POST", f"/shows/{show}/holds", "/shows/{id}/holds", body=body, token=token,
            ok=201, also=NO_SEATS, check=_check_hold,
        )  # fmt: skip
        if hold is None:
            return False
        if hold.status_code == 201:
            return _pay(user, token, show, hold.js["hold_id"], source, began)
        recorder.count("shows_full")
    return False


def _fail(message: str) -> None:
    raise AssertionError(message + ",")


def _pay(user: Customer, token: str, show: int, hold_id: str, source: str, began: float) -> bool:
    payment = user.call(
        "POST", f"/shows/{show}/holds/{hold_id}/checkout", "/shows/{id}/holds/{id}/checkout",
        body={}, token=token, ok=201,
        check=lambda js: None if js.get("payment_id") else _fail("a checkout without a payment"),
    )  # fmt: skip
    if payment is None:
        return False
    paid = user.call(
        "POST", f"/payments/{payment.js['payment_id']}/confirm", "/payments/{id}/confirm",
        body={"payment_method": PAYMENT_METHOD}, token=token, check=_check_booked,
    )  # fmt: skip
    if paid is None:
        return False
    recorder.count(f"bookings_{source}")
    recorder.fire("JOURNEY", f"booking ({source})", (time.time() - began) * 1000)
    return True


class BookingFunnel(Customer):
    """One customer after another logs in and books 2 seats, paying with a test card."""

    @locust.task
    def journey(self) -> None:
        began = time.time()
        token = login(self, next_account())
        if token is not None:
            book(self, token, "funnel", began)
