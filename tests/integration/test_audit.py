"""The audit log: admin actions (done, refused, invalid) and reads of personal data leave one
row each with who, what, when and the outcome (a customer's reads of their own data too, not
their changes to a seat hold); nobody can change the rows (Postgres refuses, the owner
included); ops admins read them in filtered pages; and no row holds personal data."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

import storage
from gateway import audit as recording
from gateway import keys
from gateway.app import create_app
from gateway.endpoint import MUTATING
from gateway.routes import ENDPOINTS
from storage import assistant as chat_rows
from storage import audit as store
from tests.conftest import random_ref
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, make_show


async def audit_rows(pool: Any, **where: Any) -> list[dict[str, Any]]:
    """The audit log's rows whose columns equal ``where``, oldest first."""
    clauses = " AND ".join(f"{k} = ${i}" for i, k in enumerate(where, 1)) or "true"
    async with pool.acquire() as conn:
        found = await conn.fetch(
            f"SELECT * FROM audit_log WHERE {clauses} ORDER BY id", *where.values()
        )
    return [dict(r) for r in found]


class NoEngine:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("these calls open no seat map")


class Site:
    def __init__(self, client: Any, pool: Any) -> None:
        self.client, self.pool = client, pool

    async def build(self, config: Any) -> None:
        self.show = await make_show(self.pool, name="A")
        other_show = await make_show(self.pool, name="B")
        async with self.pool.acquire() as conn:
            self.theater = await storage.theater_of(conn, show_id=self.show)
            self.other_theater = await storage.theater_of(conn, show_id=other_show)
            self.city = await conn.fetchval(
                "SELECT city_id FROM theaters WHERE id = $1", self.theater
            )
        self.ops = await make_account(self.pool, config, "admin")
        self.admin = await make_account(self.pool, config, "theater_admin", (self.theater,))
        self.customer = await make_account(self.pool, config)

    async def call(
        self, who: Account | None, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, str]:
        headers = {**new_key(), **(who.headers if who else {})}
        resp = await self.client.request(method, "/api/v1" + path, json=body, headers=headers)
        answer = None if resp.status == 204 else await resp.json()
        return resp.status, answer, resp.headers["X-Request-Id"]

    async def rows(self, **where: Any) -> list[dict[str, Any]]:
        return await audit_rows(self.pool, **where)


@contextlib.asynccontextmanager
async def _site(
    aiohttp_client: Any, config: Any, pool: Any, redis: Any, engine: Any
) -> AsyncIterator[Site]:
    site = Site(await aiohttp_client(create_app(config, engine=engine)), pool)
    await site.build(config)
    try:
        yield site
    finally:
        left = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if left:
            await redis.delete(*left)


@pytest.fixture
async def site(aiohttp_client: Any, config: Any, pool: Any, redis: Any) -> AsyncIterator[Site]:
    async with _site(aiohttp_client, config, pool, redis, NoEngine()) as site:
        yield site


@pytest.fixture
async def engine_site(
    aiohttp_client: Any, config: Any, pool: Any, redis: Any, engine: Engine
) -> AsyncIterator[Site]:
    async with _site(aiohttp_client, config, pool, redis, engine.client) as site:
        yield site


