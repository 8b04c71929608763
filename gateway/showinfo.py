"""Short-lived per-process caches that load each key once at a time: a burst of requests for
one show waits on one read, never a stampede of them.

    info = ShowInfo(pool)             # the static part of shows (layout, prices, currency)
    details = await info(show_id)     # storage.ShowDetails; NotFound for an unknown show
    info.forget(show_id)              # after an admin changed it
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import storage

TTL_S = 10.0
MAX_ENTRIES = 10_000

V = TypeVar("V")


class TtlCache(Generic[V]):
    """``await cache(key)`` → ``load(key)``, remembered for ``ttl_s``; concurrent misses of one
    key share one load (and its error)."""

    def __init__(
        self, load: Callable[[Any], Awaitable[V]], ttl_s: float, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._load = load
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, asyncio.Future[V]] = {}

    async def __call__(self, key: Hashable) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await self._load(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no warning when nobody else waited
            raise
        finally:
            self._loading.pop(key, None)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)
        future.set_result(value)
        return value

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)


class ShowInfo(TtlCache[storage.ShowDetails]):
    """``await info(show_id)`` → ``storage.ShowDetails``; ``NotFound`` for an unknown show."""

    def __init__(self, pool: Any, ttl_s: float = TTL_S) -> None:
        async def load(show_id: int) -> storage.ShowDetails:
            async with pool.acquire() as conn:
                return await storage.get_show(conn, show_id)

        super().__init__(load, ttl_s)
