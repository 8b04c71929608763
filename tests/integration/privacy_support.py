"""A gateway with payments on localstripe for the privacy tests, and customers with something in
every table of the personal-data registry (and in Redis)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

import storage
from gateway import keys
from gateway.app import create_app
from gateway.assistant.state import ConversationStore
from gateway.rates import RateLimits
from gateway.risksignals import RiskSignals
from payments import PaymentsConfig
from payments.breaker import CircuitBreaker, GuardedProvider
from payments.localstripe import register_webhook
from payments.stripe_provider import StripeProvider
from storage import assistant, notify
from tests.gateway_support import PASSWORD, gateway_config, make_account, new_key
from tests.integration.shows import make_show, start_engine, stop_engine

SECRET, PUBLISHABLE, WEBHOOK_SECRET = "sk_test_privacy", "pk_test_privacy", "whsec_privacy"
VISA = "pm_card_visa"


@dataclass
class Shop:
    client: Any
    app: web.Application
    pool: Any
    redis: Any

    @property
    def config(self) -> Any:
        return self.app[keys.CONFIG]

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method in ("POST", "PUT") and not path.startswith("/api/v1/auth/"):
            headers.update(new_key())
        async with self.client.request(method, path, json=body, headers=headers, **kw) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def execute(self, sql: str, *args: Any) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(sql, *args)


@dataclass
class Customer:
    """A customer registered through the API, with the personal data the tests look for."""

    user_id: int
    email: str
    display_name: str
    phone: str
    token: str
    refresh_token: str
    push_token: str = ""
    chat_text: str = ""
    bookings: list[str] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)

    def personal(self) -> list[str]:
        """Strings that are this customer's alone."""
        return [self.email, self.display_name, self.phone, self.push_token, self.chat_text]


async def open_shop(
    aiohttp_client: Any, database_url: str, schema: str, redis_url: str, localstripe: Any
) -> AsyncIterator[Shop]:
    payments = PaymentsConfig(
        stripe_api_key=SECRET,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_publishable_key=PUBLISHABLE,
        stripe_api_base=localstripe.url,
        stripe_js_base=localstripe.url,
        reconcile_interval_s=0,
        settle_after_s=0,
    )
    limits = RateLimits.parse({"login_account": "600/min", "login_ip": "600/min"})
    config = gateway_config(database_url, schema, redis_url, payments=payments, rate_limits=limits)
    config = dataclasses.replace(config, queue_tick_s=0.05)
    engine = await start_engine(database_url, schema, redis_url, channel_prefix=config.redis_prefix)
    stripe = StripeProvider(
        SECRET, WEBHOOK_SECRET, publishable_key=PUBLISHABLE, api_base=localstripe.url
    )
    provider = GuardedProvider(stripe, CircuitBreaker(failure_threshold=5, reset_after_s=1.0))
    app = create_app(config, engine=engine.client, provider=provider)
    client = await aiohttp_client(app)
    url = str(client.make_url("/api/v1/payments/webhook"))
    await register_webhook(localstripe.url, "privacy-" + uuid.uuid4().hex[:6], url, WEBHOOK_SECRET)
    redis = await storage.create_redis(redis_url)
    try:
        yield Shop(client, app, app[keys.POOL], redis)
    finally:
        await client.close()
        await stripe.close()
        await stop_engine(engine)
        names = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if names:
            await redis.delete(*names)
        await redis.aclose()


async def register(shop: Shop, name: str, *, city: int | None = None) -> Customer:
    """Register and log in through the API; a phone number sealed on the account."""
    email = f"{name.lower()}.{uuid.uuid4().hex[:8]}@Example.com"
    display = f"{name} {secrets.token_hex(4)}"
    status, body = await shop.call(
        "POST",
        "/api/v1/auth/register",
        body={"email": email, "password": PASSWORD, "display_name": display},
    )
    assert status == 201, body
    status, login = await shop.call(
        "POST", "/api/v1/auth/login", body={"email": email.upper(), "password": PASSWORD}
    )
    assert status == 200, login
    phone = "+1415555" + f"{secrets.randbelow(10_000):04d}"
    async with shop.pool.acquire() as conn:
        await storage.set_phone(conn, body["user"]["id"], phone, keyring=shop.config.keyring)
    return Customer(
        body["user"]["id"], email, display, phone, login["access_token"], login["refresh_token"]
    )


