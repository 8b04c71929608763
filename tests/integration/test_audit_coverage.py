"""The audit log records every access to personal data (issue 11), on real Postgres and Redis:
registering, logging in and refreshing leave a row under the account (a failed login none);
a customer's bookings and payments, read by the customer or by staff, leave a row naming
whose they are; an optional-auth page records a logged-in caller only; a read whose row cannot
be written is refused; a key rotation leaves one system row per run; and no row holds the
email or name. ``personal_parts`` says what personal data is, for the static guard
(``test_audit.test_every_endpoint_answering_personal_data_is_audited``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any, get_args

import pytest
from pydantic import BaseModel

import storage
from gateway import schemas as s
from gateway.app import create_app
from gateway.assistant import schemas as chat
from gateway.endpoint import MUTATING, Endpoint
from gateway.routes import ENDPOINTS
from gateway.views import notify
from seatserver import keycmds
from tests.conftest import random_ref
from tests.gateway_support import PASSWORD, Account, make_account
from tests.integration.shows import make_show
from tests.integration.test_audit import audit_rows

# Field names that carry data about an identifiable customer, by kind.
ACCOUNT = {"email", "phone", "display_name", "user_id", "subject_id", "account"}
PURCHASES = {"hold_id", "payment_id", "booking_id", "refund_id", "refund"}
MESSAGES = {"transcript", "conversation_id", "reply"}
DEVICES = {"device_token", "devices"}
SETTINGS_AND_HISTORY = {
    "favourite_genres",
    "preferences",
    "favourite_theaters",  # with how often they booked there
    "usual_time_of_day",
}
PERSONAL_FIELDS = ACCOUNT | PURCHASES | MESSAGES | DEVICES | SETTINGS_AND_HISTORY
# Schemas that are records of a customer, whatever their fields are called.
PERSONAL_SCHEMAS: set[type[BaseModel]] = {
    s.UserOut,
    s.MeOut,
    s.ExportOut,
    s.GenresOut,
    s.HoldOut,
    s.PaymentOut,
    s.BookingOut,
    s.BookingDetailOut,
    s.RefundOut,
    s.CancellationOut,
    s.FraudDecisionOut,
    notify.NotificationsOut,
    notify.PhoneOut,
    notify.DeviceOut,
    chat.ChatReplyOut,
    chat.HandoffOut,
    chat.TranscriptLine,
}


def personal_parts(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """The personal field names and schemas (``Schema:Name``) in ``model``, nested ones too."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    found = set(model.model_fields) & PERSONAL_FIELDS
    if model in PERSONAL_SCHEMAS:
        found.add(f"schema:{model.__name__}")

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.update(personal_parts(annotation, seen))
        for arg in get_args(annotation):
            walk(arg)

    for field in model.model_fields.values():
        walk(field.annotation)
    return found


def _action(e: Endpoint) -> str | None:
    from gateway import audit

    return audit.action_of(e, mutating=e.method in MUTATING)


def _endpoint(method: str, path: str) -> Endpoint:
    [found] = [e for e in ENDPOINTS if (e.method, e.path) == (method, "/api/v1" + path)]
    return found


def test_the_guard_knows_purchase_history_and_public_endpoints() -> None:
    """The guard sees a hold, a payment, a booking and the account in an answer, and public
    endpoints are checked too: register, login and refresh answer the account."""
    for model in (s.HoldOut, s.PaymentOut, s.BookingsOut, s.BookingDetailOut, s.TokensOut):
        assert personal_parts(model), model

    class NewHistory(BaseModel):  # a schema of tomorrow: caught by its field names
        items: list[dict[str, Any]]
        refund_id: str

    assert personal_parts(NewHistory) == {"refund_id"}
    for path in ("/auth/register", "/auth/login", "/auth/refresh"):
        e = _endpoint("POST", path)
        assert not e.needs_user and personal_parts(e.response or BaseModel)
        assert _action(e) is not None, path


def test_the_catalog_and_seat_maps_are_not_personal() -> None:
    for e in ENDPOINTS:
        if e.tag == "catalog" and e.auth == ("none",):
            assert _action(e) is None, e.path
            assert not personal_parts(e.response or BaseModel), e.path
    assert _action(_endpoint("GET", "/shows/{show_id}/seatmap")) is None


