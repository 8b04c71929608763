"""Privacy on real Postgres, Redis, Ray and localstripe: the export holds every registry table's
rows about the customer and nothing of anyone else; the registry knows every table that refers
to a user; deletion is refused while something is in progress, and afterwards the customer
cannot log in, no personal field is left in any table or in Redis, the theater's figures are
unchanged, and the email can register again."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway import keys
from gateway.ops import analytics as ops_analytics
from gateway.ratelimit import bucket_digest
from storage import analytics, privacy
from tests.gateway_support import PASSWORD
from tests.integration import privacy_support as support
from tests.integration.privacy_support import Customer, Shop
from tests.payments_support import running_localstripe

pytestmark = pytest.mark.slow

ROLLUP = next(j for j in ops_analytics.JOBS if j.name == "analytics.rollup")

# What a test expects of each export section, written apart from the registry: the rows about
# the user, and the columns an export must leave out.
DIRECT: dict[str, str] = {
    "refresh_tokens": "SELECT * FROM refresh_tokens WHERE user_id = $1",
    "idempotency_keys": "SELECT * FROM idempotency_keys WHERE user_id = $1",
    "notification_prefs": "SELECT * FROM notification_prefs WHERE user_id = $1",
    "push_devices": "SELECT * FROM push_devices WHERE user_id = $1",
    "theater_admins": "SELECT * FROM theater_admins WHERE user_id = $1",
    "holds": "SELECT * FROM holds WHERE user_id = $1",
    "bookings": "SELECT * FROM bookings WHERE user_id = $1",
    "booking_seats": "SELECT s.* FROM booking_seats s JOIN bookings b "
    "ON b.booking_id = s.booking_id AND b.show_date = s.show_date WHERE b.user_id = $1",
    "payments": "SELECT * FROM payments WHERE user_id = $1",
    "refunds": "SELECT r.* FROM refunds r JOIN payments p ON p.payment_id = r.payment_id "
    "WHERE p.user_id = $1",
    "payment_steps": "SELECT s.* FROM payment_steps s JOIN payments p "
    "ON p.payment_id = s.payment_id WHERE p.user_id = $1",
    "fraud_decisions": "SELECT * FROM fraud_decisions WHERE user_id = $1",
    "fraud_labels": "SELECT l.* FROM fraud_labels l JOIN fraud_decisions d "
    "ON d.id = l.decision_id WHERE d.user_id = $1",
    "fraud_labels_given": "SELECT decision_id, is_fraud, labelled_at FROM fraud_labels "
    "WHERE analyst_id = $1",
    "outbox": "SELECT * FROM outbox WHERE payload ->> 'user_id' = $1::bigint::text",
    "notification_deliveries": "SELECT * FROM notification_deliveries WHERE user_id = $1",
    "experiment_exposures": "SELECT * FROM experiment_exposures WHERE user_id = $1",
    "rec_impressions": "SELECT * FROM rec_impressions WHERE user_id = $1",
    "chat_usage": "SELECT * FROM chat_usage WHERE user_id = $1",
    "chat_handoffs": "SELECT * FROM chat_handoffs WHERE user_id = $1",
    "chat_handoffs_taken": "SELECT id, status, taken_at, answered_at, closed_at "
    "FROM chat_handoffs WHERE taken_by = $1",
    "audit_log": "SELECT * FROM audit_log WHERE actor_id = $1 AND at < $2",
    "audit_log_about_me": "SELECT id, at, actor_role, action, target_type, target_id, status "
    "FROM audit_log WHERE subject_id = $1 AND actor_id IS DISTINCT FROM $1 AND at < $2",
    "flash_sales": "SELECT * FROM flash_sales WHERE updated_by = $1",
    "experiments": "SELECT * FROM experiments WHERE stopped_by = $1",
    "alerts": "SELECT * FROM alerts WHERE acked_by = $1",
}
LEFT_OUT = {
    "refresh_tokens": {"token_hash"},
    "payments": {"client_secret"},
    "fraud_labels": {"analyst_id", "note"},
    "chat_handoffs": {"taken_by"},
}


@pytest.fixture(scope="module")
async def localstripe() -> AsyncIterator[Any]:
    async with running_localstripe() as stripe:
        yield stripe


@pytest.fixture
async def shop(
    aiohttp_client: Any,
    ray_session: None,
    database_url: str,
    schema: str,
    redis_url: str,
    localstripe: Any,
) -> AsyncIterator[Shop]:
    async for made in support.open_shop(
        aiohttp_client, database_url, schema, redis_url, localstripe
    ):
        yield made


async def _people(shop: Shop) -> tuple[Customer, Customer, Any, int]:
    """Alice and Bob with data everywhere (Bob's chat taken and his fraud check labelled by
    Alice, who also runs a theater), an ops admin who read both their fraud checks."""
    ops = await support.staff(shop)
    show, queue_show = await support.shows(shop, ops)
    alice = await support.register(shop, "Alice")
    bob = await support.register(shop, "Bob")
    await support.everything(shop, alice, show, queue_show, ["C1", "C2"], ops.user_id, "a")
    await support.everything(shop, bob, show, queue_show, ["D1", "D2"], alice.user_id, "b")
    await support.staff_actions(shop, alice, show)
    status, _ = await shop.call("GET", "/api/v1/admin/fraud/decisions", ops.token)
    assert status == 200
    return alice, bob, ops, show


async def _export(shop: Shop, who: Customer) -> dict[str, Any]:
    async with shop.client.get("/api/v1/me/export", headers=_auth(who)) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Disposition"].startswith("attachment; filename=")
        return dict(json.loads(await resp.read()))


def _auth(who: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


def _digest(secret: str, email: str) -> str:
    """How a login bucket names an email: keyed, so a list of emails cannot be matched."""
    return bucket_digest(secret, email.strip().lower())


def _canon(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


async def test_the_export_holds_every_row_about_the_customer_and_nothing_of_others(
    shop: Shop,
) -> None:
    alice, bob, _, _ = await _people(shop)
    exported = await _export(shop, alice)
    generated = dt.datetime.fromisoformat(exported["generated_at"])

    assert exported["account"]["email"] == alice.email
    assert exported["account"]["phone"] == alice.phone
    assert exported["account"]["display_name"] == alice.display_name
    assert "password_hash" not in exported["account"]
    tables = exported["tables"]
    assert set(tables) == set(DIRECT) == {r.name for r in privacy.REGISTRY}
    for section, sql in DIRECT.items():
        args = (alice.user_id, generated) if "$2" in sql else (alice.user_id,)
        direct = [
            {k: privacy.plain(v) for k, v in row.items() if k not in LEFT_OUT.get(section, ())}
            for row in await shop.fetch(sql, *args)
        ]
        assert direct, f"the test left {section} empty"
        assert _canon(tables[section]) == _canon(direct), section

    held = exported["redis"]
    assert [c["messages"][0]["content"] for c in held["conversations"]] == [alice.chat_text]
    assert len(held["queue_places"]) == 1 and held["queue_places"][0]["number"] is not None
    assert held["idempotent_answers"] and held["risk_signals"]["holds:account"]

    text = json.dumps(exported).lower()
    for value in bob.personal() + bob.bookings + bob.holds:
        assert value.lower() not in text, value
    assert alice.chat_text.lower() in text and alice.push_token.lower() in text
    owners = {"user_id", "updated_by", "stopped_by", "acked_by", "actor_id", "subject_id"}
    for section, rows in tables.items():
        for row in rows:
            for column in owners & set(row):
                assert row[column] == alice.user_id, (section, column, row)


async def test_the_registry_knows_every_table_that_refers_to_a_user(shop: Shop) -> None:
    async with shop.pool.acquire() as conn:
        assert await privacy.unregistered_columns(conn) == []
        await conn.execute(
            "CREATE TABLE wishlists (id bigint PRIMARY KEY, "
            "who bigint REFERENCES users (id), note text)"
        )
        await conn.execute("CREATE TABLE sessions_x (owner bigint, device_token text)")
        await conn.execute("ALTER TABLE holds ADD COLUMN reviewed_by bigint")
        assert await privacy.unregistered_columns(conn) == [
            ("holds", "reviewed_by"),
            ("sessions_x", "device_token"),
            ("sessions_x", "owner"),
            ("wishlists", "who"),
        ]


async def _figures(shop: Shop, ops: Any, show: int) -> dict[str, Any]:
    async with shop.pool.acquire() as conn:
        theater = await conn.fetchval(
            "SELECT sc.theater_id FROM shows s JOIN screens sc ON sc.id = s.screen_id "
            "WHERE s.id = $1",
            show,
        )
        await conn.execute("INSERT INTO show_stats_dirty (show_id) SELECT id FROM shows")
    for _ in range(100):  # recompute every show from its rows
        await ROLLUP.run(shop.app)
        async with shop.pool.acquire() as conn:
            if await analytics.pending(conn) == 0:
                break
    today = dt.date.today()
    query = {
        "by": "theater",
        "from": str(today - dt.timedelta(days=3)),
        "to": str(today + dt.timedelta(days=3)),
        "theater_id": str(theater),
    }
    async with shop.client.get(
        "/api/v1/admin/analytics/figures",
        params=query,
        headers={"Authorization": f"Bearer {ops.token}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def _everything_as_text(shop: Shop) -> str:
    tables = await shop.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p') AND NOT relispartition"
    )
    dumped = []
    for table in tables:
        rows = await shop.fetch(f'SELECT t::text AS row FROM "{table["relname"]}" t')
        dumped += [r["row"] for r in rows]
    return "\n".join(dumped).lower()


async def _redis_as_text(shop: Shop) -> tuple[list[str], str]:
    redis, found, values = shop.redis, [], []
    async for raw in redis.scan_iter(match=shop.config.redis_prefix + "*"):
        key = raw.decode()
        found.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values.append(await redis.get(key))
        elif kind == "hash":
            values += [k + b"=" + v for k, v in (await redis.hgetall(key)).items()]
        elif kind == "zset":
            values += await redis.zrange(key, 0, -1)
        elif kind == "set":
            values += list(await redis.smembers(key))
        elif kind == "list":
            values += await redis.lrange(key, 0, -1)
    return found, b"\n".join(values).decode(errors="replace").lower()


async def test_deletion_erases_the_customer_and_keeps_the_figures(shop: Shop) -> None:
    alice, bob, ops, show = await _people(shop)
    path = "/api/v1/me"
    status, body = await shop.call("DELETE", path, alice.token, {"password": "not it at all"})
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")

    status, body = await shop.call("DELETE", path, alice.token, {"password": PASSWORD})
    assert (status, body["error"]["code"]) == (409, "deletion_blocked"), body
    assert body["error"]["details"]["bookings"] == alice.bookings[1:]
    # The show takes place: nothing of Alice's is in progress any more.
    await shop.execute(
        "UPDATE shows SET starts_at = now() - interval '3 hours', "
        "busy_until = now() - interval '1 hour' WHERE id = $1",
        show,
    )
    sealed = (
        await shop.fetch(
            "SELECT encode(email_enc, 'hex') AS e, encode(phone_enc, 'hex') AS p, "
            "encode(email_index, 'hex') AS i FROM users WHERE id = $1",
            alice.user_id,
        )
    )[0]
    before = await _figures(shop, ops, show)
    assert before["totals"]["bookings"] >= 2  # both customers' live bookings count

    status, body = await shop.call("DELETE", path, alice.token, {"password": PASSWORD})
    assert status == 204, body
    names, values = await _redis_as_text(shop)  # before anything below touches Redis

    # Nothing answers for her any more.
    login = {"email": alice.email, "password": PASSWORD}
    status, body = await shop.call("POST", "/api/v1/auth/login", body=login)
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")
    status, body = await shop.call(
        "POST", "/api/v1/auth/refresh", body={"refresh_token": alice.refresh_token}
    )
    assert status == 401
    assert (await shop.call("GET", "/api/v1/me", alice.token))[0] == 401
    assert (await shop.call("GET", "/api/v1/me/export", alice.token))[0] == 401
    # Her access token is refused everywhere, not only where the account is read.
    status, body = await shop.call(
        "POST", f"/api/v1/shows/{show}/holds", alice.token, {"seats": ["A1"]}
    )
    assert (status, body["error"]["code"]) == (401, "token_revoked")

    # No personal field of hers in any table; Bob's untouched.
    text = await _everything_as_text(shop)
    for value in [*alice.personal(), sealed["e"], sealed["p"], sealed["i"]]:
        assert value.lower() not in text, value
    for value in bob.personal()[1:]:  # his email is sealed
        assert value.lower() in text, value
    (row,) = await shop.fetch("SELECT * FROM users WHERE id = $1", alice.user_id)
    assert row["deleted_at"] is not None and row["display_name"] == ""
    kept = await shop.fetch(
        "SELECT status FROM bookings WHERE user_id = $1 ORDER BY confirmed_at", alice.user_id
    )
    assert [r["status"] for r in kept] == ["cancelled", "confirmed"]
    assert await shop.fetch("SELECT 1 FROM refresh_tokens WHERE user_id = $1", alice.user_id) == []

    # The theater's figures, recomputed from the rows, are what they were.
    after = await _figures(shop, ops, show)
    assert after == before

    # Redis held nothing of hers.
    for value in alice.personal():
        assert value.lower() not in values, value
    assert bob.chat_text.lower() in values
    # Only the deny entry of her tokens, an id, until they would have expired anyway.
    mine = [n for n in names if n.endswith(f":{alice.user_id}")]
    assert mine == [f"{shop.config.redis_prefix}denied:user:{alice.user_id}"], names
    room = [n for n in names if n.endswith(":q")]
    for name in room:
        assert await shop.redis.zscore(name, alice.user_id) is None
    # Her login bucket (keyed by her email's digest) is gone, Bob's stays; no device or
    # address set names her any more.
    buckets = [n for n in names if ":rl:login:account:" in n]
    secret = shop.config.jwt_secret
    assert [n for n in buckets if n.endswith(_digest(secret, alice.email))] == []
    assert [n for n in buckets if n.endswith(_digest(secret, bob.email))] != []
    unkeyed = hashlib.sha256(bob.email.lower().encode()).hexdigest()[:32]
    assert not [n for n in names if unkeyed in n]
    for name in [n for n in names if ":risk:accounts:" in n]:
        assert str(alice.user_id).encode() not in await shop.redis.zrange(name, 0, -1)

    # The email is free: a new account, with nothing of the old one.
    status, body = await shop.call(
        "POST",
        "/api/v1/auth/register",
        body={"email": alice.email.upper(), "password": PASSWORD + "!"},
    )
    assert status == 201 and body["user"]["id"] != alice.user_id
    status, again = await shop.call("GET", "/api/v1/me/export", body["access_token"])
    assert status == 200 and again["tables"]["bookings"] == []


async def test_deletion_waits_for_live_holds_and_refuses_ops_accounts(shop: Shop) -> None:
    ops = await support.staff(shop)
    show, _ = await support.shows(shop, ops)
    carol = await support.register(shop, "Carol")
    status, hold = await shop.call(
        "POST", f"/api/v1/shows/{show}/holds", carol.token, {"seats": ["E5"]}
    )
    assert status == 201
    for _ in range(100):  # holds reach Postgres with the next write-behind flush
        if await shop.fetch("SELECT 1 FROM holds WHERE hold_id = $1", hold["hold_id"]):
            break
        await asyncio.sleep(0.05)
    status, body = await shop.call("DELETE", "/api/v1/me", carol.token, {"password": PASSWORD})
    assert status == 409 and body["error"]["details"]["holds"] == [hold["hold_id"]]
    path = f"/api/v1/shows/{show}/holds/{hold['hold_id']}"
    assert (await shop.call("DELETE", path, carol.token))[0] == 200
    for _ in range(100):
        rows = await shop.fetch("SELECT status FROM holds WHERE hold_id = $1", hold["hold_id"])
        if rows[0]["status"] != "live":
            break
        await asyncio.sleep(0.05)
    status, _ = await shop.call("DELETE", "/api/v1/me", carol.token, {"password": PASSWORD})
    assert status == 204
    status, body = await shop.call("DELETE", "/api/v1/me", ops.token, {"password": PASSWORD})
    assert (status, body["error"]["code"]) == (409, "staff_account")


async def test_a_deleted_accounts_tokens_are_denied_whatever_redis_does(shop: Shop) -> None:
    """After the commit the account's access tokens are denied in this process first, then
    through Redis: a failure to clear its data in Redis leaves the deny in place everywhere,
    and Redis gone altogether still leaves it denied here, logged and noted in the audit row,
    and shared with every gateway once Redis is back."""
    prefix = shop.config.redis_prefix
    # Clearing fails: a key where a set of accounts belongs holds a string (WRONGTYPE).
    dave = await support.register(shop, "Dave")
    broken = f"{prefix}risk:accounts:device:broken"
    await shop.redis.set(broken, "not a set")
    status, body = await shop.call("DELETE", "/api/v1/me", dave.token, {"password": PASSWORD})
    assert status == 204, body
    await shop.redis.delete(broken)
    assert await shop.redis.exists(f"{prefix}denied:user:{dave.user_id}") == 1  # every gateway
    status, body = await shop.call("GET", "/api/v1/me/genres", dave.token)
    assert (status, body["error"]["code"]) == (401, "token_revoked")
    assert (await _deletion_row(shop, dave))["details"]["redis_forgotten"] is False

    # Redis unreachable from the moment the deletion commits: denied here all the same.
    erin = await support.register(shop, "Erin")
    redis_pool = shop.app[keys.REDIS].connection_pool
    async with shop.pool.acquire() as lock, lock.transaction():
        await lock.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", erin.user_id)
        deleting = asyncio.create_task(
            shop.call("DELETE", "/api/v1/me", erin.token, {"password": PASSWORD})
        )
        await _until_blocked(shop, await lock.fetchval("SELECT pg_backend_pid()"))
        reachable = await _point_at_nothing(redis_pool)
    try:
        status, body = await deleting  # the lock went with the commit above
    finally:
        await _point_at(redis_pool, reachable)
    assert status == 204, body  # the account is gone: that is the answer
    status, body = await shop.call("GET", "/api/v1/me/genres", erin.token)
    assert (status, body["error"]["code"]) == (401, "token_revoked")
    details = (await _deletion_row(shop, erin))["details"]
    assert details["deny_shared"] is False and details["redis_forgotten"] is False
    # Redis back: the gateway shares the deny by itself, within a round or two.
    denied = f"{prefix}denied:user:{erin.user_id}"
    for _ in range(100):
        if await shop.redis.exists(denied):
            break
        await asyncio.sleep(0.05)
    assert await shop.redis.exists(denied) == 1
    assert 0 < await shop.redis.ttl(denied) <= shop.config.access_token_ttl_s


async def _deletion_row(shop: Shop, who: Customer) -> Any:
    [row] = await shop.fetch(
        "SELECT * FROM audit_log WHERE action = 'account.delete' AND subject_id = $1 "
        "AND status = 204",
        who.user_id,
    )
    return row


async def _until_blocked(shop: Shop, holder: int) -> None:
    """Wait until a session waits on a lock that backend ``holder`` holds."""
    for _ in range(200):
        waiting = await shop.fetch(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the deletion never reached the account's row lock")


async def _point_at_nothing(pool: Any) -> dict[str, Any]:
    """Point the gateway's Redis connections at a closed port (or a missing socket) and drop
    the open ones; returns where they pointed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    kwargs = pool.connection_kwargs
    where = {k: kwargs[k] for k in ("host", "port", "path") if k in kwargs}
    nowhere = {"path": "/nonexistent/redis.sock"} if "path" in where else {"port": closed_port}
    await _point_at(pool, nowhere)
    return where


async def _point_at(pool: Any, where: dict[str, Any]) -> None:
    pool.connection_kwargs.update(where)
    # The pool's live connections keep their own address: redis-py has no public way to
    # re-point them, so each is told, then dropped (it reconnects there on its next use).
    for connection in [*pool._available_connections, *pool._in_use_connections]:
        for name, value in where.items():
            setattr(connection, name, value)
    await pool.disconnect()