async def book(shop: Shop, who: Customer, show: int, seats: list[str]) -> dict[str, Any]:
    """Hold, check out and pay with the test card: a confirmed booking."""
    status, hold = await shop.call(
        "POST", f"/api/v1/shows/{show}/holds", who.token, {"seats": seats}
    )
    assert status == 201, hold
    path = f"/api/v1/shows/{show}/holds/{hold['hold_id']}/checkout"
    status, payment = await shop.call("POST", path, who.token)
    assert status == 201, payment
    path = f"/api/v1/payments/{payment['payment_id']}/confirm"
    status, paid = await shop.call("POST", path, who.token, {"payment_method": VISA})
    assert status == 200 and paid["status"] == "booked", paid
    who.bookings.append(paid["booking_id"])
    who.holds.append(hold["hold_id"])
    return dict(paid)


async def everything(
    shop: Shop, who: Customer, show: int, queue_show: int, seats: list[str], staff_id: int, tag: str
) -> None:
    """Rows about ``who`` in every registry table a customer appears in, and data in Redis:
    two paid bookings, one cancelled and refunded; an audited read; a queue place; a chat
    (taken by ``staff_id``); risk signals; preferences and a device; and what
    ``_direct_rows`` writes."""
    first = await book(shop, who, show, seats[:1])
    await book(shop, who, show, seats[1:2])
    status, body = await shop.call(
        "POST", f"/api/v1/bookings/{first['booking_id']}/cancel", who.token
    )
    assert status == 200 and body["refund"]["status"] == "succeeded", body
    status, _ = await shop.call("GET", "/api/v1/me", who.token)  # an audited read
    assert status == 200
    status, place = await shop.call("POST", f"/api/v1/shows/{queue_show}/queue", who.token)
    assert status == 200 and place["state"] == "waiting", place
    who.push_token = f"fcm-{tag}-{secrets.token_hex(12)}"
    who.chat_text = f"my cat {tag} {secrets.token_hex(6)} likes aisle seats"
    conversations = ConversationStore(shop.redis, shop.config.redis_prefix)
    conv = await conversations.new(who.user_id)
    conv.add("user", who.chat_text)
    await conversations.save(conv)
    signals = RiskSignals(shop.redis, shop.config.redis_prefix + "risk:")
    now = dt.datetime.now(dt.UTC)
    await signals.record_hold(
        who.user_id, f"device-{tag}", "203.0.113.7", who.holds[0], 1, now.timestamp()
    )
    async with shop.pool.acquire() as conn:
        await notify.set_preferences(conn, who.user_id, {("reminder", "sms"): True})
        device = await notify.register_device(conn, who.user_id, who.push_token, "android")
        await assistant.record_usage(
            conn, conv.id, who.user_id, "local", input_tokens=3, output_tokens=5
        )
        handoff = await assistant.open_handoff(
            conn, conv.id, who.user_id, "requested", [{"role": "user", "content": who.chat_text}]
        )
        await conn.execute(
            "UPDATE chat_handoffs SET status = 'taken', taken_by = $2, "
            "taken_at = now() WHERE id = $1",
            handoff.id,
            staff_id,
        )
        await _direct_rows(conn, who, show, device.id, staff_id, tag)