class Site:
    def __init__(self, client: Any, pool: Any, config: Any) -> None:
        self.client, self.pool, self.config = client, pool, config

    async def build(self) -> None:
        self.show = await make_show(self.pool, name="A")
        async with self.pool.acquire() as conn:
            theater = await storage.theater_of(conn, show_id=self.show)
            self.city = await conn.fetchval("SELECT city_id FROM theaters WHERE id = $1", theater)
        self.ops = await make_account(self.pool, self.config, "admin")
        self.customer = await make_account(self.pool, self.config)
        self.other = await make_account(self.pool, self.config)

    async def call(
        self, who: Account | None, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        headers = who.headers if who else {}
        resp = await self.client.request(method, "/api/v1" + path, json=body, headers=headers)
        return resp.status, None if resp.status == 204 else await resp.json()

    async def rows(self, **where: Any) -> list[dict[str, Any]]:
        return await audit_rows(self.pool, **where)

    async def dump(self) -> str:
        async with self.pool.acquire() as conn:
            found = await conn.fetch("SELECT row_to_json(a)::text FROM audit_log a")
        return "\n".join(r[0] for r in found).lower()

    async def book(self, who: Account) -> str:
        """A confirmed booking of ``who``, straight in Postgres."""
        async with self.pool.acquire() as conn:
            booking: uuid.UUID = await conn.fetchval(
                """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats,
                                         price_cents, status, confirmed_at)
                   SELECT gen_random_uuid(), (starts_at AT TIME ZONE 'UTC')::date, id, $2,
                          '{C5}', 1200, 'confirmed', now()
                   FROM shows WHERE id = $1 RETURNING booking_id""",
                self.show,
                who.user_id,
            )
        return str(booking)


class NoEngine:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("these calls open no seat map")


@pytest.fixture
async def site(aiohttp_client: Any, config: Any, pool: Any) -> AsyncIterator[Site]:
    made = Site(await aiohttp_client(create_app(config, engine=NoEngine())), pool, config)
    await made.build()
    yield made


async def test_register_login_and_refresh_are_recorded_under_the_account(site: Site) -> None:
    ref = uuid.uuid4().hex[:8]
    email, name = f"ottoline.{ref}@example.org", f"Ottoline Vane {ref}"
    status, made = await site.call(
        None, "POST", "/auth/register", {"email": email, "password": PASSWORD, "display_name": name}
    )
    assert status == 201, made
    user_id = made["user"]["id"]
    status, login = await site.call(
        None, "POST", "/auth/login", {"email": email.upper(), "password": PASSWORD}
    )
    assert status == 200, login
    refresh = {"refresh_token": login["refresh_token"]}
    assert (await site.call(None, "POST", "/auth/refresh", refresh))[0] == 200

    for action, status in (
        ("personal_data.register", 201),
        ("personal_data.login", 200),
        ("personal_data.refresh", 200),
    ):
        [row] = await site.rows(action=action)
        assert (row["actor_id"], row["subject_id"], row["actor_role"]) == (
            user_id,
            user_id,
            "customer",
        )
        assert (row["target_type"], row["target_id"], row["status"]) == (
            "user",
            str(user_id),
            status,
        )
    # A failed login or refresh names nobody: no row.
    before = len(await site.rows())
    wrong = {"email": email, "password": "not the password"}
    assert (await site.call(None, "POST", "/auth/login", wrong))[0] == 401
    assert (await site.call(None, "POST", "/auth/refresh", refresh))[0] == 401  # used up
    assert len(await site.rows()) == before
    text = await site.dump()
    for personal in (email, email.split("@")[0], name, "ottoline", login["refresh_token"]):
        assert personal.lower() not in text, personal


async def test_purchase_history_reads_name_whose_it_is(site: Site) -> None:
    booking = await site.book(site.customer)
    status, mine = await site.call(site.customer, "GET", "/me/bookings")
    assert status == 200 and [b["booking_id"] for b in mine["bookings"]] == [booking]
    [listed] = await site.rows(action="personal_data.bookings")
    assert (listed["actor_id"], listed["subject_id"]) == (site.customer.user_id,) * 2

    for who, status in ((site.customer, 200), (site.ops, 200), (site.other, 404)):
        assert (await site.call(who, "GET", f"/bookings/{booking}"))[0] == status
    reads = await site.rows(action="personal_data.booking")
    assert [(r["actor_id"], r["status"]) for r in reads] == [
        (site.customer.user_id, 200),
        (site.ops.user_id, 200),
        (site.other.user_id, 404),  # a probe of someone else's booking: recorded too
    ]
    assert {r["subject_id"] for r in reads} == {site.customer.user_id}
    assert {(r["target_type"], r["target_id"]) for r in reads} == {("booking", booking)}

    payment = str(uuid.uuid4())  # payments are off here: 503, recorded all the same
    status, _ = await site.call(site.customer, "GET", f"/payments/{payment}")
    assert status in (404, 503)
    [paid] = await site.rows(action="personal_data.payment")
    assert (paid["target_type"], paid["target_id"], paid["status"]) == ("payment", payment, status)
    assert paid["subject_id"] == site.customer.user_id

    assert (await site.call(site.customer, "PUT", "/me/genres", {"genres": ["drama"]}))[0] == 200
    assert (await site.call(site.customer, "GET", "/me/genres"))[0] == 200
    genres = await site.rows(action="personal_data.genres")
    assert [r["method"] for r in genres] == ["PUT", "GET"]


async def test_an_optional_auth_page_records_a_logged_in_caller_only(site: Site) -> None:
    status, body = await site.call(None, "GET", f"/home?city_id={site.city}")
    assert status == 200, body
    assert await site.rows(action="personal_data.home") == []
    status, body = await site.call(site.customer, "GET", f"/home?city_id={site.city}")
    assert status == 200, body
    [row] = await site.rows(action="personal_data.home")
    assert (row["actor_id"], row["subject_id"]) == (site.customer.user_id,) * 2


async def test_a_history_read_whose_row_cannot_be_written_is_refused(site: Site) -> None:
    await site.book(site.customer)
    async with site.pool.acquire() as conn:  # the log's ids run out: every INSERT fails
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence('audit_log', 'id')")
        last = await conn.fetchval(f"SELECT last_value FROM {sequence}")
        await conn.execute("SELECT setval($1, 9223372036854775807)", sequence)
    try:
        status, body = await site.call(site.customer, "GET", "/me/bookings")
        assert status == 503 and body["error"]["code"] == "audit_unavailable"
        assert "bookings" not in body
    finally:
        async with site.pool.acquire() as conn:
            await conn.execute("SELECT setval($1, $2)", sequence, last)
    assert (await site.call(site.customer, "GET", "/me/bookings"))[0] == 200


async def test_a_key_rotation_leaves_one_system_row_per_run(
    pool: Any, database_url: str, schema: str
) -> None:
    old_key = storage.new_key()
    old = storage.Keyring.parse(f"old:{old_key}")
    ring = storage.Keyring.parse(f"new:{storage.new_key()},old:{old_key}")
    emails = []
    async with pool.acquire() as conn:
        for n in range(3):
            emails.append(f"{random_ref('rot')}.{n}@example.com")
            await storage.create_user(conn, emails[-1], "hash", keyring=old)
    assert await keycmds.rotate(database_url, schema, ring, batch=2) == 3
    assert await keycmds.rotate(database_url, schema, ring, batch=2) == 0
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit_log WHERE action = 'personal_data.reseal' ORDER BY id"
        )
        text = " ".join(
            r[0] for r in await conn.fetch("SELECT row_to_json(a)::text FROM audit_log a")
        )
    assert [(r["actor_role"], r["actor_id"], r["subject_id"]) for r in rows] == [
        ("system", None, None)
    ] * 2
    assert [r["target_id"] for r in rows] == ["new", "new"]
    first, second = (r["details"] for r in rows)
    assert first == {"batch": 2, "accounts": 3, "resealed": 3, "left": 0, "completed": True}
    assert second == {"batch": 2, "accounts": 0, "resealed": 0, "left": 0, "completed": True}
    for email in emails:
        assert email.lower() not in text.lower()


async def test_a_rotation_that_fails_midway_is_recorded_all_the_same(
    pool: Any, database_url: str, schema: str
) -> None:
    stranger = storage.Keyring.parse(f"gone:{storage.new_key()}")
    async with pool.acquire() as conn:
        await storage.create_user(conn, f"{random_ref('rot')}@example.com", "h", keyring=stranger)
    ring = storage.Keyring.parse(f"new:{storage.new_key()}")  # cannot open the row
    with pytest.raises(storage.KeyringError):
        await keycmds.rotate(database_url, schema, ring, batch=5)
    async with pool.acquire() as conn:
        [row] = await conn.fetch("SELECT * FROM audit_log WHERE action = 'personal_data.reseal'")
    assert row["details"] == {"batch": 5, "accounts": 1, "resealed": 0, "completed": False}
    assert row["at"] > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