async def test_an_admin_action_writes_one_row(site: Site) -> None:
    before = dt.datetime.now(dt.UTC)
    body = {"city_id": site.city, "name": random_ref("Cinema"), "time_zone": "Europe/Paris"}
    status, created, rid = await site.call(site.ops, "POST", "/admin/theaters", body)
    assert status == 201
    [row] = await site.rows(action="create_theater")
    assert row["actor_id"] == site.ops.user_id and row["actor_role"] == "admin"
    assert (row["target_type"], row["target_id"]) == ("theater", str(created["id"]))
    assert (row["method"], row["route"]) == ("POST", "/api/v1/admin/theaters")
    assert row["status"] == 201 and row["request_id"] == rid and row["subject_id"] is None
    assert before - dt.timedelta(seconds=5) <= row["at"] <= dt.datetime.now(dt.UTC)

    grantee = await make_account(site.pool, site.client.app[keys.CONFIG])
    path = f"/admin/theaters/{site.theater}/admins"
    status, _, _ = await site.call(site.ops, "POST", path, {"user_id": grantee.user_id})
    assert status == 204
    [grant] = await site.rows(action="grant_theater_admin")
    assert (grant["target_type"], grant["target_id"]) == ("theater", str(site.theater))
    assert grant["subject_id"] == grantee.user_id  # whose account changed
    assert grant["route"] == "/api/v1/admin/theaters/{theater_id}/admins"  # never the raw path

    name = random_ref("exp")
    arms = [{"arm": "a", "share": 0.5}, {"arm": "b", "share": 0.5}]
    status, _, _ = await site.call(
        site.ops, "POST", "/admin/experiments", {"name": name, "arms": arms}
    )
    assert status == 201
    status, _, _ = await site.call(
        site.ops, "POST", f"/admin/experiments/{name}/stop", {"arm": "a"}
    )
    assert status == 200
    [stop] = await site.rows(action="stop_experiment")
    assert (stop["target_type"], stop["target_id"], stop["status"]) == ("experiment", name, 200)
    [start] = await site.rows(action="create_experiment")
    assert start["target_id"] == name

    # A retry with the same Idempotency-Key replays the answer: a row of its own, so marked.
    key, city = new_key(), {"name": random_ref("City")}
    for _ in range(2):
        resp = await site.client.post(
            "/api/v1/admin/cities", json=city, headers={**key, **site.ops.headers}
        )
        assert resp.status == 201
    first, again = await site.rows(action="create_city")
    assert first["target_id"] == again["target_id"] == str((await resp.json())["id"])
    assert (first["details"], again["details"]) == ({}, {"replayed": True})


async def test_refused_and_invalid_actions_are_recorded_with_their_outcome(site: Site) -> None:
    patch = {"address": "1 Main Street"}
    status, _, _ = await site.call(
        site.admin, "PATCH", f"/admin/theaters/{site.other_theater}", patch
    )
    assert status == 403
    status, _, _ = await site.call(site.admin, "PATCH", f"/admin/theaters/{site.theater}", patch)
    assert status == 200
    refused, done = await site.rows(action="update_theater")
    assert (refused["actor_id"], refused["actor_role"]) == (site.admin.user_id, "theater_admin")
    assert (refused["status"], refused["target_id"]) == (403, str(site.other_theater))
    assert (done["status"], done["target_id"]) == (200, str(site.theater))

    status, _, _ = await site.call(site.customer, "POST", "/admin/cities", {"name": "Nowhere"})
    assert status == 403
    [city] = await site.rows(action="create_city")
    assert (city["actor_role"], city["status"], city["target_id"]) == ("customer", 403, None)

    status, _, _ = await site.call(site.ops, "POST", "/admin/movies", {"title": ""})
    assert status == 422
    [movie] = await site.rows(action="create_movie")
    assert movie["status"] == 422 and movie["actor_id"] == site.ops.user_id

    before = len(await site.rows())
    status, _, _ = await site.call(None, "POST", "/admin/cities", {"name": "Nowhere"})
    assert status == 401  # nobody to name: no row
    status, _, _ = await site.call(site.ops, "GET", f"/admin/shows/{site.show}/queue")
    assert status in (200, 409)  # a staff read of no personal data: no row
    assert len(await site.rows()) == before


async def test_personal_data_reads_are_recorded(site: Site) -> None:
    status, me, rid = await site.call(site.customer, "GET", "/me")
    assert status == 200 and me["email"] == site.customer.email
    [row] = await site.rows(action="personal_data.me")
    assert (row["actor_id"], row["subject_id"]) == (site.customer.user_id, site.customer.user_id)
    assert (row["target_type"], row["target_id"]) == ("user", str(site.customer.user_id))
    assert (row["status"], row["request_id"], row["actor_role"]) == (200, rid, "customer")

    other = await make_account(site.pool, site.client.app[keys.CONFIG])
    async with site.pool.acquire() as conn:  # two customers' conversations with a person
        for who in (site.customer, other):
            await chat_rows.open_handoff(
                conn, "c_" + uuid.uuid4().hex, who.user_id, "requested", []
            )
    status, listed, _ = await site.call(site.ops, "GET", "/admin/chat/handoffs")
    assert status == 200 and len(listed["handoffs"]) == 2
    reads = await site.rows(action="personal_data.chat_handoffs")
    assert sorted(r["subject_id"] for r in reads) == sorted([site.customer.user_id, other.user_id])
    assert {r["actor_id"] for r in reads} == {site.ops.user_id}
    assert {json.dumps(r["details"], sort_keys=True) for r in reads} == {'{"count": 2}'}

    handoff = listed["handoffs"][0]
    status, _, _ = await site.call(
        site.ops, "POST", f"/admin/chat/handoffs/{handoff['handoff_id']}/take"
    )
    assert status == 200
    [take] = await site.rows(action="take_handoff")
    assert take["subject_id"] == handoff["user_id"]
    assert take["target_id"] == str(handoff["handoff_id"])


