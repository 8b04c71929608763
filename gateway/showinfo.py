"""A short-lived per-process cache of the static part of shows (layout, prices, currency)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import storage

TTL_S = 10.0
MAX_ENTRIES = 10_000


class ShowInfo:
    """``await info(show_id)`` → ``storage.ShowDetails``; ``NotFound`` for an unknown show."""

    def __init__(self, pool: Any, ttl_s: float = TTL_S) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._entries: dict[int, tuple[float, storage.ShowDetails]] = {}
        self._loading: dict[int, asyncio.Future[storage.ShowDetails]] = {}

    async def __call__(self, show_id: int) -> storage.ShowDetails:
        entry = self._entries.get(show_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        pending = self._loading.get(show_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[storage.ShowDetails] = asyncio.get_running_loop().create_future()
        self._loading[show_id] = future
        try:
            async with self._pool.acquire() as conn:
                details = await storage.get_show(conn, show_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no warning when nobody else waited
            raise
        finally:
            self._loading.pop(show_id, None)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[show_id] = (time.monotonic() + self._ttl, details)
        future.set_result(details)
        return details

    def forget(self, show_id: int) -> None:
        """Drop a show after an admin changed it."""
        self._entries.pop(show_id, None)