async def _direct_rows(
    conn: Any, who: Customer, show: int, device: int, staff_id: int, tag: str
) -> None:
    """Rows no API call of a test writes on its own (the fraud check and the recommender are
    off in tests; staff actions), and errors that quote an address, as a mail server's or
    a carrier's may."""
    uid = who.user_id
    await conn.execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response, "
        "expires_at) VALUES ($1, $2, 'h', 200, $3, now() + interval '1 day')",
        uid,
        f"key-{tag}",
        {"user": {"email": who.email}},
    )
    decision = await conn.fetchval(
        "INSERT INTO fraud_decisions (user_id, show_id, hold_id, features, score, decision, "
        "source) VALUES ($1, $2, $3, '{\"holds_account_1h\": 1}', 0.1, 'allow', 'fallback') "
        "RETURNING id",
        uid,
        show,
        uuid.UUID(who.holds[0]),
    )
    await conn.execute(
        "INSERT INTO fraud_labels (decision_id, is_fraud, analyst_id, note) "
        "VALUES ($1, false, $2, $3)",
        decision,
        staff_id,
        f"called {who.display_name}, all fine",
    )
    await conn.execute(
        "INSERT INTO experiments (name, kind, arms) VALUES ($1, 'generic', '[]')", f"exp-{tag}"
    )
    await conn.execute(
        "INSERT INTO experiment_exposures (experiment, user_id, arm, first_exposed_at) "
        "VALUES ($1, $2, 'a', now())",
        f"exp-{tag}",
        uid,
    )
    await conn.execute(
        "INSERT INTO rec_impressions (hour, user_id, movie_id, source, shown) "
        "SELECT date_trunc('hour', now()), $1, movie_id, 'model', 3 FROM shows WHERE id = $2",
        uid,
        show,
    )
    outbox = await conn.fetchval(
        "INSERT INTO outbox (topic, dedup_key, payload, failed_at, last_error) "
        "VALUES ('booking.confirmed', $1, $2, now(), $3) RETURNING id",
        f"test:{tag}:{uuid.uuid4()}",
        {"user_id": str(uid), "show_id": show},
        f"550 <{who.email}> mailbox unavailable",
    )
    await conn.execute(
        "INSERT INTO notification_deliveries (outbox_id, user_id, kind, channel, device_id, "
        "last_error) VALUES ($1, $2, 'confirmation', 'sms', 0, $3), "
        "($1, $2, 'confirmation', 'push', $4, NULL)",
        outbox,
        uid,
        f"21211: invalid 'To' {who.phone}",
        device,
    )


async def staff_actions(shop: Shop, who: Customer, show: int) -> None:
    """``who`` runs the show's theater: sets a sale's terms, stops an experiment, acknowledges
    an alert (rows that name them as staff)."""
    async with shop.pool.acquire() as conn:
        theater = await conn.fetchval(
            "SELECT sc.theater_id FROM shows s JOIN screens sc ON sc.id = s.screen_id "
            "WHERE s.id = $1",
            show,
        )
        await storage.grant_theater(conn, who.user_id, theater)
        await conn.execute(
            "INSERT INTO flash_sales (show_id, queue_opens_at, admission_per_min, token_ttl_s, "
            "updated_by) VALUES ($1, now(), 10, 60, $2)",
            show,
            who.user_id,
        )
        await conn.execute(
            "INSERT INTO experiments (name, kind, arms, status, stopped_at, stopped_by, "
            "final_arm) VALUES ($1, 'generic', '[]', 'stopped', now(), $2, 'a')",
            f"stopped-{who.user_id}",
            who.user_id,
        )
        await conn.execute(
            "INSERT INTO alerts (kind, model, state, acked_at, acked_by) "
            "VALUES ('latency', $1, 'resolved', now(), $2)",
            f"m-{who.user_id}",
            who.user_id,
        )


async def staff(shop: Shop) -> Any:
    return await make_account(shop.pool, shop.config, "admin")


async def shows(shop: Shop, ops: Any) -> tuple[int, int]:
    """A show on sale in two days, and a flash sale whose queue is open (sale in an hour)."""
    show = await make_show(shop.pool, name="main")
    queue_show = await make_show(shop.pool, status="flash_sale", name="queue")
    now = dt.datetime.now(dt.UTC)
    terms = {
        "queue_opens_at": (now - dt.timedelta(minutes=1)).isoformat(),
        "sale_opens_at": (now + dt.timedelta(hours=1)).isoformat(),
        "admission_per_min": 60,
        "token_ttl_s": 120,
    }
    status, body = await shop.call(
        "PUT", f"/api/v1/admin/shows/{queue_show}/flash-sale", ops.token, terms
    )
    assert status == 200, body
    return show, queue_show
