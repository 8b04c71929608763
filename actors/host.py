"""The show host: one Ray actor process that runs many show actors (DESIGN rule 7).

A host keeps each active show's ``SeatMap`` in memory and is its only writer. A show is
activated on first use (loaded from Postgres; ``activate_many`` loads many shows at once),
passivated after it has been idle, and written behind through ``WriteBehind``. ``call`` takes a
batch of (show, command) pairs from one caller and runs each command start to finish with no
``await`` in between (rule 2): all awaits (activation) come before the decisions.
Confirmations and cancellations come back as ``Pending`` with a ticket; the caller waits on
``wait_durable`` for their flush (rule 5). A ticket names the process that gave it: Ray may
start a host again (a crash, a lost node), and a ticket from before is answered
``HostUnavailable``, never taken for one of the new process.

Hosts are made Ray actors by the directory (``ray.remote(PlacedHost)``, a subclass that adds
what needs Ray); this class itself does not import Ray, so it is tested in-process too.

Commands and replies travel between ``ShowClient`` and a host in the plain-list format of
``actors/wire.py`` (``call_packed``).

Every record the host logs while it applies a command carries that command's ``request_id``
(``actors.logs``); in its Ray process the host logs JSON lines (``HostConfig.log_format``).
It counts what it does (commands by outcome, decision times, events, flush lag and size, each
show's load) and ``describe()`` hands the figures out: the gateways poll it for their
``/metrics`` and ``seatserver status`` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import json
import logging
import math
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from actors.commands import (
    Cancel,
    Command,
    Confirm,
    SetStatus,
)
from actors.errors import (
    BookingError,
    HostUnavailable,
    InvalidRequest,
    ShowMoved,
    ShowNotFound,
    ShowUnavailable,
)
from actors.events import Snapshot
from actors.layout import Layout
from actors.logs import REQUEST_ID, configure_logging
from actors.persistence import ShowRecord, load_show, load_shows
from actors.seatmap import SeatMap
from actors.stats import BATCH_BUCKETS, DECISION_BUCKETS, LOAD_HALF_LIFE_S, Buckets
from actors.wire import Done, Failed, Pending, Reply, pack_reply, unpack_command
from actors.writebehind import TRANSIENT, ShowMeta, WriteBehind

log = logging.getLogger(__name__)

TICK_S = 0.25  # how often due holds are expired
IDLE_SWEEP_TICKS = 40  # every this many ticks, idle shows are passivated
ACTIVATE_CHUNK = 1000  # shows loaded per query by activate_many
_SEQ_BITS = 64  # a ticket is (this process's epoch << _SEQ_BITS) | the write-behind's sequence


@dataclass(frozen=True)
class HostConfig:
    """Plain values a host needs; built by the composition root, never from globals."""

    database_url: str
    schema: str = "public"
    redis_url: str | None = None
    flush_interval_s: float = 0.010
    flush_batch_size: int = 1000
    idle_after_s: float = 600.0
    confirm_timeout_s: float = 15.0
    hold_ttl_s: float = 300.0
    # A hold whose payment started lives this long from then, but never past its lifetime.
    payment_ttl_s: float = 600.0
    max_hold_lifetime_s: float = 1200.0
    pool_size: int = 4
    # Prefix of the Redis channels deltas go out on (the gateway's redis_prefix).
    channel_prefix: str = "seatserver:"
    # How the host's process logs: "json" lines or "text"; None leaves its logging alone.
    # (A process whose root logger already has handlers, a test runner's, is left alone too.)
    log_format: str | None = "json"


_MAX_USER_ID = 2**63 - 1


def _check_ids(command: Command) -> None:
    """Ids are stored as uuid and bigint: refuse others here, before they reach a flush."""
    for name in ("hold_id", "booking_id"):
        value = getattr(command, name, None)
        if value is not None:
            try:
                valid = str(uuid.UUID(value)) == value
            except (ValueError, TypeError, AttributeError):
                valid = False
            if not valid:
                raise InvalidRequest(f"{name} must be a lowercase UUID", {"field": name})
    user = getattr(command, "user_id", None)
    if user is not None and not (
        isinstance(user, str)
        and user.isascii()
        and user.isdigit()
        and 0 < int(user) <= _MAX_USER_ID
    ):
        raise InvalidRequest("user_id must be a positive integer", {"field": "user_id"})


@dataclass
class _Slot:
    seatmap: SeatMap
    meta: ShowMeta
    last_used: float = field(default_factory=time.monotonic)
    load: float = 0.0  # commands, decaying with LOAD_HALF_LIFE_S (see ShowHost._observed)
    load_at: float = 0.0  # when ``load`` was last brought up to date (monotonic)


def _ray_node() -> tuple[str | None, str | None]:
    """The id and address of the Ray node this process runs on; (None, None) outside Ray.
    (Imported here, not at the top: the host runs without Ray in tests.)"""
    try:
        import ray

        if not ray.is_initialized():
            return None, None
        node_id = ray.get_runtime_context().get_node_id()
        return node_id, ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    except Exception:  # placement is an extra: never fail a describe over it
        return None, None


class ShowHost:
    def __init__(self, name: str, config: HostConfig) -> None:
        self.name = name
        self._config = config
        self._shows: dict[int, _Slot] = {}
        self._loading: dict[int, asyncio.Task[None]] = {}
        self._disowned: set[int] = set()
        self._holding: set[int] = set()  # shows with live holds: the ticker expires them
        self._layouts: dict[str, Layout] = {}
        self._started: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: Any = None
        self._writer: WriteBehind | None = None
        # Marks this process's tickets: Ray may start the host again between a Pending reply
        # and its wait_durable, and a ticket of the process before is no promise here.
        self._epoch = int.from_bytes(os.urandom(4), "big") + 1
        # Figures for describe(): calls and their sizes, commands by (kind, outcome), and
        # each kind's decision time.
        self._born = time.time()
        self._calls = 0
        self._call_sizes = Buckets(BATCH_BUCKETS)
        self._outcomes: Counter[tuple[str, str]] = Counter()
        self._decisions: dict[str, Buckets] = {}
        self._node: tuple[str | None, str | None] | None = None
        if config.log_format:
            configure_logging(config.log_format, logging.INFO, fields={"host": name})

    # -- lifecycle ------------------------------------------------------------------------------

    async def _ensure_started(self) -> WriteBehind:
        if self._started is None:
            self._started = asyncio.create_task(self._start())
        await asyncio.shield(self._started)
        assert self._writer is not None
        return self._writer

    async def _start(self) -> None:
        from storage import create_pool, create_redis

        try:
            self._disowned |= await self._moved_away()
        except Exception as exc:  # the cluster's names unreadable: the directory still routes
            log.warning("%s could not learn which shows moved away: %s", self.name, exc)
        cfg = self._config
        self._pool = await create_pool(
            cfg.database_url, schema=cfg.schema, min_size=1, max_size=cfg.pool_size
        )
        redis = None
        if cfg.redis_url:
            with contextlib.suppress(Exception):
                redis = await create_redis(cfg.redis_url)
        self._writer = WriteBehind(
            self._pool,
            redis,
            interval_s=cfg.flush_interval_s,
            batch_size=cfg.flush_batch_size,
            on_poisoned=self._evict,
            channel_prefix=cfg.channel_prefix,
        )
        self._tasks = [asyncio.create_task(self._writer.run()), asyncio.create_task(self._ticker())]

    # -- the batched entry point ---------------------------------------------------------------

    async def call(self, requests: list[tuple[int, Command]]) -> list[Reply]:
        """Run a caller's batch in order; one reply per request, errors as ``Failed``."""
        writer = self._writer if self._writer is not None else await self._ensure_started()
        self._calls += 1
        self._call_sizes.observe(len(requests))
        missing = {sid for sid, _ in requests if sid not in self._shows}
        problems = await self._activate_for(requests, missing) if missing else {}
        now = time.time()
        replies: list[Reply] = []
        for sid, command in requests:
            slot = self._shows.get(sid)
            if slot is None:
                error = problems.get(sid) or self._absent(sid)
                self._outcomes[type(command).__name__, getattr(error, "code", "error")] += 1
                replies.append(Failed(error))
                continue
            replies.append(self._observed(writer, slot, command, now))
        return replies

    def _observed(self, writer: WriteBehind, slot: _Slot, command: Command, now: float) -> Reply:
        """``_run`` with the command's request id on every record logged meanwhile, its
        decision timed, its outcome counted and the show's load brought up to date."""
        token = REQUEST_ID.set(command.request_id)
        started = time.perf_counter()
        try:
            reply = self._run(writer, slot, command, now)
            elapsed = time.perf_counter() - started
            kind = type(command).__name__
            outcome = getattr(reply.error, "code", "error") if isinstance(reply, Failed) else "ok"
            self._log_outcome(slot, command, kind, outcome)
        finally:
            REQUEST_ID.reset(token)
        decisions = self._decisions.get(kind)
        if decisions is None:
            decisions = self._decisions[kind] = Buckets(DECISION_BUCKETS)
        decisions.observe(elapsed)
        self._outcomes[kind, outcome] += 1
        at = slot.last_used
        slot.load = slot.load * 0.5 ** ((at - slot.load_at) / LOAD_HALF_LIFE_S) + 1.0
        slot.load_at = at
        return reply

    @staticmethod
    def _log_outcome(slot: _Slot, command: Command, kind: str, outcome: str) -> None:
        """Bookings and cancellations at INFO (ids only, nothing personal); the rest at
        DEBUG."""
        show = slot.meta.show_id
        if isinstance(command, Confirm):
            if outcome == "ok":
                log.info("show %d: booking %s confirmed", show, command.booking_id)
            else:
                log.info("show %d: confirming hold %s refused: %s", show, command.hold_id, outcome)
        elif isinstance(command, Cancel):
            log.info("show %d: cancelling booking %s: %s", show, command.booking_id, outcome)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("show %d: %s %s", show, kind, outcome)

    async def _activate_for(
        self, requests: list[tuple[int, Command]], missing: set[int]
    ) -> dict[int, BaseException]:
        """``_activate_all`` with the request id of the first command that needs a show
        loaded on the records the loading logs."""
        first = next((c.request_id for sid, c in requests if sid in missing and c.request_id), None)
        token = REQUEST_ID.set(first)
        try:
            return await self._activate_all(missing)
        finally:
            REQUEST_ID.reset(token)

    async def call_packed(self, requests: list[list[Any]]) -> list[list[Any]]:
        """``call`` on the wire format: requests from ``pack_request``, replies for
        ``unpack_reply``."""
        commands = [(sid, unpack_command(code, values)) for sid, code, values in requests]
        return [pack_reply(reply) for reply in await self.call(commands)]

    def _run(self, writer: WriteBehind, slot: _Slot, command: Command, now: float) -> Reply:
        slot.last_used = time.monotonic()
        try:
            _check_ids(command)
            value = slot.seatmap.execute(command, now)
        except BookingError as exc:
            writer.append(slot.meta, slot.seatmap.pull_events())  # holds expired on the way
            return Failed(exc)
        events = slot.seatmap.pull_events()
        ticket = writer.append(slot.meta, events)
        if slot.seatmap.holds:
            self._holding.add(int(slot.meta.show_id))
        if isinstance(command, Confirm | Cancel | SetStatus):  # a status change, too: what
            # reads Postgres next (the waiting room) must see it
            return Pending(value, self._epoch << _SEQ_BITS | ticket)
        return Done(value)

    async def wait_durable(self, ticket: int, show_id: int) -> None:
        """Return when ticket's flush committed; ``ConfirmationPending`` after the timeout."""
        writer = await self._ensure_started()
        if ticket >> _SEQ_BITS != self._epoch:
            raise HostUnavailable(
                "the show host started again before the booking was stored, or it may have "
                "been stored before: ask again with the same idempotency key",
                {"show_id": show_id},
            )
        seq = ticket & ((1 << _SEQ_BITS) - 1)
        await writer.wait_durable(seq, show_id, self._config.confirm_timeout_s)

    async def _moved_away(self) -> set[int]:
        """Shows this process must refuse from its start on: those that moved to a host of
        their own while it was down. A bare host knows none; the directory's hosts ask Ray."""
        return set()

    # -- activation and passivation --------------------------------------------------------------

    async def _activate_all(self, show_ids: set[int]) -> dict[int, BaseException]:
        problems: dict[int, BaseException] = {}
        for sid in show_ids:
            if sid in self._disowned:
                continue
            if sid not in self._loading:
                self._loading[sid] = asyncio.create_task(self._activate(sid))
        for sid in show_ids:
            task = self._loading.get(sid)
            if task is None:
                continue
            try:
                await asyncio.shield(task)
            except BookingError as exc:
                problems[sid] = exc
            finally:
                if task.done():
                    self._loading.pop(sid, None)
        return problems

    async def _activate(self, show_id: int) -> None:
        now = time.time()
        try:
            async with self._pool.acquire() as conn:
                record = await load_show(conn, show_id, now)
        except TRANSIENT as exc:
            raise ShowUnavailable(
                f"show {show_id} cannot be loaded: {exc}", {"show_id": show_id}
            ) from exc
        if record is None:
            raise ShowNotFound(f"no show {show_id}", {"show_id": show_id})
        if show_id in self._shows or show_id in self._disowned:
            return
        self._install(record, now, self._layout(record))
        if self._writer is not None:
            await self._writer.announce_activation(show_id, record.version)
        log.info("%s activated show %d at version %d", self.name, show_id, record.version)

    def _install(self, record: ShowRecord, now: float, layout: Layout) -> None:
        seatmap = SeatMap.restore(
            str(record.show_id),
            layout,
            prices=record.prices,
            status=record.status,
            version=record.version,
            holds=record.holds,
            bookings=record.bookings,
            blocked=record.blocked,
            now=now,
            hold_ttl=self._config.hold_ttl_s,
            payment_ttl=self._config.payment_ttl_s,
            max_hold_lifetime=self._config.max_hold_lifetime_s,
        )
        meta = ShowMeta(record.show_id, record.show_date, record.currency)
        self._shows[record.show_id] = _Slot(seatmap, meta)
        if seatmap.holds:
            self._holding.add(record.show_id)

    async def activate_many(self, show_ids: list[int]) -> int:
        """Load many shows now, ``ACTIVATE_CHUNK`` per query (warming a host up, capacity
        tests); shows active, moved away, loading or missing are skipped. Returns how many
        shows the host has active."""
        await self._ensure_started()
        wanted = [
            sid
            for sid in show_ids
            if sid not in self._shows and sid not in self._disowned and sid not in self._loading
        ]
        for start in range(0, len(wanted), ACTIVATE_CHUNK):
            now = time.time()
            try:
                async with self._pool.acquire() as conn:
                    records = await load_shows(conn, wanted[start : start + ACTIVATE_CHUNK], now)
            except TRANSIENT as exc:
                raise ShowUnavailable(f"shows cannot be loaded: {exc}") from exc
            layouts: dict[int, Layout] = {}  # by the identity of the (shared) layout dict
            for record in records:
                if record.show_id in self._shows or record.show_id in self._disowned:
                    continue
                layout = layouts.get(id(record.layout))
                if layout is None:
                    layout = layouts[id(record.layout)] = self._layout(record)
                self._install(record, now, layout)
            await asyncio.sleep(0)  # calls waiting meanwhile go first
        return len(self._shows)

    def _layout(self, record: ShowRecord) -> Layout:
        """Shows of one screen share one immutable Layout."""
        key = hashlib.sha1(json.dumps(record.layout, sort_keys=True).encode()).hexdigest()
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = Layout.from_dict(record.layout)
        return layout

    def _absent(self, show_id: int) -> BookingError:
        if show_id in self._disowned:
            return ShowMoved(f"show {show_id} moved to another host", {"show_id": show_id})
        return ShowUnavailable(f"show {show_id} is not active", {"show_id": show_id})

    def _evict(self, show_id: int) -> None:
        self._shows.pop(show_id, None)

    async def passivate(self, show_id: int) -> bool:
        """Flush the show's pending events and drop it from memory; False if it has live holds
        or stays unflushed (Postgres down)."""
        writer = await self._ensure_started()
        slot = self._shows.get(show_id)
        if slot is None:
            return True
        if slot.seatmap.holds:
            return False
        for _ in range(50):
            if not writer.has_pending(show_id):
                self._shows.pop(show_id, None)
                return True
            await writer.flush_once()
        return False

    async def disown(self, show_id: int) -> None:
        """Hand the show to another host: refuse new calls, flush, forget it."""
        writer = await self._ensure_started()
        self._disowned.add(show_id)
        while writer.has_pending(show_id):
            await writer.flush_once()
        self._shows.pop(show_id, None)

    async def _ticker(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK_S)
            ticks += 1
            self._expire_due(time.time())
            if ticks % IDLE_SWEEP_TICKS == 0:
                self._passivate_idle(time.monotonic() - self._config.idle_after_s)

    def _expire_due(self, now: float) -> None:
        assert self._writer is not None
        for sid in list(self._holding):
            slot = self._shows.get(sid)
            if slot is not None:
                slot.seatmap.expire(now)
                self._writer.append(slot.meta, slot.seatmap.pull_events())
            if slot is None or not slot.seatmap.holds:
                self._holding.discard(sid)

    def _passivate_idle(self, idle_before: float) -> None:
        assert self._writer is not None
        for sid, slot in list(self._shows.items()):
            if (
                slot.last_used < idle_before
                and not slot.seatmap.holds
                and not self._writer.has_pending(sid)
            ):
                del self._shows[sid]

    # -- reads -----------------------------------------------------------------------------------

    async def snapshot(self, show_id: int, request_id: str | None = None) -> Snapshot:
        """The show's state now (loading it first if needed); ``request_id``: the request
        that asks, named on the records the loading logs."""
        await self._ensure_started()
        token = REQUEST_ID.set(request_id)
        try:
            problems = await self._activate_all({show_id} - set(self._shows))
        finally:
            REQUEST_ID.reset(token)
        slot = self._shows.get(show_id)
        if slot is None:
            raise problems.get(show_id) or self._absent(show_id)
        slot.seatmap.expire(time.time())
        assert self._writer is not None
        self._writer.append(slot.meta, slot.seatmap.pull_events())
        return slot.seatmap.snapshot()

    async def activate(self, show_id: int) -> int:
        """Load the show now (before a flash sale opens); returns its version."""
        return (await self.snapshot(show_id)).version

    async def describe(self, top: int = 0) -> dict[str, Any]:
        """What the host runs and how it is doing, as plain values (for the gateways'
        ``/metrics`` and ``seatserver status``); never starts the host. ``top``: also that
        many of its busiest shows (commands a second lately, live holds, version, status).
        Histograms are ``actors.stats.Buckets.export()`` dicts."""
        if self._node is None:
            self._node = _ray_node()
        writer = self._writer
        out: dict[str, Any] = {
            "name": self.name,
            "pid": os.getpid(),
            "node_id": self._node[0],
            "node_ip": self._node[1],
            "started": writer is not None,
            "uptime_s": time.time() - self._born,
            "active_shows": len(self._shows),
            "loading_shows": len(self._loading),
            "holding_shows": len(self._holding),
            "disowned_shows": len(self._disowned),
            "calls": self._calls,
            "call_commands": self._call_sizes.export(),
            "commands": [[kind, outcome, n] for (kind, outcome), n in self._outcomes.items()],
            "decisions": {kind: b.export() for kind, b in self._decisions.items()},
            "backlog": 0 if writer is None else writer.backlog,
            "lag_s": 0.0 if writer is None else writer.oldest_pending_s,
            "flushes": 0 if writer is None else writer.flushes,
            "events_written": 0 if writer is None else writer.written,
            "flush_failures": 0 if writer is None else writer.failures,
            "events": {} if writer is None else dict(writer.events),
            "flush_lag": None if writer is None else writer.lag.export(),
            "flush_events": None if writer is None else writer.batches.export(),
        }
        if top > 0:
            out["top_shows"] = self._busiest(top)
        return out

    def _busiest(self, top: int) -> list[dict[str, Any]]:
        now = time.monotonic()
        per_s = math.log(2) / LOAD_HALF_LIFE_S  # a steady rate r keeps load at r / per_s
        loads = (
            (slot.load * 0.5 ** ((now - slot.load_at) / LOAD_HALF_LIFE_S), sid, slot)
            for sid, slot in self._shows.items()
        )
        return [
            {
                "show_id": sid,
                "per_s": round(load * per_s, 3),
                "holds": len(slot.seatmap.holds),
                "version": slot.seatmap.version,
                "status": slot.seatmap.status,
            }
            for load, sid, slot in heapq.nlargest(top, loads, key=lambda item: item[0])
        ]

    async def stats(self) -> dict[str, Any]:
        writer = await self._ensure_started()
        return {
            "name": self.name,
            "pid": os.getpid(),
            "active_shows": len(self._shows),
            "backlog": writer.backlog,
            "flush_failures": writer.failures,
            "flushes": writer.flushes,
            "events_written": writer.written,
        }

    async def flush(self) -> None:
        """Write everything pending now (tests, orderly shutdown)."""
        writer = await self._ensure_started()
        while writer.backlog:
            await writer.flush_once()
