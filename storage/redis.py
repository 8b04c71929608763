"""The Redis client: one asyncio client per process, from a URL (tcp or unix socket)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage.errors import RedisUnavailable


async def create_redis(url: str, *, timeout: float = 5.0) -> aioredis.Redis:
    """Connect and ping; raises ``RedisUnavailable`` with the reason when that fails.

    >>> r = await create_redis("redis://127.0.0.1:6379/0")
    """
    client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise RedisUnavailable(f"cannot reach Redis at {url}: {exc}") from exc
    return client
