"""The booking saga over HTTP, on real Postgres, Redis and Ray, with the real Stripe SDK talking
to localstripe on loopback (through a fault proxy): a paid booking, a decline then a retry, a
webhook replayed, a payment after its hold expired, cancellations by policy, a whole show
cancelled, the provider down then up, and a crash between payment and booking.

Each test checks that Postgres, the show actor and the provider agree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import ray
from aiohttp import web
from prometheus_client import REGISTRY

import storage
from gateway import keys
from gateway.app import create_app
from gateway.metrics import HOST_STATS
from payments import PaymentsConfig
from payments.breaker import CircuitBreaker, GuardedProvider
from payments.localstripe import register_webhook
from payments.stripe_provider import StripeProvider
from tests.gateway_support import Account, gateway_config, make_account, new_key
from tests.integration.shows import Engine, make_show, start_engine, stop_engine
from tests.payments_support import FaultProxy, delivery_about, running_localstripe, webhook_inbox

pytestmark = pytest.mark.slow

SECRET = "sk_test_seatserver"
PUBLISHABLE = "pk_test_seatserver"
WEBHOOK_SECRET = "whsec_test_" + os.urandom(8).hex()
VISA = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"  # localstripe declines it at charge


@pytest.fixture(scope="module")
async def localstripe() -> AsyncIterator[Any]:
    async with running_localstripe() as stripe:
        yield stripe


@pytest.fixture
async def proxy(localstripe: Any) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(localstripe.url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@dataclass
class Shop:
    """A gateway with payments, a client of it, and what stands behind it."""

    client: Any
    app: web.Application
    engine: Engine
    provider: GuardedProvider
    stripe: StripeProvider
    proxy: FaultProxy
    pool: Any

    @property
    def saga(self) -> Any:
        return self.app[keys.SAGA]

    async def post(self, path: str, account: Account, body: Any = None, key: Any = None) -> Any:
        headers = {**account.headers, **(key or new_key())}
        async with self.client.post(path, json=body or {}, headers=headers) as resp:
            return resp.status, await resp.json(), dict(resp.headers)

    async def get(self, path: str, account: Account) -> Any:
        async with self.client.get(path, headers=account.headers) as resp:
            return resp.status, await resp.json()

    async def hold(self, account: Account, show: int, seats: list[str]) -> dict[str, Any]:
        status, body, _ = await self.post(f"/api/v1/shows/{show}/holds", account, {"seats": seats})
        assert status == 201, body
        return body

    async def checkout(self, account: Account, hold: dict[str, Any], key: Any = None) -> Any:
        path = f"/api/v1/shows/{hold['show_id']}/holds/{hold['hold_id']}/checkout"
        return await self.post(path, account, key=key)

    async def pay(self, account: Account, payment_id: str, method: str, key: Any = None) -> Any:
        path = f"/api/v1/payments/{payment_id}/confirm"
        return await self.post(path, account, {"payment_method": method}, key=key)

    async def seat_states(self, show: int) -> dict[str, str]:
        snapshot = await self.engine.client.snapshot(show)
        return {label: state.value for label, state in snapshot.seats.items()}

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))


def payments_config(**overrides: Any) -> PaymentsConfig:
    values: dict[str, Any] = {
        "stripe_api_key": SECRET,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_publishable_key": PUBLISHABLE,
        "reconcile_interval_s": 0,  # tests run passes themselves
        "settle_after_s": 0,
    }
    values.update(overrides)
    return PaymentsConfig(**values)


async def _shop(
    aiohttp_client: Any,
    database_url: str,
    schema: str,
    redis_url: str,
    pool: Any,
    proxy: FaultProxy,
    localstripe: Any,
    *,
    register: bool = True,
    models: Any = None,
    **engine_config: Any,
) -> AsyncIterator[Shop]:
    settings = payments_config(stripe_api_base=proxy.url, stripe_js_base=localstripe.url)
    config = gateway_config(database_url, schema, redis_url, payments=settings)
    if models is not None:
        config = dataclasses.replace(config, models=models)
    engine = await start_engine(
        database_url, schema, redis_url, channel_prefix=config.redis_prefix, **engine_config
    )
    stripe = StripeProvider(
        SECRET, WEBHOOK_SECRET, publishable_key=PUBLISHABLE, api_base=proxy.url, timeout_s=3.0
    )
    provider = GuardedProvider(stripe, CircuitBreaker(failure_threshold=2, reset_after_s=1.0))
    app = create_app(config, engine=engine.client, provider=provider)
    client = await aiohttp_client(app)
    if register:
        url = str(client.make_url("/api/v1/payments/webhook"))
        await register_webhook(localstripe.url, "seatserver-test", url, WEBHOOK_SECRET)
    try:
        yield Shop(client, app, engine, provider, stripe, proxy, pool)
    finally:
        await client.close()
        await stripe.close()
        await stop_engine(engine)
        redis = await storage.create_redis(redis_url)
        try:  # the idempotency records this test's prefix left
            keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


@pytest.fixture
async def shop(
    aiohttp_client: Any,
    ray_session: None,
    database_url: str,
    schema: str,
    redis_url: str,
    pool: Any,
    proxy: FaultProxy,
    localstripe: Any,
) -> AsyncIterator[Shop]:
    async for made in _shop(
        aiohttp_client, database_url, schema, redis_url, pool, proxy, localstripe
    ):
        yield made


@pytest.fixture
async def show(pool: Any) -> int:
    return await make_show(pool)


@pytest.fixture
async def alice(pool: Any, shop: Shop) -> Account:
    return await make_account(pool, shop.app[keys.CONFIG])


@pytest.fixture
async def bob(pool: Any, shop: Shop) -> Account:
    return await make_account(pool, shop.app[keys.CONFIG])


async def _eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {result!r}")
        await asyncio.sleep(0.1)


async def _agree_booked(shop: Shop, show: int, payment: dict[str, Any], seats: list[str]) -> None:
    """Postgres, the actor and the provider tell the same story of one paid booking."""
    booking_id = payment["booking_id"]
    rows = await shop.fetch(
        "SELECT status, seats, price_cents, currency FROM bookings WHERE booking_id = $1",
        booking_id,
    )
    assert [(r["status"], sorted(r["seats"])) for r in rows] == [("confirmed", sorted(seats))]
    states = await shop.seat_states(show)
    assert {s: states[s] for s in seats} == dict.fromkeys(seats, "booked")
    (row,) = await shop.fetch(
        "SELECT status, provider_ref, amount_cents FROM payments WHERE payment_id = $1",
        payment["payment_id"],
    )
    assert row["status"] == "booked"
    intent = await shop.stripe.retrieve_intent(row["provider_ref"])
    assert (intent.status, intent.amount_cents) == ("succeeded", row["amount_cents"])
    assert rows[0]["price_cents"] == row["amount_cents"]
    assert await shop.stripe.refunds_of(row["provider_ref"]) == []


# -- a paid booking ------------------------------------------------------------------------------


async def test_paid_booking_end_to_end(shop: Shop, show: int, alice: Account) -> None:
    hold = await shop.hold(alice, show, ["C5", "C6"])
    status, payment, _ = await shop.checkout(alice, hold)
    assert status == 201, payment
    assert payment["status"] == "open" and payment["attempt"] == 1
    assert payment["amount_cents"] == hold["price_cents"] == 2400
    assert payment["currency"] == "USD" and payment["client_secret"]
    assert payment["provider"]["publishable_key"] == PUBLISHABLE
    status, held = await shop.get(f"/api/v1/shows/{show}/holds/{hold['hold_id']}", alice)
    assert held["payment_started"] is True and held["expires_at"] > hold["expires_at"]

    status, paid, _ = await shop.pay(alice, payment["payment_id"], VISA)
    assert status == 200, paid
    assert paid["status"] == "booked" and paid["booking_id"]
    await _agree_booked(shop, show, paid, ["C5", "C6"])

    status, booking = await shop.get(f"/api/v1/bookings/{paid['booking_id']}", alice)
    assert status == 200 and booking["payment_id"] == payment["payment_id"]
    assert booking["refund"] is None
    steps = await shop.fetch(
        "SELECT step FROM payment_steps WHERE payment_id = $1 ORDER BY id", payment["payment_id"]
    )
    assert [r["step"] for r in steps] == ["created", "intent_created", "paid", "booked"]
    # The provider's webhook comes about a second later and changes nothing.
    events = await _eventually(
        lambda: shop.fetch(
            "SELECT type, outcome FROM webhook_events WHERE processed_at IS NOT NULL"
        )
    )
    assert ("payment_intent.succeeded", "booked") in {(r["type"], r["outcome"]) for r in events}
    mails = await shop.fetch(
        "SELECT topic FROM outbox WHERE dedup_key = $1", f"booking.confirmed:{paid['booking_id']}"
    )
    assert len(mails) == 1
    await _agree_booked(shop, show, paid, ["C5", "C6"])


async def test_double_clicks_make_one_payment_and_one_booking(
    shop: Shop, show: int, alice: Account
) -> None:
    hold = await shop.hold(alice, show, ["D1"])
    results = await asyncio.gather(*(shop.checkout(alice, hold) for _ in range(4)))
    assert {status for status, _, _ in results} == {201}
    assert len({body["payment_id"] for _, body, _ in results}) == 1
    payment_id = results[0][1]["payment_id"]
    key = new_key()
    paid = await asyncio.gather(
        shop.pay(alice, payment_id, VISA, key=key),
        shop.pay(alice, payment_id, VISA, key=key),
        shop.pay(alice, payment_id, VISA),
    )
    statuses = sorted(status for status, _, _ in paid)
    assert all(s in (200, 409) for s in statuses), paid
    final = await shop.saga.get(payment_id)
    assert final.status == "booked"
    rows = await shop.fetch("SELECT booking_id FROM bookings WHERE hold_id = $1", hold["hold_id"])
    assert len(rows) == 1
    await _agree_booked(
        shop, show, {"payment_id": payment_id, "booking_id": final.booking_id}, ["D1"]
    )


# -- declines ------------------------------------------------------------------------------------


def _counted(name: str, **labels: str) -> float:
    """The sum of the samples of this process's ``/metrics`` registry named ``name`` whose
    labels include ``labels`` (the gateways of these tests run in the test's process)."""
    wanted = labels.items()
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and wanted <= sample.labels.items()
    )


