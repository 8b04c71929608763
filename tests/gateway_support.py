"""The gateway on real Postgres, Redis and Ray for tests: its config, an engine, accounts of
each role, and a client that speaks the API."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import storage
from gateway.auth import Auth
from gateway.config import GatewayConfig
from gateway.models import ModelsConfig
from tests.conftest import TEST_KEYRING, random_ref

PASSWORD = "correct horse battery"


def gateway_config(
    database_url: str, schema: str, redis_url: str, **overrides: Any
) -> GatewayConfig:
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_schema": schema,
        "redis_url": redis_url,
        "redis_prefix": random_ref("t") + ":",
        "jwt_secret": "test-secret-" + uuid.uuid4().hex,
        "keyring": TEST_KEYRING,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "db_pool_min": 1,
        "db_pool_max": 4,
        # No models, and no fraud check: tests check out at machine speed, from one address;
        # the fraud check's own tests turn it on.
        "models": ModelsConfig(enabled=False, fraud_check=False),
    }
    values.update(overrides)
    return GatewayConfig(**values)


@dataclass
class Account:
    user_id: int
    email: str
    role: str
    token: str
    theaters: list[int] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_account(
    pool: Any, config: GatewayConfig, role: str = "customer", theaters: tuple[int, ...] = ()
) -> Account:
    """A user of ``role`` created straight in Postgres, with a valid access token."""
    auth = Auth(config, pool, None)
    email = f"{random_ref(role)}@example.com"
    async with pool.acquire() as conn:
        user = await storage.create_user(
            conn,
            email,
            await auth.hash_password(PASSWORD),
            keyring=config.keyring,
            role=role,
            display_name=role,
        )
        for theater in theaters:
            await storage.grant_theater(conn, user.id, theater)
    return Account(user.id, email, role, auth.access_token(user), list(theaters))


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def tomorrow() -> str:
    return (dt.date.today() + dt.timedelta(days=1)).isoformat()


async def drop_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete every Redis key a test wrote under ``prefix``."""
    redis = await storage.create_redis(redis_url)
    try:
        names = [key async for key in redis.scan_iter(match=prefix + "*")]
        if names:
            await redis.delete(*names)
    finally:
        await redis.aclose()


async def leftovers(database_url: str, redis_url: str, run: str) -> tuple[list[str], int]:
    """The schemas and Redis keys a benchmark run left behind (their names start with
    ``run``)."""
    conn = await storage.connect(database_url)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", run + "%")
    finally:
        await conn.close()
    redis = await storage.create_redis(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=run + "*")]
    finally:
        await redis.aclose()
    return [r["nspname"] for r in rows], len(keys)