async def test_reads_by_a_customer_are_rows_hold_changes_are_not(engine_site: Site) -> None:
    site = engine_site
    status, hold, _ = await site.call(
        site.customer, "POST", f"/shows/{site.show}/holds", {"seats": ["C3", "C4"]}
    )
    assert status == 201
    path = f"/shows/{site.show}/holds/{hold['hold_id']}"
    assert (await site.call(site.customer, "GET", path))[0] == 200
    assert (await site.call(site.customer, "DELETE", path))[0] == 200
    assert (await site.call(site.customer, "GET", "/me/bookings"))[0] == 200
    # Reading their hold and their bookings is an access to personal data: rows under the
    # customer (issue 11). Placing and releasing the hold are not (``SEAT_HOLD_CHANGES``).
    own = await site.rows()
    assert [r["action"] for r in own] == ["personal_data.hold", "personal_data.bookings"]
    assert {(r["actor_id"], r["subject_id"]) for r in own} == {(site.customer.user_id,) * 2}
    assert own[0]["target_id"] == hold["hold_id"]
    body = {"seats": ["D5"]}
    status, _, _ = await site.call(site.admin, "POST", f"/admin/shows/{site.show}/blocks", body)
    assert status == 200
    [row] = await site.rows(action="block_seats")
    assert (row["action"], row["target_type"], row["target_id"]) == (
        "block_seats",
        "show",
        str(site.show),
    )
    assert (row["actor_id"], row["status"]) == (site.admin.user_id, 200)


async def test_nobody_can_change_the_log(pool: Any) -> None:
    async with pool.acquire() as conn:
        owner = await conn.fetchval(
            "SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'audit_log' "
            "AND schemaname = current_schema()"
        )
        assert owner  # the tests' user owns the table (a superuser, even): still refused
        first = await store.record(conn, store.AuditEntry("create_city", 1, "admin", status=201))
        await store.record_many(
            conn, [store.AuditEntry("create_show", 2, "theater_admin", details={"count": 3})] * 2
        )
        for sql in (
            "UPDATE audit_log SET status = 200",
            "DELETE FROM audit_log WHERE id = $1",
            "DELETE FROM audit_log WHERE false",  # no row touched: refused all the same
            "TRUNCATE audit_log",
        ):
            with pytest.raises(asyncpg.RaiseError, match="audit_log is append-only"):
                await conn.execute(sql, *([first] if "$1" in sql else []))
        await conn.execute("SET session_replication_role = replica")
        with pytest.raises(asyncpg.RaiseError, match="append-only: DELETE"):
            await conn.execute("DELETE FROM audit_log")
        await conn.execute("RESET session_replication_role")
        rows = await conn.fetch("SELECT id, at, status FROM audit_log ORDER BY id")
        assert [r["status"] for r in rows] == [201, None, None]
        # Dated by Postgres: a back-dated row gets the time it was written.
        await conn.execute(
            "INSERT INTO audit_log (actor_role, action, at) VALUES ('system', 'x', '2001-01-01')"
        )
        dated = await conn.fetchval("SELECT at FROM audit_log WHERE action = 'x'")
        assert dated > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        # Details take ids and counts only, here and in Postgres.
        for details in ({"email": "ann@example.com"}, {"note": "Ann Smith"}, {"x": {"y": 1}}):
            with pytest.raises(ValueError):
                await store.record(conn, store.AuditEntry("x", details=details))
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    "INSERT INTO audit_log (actor_role, action, details) "
                    "VALUES ('system', 'x', $1::jsonb)",
                    details,
                )
        public = await conn.fetchval(
            "SELECT has_table_privilege('public', 'audit_log', 'DELETE') "
            "OR has_table_privilege('public', 'audit_log', 'UPDATE')"
        )
        assert public is False


