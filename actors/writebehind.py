"""Write-behind with group commit (DESIGN rule 5) and delta publishing (rule 9).

A host appends each show's events here as they happen. A flusher task writes everything pending
in one transaction at most ``interval_s`` after the first event arrived (sooner when
``batch_size`` events wait), then wakes the confirmations and cancellations that waited for it,
then publishes the deltas on each show's Redis channel in version order. When Postgres is down
it retries with backoff; events stay queued in order and nothing acknowledged is dropped.
Holds are answered before their flush; confirmations only after it.

The flusher keeps one connection of the pool for itself (flushes run one at a time), so a flush
pays no pool hand-over, and publishes a flush's deltas with one Redis command (a small Lua script
that PUBLISHes each message in order), so a flush costs one round trip to Redis whatever its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from actors.errors import ConfirmationPending, InconsistentState
from actors.events import Event
from actors.persistence import ShowBatch, write_batch
from actors.stats import BATCH_BUCKETS, LAG_BUCKETS, Buckets, event_name

log = logging.getLogger(__name__)

#: Errors that mean "Postgres is unreachable right now": retry later.
TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)


DEFAULT_PREFIX = "seatserver:"


def channel(show_id: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The Redis channel a show's deltas are published on; ``prefix`` keeps deployments (and
    tests) that share one Redis apart."""
    return f"{prefix}show:{show_id}:deltas"


#: PUBLISH each (channel, message) pair of ARGV, in order; one command for a whole flush.
_PUBLISH_ALL = """
for i = 1, #ARGV, 2 do
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"""
PUBLISH_CHUNK = 500  # messages per script call, so Redis is never blocked for long


def delta_message(event: Event) -> str:
    """The JSON published for an event: show, version, kind and the changed seats."""
    changes = ", ".join([_change(label, state) for label, state in event.changes])
    return (
        f'{{"show_id": {int(event.show_id)}, "version": {event.version}, '
        f'"kind": "{type(event).__name__}", "changes": [{changes}]}}'
    )


@functools.lru_cache(maxsize=1 << 14)
def _change(label: str, state: str) -> str:
    """One seat's change as JSON; labels repeat across shows and flushes, so it is cached."""
    return json.dumps([label, str(state)])


@dataclass(frozen=True)
class ShowMeta:
    show_id: int
    show_date: Any
    currency: str