def _outcomes() -> dict[str, float]:
    """The saga's counters, behind the payment and booking success rates of the dashboard."""
    payments = {
        f"payment {o}": _counted("seatserver_payments_total", outcome=o)
        for o in ("started", "succeeded", "declined", "abandoned")
    }
    bookings = {
        f"booking {o}": _counted("seatserver_bookings_total", outcome=o)
        for o in ("booked", "unseated", "deferred")
    }
    return payments | bookings


def _grown(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in _outcomes().items() if v != before[k]}


async def test_a_decline_then_a_retry_that_succeeds(shop: Shop, show: int, alice: Account) -> None:
    counted = _outcomes()
    hold = await shop.hold(alice, show, ["B3", "B4"])
    _, first, _ = await shop.checkout(alice, hold)
    status, declined, _ = await shop.pay(alice, first["payment_id"], DECLINED)
    assert status == 402, declined
    assert declined["error"]["code"] == "payment_declined"
    assert declined["error"]["details"]["attempts_left"] == 2
    states = await shop.seat_states(show)
    assert states["B3"] == states["B4"] == "held"  # the hold stays for another card

    status, second, _ = await shop.checkout(alice, hold)  # a new attempt, a new key
    assert status == 201 and second["attempt"] == 2
    assert second["payment_id"] != first["payment_id"]
    status, paid, _ = await shop.pay(alice, second["payment_id"], VISA)
    assert status == 200 and paid["status"] == "booked", paid
    await _agree_booked(shop, show, paid, ["B3", "B4"])

    rows = await shop.fetch(
        "SELECT attempt, status, provider_ref FROM payments WHERE hold_id = $1 ORDER BY attempt",
        hold["hold_id"],
    )
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "booked")]
    failed = await shop.stripe.retrieve_intent(rows[0]["provider_ref"])
    assert failed.status == "canceled"  # it can never be paid later
    # Counted once each, whoever settled it (the confirm or the webhook beside it).
    assert _grown(counted) == {
        "payment started": 2,
        "payment declined": 1,
        "payment succeeded": 1,
        "booking booked": 1,
    }


