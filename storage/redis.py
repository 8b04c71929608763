"""The Redis client: one asyncio client per process, from a URL (tcp or unix socket)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage.errors import RedisUnavailable

MAX_CONNECTIONS = 256


async def create_redis(
    url: str, *, timeout: float = 5.0, max_connections: int = MAX_CONNECTIONS
) -> aioredis.Redis:
    """Connect and ping; raises ``RedisUnavailable`` with the reason when that fails.

    At most ``max_connections`` at once; a burst beyond them waits (up to ``timeout``) for a
    free one instead of failing at once, as redis-py's default pool would.

    >>> r = await create_redis("redis://127.0.0.1:6379/0")
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
    client = aioredis.Redis.from_pool(pool)  # closing the client closes its pool
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise RedisUnavailable(f"cannot reach Redis at {url}: {exc}") from exc
    return client