class WriteBehind:
    def __init__(
        self,
        pool: Any,
        redis: Any,
        *,
        interval_s: float,
        batch_size: int,
        on_poisoned: Callable[[int], None],
        channel_prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._pool = pool
        self._prefix = channel_prefix
        self._conn: Any = None  # the flusher's own connection, taken from the pool
        self._redis = redis
        self._publish_all = redis.register_script(_PUBLISH_ALL) if redis is not None else None
        self._interval = interval_s
        self._batch_size = batch_size
        self._on_poisoned = on_poisoned
        self._queue: deque[tuple[int, ShowMeta, Event]] = deque()
        self._pending: Counter[int] = Counter()  # queued events per show
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._flushed = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._ready = asyncio.Event()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()  # one flush at a time, whoever asks
        self.failures = 0  # consecutive failed flush attempts
        self.flushes = 0  # committed flushes
        self.written = 0  # events written in them
        # For the metrics: seconds from decision to commit of each flush's oldest event,
        # events per flush, and events queued by kind (``hold_placed``, ``hold_expired``, ...).
        self.lag = Buckets(LAG_BUCKETS)
        self.batches = Buckets(BATCH_BUCKETS)
        self.events: Counter[str] = Counter()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def oldest_pending_s(self) -> float:
        """How long the oldest event not yet committed has waited (0 with none): the
        write-behind's lag right now."""
        return max(0.0, time.time() - self._queue[0][2].at) if self._queue else 0.0

    def append(self, meta: ShowMeta, events: list[Event]) -> int:
        """Queue events; returns the ticket a caller may wait on for their durability."""
        counted = self.events
        for event in events:
            self._last_seq = next(self._seq)
            self._queue.append((self._last_seq, meta, event))
            kind = type(event).__name__
            counted[event_name(kind, getattr(event, "reason", None))] += 1
        self._pending[meta.show_id] += len(events)
        if events:
            self._ready.set()
            if len(self._queue) >= self._batch_size:
                self._full.set()
        return self._last_seq

    def has_pending(self, show_id: int) -> bool:
        return self._pending[show_id] > 0

    async def wait_durable(self, ticket: int, show_id: int, timeout: float) -> None:
        """Return once the event ``ticket`` is committed; ``ConfirmationPending`` on timeout."""
        if ticket <= self._flushed:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (ticket, show_id, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise ConfirmationPending(
                "the booking is not yet stored; it will be, or it will be reported failed: "
                "ask again with the same idempotency key",
                {"show_id": show_id},
            ) from None

    async def run(self) -> None:
        """The flusher loop; runs until cancelled."""
        while True:
            await self._ready.wait()
            if len(self._queue) < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._interval)
            self._ready.clear()
            self._full.clear()
            while self._queue:
                await self.flush_once()

    async def flush_once(self) -> None:
        """Write the oldest pending events (up to a batch); on failure back off and return."""
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        taken = list(itertools.islice(self._queue, self._batch_size))
        if not taken:
            return
        try:
            await self._write(_group(taken))
        except asyncpg.IntegrityConstraintViolationError as exc:
            log.critical("write-behind refused by a constraint (%s); isolating shows", exc)
            await self._isolate(taken)
            return
        except TRANSIENT as exc:
            self.failures += 1
            delay = min(2.0, 0.05 * 2 ** min(self.failures, 6))
            log.warning("write-behind failed (%s); retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay)
            return
        self.failures = 0
        self.flushes += 1
        self.written += len(taken)
        self.lag.observe(max(0.0, time.time() - taken[0][2].at))
        self.batches.observe(len(taken))
        self._committed(taken)
        await self._publish([event for _, _, event in taken])

    async def _write(self, batches: list[ShowBatch]) -> None:
        if self._conn is None:
            self._conn = await self._pool.acquire()
        try:
            await write_batch(self._conn, batches)
        except TRANSIENT:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # a broken connection is closed by the pool
                await self._pool.release(conn, timeout=1.0)
            raise

    def _committed(self, taken: list[tuple[int, ShowMeta, Event]]) -> None:
        for _ in taken:
            _, meta, _ = self._queue.popleft()
            self._pending[meta.show_id] -= 1
        self._flushed = taken[-1][0]
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._flushed:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    async def _isolate(self, taken: list[tuple[int, ShowMeta, Event]]) -> None:
        """Write show by show; a show whose events a constraint refuses is dropped from memory
        (its host reloads it from Postgres) and its waiters fail."""
        poisoned: set[int] = set()
        for batch in _group(taken):
            try:
                async with self._pool.acquire() as conn:
                    await write_batch(conn, [batch])
            except asyncpg.IntegrityConstraintViolationError:
                poisoned.add(batch.show_id)
        seqs = {seq for seq, meta, _ in taken}
        self._queue = deque(
            item for item in self._queue if item[0] not in seqs and item[1].show_id not in poisoned
        )
        self._pending = Counter(meta.show_id for _, meta, _ in self._queue)
        self._flushed = max(self._flushed, taken[-1][0])
        for _ticket, show_id, future in self._waiters:
            if show_id in poisoned and not future.done():
                future.set_exception(
                    InconsistentState("the database refused this change", {"show_id": show_id})
                )
        self._waiters = [w for w in self._waiters if not w[2].done()]
        heapq.heapify(self._waiters)
        self._wake()
        for show_id in poisoned:
            self._on_poisoned(show_id)
        await self._publish([e for _, m, e in taken if m.show_id not in poisoned])

    async def announce_activation(self, show_id: int, version: int) -> None:
        """Tell watchers that the show (re)started here at ``version``: after a crash that can
        be below what they saw (holds younger than a flush are lost), so they must refetch."""
        if self._redis is None:
            return
        message = (
            f'{{"show_id": {show_id}, "version": {version}, "kind": "ShowActivated", '
            '"changes": []}'
        )
        try:
            await self._redis.publish(channel(show_id, self._prefix), message)
        except Exception as exc:  # watchers then notice at the next gap instead
            log.warning("announcing show %d failed: %s", show_id, exc)

    async def _publish(self, events: list[Event]) -> None:
        if self._publish_all is None or not events:
            return
        args: list[str] = []
        for event in events:
            args.append(channel(int(event.show_id), self._prefix))
            args.append(delta_message(event))
        try:
            for start in range(0, len(args), 2 * PUBLISH_CHUNK):
                await self._publish_all(args=args[start : start + 2 * PUBLISH_CHUNK])
        except Exception as exc:  # a missed delta makes clients refetch; never stop the flusher
            log.warning("publishing %d deltas failed: %s", len(events), exc)


def _group(taken: list[tuple[int, ShowMeta, Event]]) -> list[ShowBatch]:
    by_show: dict[int, tuple[ShowMeta, list[Event]]] = {}
    for _, meta, event in taken:
        by_show.setdefault(meta.show_id, (meta, []))[1].append(event)
    return [
        ShowBatch(meta.show_id, meta.show_date, meta.currency, events)
        for meta, events in by_show.values()
    ]