async def test_the_last_declined_attempt_releases_the_hold(
    shop: Shop, show: int, alice: Account
) -> None:
    hold = await shop.hold(alice, show, ["E7"])
    for attempt in (1, 2, 3):
        status, payment, _ = await shop.checkout(alice, hold)
        assert status == 201 and payment["attempt"] == attempt
        status, declined, _ = await shop.pay(alice, payment["payment_id"], DECLINED)
        assert status == 402
    assert declined["error"]["details"] == {
        **declined["error"]["details"],
        "attempts_left": 0,
        "hold_released": True,
    }
    assert (await shop.seat_states(show))["E7"] == "available"
    status, body, _ = await shop.checkout(alice, hold)
    assert status in (404, 409), body


# -- webhooks ------------------------------------------------------------------------------------


async def test_a_webhook_replayed_five_times_books_once(
    shop: Shop, show: int, alice: Account, localstripe: Any
) -> None:
    events = ["payment_intent.succeeded"]
    async with webhook_inbox(localstripe, WEBHOOK_SECRET, events) as inbox:
        hold = await shop.hold(alice, show, ["A5"])
        _, payment, _ = await shop.checkout(alice, hold)
        (row,) = await shop.fetch(
            "SELECT provider_ref FROM payments WHERE payment_id = $1", payment["payment_id"]
        )
        # The browser pays at the provider directly; only the webhook tells us.
        await shop.stripe.confirm_intent(
            row["provider_ref"], payment_method=VISA, idempotency_key="browser-1"
        )
        payload, signature = await delivery_about(inbox, row["provider_ref"])
        outcomes = []
        for _ in range(5):
            async with shop.client.post(
                "/api/v1/payments/webhook",
                data=payload,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 200, await resp.text()
                outcomes.append((await resp.json())["outcome"])
        assert outcomes.count("duplicate") >= 4 and set(outcomes) <= {"booked", "duplicate"}
        final = await shop.saga.get(payment["payment_id"])
        assert final.status == "booked"
        await _agree_booked(
            shop, show, {"payment_id": final.payment_id, "booking_id": final.booking_id}, ["A5"]
        )
        (event,) = await shop.fetch(
            "SELECT deliveries FROM webhook_events WHERE event_id = $1", json.loads(payload)["id"]
        )
        assert event["deliveries"] >= 5


async def test_unsigned_tampered_and_stale_webhooks_are_refused(shop: Shop) -> None:
    import hashlib
    import hmac

    body = json.dumps(
        {
            "id": "evt_x",
            "type": "payment_intent.succeeded",
            "created": 1,
            "data": {"object": {"id": "pi_x", "object": "payment_intent"}},
        }
    ).encode()

    def sign(payload: bytes, at: int, secret: str = WEBHOOK_SECRET) -> str:
        mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
        return f"t={at},v1={mac}"

    now = int(time.time())
    cases = {
        "unsigned": {},
        "tampered": {"Stripe-Signature": sign(body.replace(b"pi_x", b"pi_y"), now)},
        "wrong secret": {"Stripe-Signature": sign(body, now, "whsec_other")},
        "stale": {"Stripe-Signature": sign(body, now - 3600)},
    }
    for name, headers in cases.items():
        async with shop.client.post("/api/v1/payments/webhook", data=body, headers=headers) as r:
            answer = await r.json()
            assert r.status == 400, (name, answer)
            assert answer["error"]["code"] == "invalid_webhook", name
    assert await shop.fetch("SELECT * FROM webhook_events") == []


# -- late payments -------------------------------------------------------------------------------


@pytest.fixture
async def quick_shop(
    aiohttp_client: Any,
    ray_session: None,
    database_url: str,
    schema: str,
    redis_url: str,
    pool: Any,
    proxy: FaultProxy,
    localstripe: Any,
) -> AsyncIterator[Shop]:
    """Holds that end within seconds, even once their payment started."""
    async for made in _shop(
        aiohttp_client,
        database_url,
        schema,
        redis_url,
        pool,
        proxy,
        localstripe,
        hold_ttl_s=1.0,
        payment_ttl_s=1.5,
        max_hold_lifetime_s=2.0,
    ):
        yield made


async def test_a_payment_after_its_hold_expired_is_refunded(quick_shop: Shop, pool: Any) -> None:
    shop = quick_shop
    counted = _outcomes()
    show = await make_show(pool)
    alice = await make_account(pool, shop.app[keys.CONFIG])
    bob = await make_account(pool, shop.app[keys.CONFIG])
    hold = await shop.hold(alice, show, ["C1", "C2"])
    _, payment, _ = await shop.checkout(alice, hold)
    await _eventually(lambda: _freed(shop, show, ["C1", "C2"]), timeout=10)
    # Meanwhile someone else takes and pays for the same seats.
    other = await shop.hold(bob, show, ["C1", "C2"])
    _, bobs, _ = await shop.checkout(bob, other)
    status, bob_paid, _ = await shop.pay(bob, bobs["payment_id"], VISA)
    assert status == 200 and bob_paid["status"] == "booked"

    status, late, _ = await shop.pay(alice, payment["payment_id"], VISA)
    assert status == 200, late
    assert late["status"] == "refunded" and late["booking_id"] is None
    assert late["refunded_cents"] == late["amount_cents"] == 2400
    (refund,) = await shop.fetch(
        "SELECT reason, amount_cents, status, provider_ref FROM refunds WHERE payment_id = $1",
        payment["payment_id"],
    )
    assert (refund["reason"], refund["amount_cents"], refund["status"]) == (
        "hold_lost",
        2400,
        "succeeded",
    )
    (row,) = await shop.fetch(
        "SELECT provider_ref FROM payments WHERE payment_id = $1", payment["payment_id"]
    )
    made = await shop.stripe.refunds_of(row["provider_ref"])
    assert [(r.ref, r.amount_cents) for r in made] == [(refund["provider_ref"], 2400)]
    # The seats are booked once, by bob.
    seats = await shop.fetch(
        "SELECT booking_id FROM booking_seats WHERE show_id = $1 AND live", show
    )
    assert len(seats) == 2 and {r["booking_id"] for r in seats} == {
        uuid.UUID(bob_paid["booking_id"])
    }
    mails = await shop.fetch("SELECT payload FROM outbox WHERE topic = 'refund.succeeded'")
    assert [m["payload"]["reason"] for m in mails] == ["hold_lost"]
    # Paid but unseated (refunded) counts against the booking success rate; the expiry is
    # counted by the host, whose figures the gateway polls for /metrics.
    assert _grown(counted) == {
        "payment started": 2,
        "payment succeeded": 2,
        "booking booked": 1,
        "booking unseated": 1,
    }
    await shop.app[HOST_STATS].poll()
    assert _counted("seatserver_show_events_total", event="hold_expired") >= 1


async def _freed(shop: Shop, show: int, seats: list[str]) -> bool:
    states = await shop.seat_states(show)
    return all(states[s] == "available" for s in seats)


# -- cancellations -------------------------------------------------------------------------------


async def _book(shop: Shop, account: Account, show: int, seats: list[str]) -> dict[str, Any]:
    hold = await shop.hold(account, show, seats)
    _, payment, _ = await shop.checkout(account, hold)
    status, paid, _ = await shop.pay(account, payment["payment_id"], VISA)
    assert status == 200 and paid["status"] == "booked", paid
    return paid


@pytest.mark.parametrize(
    ("starts_in", "refunded", "refund_status"),
    [
        (dt.timedelta(hours=3), 2400, "succeeded"),
        (dt.timedelta(hours=1), 1200, "succeeded"),
        (dt.timedelta(minutes=10), 0, "none"),
    ],
)
async def test_cancellation_refunds_by_policy(
    shop: Shop,
    pool: Any,
    alice: Account,
    starts_in: dt.timedelta,
    refunded: int,
    refund_status: str,
) -> None:
    show = await make_show(pool, starts_in=starts_in)
    paid = await _book(shop, alice, show, ["B7", "B8"])
    key = new_key()
    path = f"/api/v1/bookings/{paid['booking_id']}/cancel"
    status, cancelled, _ = await shop.post(path, alice, key=key)
    assert status == 200, cancelled
    assert cancelled["booking"]["status"] == "cancelled"
    assert cancelled["refund"]["amount_cents"] == refunded
    assert cancelled["refund"]["status"] == refund_status
    # A retry with the same key, and one with another, refund nothing more.
    again = [await shop.post(path, alice, key=key), await shop.post(path, alice)]
    assert [(s, b["refund"]["amount_cents"]) for s, b, _ in again] == [(200, refunded)] * 2

    states = await shop.seat_states(show)
    assert states["B7"] == states["B8"] == "available"  # back on sale
    (row,) = await shop.fetch(
        "SELECT provider_ref, refunded_cents, status FROM payments WHERE booking_id = $1",
        paid["booking_id"],
    )
    assert (row["refunded_cents"], row["status"]) == (refunded, "booked")
    made = await shop.stripe.refunds_of(row["provider_ref"])
    assert [r.amount_cents for r in made] == ([refunded] if refunded else [])
    rows = await shop.fetch("SELECT status FROM bookings WHERE booking_id = $1", paid["booking_id"])
    assert [r["status"] for r in rows] == ["cancelled"]


async def test_a_started_show_cannot_be_cancelled_by_the_customer(
    shop: Shop, pool: Any, alice: Account
) -> None:
    show = await make_show(pool, starts_in=dt.timedelta(seconds=8))
    paid = await _book(shop, alice, show, ["A9"])
    await asyncio.sleep(8.5)  # the show starts
    status, body, _ = await shop.post(f"/api/v1/bookings/{paid['booking_id']}/cancel", alice)
    assert status == 409 and body["error"]["code"] == "cancellation_closed"
    assert (await shop.seat_states(show))["A9"] == "booked"


async def test_admin_cancelling_a_show_refunds_everyone(
    shop: Shop, pool: Any, alice: Account, bob: Account
) -> None:
    show = await make_show(pool, starts_in=dt.timedelta(minutes=20))  # past any customer refund
    first = await _book(shop, alice, show, ["C3"])
    second = await _book(shop, bob, show, ["C4", "C5"])
    admin = await make_account(pool, shop.app[keys.CONFIG], role="admin")
    async with shop.client.put(
        f"/api/v1/admin/shows/{show}/status",
        json={"status": "cancelled"},
        headers={**admin.headers, **new_key()},
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["refunds"] == {"bookings_cancelled": 2, "bookings_left_for_later": 0}
    refunds = await shop.fetch(
        "SELECT reason, amount_cents, status FROM refunds ORDER BY amount_cents"
    )
    assert [(r["reason"], r["amount_cents"], r["status"]) for r in refunds] == [
        ("show_cancelled", 1200, "succeeded"),
        ("show_cancelled", 2400, "succeeded"),
    ]
    for paid in (first, second):
        (row,) = await shop.fetch(
            "SELECT provider_ref, amount_cents FROM payments WHERE payment_id = $1",
            paid["payment_id"],
        )
        made = await shop.stripe.refunds_of(row["provider_ref"])
        assert [r.amount_cents for r in made] == [row["amount_cents"]]
    statuses = await shop.fetch("SELECT status FROM bookings WHERE show_id = $1", show)
    assert {r["status"] for r in statuses} == {"cancelled"}
    snapshot = await shop.engine.client.snapshot(show)
    assert snapshot.status == "cancelled" and snapshot.bookings == ()
    assert await shop.saga.reconcile() == {}  # nothing left over


# -- the provider down, then up ------------------------------------------------------------------


async def test_provider_down_then_up(shop: Shop, show: int, alice: Account) -> None:
    hold = await shop.hold(alice, show, ["D5", "D6"])
    shop.proxy.mode = "refuse"
    answers = [await shop.checkout(alice, hold) for _ in range(3)]
    for status, body, headers in answers:
        assert status == 503, body
        assert body["error"]["code"] == "payment_provider_unavailable"
        assert int(headers["Retry-After"]) >= 1
    assert shop.provider.breaker.state == "open"
    tried = shop.proxy.accepted
    status, _, _ = await shop.checkout(alice, hold)
    assert status == 503 and shop.proxy.accepted == tried  # open: not even tried
    states = await shop.seat_states(show)
    assert states["D5"] == states["D6"] == "held"  # the hold stays

    shop.proxy.mode = "pass"
    await asyncio.sleep(1.1)  # the breaker lets a trial call through
    status, payment, _ = await shop.checkout(alice, hold)
    assert status == 201, payment
    status, paid, _ = await shop.pay(alice, payment["payment_id"], VISA)
    assert status == 200 and paid["status"] == "booked"
    await _agree_booked(shop, show, paid, ["D5", "D6"])
    rows = await shop.fetch("SELECT status FROM payments WHERE hold_id = $1", hold["hold_id"])
    assert [r["status"] for r in rows] == ["booked"]


async def test_a_lost_answer_from_the_provider_charges_once(
    shop: Shop, show: int, alice: Account
) -> None:
    hold = await shop.hold(alice, show, ["E1"])
    _, payment, _ = await shop.checkout(alice, hold)
    shop.proxy.mode = "blackhole_responses"  # the charge happens, its answer is lost
    key = new_key()
    status, body, _ = await shop.pay(alice, payment["payment_id"], VISA, key=key)
    assert status == 503, body
    shop.proxy.mode = "pass"
    await asyncio.sleep(1.1)
    status, paid, _ = await shop.pay(alice, payment["payment_id"], VISA, key=key)  # the retry
    assert status == 200 and paid["status"] == "booked", paid
    await _agree_booked(shop, show, paid, ["E1"])


# -- a crash between the payment and the booking --------------------------------------------------

_CHILD = """
import asyncio, os, sys
import ray
import actors, storage
from payments import build_saga
from tests.integration.test_payments import payments_config

async def main(database_url, schema, namespace, api_base, user_id, payment_id, crash_at):
    pool = await storage.create_pool(database_url, schema=schema, min_size=1, max_size=2)
    engine = actors.ShowClient(actors.find_directory(namespace))
    config = payments_config(stripe_api_base=api_base)
    from payments import build_provider
    saga = build_saga(config, pool, engine, build_provider(config),
                      observe=lambda pid, step: os._exit(17) if step == crash_at else None)
    await saga.confirm(user_id=int(user_id), payment_id=payment_id, payment_method="pm_card_visa")
    print("not crashed", flush=True)

ray.init(address=sys.argv[1], namespace=sys.argv[4], log_to_driver=False)
asyncio.run(main(*sys.argv[2:]))
"""


@pytest.mark.parametrize("crash_at", ["charged", "paid"])
async def test_a_crash_between_payment_and_booking_is_settled_by_reconciliation(
    shop: Shop, show: int, alice: Account, database_url: str, schema: str, crash_at: str
) -> None:
    hold = await shop.hold(alice, show, ["B10", "B11"])
    _, payment, _ = await shop.checkout(alice, hold)
    address = ray.get_runtime_context().gcs_address
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        address,
        database_url,
        schema,
        shop.engine.namespace,
        shop.proxy.url,
        str(alice.user_id),
        payment["payment_id"],
        crash_at,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=os.getcwd(),
    )
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 17, (out, err.decode()[-3000:])  # died at the step

    (row,) = await shop.fetch(
        "SELECT status, provider_ref FROM payments WHERE payment_id = $1", payment["payment_id"]
    )
    assert row["status"] == ("open" if crash_at == "charged" else "succeeded")
    intent = await shop.stripe.retrieve_intent(row["provider_ref"])
    assert intent.status == "succeeded"  # the money was taken
    assert await shop.fetch("SELECT 1 FROM bookings WHERE hold_id = $1", hold["hold_id"]) == []

    # Its webhook may settle it first; the reconciler must settle it either way.
    counts = await shop.saga.reconcile()
    final = await shop.saga.get(payment["payment_id"])
    assert final.status == "booked", (counts, final)
    await _agree_booked(
        shop,
        show,
        {"payment_id": final.payment_id, "booking_id": final.booking_id},
        ["B10", "B11"],
    )
    assert await shop.saga.reconcile() == {}
    actor_bookings = (await shop.engine.client.snapshot(show)).bookings
    assert [b.booking_id for b in actor_bookings] == [final.booking_id]


async def test_reconciliation_cancels_intents_of_abandoned_holds(
    quick_shop: Shop, pool: Any
) -> None:
    shop = quick_shop
    show = await make_show(pool)
    alice = await make_account(pool, shop.app[keys.CONFIG])
    hold = await shop.hold(alice, show, ["A3"])
    _, payment, _ = await shop.checkout(alice, hold)
    await _eventually(lambda: _freed(shop, show, ["A3"]), timeout=10)
    counts = await shop.saga.reconcile()
    assert counts == {"open->canceled": 1}, counts
    final = await shop.saga.get(payment["payment_id"])
    intent = await shop.stripe.retrieve_intent(final.provider_ref)
    assert (final.status, intent.status) == ("canceled", "canceled")


async def test_payments_are_private(shop: Shop, show: int, alice: Account, bob: Account) -> None:
    hold = await shop.hold(alice, show, ["E10"])
    _, payment, _ = await shop.checkout(alice, hold)
    status, body = await shop.get(f"/api/v1/payments/{payment['payment_id']}", bob)
    assert status == 404, body
    status, body, _ = await shop.pay(bob, payment["payment_id"], VISA)
    assert status == 404, body
    status, body, _ = await shop.checkout(bob, hold)
    assert status == 403, body
    status, body, _ = await shop.pay(alice, payment["payment_id"], "4242424242424242")
    assert status == 422, body  # card numbers are never taken here