async def test_reading_the_log_is_for_ops_only(site: Site) -> None:
    status, body, _ = await site.call(None, "GET", "/admin/audit")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    for who in (site.admin, site.customer):
        status, body, _ = await site.call(who, "GET", "/admin/audit")
        assert status == 403 and body["error"]["code"] == "forbidden"
    refused = await site.rows(action="audit_log.read")
    assert sorted(r["actor_role"] for r in refused) == ["customer", "theater_admin"]
    assert {r["status"] for r in refused} == {403}


async def _seed(pool: Any) -> list[int]:
    """Eleven rows: actors 101/102, subjects 201/none, two actions, three targets."""
    ids = []
    async with pool.acquire() as conn:
        for n in range(11):
            entry = store.AuditEntry(
                "create_show" if n % 2 else "personal_data.me",
                actor_id=101 + n % 2,
                actor_role="admin",
                subject_id=201 if n % 3 == 0 else None,
                target_type="show",
                target_id=str(n % 3),
                status=200,
            )
            ids.append(await store.record(conn, entry))
    return ids


async def _pages(site: Site, query: str, limit: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = ""
    for _ in range(50):
        status, page, _ = await site.call(
            site.ops, "GET", f"/admin/audit?{query}&limit={limit}{after}"
        )
        assert status == 200, page
        assert len(page["entries"]) <= limit
        entries += page["entries"]
        if page["next"] is None:
            return entries
        after = f"&after={page['next']}"
    raise AssertionError("the pages never ended")


async def test_filters_and_pages(site: Site) -> None:
    ids = await _seed(site.pool)
    rows = {r["id"]: r for r in await site.rows()}

    def expect(keep: Any) -> list[int]:
        return sorted((i for i in ids if keep(rows[i])), reverse=True)

    got = await _pages(site, "actor_id=101", 2)
    assert [e["id"] for e in got] == expect(lambda r: r["actor_id"] == 101)
    assert got[0]["route"] is None and got[0]["actor_role"] == "admin"
    got = await _pages(site, "subject_id=201&action=create_show", 3)
    assert [e["id"] for e in got] == expect(
        lambda r: r["subject_id"] == 201 and r["action"] == "create_show"
    )
    got = await _pages(site, "target_type=show&target_id=2", 1)
    assert [e["id"] for e in got] == expect(lambda r: r["target_id"] == "2")
    # A time range: from the fifth row's instant to the ninth's (Postgres dates them).
    start, end = rows[ids[4]]["at"], rows[ids[8]]["at"]
    span = f"from={start.isoformat()}&to={end.isoformat()}".replace("+", "%2B")
    got = await _pages(site, span + "&action=create_show", 2)
    assert [e["id"] for e in got] == expect(
        lambda r: start <= r["at"] < end and r["action"] == "create_show"
    )
    assert got  # the range is not empty
    # Every read above was recorded, with its filters.
    reads = await site.rows(action="audit_log.read", actor_id=site.ops.user_id)
    assert len(reads) >= 4 and {r["status"] for r in reads} == {200}
    assert reads[0]["details"]["filter_actor_id"] == 101
    assert reads[0]["details"]["count"] == 2
    assert any(r["details"].get("after") for r in reads)
    got = await _pages(site, "action=audit_log.read", 100)
    assert {e["actor_id"] for e in got} == {site.ops.user_id}


@pytest.mark.parametrize(
    "query",
    [
        "action=Create%20Show",
        "action=a@b",
        "target_id=5",
        "target_type=Show&target_id=5",
        "actor_id=abc",
        "actor_id=0",
        "subject_id=-1",
        "after=0",
        "limit=0",
        f"limit={store.MAX_PAGE + 1}",
        "from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z",
        "from=yesterday",
        "email=someone@example.com",
    ],
)
async def test_bad_filters_are_422(site: Site, query: str) -> None:
    status, body, _ = await site.call(site.ops, "GET", f"/admin/audit?{query}")
    assert status == 422 and body["error"]["code"] == "validation_failed", body
    assert body["error"]["details"]["errors"], body


async def test_rows_never_hold_personal_data(site: Site) -> None:
    ref = uuid.uuid4().hex[:8]
    email = f"quintessa.{ref}@example.org"
    name = f"Quintessa Marlowe {ref}"
    phone = "+1555" + str(int(ref, 16) % 10**7).zfill(7)
    secret = f"my locker code is {ref}"
    status, registered, _ = await site.call(
        None,
        "POST",
        "/auth/register",
        {"email": email, "password": "a long password 123", "display_name": name},
    )
    assert status == 201
    user_id = registered["user"]["id"]
    keyring = site.client.app[keys.KEYRING]
    async with site.pool.acquire() as conn:
        await storage.set_phone(conn, user_id, phone, keyring=keyring)
        handoff = await chat_rows.open_handoff(
            conn, "c_" + ref, user_id, "requested", [{"role": "user", "content": secret}]
        )
    token = registered["access_token"]
    person = Account(user_id, email, "customer", token)
    assert (await site.call(person, "GET", "/me"))[0] == 200
    steps = [
        ("GET", "/admin/chat/handoffs", None),
        ("POST", f"/admin/chat/handoffs/{handoff.id}/take", None),
        ("POST", f"/admin/chat/handoffs/{handoff.id}/answer", {"text": f"Hello {name}"}),
        ("POST", f"/admin/theaters/{site.theater}/admins", {"user_id": user_id}),
        ("GET", f"/admin/audit?subject_id={user_id}", None),
    ]
    for method, path, body in steps:
        status, answer, _ = await site.call(site.ops, method, path, body)
        assert status in (200, 204), answer
    async with site.pool.acquire() as conn:
        dump = [r[0] for r in await conn.fetch("SELECT row_to_json(a)::text FROM audit_log a")]
    assert len(dump) >= 6
    subjects = {json.loads(d)["subject_id"] for d in dump}
    assert user_id in subjects
    text = "\n".join(dump).lower()
    for personal in (email, email.split("@")[0], name, "quintessa", "marlowe", phone, secret):
        assert personal.lower() not in text, personal


async def test_a_row_that_cannot_be_written_refuses_the_read_not_the_action(
    site: Site,
) -> None:
    def failed() -> float:
        found = REGISTRY.get_sample_value("seatserver_audit_rows_total", {"outcome": "failed"})
        return found or 0.0

    before = failed()
    async with site.pool.acquire() as conn:  # Postgres refuses every new row from now on: no
        # id is left (the table cannot be altered, not even by its owner: test_audit_guard)
        ids = await conn.fetchval("SELECT pg_get_serial_sequence('audit_log', 'id')")
        kept = await conn.fetchrow(f"SELECT last_value, is_called FROM {ids}")
        await conn.execute("SELECT setval($1::regclass, 9223372036854775807)", ids)
    status, body, _ = await site.call(site.customer, "GET", "/me")
    assert status == 503 and body["error"]["code"] == "audit_unavailable"
    assert "email" not in json.dumps(body)
    status, created, _ = await site.call(site.ops, "POST", "/admin/cities", {"name": "Lostville"})
    assert status == 201  # it took effect: the answer says so
    async with site.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM cities WHERE id = $1", created["id"]) == 1
        await conn.execute("SELECT setval($1::regclass, $2, $3)", ids, *kept)
    assert failed() == before + 2
    assert (await site.call(site.customer, "GET", "/me"))[0] == 200


# A customer's own changes to a seat hold are not audited: they run on the seat engine's hot
# path, answered before anything reaches Postgres (DESIGN rule 5), and the hold's own rows
# (``holds``, written behind) say whose, what and when. Reading a hold is audited.
SEAT_HOLD_CHANGES = {"create_hold", "release_hold", "extend_hold"}


def test_every_endpoint_answering_personal_data_is_audited() -> None:
    """Every endpoint whose answer may carry personal data is recorded, whatever its auth (a
    public one names its caller once known: register, login, refresh): the account's fields,
    purchases, messages, devices and settings, by field name and by schema
    (``test_audit_coverage.personal_parts``); so is every staff call that changes something."""
    from tests.integration.test_audit_coverage import personal_parts

    unaudited = []
    for e in ENDPOINTS:
        models = [m for m in (e.response, *e.extra_responses.values()) if m is not None]
        personal = set().union(*(personal_parts(m) for m in models))
        mutating = e.method in MUTATING
        action = recording.action_of(e, mutating=mutating)
        if personal and action is None and e.name not in SEAT_HOLD_CHANGES:
            unaudited.append((e.method, e.path, sorted(personal)))
        if mutating and e.needs_user and set(e.auth) <= {"admin", "theater_admin"}:
            assert action == (e.audit or e.name), (e.method, e.path)
    assert unaudited == []
