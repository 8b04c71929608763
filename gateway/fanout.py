"""The seat-map fan-out: one live mirror per watched show in this process, fed by one Redis
subscription, serving the REST seat map from memory and pushing deltas to any number of
websockets.

    fanout = Fanout(redis, engine.snapshot, make_details_loader(pool))
    version, body = await fanout.seatmap(show_id)   # JSON bytes, encoded once per version
    await fanout.watch(show_id, ws)                  # a prepared websocket, until it closes

A *mirror* subscribes to ``actors.channel(show_id, channel_prefix)`` first, waits for Redis to
confirm, then fetches the actor's snapshot. The actor publishes after each write-behind flush,
so its snapshot may be ahead of the deltas: those at or below the mirror's version are dropped,
the next one is applied. A gap in versions, a ``StatusChanged`` or a re-subscription after a
lost Redis connection refetches the snapshot and pushes it to every socket of the show. A mirror
without sockets lingers ``linger_s`` after its last read, then unsubscribes.

Every message is encoded once, as a whole websocket frame, and written straight to each
socket's transport: a delta to 5,000 sockets is 5,000 ``transport.write`` calls of one
``bytes`` object, with no task, coroutine or copy per socket. A socket whose transport is
backed up gets its frames queued, at most ``queue_limit`` of them; a frame that finds the queue
full replaces it with a resync and a snapshot; a second such resync within ``RESYNC_WINDOW_S``,
or a backlog older than ``SEND_TIMEOUT_S``, drops the socket (1013 "too slow").

Server → client: ``snapshot`` (the REST seat map plus ``"type"``), ``delta``, ``heartbeat``,
``resync``, ``pong``, ``error``. Client → server: ``{"type": "resync"}``, ``{"type": "ping"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

import actors
import storage
from gateway.errors import describe, envelope
from gateway.serialize import seatmap as seatmap_json
from gateway.showinfo import ShowInfo

log = logging.getLogger(__name__)

Snapshotter = Callable[[int], Awaitable[actors.Snapshot]]
DetailsLoader = Callable[[int], Awaitable[storage.ShowDetails]]

MAX_CLIENT_MESSAGE = 4096  # bytes; a larger client message is refused (invalid_message)
MAX_FRAME = 64 * 1024  # bytes; aiohttp closes with 1009 above this
BAD_MESSAGES_ALLOWED = 5  # invalid client messages answered before closing with 1008
WRITE_HIGH = 64 * 1024  # bytes waiting in a transport above which frames wait in the queue
SEND_TIMEOUT_S = 5.0  # a socket backed up this long is dropped
RESYNC_WINDOW_S = 10.0  # a second forced resync within this window drops the socket
CLOSE_GRACE_S = 2.0  # a closing socket whose peer does not answer is aborted after this
SUBSCRIBE_TIMEOUT_S = 5.0
SNAPSHOT_TIMEOUT_S = 10.0
DETAILS_REFRESH_S = 30.0  # the static part of a watched show is reread this often
RETRY_S = (0.05, 0.2, 1.0, 2.0)  # backoff of snapshot refetches and the Redis reader

CLOSE_SHUTDOWN = (1001, b"server shutting down")
CLOSE_POLICY = (1008, b"too many invalid messages")
CLOSE_TOO_SLOW = (1013, b"too slow")
CLOSE_BAD_SHOW = 4400
CLOSE_UNKNOWN_SHOW = 4404


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked, uncompressed text frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def frame(body: dict[str, Any]) -> bytes:
    return text_frame(json.dumps(body).encode())


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "error", **envelope(code, message, details)}


PONG = frame({"type": "pong"})
FELL_BEHIND = frame({"type": "resync", "reason": "fell_behind"})


def make_details_loader(pool: Any, ttl_s: float = 30.0) -> DetailsLoader:
    """``await load(show_id)`` → ``storage.ShowDetails`` from ``pool``, cached ``ttl_s`` per
    show, one query for concurrent misses; ``storage.NotFound`` for an unknown show."""
    return ShowInfo(pool, ttl_s=ttl_s)


class _Peer:
    """One websocket: writes frames straight to its transport while it keeps up, else queues
    them (bounded), and is dropped when it falls behind twice or stays backed up."""

    __slots__ = (
        "ws",
        "transport",
        "mirror",
        "fanout",
        "queue",
        "dead",
        "blocked_since",
        "last_resync",
        "bad",
        "flusher",
    )

    def __init__(self, ws: web.WebSocketResponse, mirror: _Mirror, fanout: Fanout) -> None:
        self.ws = ws
        # The websocket's own transport: one pre-built frame goes to thousands of them.
        self.transport: asyncio.Transport = ws._writer.transport  # type: ignore[union-attr]
        self.mirror = mirror
        self.fanout = fanout
        self.queue: deque[bytes] = deque()
        self.dead = False
        self.blocked_since = 0.0  # monotonic time the queue became non-empty
        self.last_resync = -RESYNC_WINDOW_S
        self.bad = 0
        self.flusher: asyncio.Task[None] | None = None

    def push(self, data: bytes) -> None:
        """Send one frame now, or queue it behind the backlog."""
        if self.dead:
            return
        transport = self.transport
        if self.ws.closed or transport.is_closing():
            self.dead = True
        elif self.queue or transport.get_write_buffer_size() > WRITE_HIGH:
            self._enqueue(data)
        else:
            transport.write(data)

    def resync(self) -> None:
        """A fresh snapshot, superseding anything queued (the client asked for it)."""
        self.queue.clear()
        self.push(self.mirror.snapshot_frame())

    def _enqueue(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.queue:
            self.blocked_since = now
        elif now - self.blocked_since > SEND_TIMEOUT_S:
            self.fanout._drop(self, "its send was blocked too long")
            return
        if len(self.queue) >= self.fanout.queue_limit:
            if now - self.last_resync < RESYNC_WINDOW_S:
                self.fanout._drop(self, "it fell behind twice")
                return
            self.last_resync = now
            self.fanout.resyncs += 1
            self.queue.clear()  # the snapshot includes whatever was queued
            self.queue.append(FELL_BEHIND)
            data = self.mirror.snapshot_frame()
        self.queue.append(data)
        if self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        delay = RETRY_S[0] / 10
        try:
            while self.queue and not self.dead:
                transport = self.transport
                if self.ws.closed or transport.is_closing():
                    self.dead = True
                elif transport.get_write_buffer_size() <= WRITE_HIGH:
                    transport.write(self.queue.popleft())
                    delay = RETRY_S[0] / 10
                elif time.monotonic() - self.blocked_since > SEND_TIMEOUT_S:
                    self.fanout._drop(self, "its send was blocked too long")
                else:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_S[1])
        finally:
            self.flusher = None

    def stop(self) -> None:
        self.dead = True
        self.queue.clear()
        if self.flusher is not None and self.flusher is not asyncio.current_task():
            self.flusher.cancel()


class _Mirror:
    """A show's seat states at one version, and the sockets watching it."""

    def __init__(self, show_id: int, channel: str) -> None:
        self.show_id = show_id
        self.channel = channel.encode()
        self.peers: dict[_Peer, None] = {}
        self.details: storage.ShowDetails | None = None
        self.details_at = 0.0
        self.version = -1
        self.status = ""
        self.seats: dict[str, str] = {}
        self.pending: list[dict[str, Any]] | None = []  # deltas that arrive while (re)loading
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Task[None] | None = None  # the first load
        self.reload: asyncio.Task[None] | None = None
        self.last_used = time.monotonic()
        self._body: bytes | None = None
        self._frame: bytes | None = None

    @property
    def live(self) -> bool:
        ready = self.ready
        return (
            ready is not None and ready.done() and not ready.cancelled() and not ready.exception()
        )

    def body(self) -> bytes:
        """The REST seat map at this version, encoded once."""
        if self._body is None:
            assert self.details is not None
            body = seatmap_json(self.details, self.version, self.status, self.seats)
            self._body = json.dumps(body).encode()
        return self._body

    def snapshot_frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(b'{"type": "snapshot", ' + self.body()[1:])
        return self._frame

    def changed(self) -> None:
        self._body = self._frame = None

    def install(self, snapshot: actors.Snapshot) -> None:
        self.version = snapshot.version
        self.status = snapshot.status
        self.seats = {label: str(state) for label, state in snapshot.seats.items()}
        self.changed()

    def apply(self, delta: dict[str, Any]) -> None:
        seats = self.seats
        for label, state in delta["changes"]:
            seats[label] = state
        self.version = delta["version"]
        self.changed()

    def follows(self, delta: dict[str, Any]) -> bool:
        """Whether ``delta`` is the next one and carries all it changed (a status does not)."""
        return delta["version"] == self.version + 1 and delta.get("kind") != "StatusChanged"


