"""The four engines of the contention benchmark, each on fresh state of its own.

- ``actor``: the seat engine itself: ``ShowClient`` → directory → shared hosts, writing behind
  to Postgres and publishing deltas on Redis. Its shows are real shows, made through the admin
  operations in a schema of its own.
- ``pg_rowlock``: a transaction per hold: lock the seat rows (``SELECT … FOR UPDATE``, in seat
  order so two holds never deadlock), check they are all free, mark them, commit; release alike.
- ``pg_optimistic``: read the seats and their versions without a lock; then in one transaction
  update each seat only where its version is still the one read; any miss rolls back (a
  conflict).
- ``redis_setnx``: ``SET key token NX EX`` per seat, pipelined; a partial grant is rolled back
  and a release deletes only the keys still holding its token (compare-and-delete in Lua).

Every Postgres engine gets its own schema, migrated with the project migrations and dropped at
the end; the Redis engine's keys live under a run prefix and are deleted at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import asyncpg

import storage
from loadtest.workload import Workload, labels, new_id

log = logging.getLogger(__name__)

POOL_SIZE = 20  # connections for the Postgres and Redis engines
HOLD_TTL_S = 300


async def create_schema(database_url: str, name: str) -> None:
    """A fresh schema with the project migrations applied."""
    conn = await storage.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    conn = await storage.connect(database_url, schema=name)
    try:
        await storage.migrate(conn)
    finally:
        await conn.close()


async def drop_schema(database_url: str, name: str) -> None:
    conn = await storage.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def create_screen_and_movie(
    conn: Any, name: str, layout: dict[str, Any], *, runtime_min: int
) -> tuple[int, int]:
    """A city with one theater and one screen of ``layout``, and a movie; their screen and
    movie ids."""
    city = await storage.create_city(conn, f"{name} City", "US")
    theater = await storage.create_theater(conn, city, f"{name} Plaza", "America/New_York")
    screen = await storage.create_screen(conn, theater, "1", layout)
    movie = await storage.create_movie(
        conn,
        title=f"The {name}",
        genres=["drama"],
        runtime_min=runtime_min,
        certificate="PG",
        language="en",
        release_date=dt.date(2026, 1, 1),
        cast_members=[],
        synopsis="",
    )
    return screen, movie


async def create_shows(conn: Any, layout: dict[str, Any], count: int) -> list[int]:
    """``count`` shows on sale on one screen, four hours apart from tomorrow; their ids."""
    now = dt.datetime.now(dt.UTC)
    screen, movie = await create_screen_and_movie(conn, "Benchmark", layout, runtime_min=120)
    first = (now + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    return [
        await storage.create_show(
            conn,
            screen_id=screen,
            movie_id=movie,
            starts_at=first + dt.timedelta(hours=4 * i),
            prices={"standard": 1200},
            now=now,
            status="on_sale",
        )
        for i in range(count)
    ]


class ActorEngine:
    """Holds through ``ShowClient``; the caller has started (or joined) Ray."""

    name = "actor"

    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        run: str,
        *,
        shared_hosts: int = 2,
        flush_interval_s: float = 0.010,
    ) -> None:
        self._database_url = database_url
        self._redis_url = redis_url
        self._schema = f"{run}_actor"
        self._namespace = f"{run}_actor"
        self._shared_hosts = shared_hosts
        self._flush_interval_s = flush_interval_s
        self._ids: list[int] = []
        self._client: Any = None
        self._directory: Any = None
        self._commands = 0
        self._actors: Any = None
        self.host_pids: dict[str, int] = {}

    async def start(self, workload: Workload, layout: dict[str, Any]) -> None:
        import actors  # imports Ray: only once the caller has set Ray's environment up

        self._actors = actors
        await create_schema(self._database_url, self._schema)
        conn = await storage.connect(self._database_url, schema=self._schema)
        try:
            self._ids = await create_shows(conn, layout, workload.shows)
        finally:
            await conn.close()
        config = actors.HostConfig(
            database_url=self._database_url,
            schema=self._schema,
            redis_url=self._redis_url,
            flush_interval_s=self._flush_interval_s,
            channel_prefix=f"{self._schema}:",  # deltas on channels of this run's own
        )
        self._directory = actors.start_directory(
            config, shared_hosts=self._shared_hosts, namespace=self._namespace
        )
        self._client = actors.ShowClient(self._directory)
        await asyncio.gather(*(self._client.snapshot(show_id) for show_id in self._ids))
        for host in await self._directory.hosts.remote():
            stats = await host.stats.remote()
            self.host_pids[stats["name"]] = stats["pid"]

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        self._commands += 1
        command = self._actors.HoldSeats(new_id(), str(client + 1), seats)
        try:
            hold = await self._client.execute(self._ids[show], command)
        except self._actors.SeatUnavailable:
            return None
        return hold.hold_id

    async def release(self, client: int, show: int, token: Any) -> None:
        self._commands += 1
        command = self._actors.Release(token, str(client + 1))
        await self._client.execute(self._ids[show], command)

    async def describe(self) -> str:
        """Ray calls made, commands per call, and what the hosts have not yet written behind."""
        hosts = await self._directory.hosts.remote()
        stats = [await host.stats.remote() for host in hosts]
        flushes = sum(s["flushes"] for s in stats)
        per_flush = sum(s["events_written"] for s in stats) / max(flushes, 1)
        calls = self._client.stats()["calls"]
        per_call = self._commands / max(calls, 1)
        return (
            f"{calls} Ray calls, {per_call:.1f} commands a call; {flushes} flushes, "
            f"{per_flush:.1f} events a flush; backlog {sum(s['backlog'] for s in stats)}"
        )

    async def stop(self) -> None:
        import ray

        if self._directory is not None:
            try:
                await self._directory.shutdown.remote()
            finally:
                ray.kill(self._directory, no_restart=True)
        await drop_schema(self._database_url, self._schema)


_SEATS_TABLE = """
CREATE TABLE bench_seats (
    show     integer NOT NULL,
    seat     text NOT NULL,
    holder   uuid,
    version  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (show, seat)
)"""


class _PostgresEngine:
    """A pool on a fresh schema with a seats table of its own."""

    name = "pg"

    def __init__(self, database_url: str, run: str) -> None:
        self._database_url = database_url
        self._schema = f"{run}_{self.name}"
        self._pool: Any = None

    async def start(self, workload: Workload, layout: dict[str, Any]) -> None:
        await create_schema(self._database_url, self._schema)
        self._pool = await storage.create_pool(
            self._database_url, schema=self._schema, min_size=POOL_SIZE, max_size=POOL_SIZE
        )
        async with self._pool.acquire() as conn:
            await conn.execute(_SEATS_TABLE)
            await conn.copy_records_to_table(
                "bench_seats",
                records=[(show, seat) for show in range(workload.shows) for seat in labels(layout)],
                columns=["show", "seat"],
            )
            await conn.execute("ANALYZE bench_seats")

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        await drop_schema(self._database_url, self._schema)


class RowLockEngine(_PostgresEngine):
    name = "pg_rowlock"

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        token = new_id()
        ordered = sorted(seats)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT holder FROM bench_seats WHERE show = $1 AND seat = ANY($2::text[])
                   ORDER BY seat FOR UPDATE""",
                show,
                ordered,
            )
            if len(rows) != len(seats) or any(r["holder"] is not None for r in rows):
                return None
            await conn.execute(
                "UPDATE bench_seats SET holder = $3 WHERE show = $1 AND seat = ANY($2::text[])",
                show,
                ordered,
                token,
            )
        return (token, ordered)

    async def release(self, client: int, show: int, token: Any) -> None:
        holder, ordered = token
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.fetch(
                """SELECT holder FROM bench_seats WHERE show = $1 AND seat = ANY($2::text[])
                   ORDER BY seat FOR UPDATE""",
                show,
                ordered,
            )
            await conn.execute(
                """UPDATE bench_seats SET holder = NULL
                   WHERE show = $1 AND seat = ANY($2::text[]) AND holder = $3""",
                show,
                ordered,
                holder,
            )


