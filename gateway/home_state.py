"""What the home page keeps between requests, shared by every customer of a gateway process:
the next shows of each movie in each city (``SHOWS_TTL_S``) and the pricing model's facts of
each show (``FACTS_TTL_S``), each loaded for all the keys a page misses in one query. A show
cancelled meanwhile may stay on the home for ``SHOWS_TTL_S`` (its seat map says so); whether
a show is sold out is read fresh for every page.

    state = home_state(app)
    shows = await state.shows(city_id, [movie, ...], now)     # {movie: [UpcomingShow, ...]}
"""

from __future__ import annotations

import datetime as dt
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from aiohttp import web

from gateway import home_rank, keys
from storage import taste

SHOWS_TTL_S = 20.0
FACTS_TTL_S = 60.0
SHOW_DAYS = 7  # how far ahead the next shows are looked for
PER_SLOT = 5  # shows kept per movie, theater and part of the day (the most a page shows)
MAX_ENTRIES = 20_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ManyCache(Generic[K, V]):
    """``await cache.get(keys)`` → ``{key: value}``: what is cached and younger than ``ttl_s``,
    and the rest from one ``load(missing keys)`` (keys it does not answer are left out)."""

    def __init__(
        self,
        load: Callable[[list[K]], Awaitable[dict[K, V]]],
        ttl_s: float,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._load, self._ttl, self._max = load, ttl_s, max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    async def get(self, wanted: Iterable[K]) -> dict[K, V]:
        now = time.monotonic()
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in dict.fromkeys(wanted):
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                found[key] = entry[1]
            else:
                missing.append(key)
        if not missing:
            return found
        loaded = await self._load(missing)
        if len(self._entries) + len(loaded) > self._max:
            self._entries.clear()
        expires = time.monotonic() + self._ttl
        for key, value in loaded.items():
            self._entries[key] = (expires, value)
            found[key] = value
        return found


class HomeState:
    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._shows: ManyCache[tuple[int, int], list[taste.UpcomingShow]] = ManyCache(
            self._load_shows, SHOWS_TTL_S
        )
        self.facts: ManyCache[int, Any] = ManyCache(self._load_facts, FACTS_TTL_S)

    async def shows(
        self, city_id: int, movie_ids: Sequence[int], now: dt.datetime
    ) -> dict[int, list[taste.UpcomingShow]]:
        """The upcoming shows (after ``now``) of each movie in the city, soonest first."""
        pooled = await self._shows.get((city_id, movie) for movie in movie_ids)
        return {
            movie: [s for s in pooled.get((city_id, movie), []) if s.starts_at > now]
            for movie in movie_ids
        }

    async def _load_shows(
        self, wanted: list[tuple[int, int]]
    ) -> dict[tuple[int, int], list[taste.UpcomingShow]]:
        now = dt.datetime.now(dt.UTC)
        out: dict[tuple[int, int], list[taste.UpcomingShow]] = {key: [] for key in wanted}
        async with self._pool.acquire() as conn:
            for city_id in sorted({city for city, _ in wanted}):
                movies = [movie for city, movie in wanted if city == city_id]
                rows = await taste.upcoming_shows(
                    conn,
                    city_id,
                    movies,
                    now,
                    now + dt.timedelta(days=SHOW_DAYS),
                    per_slot=PER_SLOT,
                    day_edges=home_rank.DAY_EDGES,
                )
                for show in rows:
                    out[(city_id, show.movie_id)].append(show)
        return out

    async def _load_facts(self, show_ids: list[int]) -> dict[int, Any]:
        from ml.pricing.facts import load_show_facts

        async with self._pool.acquire() as conn:
            found: dict[int, Any] = await load_show_facts(conn, show_ids, dt.datetime.now(dt.UTC))
        return found


_STATES: weakref.WeakKeyDictionary[web.Application, HomeState] = weakref.WeakKeyDictionary()


def home_state(app: web.Application) -> HomeState:
    """The application's home state, made on first use (it holds only caches)."""
    state = _STATES.get(app)
    if state is None:
        state = _STATES[app] = HomeState(app[keys.POOL])
    return state
