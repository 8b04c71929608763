"""The local assistant end to end over the real websocket ``/ws/chat``, with real show actors,
Postgres, Redis and the booking saga paying through localstripe: search → pick → hold (the
actor holds the seats) → a dropped socket resumed → yes → checkout (a payment for the hold) →
paid with the test card → status → cancel (refunded by policy, the seats back on sale). Also:
a visitor may search but not hold, and a customer cannot reach someone else's booking.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway import keys
from tests.gateway_support import Account, make_account
from tests.integration.shows import make_show
from tests.integration.test_payments import VISA, Shop, localstripe, proxy, shop  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture
async def show(pool: Any) -> int:
    return await make_show(pool, starts_in=dt.timedelta(days=1))


@pytest.fixture
async def alice(pool: Any, shop: Shop) -> Account:  # noqa: F811
    return await make_account(pool, shop.app[keys.CONFIG])


class ChatSocket:
    """One websocket on ``/ws/chat``: ``ask(text)`` sends a message and returns the reply."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.conversation_id: str | None = None

    @classmethod
    async def open(
        cls,
        shop: Shop,  # noqa: F811
        account: Account | None,
        resume: str | None = None,
    ) -> ChatSocket:
        ws = await shop.client.ws_connect("/ws/chat")
        auth: dict[str, Any] = {"type": "auth"}
        if account is not None:
            auth["access_token"] = account.token
        if resume is not None:  # as the page does after a drop
            auth["conversation_id"] = resume
        await ws.send_json(auth)
        ready = await ws.receive_json(timeout=10)
        assert ready["type"] == "ready", ready
        assert resume is None or ready["conversation_id"] == resume, ready
        chat = cls(ws)
        chat.conversation_id = ready["conversation_id"]
        return chat

    async def ask(self, text: str) -> dict[str, Any]:
        await self.ws.send_json({"type": "message", "text": text})
        while True:
            msg = await self.ws.receive_json(timeout=20)
            if msg["type"] in ("reply", "error"):
                assert msg["type"] == "reply", msg
                assert msg["source"] == "local", msg
                return msg

    async def close(self) -> None:
        await self.ws.close()


def card(reply: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in reply["cards"] if c["type"] == kind]
    assert found, reply
    return found[0]


async def test_search_hold_checkout_pay_status_cancel_over_the_websocket(
    shop: Shop,  # noqa: F811
    show: int,
    alice: Account,
) -> None:
    chat = await ChatSocket.open(shop, alice)
    found = await chat.ask("any drama movies?")
    listed = card(found, "shows")["shows"]
    assert [s["show_id"] for s in listed] == [show], found
    assert listed[0]["title"] == "The Test" and "Which one" in found["text"]

    asked = await chat.ask("the first one")
    assert "How many seats" in asked["text"]
    held_reply = await chat.ask("two seats please")
    held = card(held_reply, "hold")
    assert held["show_id"] == show and len(held["seats"]) == 2
    assert held["total_cents"] == 2400 and held["currency"] == "USD"
    states = await shop.seat_states(show)
    assert {states[s] for s in held["seats"]} == {"held"}
    assert "Say yes" in held_reply["text"]

    # The socket drops; a new one resumes the conversation where it was.
    await chat.close()
    chat = await ChatSocket.open(shop, alice, resume=chat.conversation_id)
    went = await chat.ask("yes please")
    checkout = card(went, "checkout")
    assert checkout["hold_id"] == held["hold_id"]
    rows = await shop.fetch(
        "SELECT payment_id, status, amount_cents FROM payments WHERE hold_id = $1",
        held["hold_id"],
    )
    assert [(str(r["payment_id"]), r["status"], r["amount_cents"]) for r in rows] == [
        (checkout["payment_id"], "open", 2400)
    ]

    status, paid, _ = await shop.pay(alice, checkout["payment_id"], VISA)
    assert status == 200 and paid["status"] == "booked", paid
    booking_id = paid["booking_id"]

    mine = await chat.ask("my bookings")
    assert card(mine, "booking")["booking_id"] == booking_id
    assert card(mine, "booking")["status"] == "confirmed"

    summary = await chat.ask("cancel my booking")
    assert "24.00 USD of 24.00 USD" in summary["text"] and "Say yes" in summary["text"]
    done = await chat.ask("yes")
    assert "Cancelled" in done["text"] and "24.00 USD" in done["text"]
    (row,) = await shop.fetch("SELECT status FROM bookings WHERE booking_id = $1", booking_id)
    assert row["status"] == "cancelled"
    states = await shop.seat_states(show)
    assert {states[s] for s in held["seats"]} == {"available"}
    after = await chat.ask("status of my bookings")
    assert "no upcoming bookings" in after["text"]
    await chat.close()


async def test_a_visitor_searches_but_must_log_in_to_hold(
    shop: Shop,  # noqa: F811
    show: int,
) -> None:
    chat = await ChatSocket.open(shop, None)
    found = await chat.ask("drama movies")
    assert card(found, "shows")["shows"][0]["show_id"] == show
    refused = await chat.ask("two seats for the first one")
    assert "log in" in refused["text"] and not refused["cards"]
    states = await shop.seat_states(show)
    assert "held" not in states.values()
    await chat.close()


async def test_someone_elses_booking_is_not_found(
    shop: Shop,  # noqa: F811
    show: int,
    alice: Account,
    pool: Any,
) -> None:
    hold = await shop.hold(alice, show, ["C5", "C6"])
    _, payment, _ = await shop.checkout(alice, hold)
    _, paid, _ = await shop.pay(alice, payment["payment_id"], VISA)
    bob = await make_account(pool, shop.app[keys.CONFIG])
    chat = await ChatSocket.open(shop, bob)
    asked = await chat.ask(f"cancel booking {paid['booking_id']}")
    assert asked["text"].startswith("I can't find that")
    assert not asked["cards"]
    (row,) = await shop.fetch(
        "SELECT status FROM bookings WHERE booking_id = $1", paid["booking_id"]
    )
    assert row["status"] == "confirmed"
    await chat.close()