class OptimisticEngine(_PostgresEngine):
    name = "pg_optimistic"

    def __init__(self, database_url: str, run: str) -> None:
        super().__init__(database_url, run)
        self.version_conflicts = 0  # seats free when read but changed before the update

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        token = new_id()
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT seat, holder, version FROM bench_seats
                   WHERE show = $1 AND seat = ANY($2::text[])""",
                show,
                list(seats),
            )
            if len(rows) != len(seats) or any(r["holder"] is not None for r in rows):
                return None
            # In seat order, the order the release's index scan locks them in: two clients'
            # updates then never wait on each other in a cycle.
            rows = sorted(rows, key=lambda r: r["seat"])
            try:
                async with conn.transaction():
                    updated = await conn.fetch(
                        """UPDATE bench_seats s SET holder = $2, version = s.version + 1
                           FROM unnest($3::text[], $4::bigint[]) AS v(seat, version)
                           WHERE s.show = $1 AND s.seat = v.seat AND s.version = v.version
                                 AND s.holder IS NULL
                           RETURNING s.seat""",
                        show,
                        token,
                        [r["seat"] for r in rows],
                        [r["version"] for r in rows],
                    )
                    if len(updated) != len(seats):
                        raise _RolledBack
            except (_RolledBack, asyncpg.exceptions.DeadlockDetectedError):
                self.version_conflicts += 1  # a deadlock still rolls back: a conflict
                return None
        return (token, list(seats))

    async def release(self, client: int, show: int, token: Any) -> None:
        holder, seats = token
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE bench_seats SET holder = NULL, version = version + 1
                   WHERE show = $1 AND seat = ANY($2::text[]) AND holder = $3""",
                show,
                seats,
                holder,
            )


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back."""


# Release only the keys that still carry our token.
_COMPARE_AND_DELETE = """
local n = 0
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[1] then
        n = n + redis.call('DEL', key)
    end
end
return n
"""


class SetnxEngine:
    name = "redis_setnx"

    def __init__(self, redis_url: str, run: str) -> None:
        self._redis_url = redis_url
        self._prefix = f"{run}:redis_setnx:"
        self._redis: Any = None
        self._release: Any = None

    async def start(self, workload: Workload, layout: dict[str, Any]) -> None:
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(
            self._redis_url, max_connections=POOL_SIZE, timeout=10
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        await self._redis.ping()
        self._release = self._redis.register_script(_COMPARE_AND_DELETE)

    def _keys(self, show: int, seats: tuple[str, ...]) -> list[str]:
        return [f"{self._prefix}{show}:{seat}" for seat in seats]

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        token = new_id()
        keys = self._keys(show, seats)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, token, nx=True, ex=HOLD_TTL_S)
            granted = await pipe.execute()
        if all(granted):
            return (token, keys)
        got = [key for key, ok in zip(keys, granted, strict=True) if ok]
        if got:
            await self._release(keys=got, args=[token])
        return None

    async def release(self, client: int, show: int, token: Any) -> None:
        value, keys = token
        await self._release(keys=keys, args=[value])

    async def stop(self) -> None:
        if self._redis is None:
            return
        keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*", count=1000)]
        for i in range(0, len(keys), 1000):
            await self._redis.delete(*keys[i : i + 1000])
        await self._redis.aclose()
