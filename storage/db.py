"""Postgres connections: one asyncpg pool per process, every connection pinned to one schema."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from storage.errors import DatabaseUnavailable


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


def _server_settings(schema: str) -> dict[str, str]:
    return {"search_path": schema, "application_name": "seatserver", "timezone": "UTC"}


async def create_pool(
    dsn: str,
    *,
    schema: str = "public",
    min_size: int = 2,
    max_size: int = 10,
    timeout: float = 10.0,
) -> asyncpg.Pool:
    """Open a pool whose connections use ``schema`` and decode json/jsonb to Python values.

    >>> pool = await create_pool("postgresql://postgres@127.0.0.1/test", schema="seats")
    """
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            init=_init_connection,
            server_settings=_server_settings(schema),
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot reach Postgres: {exc}") from exc
    assert pool is not None
    return pool


async def connect(dsn: str, *, schema: str = "public", timeout: float = 10.0) -> Any:
    """One connection, set up like the pool's (for migrations and one-shot commands)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout, server_settings=_server_settings(schema))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot reach Postgres: {exc}") from exc
    await _init_connection(conn)
    return conn
