"""Session-wide services for the tests: Postgres, Redis (and, in integration tests, Ray).

Postgres and Redis come from SEATSERVER_TEST_DATABASE_URL / SEATSERVER_TEST_REDIS_URL when
set, else from embedded servers in a temporary directory. Each test gets its own schema and its
own Redis key prefix, and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# Before anything imports Ray: keep the test Ray on loopback and quiet.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")

import pytest  # noqa: E402

import storage  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# The keyring that seals test users' emails and phone numbers: a fresh key each session.
TEST_KEYRING = storage.Keyring.parse("test:" + storage.new_key())


# Migration 0017 guards the audit log with database-wide event triggers (made once, by a
# superuser, in a schema of their own). Tests on the machine's Postgres remove them at the end
# of the run (the controller's, after every test process), unless they were there before.
AUDIT_GUARD_SCHEMA = "seatserver_audit_guard"
AUDIT_GUARD_TRIGGERS = ("seatserver_audit_log_guard", "seatserver_audit_log_drop_guard")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


async def _audit_guard_present(url: str) -> bool:
    conn = await storage.connect(url)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1", AUDIT_GUARD_SCHEMA
            )
        )
    finally:
        await conn.close()


async def _drop_audit_guard(url: str) -> None:
    conn = await storage.connect(url)
    try:
        for name in AUDIT_GUARD_TRIGGERS:
            await conn.execute(f"DROP EVENT TRIGGER IF EXISTS {name}")
        await conn.execute(f"DROP SCHEMA IF EXISTS {AUDIT_GUARD_SCHEMA} CASCADE")
    finally:
        await conn.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    url = os.environ.get("SEATSERVER_TEST_DATABASE_URL")
    if url and not _is_worker(session.config):
        session.config.stash[_GUARD_BEFORE] = asyncio.run(_audit_guard_present(url))


def pytest_sessionfinish(session: pytest.Session) -> None:
    url = os.environ.get("SEATSERVER_TEST_DATABASE_URL")
    if url and not _is_worker(session.config) and not session.config.stash.get(_GUARD_BEFORE, True):
        asyncio.run(_drop_audit_guard(url))


_GUARD_BEFORE = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With several test processes (``./dev test``: pytest-xdist, ``--dist loadgroup``): a test
    file's tests run in one process (its module fixtures made once), and the model tests all in
    one (they share the models trained once a session)."""
    for item in items:
        path = item.path.relative_to(Path(__file__).parent)
        group = "ml" if path.parts[0] == "ml" else str(path)
        item.add_marker(pytest.mark.xdist_group(group))


def random_ref(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="session")
def database_url(embedded_dir: Path) -> Iterator[str]:
    url = os.environ.get("SEATSERVER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = storage.start_postgres(embedded_dir)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_url(embedded_dir: Path) -> Iterator[str]:
    url = os.environ.get("SEATSERVER_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = storage.start_redis(embedded_dir)
    yield server.url
    server.stop()


@contextlib.asynccontextmanager
async def fresh_schema(database_url: str, prefix: str = "t") -> AsyncIterator[str]:
    """A new, migrated schema, dropped at the end."""
    name = random_ref(prefix)
    conn = await storage.connect(database_url)
    await conn.execute(f'CREATE SCHEMA "{name}"')
    await conn.close()
    try:
        conn = await storage.connect(database_url, schema=name)
        try:
            await storage.migrate(conn)
        finally:
            await conn.close()
        yield name
    finally:
        conn = await storage.connect(database_url)
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        await conn.close()


@pytest.fixture
async def schema(database_url: str) -> AsyncIterator[str]:
    """A fresh, migrated schema of this test's own, dropped afterwards."""
    async with fresh_schema(database_url) as name:
        yield name


@pytest.fixture
async def pool(database_url: str, schema: str) -> AsyncIterator[object]:
    pool = await storage.create_pool(database_url, schema=schema, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[object]:
    """A client plus a key prefix of this test's own (``redis.prefix``); keys removed after."""
    client = await storage.create_redis(redis_url)
    prefix = random_ref("t") + ":"
    client.prefix = prefix  # type: ignore[attr-defined]
    yield client
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole test session, on loopback, with fixed resources."""
    import ray

    context = ray.init(
        num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False
    )
    assert context.address_info["gcs_address"].startswith("127.0.0.1:"), "Ray must stay local"
    yield
    ray.shutdown()
