"""Keys of personal data on real Postgres: a rotation re-seals every account under the new key
(ciphertexts and blind indexes change, look-ups by email in any case still work, during and
after it, and a ring of the new key alone opens everything); an email is not registered twice
while rows sit under both keys; rows written before sealing began are sealed at start."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import storage
from gateway.app import create_app
from seatserver import bootstrap, keycmds
from tests.gateway_support import PASSWORD
from tests.integration.shows import Engine

OLD_KEY, NEW_KEY = storage.new_key(), storage.new_key()
OLD = storage.Keyring.parse(f"old:{OLD_KEY}")
ROTATING = storage.Keyring.parse(f"new:{NEW_KEY},old:{OLD_KEY}")  # the new key first
NEW_ONLY = storage.Keyring.parse(f"new:{NEW_KEY}")
EMAIL, PHONE = "users.email", "users.phone"


async def _users(pool: Any, count: int) -> list[tuple[int, str, str]]:
    """Accounts sealed under the old key, each with a phone: (id, email, phone)."""
    made = []
    async with pool.acquire() as conn:
        for n in range(count):
            email = f"Rot.{n}.{uuid.uuid4().hex[:6]}@Example.com"
            phone = f"+1415555{n:04d}"
            user = await storage.create_user(conn, email, "hash", keyring=OLD)
            await storage.set_phone(conn, user.id, phone, keyring=OLD)
            made.append((user.id, email, phone))
    return made


async def _sealed(pool: Any) -> dict[int, Any]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, email_enc, email_index, phone_enc, pii_key, email_plain FROM users"
        )
    return {r["id"]: r for r in rows}


async def test_a_rotation_reseals_every_account_and_lookups_go_on(
    pool: Any, database_url: str, schema: str
) -> None:
    users = await _users(pool, 7)
    before = await _sealed(pool)
    async with pool.acquire() as conn:
        # During the rotation: both keys in the ring, every row still under the old one.
        for _, email, _ in users:
            found = await storage.find_user_by_email(conn, email.lower(), keyring=ROTATING)
            assert found is not None and found.email == email
        with pytest.raises(storage.AlreadyExists):
            await storage.create_user(conn, users[0][1].upper(), "hash", keyring=ROTATING)
        assert await storage.unsealed_users(conn, keyring=ROTATING) == 7

    assert await keycmds.rotate(database_url, schema, ROTATING, batch=3) == 7
    after = await _sealed(pool)
    for user_id, email, phone in users:
        old, new = before[user_id], after[user_id]
        assert new["pii_key"] == "new"
        assert ROTATING.key_of(new["email_enc"]) == ROTATING.key_of(new["phone_enc"]) == "new"
        assert new["email_enc"] != old["email_enc"] and new["phone_enc"] != old["phone_enc"]
        assert new["email_index"] != old["email_index"]
        assert NEW_ONLY.decrypt(new["email_enc"], field=EMAIL) == email
        assert NEW_ONLY.decrypt(new["phone_enc"], field=PHONE) == phone
    async with pool.acquire() as conn:
        assert await storage.unsealed_users(conn, keyring=ROTATING) == 0
        assert await storage.reseal_users(conn, keyring=ROTATING) == 0  # nothing left to do
        for user_id, email, phone in users:  # the old key may leave the ring now
            found = await storage.find_user_by_email(conn, email.swapcase(), keyring=NEW_ONLY)
            assert found is not None and found.id == user_id
            user = await storage.get_user(conn, user_id, keyring=NEW_ONLY)
            assert (user.email, user.phone) == (email, phone)
        with pytest.raises(storage.AlreadyExists):
            await storage.create_user(conn, users[1][1].lower(), "hash", keyring=NEW_ONLY)


@pytest.fixture
async def rotating_client(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    app = create_app(dataclasses.replace(config, keyring=ROTATING), engine=engine.client)
    yield await aiohttp_client(app)
    names = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if names:
        await redis.delete(*names)


async def test_logins_and_registrations_while_the_keys_rotate(
    rotating_client: Any, config: Any, pool: Any, database_url: str, schema: str
) -> None:
    client = rotating_client
    email = f"Dana.{uuid.uuid4().hex[:6]}@Example.com"
    async with pool.acquire() as conn:
        hashed = await _hash(config)
        await storage.create_user(conn, email, hashed, keyring=OLD)

    async def login(address: str) -> int:
        resp = await client.post(
            "/api/v1/auth/login", json={"email": address, "password": PASSWORD}
        )
        return resp.status

    assert await login(email.upper()) == 200  # a row under the old key
    resp = await client.post(
        "/api/v1/auth/register", json={"email": email.lower(), "password": PASSWORD}
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_exists"
    await keycmds.rotate(database_url, schema, ROTATING, batch=10)
    assert await login(email.lower()) == 200  # now under the new key
    assert await login("nobody-" + email) == 401


async def _hash(config: Any) -> str:
    from gateway.auth import Auth

    return await Auth(config, None, None).hash_password(PASSWORD)


async def test_plain_rows_of_an_older_version_are_sealed_at_start(
    pool: Any, database_url: str, schema: str
) -> None:
    emails = [f"Legacy.{n}.{uuid.uuid4().hex[:6]}@Example.com" for n in range(3)]
    async with pool.acquire() as conn:
        for email in emails:  # as the 0013 schema wrote them, before sealing began
            await conn.execute(
                "INSERT INTO users (email_plain, password_hash) VALUES ($1, 'hash')", email
            )
        assert await storage.find_user_by_email(conn, emails[0], keyring=OLD) is None
    await bootstrap.prepare_database(
        database_url, schema, months_ahead=1, today=dt.date.today(), keyring=OLD
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT email_plain, email_enc, pii_key FROM users")
        assert [r["email_plain"] for r in rows] == [None] * 3
        assert {r["pii_key"] for r in rows} == {"old"}
        for email in emails:
            found = await storage.find_user_by_email(conn, email.lower(), keyring=OLD)
            assert found is not None and found.email == email