class Fanout:
    def __init__(
        self,
        redis: Any,
        snapshot: Snapshotter,
        details: DetailsLoader,
        *,
        queue_limit: int = 256,
        heartbeat_s: float = 15.0,
        linger_s: float = 30.0,
        channel_prefix: str | None = None,
    ) -> None:
        """``channel_prefix``: that of the hosts' delta channels (``HostConfig.channel_prefix``,
        the deployment's ``redis_prefix``); None for ``actors.channel``'s default."""
        if queue_limit < 2:
            raise ValueError("queue_limit must leave room for a resync and a snapshot")
        self._redis = redis
        self._snapshot = snapshot
        self._details = details
        self.queue_limit = queue_limit
        self._heartbeat_s = heartbeat_s
        self._linger_s = linger_s
        self._prefix = channel_prefix
        self._mirrors: dict[int, _Mirror] = {}
        self._by_channel: dict[bytes, _Mirror] = {}
        self._pubsub: Any = None
        self._commands: deque[tuple[str, bytes]] = deque()  # (un)subscriptions, in order
        self._sender: asyncio.Task[None] | None = None
        self._connected: asyncio.Event | None = None  # set once the reader has a connection
        self._unsubscribed = asyncio.Event()  # Redis confirmed that no channel is left
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # reader, housekeeping, reloads, refreshes
        self._closing: set[asyncio.Task[Any]] = set()  # sockets being closed
        self._started = False
        self._closed = False
        self.resyncs = 0
        self.drops = 0
        self._counts = {"deltas": 0, "reloads": 0, "fanout_us_last": 0, "fanout_us_max": 0}

    # -- the public face --------------------------------------------------------------------

    async def seatmap(self, show_id: int) -> tuple[int, bytes]:
        """(version, JSON bytes of ``gateway.serialize.seatmap``) from the live mirror."""
        mirror = self._mirrors.get(show_id)
        if mirror is None or not mirror.live:
            mirror = await self._mirror(show_id)
        mirror.last_used = time.monotonic()
        return mirror.version, mirror.body()

    async def watch(self, show_id: int, ws: web.WebSocketResponse) -> None:
        """Serve one prepared websocket until it closes: a snapshot, then deltas in order."""
        if self._closed:
            await close_socket(ws, None, *CLOSE_SHUTDOWN)
            return
        try:
            mirror = await self._mirror(show_id)
        except Exception as exc:
            if self._closed:
                await close_socket(ws, None, *CLOSE_SHUTDOWN)
            else:
                await refuse(ws, exc)
            return
        peer = _Peer(ws, mirror, self)
        mirror.peers[peer] = None
        peer.push(mirror.snapshot_frame())
        try:
            await self._serve(peer)
        finally:
            mirror.peers.pop(peer, None)
            mirror.last_used = time.monotonic()
            peer.stop()

    async def close(self) -> None:
        """Close every socket with 1001, unsubscribe and stop every task."""
        if self._closed:
            return
        self._closed = True
        tasks = [task for task in self._tasks if task is not self._reader]
        tasks += [m.ready for m in self._mirrors.values() if m.ready and not m.ready.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        peers = [peer for mirror in self._mirrors.values() for peer in mirror.peers]
        for peer in peers:
            peer.mirror.peers.pop(peer, None)
            peer.stop()
        await asyncio.gather(
            *(close_socket(p.ws, p.transport, *CLOSE_SHUTDOWN) for p in peers),
            *self._closing,
            return_exceptions=True,
        )
        self._mirrors.clear()
        self._by_channel.clear()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(BaseException):
                await self._sender
        if self._pubsub is not None:
            await self._unsubscribe_all()
            await self._pubsub.aclose()

    async def _unsubscribe_all(self) -> None:
        """Unsubscribe and wait (a little) for Redis to confirm, then stop the reader."""
        assert self._connected is not None and self._reader is not None
        if self._connected.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_GRACE_S):
                    self._unsubscribed.clear()
                    await self._pubsub.unsubscribe()
                    await self._unsubscribed.wait()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    def channel(self, show_id: int) -> str:
        """The Redis channel of the show's deltas."""
        if self._prefix is None:
            return actors.channel(show_id)
        return actors.channel(show_id, self._prefix)

    def stats(self) -> dict[str, int]:
        peers = [peer for mirror in self._mirrors.values() for peer in mirror.peers]
        return {
            "mirrors": len(self._mirrors),
            "subscriptions": len(self._by_channel),
            "sockets": len(peers),
            "resyncs": self.resyncs,
            "drops": self.drops,
            "queued": sum(len(peer.queue) for peer in peers),
            "queued_max": max((len(peer.queue) for peer in peers), default=0),
            "buffered_max": max((p.transport.get_write_buffer_size() for p in peers), default=0),
            **self._counts,
        }

    # -- one socket -------------------------------------------------------------------------

    async def _serve(self, peer: _Peer) -> None:
        async for msg in peer.ws:
            if peer.dead:
                return
            if msg.type is WSMsgType.TEXT:
                self._answer(peer, msg.data)
            elif msg.type is WSMsgType.BINARY:
                self._invalid(peer, "binary messages are not understood")
            else:  # ERROR: aiohttp closes the socket itself
                return
            if peer.bad > BAD_MESSAGES_ALLOWED:
                peer.mirror.peers.pop(peer, None)
                peer.stop()
                await close_socket(peer.ws, peer.transport, *CLOSE_POLICY)
                return

    def _answer(self, peer: _Peer, text: str) -> None:
        if len(text) > MAX_CLIENT_MESSAGE or len(text.encode()) > MAX_CLIENT_MESSAGE:
            self._invalid(peer, f"a message is at most {MAX_CLIENT_MESSAGE} bytes")
            return
        try:
            body = json.loads(text)
        except ValueError:
            self._invalid(peer, "a message is a JSON object")
            return
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "ping":
            peer.push(PONG)
        elif kind == "resync":
            peer.resync()
        else:
            self._invalid(peer, 'a message is {"type": "resync"} or {"type": "ping"}')

    def _invalid(self, peer: _Peer, message: str) -> None:
        peer.bad += 1
        details = {"allowed": ["resync", "ping"], "left": max(0, BAD_MESSAGES_ALLOWED - peer.bad)}
        peer.push(frame(error_body("invalid_message", message, details)))

    def _drop(self, peer: _Peer, why: str) -> None:
        """Close a socket that cannot keep up (from a broadcast: its handler is receiving)."""
        self.drops += 1
        log.info("dropping a websocket of show %d: %s", peer.mirror.show_id, why)
        peer.mirror.peers.pop(peer, None)
        peer.stop()
        task = asyncio.ensure_future(close_socket(peer.ws, peer.transport, *CLOSE_TOO_SLOW))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- mirrors ----------------------------------------------------------------------------

    async def _mirror(self, show_id: int) -> _Mirror:
        """The show's live mirror; concurrent first reads share one load."""
        if self._closed:
            raise storage.RedisUnavailable("the gateway is shutting down")
        self._start()
        while True:
            mirror = self._mirrors.get(show_id)
            if mirror is None:
                mirror = self._mirrors[show_id] = _Mirror(show_id, self.channel(show_id))
                mirror.ready = asyncio.get_running_loop().create_task(self._load(mirror))
                mirror.ready.add_done_callback(_retrieve)
            assert mirror.ready is not None
            try:
                await asyncio.shield(mirror.ready)
            except asyncio.CancelledError:
                if self._closed and mirror.ready.cancelled():
                    raise storage.RedisUnavailable("the gateway is shutting down") from None
                raise
            if self._mirrors.get(show_id) is mirror:  # not dropped while we waited
                mirror.last_used = time.monotonic()
                return mirror

    async def _load(self, mirror: _Mirror) -> None:
        try:
            mirror.details = await self._details(mirror.show_id)
            mirror.details_at = time.monotonic()
            self._by_channel[mirror.channel] = mirror
            self._command("subscribe", mirror.channel)
            try:
                await asyncio.wait_for(asyncio.shield(mirror.subscribed), SUBSCRIBE_TIMEOUT_S)
            except TimeoutError:
                raise storage.RedisUnavailable(
                    "Redis did not confirm the subscription to the show's deltas",
                    {"show_id": mirror.show_id},
                ) from None
            for attempt in range(len(RETRY_S)):
                if await self._fetch(mirror):
                    return
                await asyncio.sleep(RETRY_S[attempt])
            raise actors.InconsistentState("the show's deltas keep missing versions", {})
        except BaseException:
            self._forget(mirror)
            raise

    async def _fetch(self, mirror: _Mirror) -> bool:
        """Install a fresh snapshot and the deltas that arrived during the call; False when
        those have a gap (fetch again)."""
        # Whatever arrived before this call is in the snapshot: the actor publishes only
        # after it applied an event.
        mirror.pending = []
        try:
            snapshot = await asyncio.wait_for(self._snapshot(mirror.show_id), SNAPSHOT_TIMEOUT_S)
        except TimeoutError:
            raise actors.HostUnavailable(
                "the show did not answer in time", {"show_id": mirror.show_id}
            ) from None
        pending, mirror.pending = mirror.pending, None
        mirror.install(snapshot)
        for delta in pending:
            if delta["version"] <= mirror.version:
                continue
            if not mirror.follows(delta):
                mirror.pending = []
                return False
            mirror.apply(delta)
        return True

    def _start_reload(self, mirror: _Mirror, why: str) -> None:
        if mirror.reload is None and mirror.live:
            log.info("show %d: fetching a fresh snapshot (%s)", mirror.show_id, why)
            mirror.pending = []
            mirror.reload = self._spawn(self._reload(mirror))

    async def _reload(self, mirror: _Mirror) -> None:
        attempt = 0
        try:
            while not await self._fetch_quietly(mirror):
                await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1
        finally:
            mirror.reload = None
        self._counts["reloads"] += 1
        self._broadcast(mirror, mirror.snapshot_frame())

    async def _fetch_quietly(self, mirror: _Mirror) -> bool:
        try:
            return await self._fetch(mirror)
        except Exception as exc:
            log.warning("show %d: snapshot refetch failed: %s", mirror.show_id, exc)
            mirror.pending = []
            return False

    def _forget(self, mirror: _Mirror) -> None:
        if self._mirrors.get(mirror.show_id) is mirror:
            del self._mirrors[mirror.show_id]
        if self._by_channel.get(mirror.channel) is mirror:
            del self._by_channel[mirror.channel]
            if not self._closed:
                self._command("unsubscribe", mirror.channel)
        if mirror.reload is not None:
            mirror.reload.cancel()

    # -- Redis --------------------------------------------------------------------------------

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._pubsub = self._redis.pubsub()
            self._connected = asyncio.Event()
            self._reader = self._spawn(self._read())
            self._spawn(self._housekeep())

    def _command(self, verb: str, channel: bytes) -> None:
        """Queue a (un)subscription; one task sends them in the order they were asked."""
        self._commands.append((verb, channel))
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_commands())

    async def _send_commands(self) -> None:
        assert self._connected is not None
        try:
            await self._connected.wait()  # one connection: the reader makes it
            while self._commands:
                verb, channel = self._commands.popleft()
                try:
                    await getattr(self._pubsub, verb)(channel)
                except Exception as exc:  # a subscribe that fails times out its load
                    log.warning("Redis %s %s failed: %s", verb, channel.decode(), exc)
        finally:
            self._sender = None

    async def _read(self) -> None:
        """The one reader of the subscription connection."""
        assert self._connected is not None
        failures = 0
        while True:
            try:
                if not self._connected.is_set():
                    await self._pubsub.connect()
                    self._connected.set()
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis-py reconnects and resubscribes on the next read
                delay = RETRY_S[min(failures, len(RETRY_S) - 1)]
                failures += 1
                log.warning("Redis subscription failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if message is not None:
                self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "unsubscribe" and message["data"] == 0:
            self._unsubscribed.set()
        channel = message["channel"]
        if isinstance(channel, str):
            channel = channel.encode()
        mirror = self._by_channel.get(channel)
        if mirror is None:
            return
        if kind == "message":
            self._on_delta(mirror, message["data"])
        elif kind == "subscribe":
            if not mirror.subscribed.done():
                mirror.subscribed.set_result(None)
            else:  # a new connection: deltas may have been lost meanwhile
                self._start_reload(mirror, "Redis resubscribed")

    def _on_delta(self, mirror: _Mirror, data: bytes) -> None:
        try:
            delta = json.loads(data)
            delta["version"] = int(delta["version"])
        except (ValueError, KeyError, TypeError):
            log.warning("show %d: ignoring a malformed delta %r", mirror.show_id, data[:200])
            return
        if mirror.pending is not None:
            mirror.pending.append(delta)
        elif delta.get("kind") == "ShowActivated":  # its host (re)loaded it: versions restart
            self._start_reload(mirror, f"show reactivated at version {delta['version']}")
        elif delta["version"] <= mirror.version:
            return  # already in the snapshot
        elif not mirror.follows(delta):
            self._start_reload(mirror, f"version {delta['version']} after {mirror.version}")
        else:
            mirror.apply(delta)
            self._counts["deltas"] += 1
            out = {"type": "delta", "show_id": mirror.show_id, "version": delta["version"]}
            out["kind"] = delta.get("kind")
            out["changes"] = delta["changes"]
            self._broadcast(mirror, frame(out))
            if out["kind"] == "PricesChanged":  # in Postgres before the actor took them
                forget = getattr(self._details, "forget", None)
                if forget is not None:
                    forget(mirror.show_id)
                self._spawn(self._refresh_details(mirror))

    def _broadcast(self, mirror: _Mirror, data: bytes) -> None:
        started = time.perf_counter()
        for peer in tuple(mirror.peers):
            peer.push(data)
        took = int((time.perf_counter() - started) * 1e6)
        self._counts["fanout_us_last"] = took
        self._counts["fanout_us_max"] = max(took, self._counts["fanout_us_max"])

    # -- housekeeping -------------------------------------------------------------------------

    async def _housekeep(self) -> None:
        """Heartbeats, lingering mirrors, and the static part of watched shows."""
        tick = max(0.01, min(1.0, self._heartbeat_s / 2, self._linger_s / 2))
        next_beat = time.monotonic() + self._heartbeat_s
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            beat = now >= next_beat
            if beat:
                next_beat = now + self._heartbeat_s
            for mirror in list(self._mirrors.values()):
                if not mirror.live:
                    continue
                if not mirror.peers:
                    if now - mirror.last_used > self._linger_s:
                        self._forget(mirror)
                    continue
                if beat:
                    at = round(time.time(), 3)
                    body = {"type": "heartbeat", "version": mirror.version, "at": at}
                    self._broadcast(mirror, frame(body))
                if now - mirror.details_at > DETAILS_REFRESH_S:
                    mirror.details_at = now
                    self._spawn(self._refresh_details(mirror))

    async def _refresh_details(self, mirror: _Mirror) -> None:
        try:
            details = await self._details(mirror.show_id)
        except Exception as exc:
            log.warning("show %d: rereading its details failed: %s", mirror.show_id, exc)
            return
        if details != mirror.details:
            mirror.details = details
            mirror.changed()
            self._broadcast(mirror, mirror.snapshot_frame())

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fan-out task failed", exc_info=task.exception())


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a load's error as seen: its waiters got it, or there were none."""
    if not task.cancelled():
        task.exception()


async def refuse(ws: web.WebSocketResponse, exc: BaseException, code: int | None = None) -> None:
    """Tell the client why in the error envelope, then close: 4404 for an unknown show, 1013
    (try again later) when a service is unavailable, 1011 otherwise, unless ``code`` is given."""
    status, body, _ = describe(exc)
    if code is None:
        code = CLOSE_UNKNOWN_SHOW if status == 404 else 1013 if status == 503 else 1011
    with contextlib.suppress(Exception):
        await ws.send_str(json.dumps({"type": "error", **body}))
        await ws.close(code=code, message=body["error"]["code"].encode())


async def close_socket(
    ws: web.WebSocketResponse, transport: asyncio.Transport | None, code: int, reason: bytes
) -> None:
    """Close with ``code``; a peer that does not take it within the grace is cut off."""
    try:
        await asyncio.wait_for(ws.close(code=code, message=reason, drain=False), CLOSE_GRACE_S)
    except Exception:
        if transport is not None:
            _cut_off(transport)
        return
    if transport is not None and transport.get_write_buffer_size():
        # Still flushing to a peer that may never read: give it the grace, then cut it off.
        asyncio.get_running_loop().call_later(CLOSE_GRACE_S, _cut_off, transport)


def _cut_off(transport: asyncio.Transport) -> None:
    """Abort a transport that is open or still flushing (not one already gone)."""
    if transport.get_write_buffer_size() or not transport.is_closing():
        transport.abort()
