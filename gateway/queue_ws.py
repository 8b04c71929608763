"""The waiting room's live side in one gateway process: the serving counter's ticks, and the
queue websocket, ``GET /ws/shows/{show_id}/queue``.

Every gateway ticks the lines it has seen used in the last ``ACTIVE_S`` (a join, a poll, a
watcher) every ``queue_tick_s``; a tick is an atomic script whose admissions follow from the
time elapsed, so many gateways ticking one line admit exactly as one would.

The websocket: the client sends ``{"type": "auth", "access_token": "…"}`` first (browsers
cannot set headers on a websocket), then gets ``{"type": "queue", …}`` (the ``QueueOut`` of
the HTTP API) at once and every ``queue_push_s`` after: position, wait, progress, and once
admitted the admission token. An open socket is the visitor's heartbeat. Close codes: 4400 a
bad show id or first message, 4401 not logged in, 4404 no such show, 4409 not a flash sale.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from actors import SeatState
from gateway import keys, metrics
from gateway.errors import ApiError, BadRequest, ValidationFailed, describe
from gateway.fanout import CLOSE_GRACE_S, CLOSE_TOO_SLOW, MAX_FRAME, SEND_TIMEOUT_S
from gateway.ops.analytics_funnel import count_admitted
from gateway.waitingroom import WaitingRoom
from storage import flash_sales

log = logging.getLogger(__name__)

ACTIVE_S = 120.0  # a line nobody here used for this long is left to other gateways
SUPPLY_S = 1.0  # how often the seats left are counted
AUTH_TIMEOUT_S = 10.0
_SHOW_ID = re.compile(r"[1-9][0-9]{0,17}")
CLOSE_BAD = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_NOT_FLASH_SALE = 4409


class QueueHub:
    def __init__(
        self, room: WaitingRoom, *, tick_s: float, push_s: float, engine: Any = None
    ) -> None:
        self._room = room
        self._engine = engine  # a ShowClient: what the show has left to sell
        self._tick_s = tick_s
        self._push_s = push_s
        self._active: dict[int, float] = {}  # show → when last used here (monotonic)
        self._watchers: dict[int, dict[web.WebSocketResponse, int]] = {}  # show → socket → user
        self._tasks: list[asyncio.Task[None]] = []

    def touch(self, show_id: int) -> None:
        self._active[show_id] = time.monotonic()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(self._tick_s, self._tick_all), name="queue-ticks"),
            asyncio.create_task(self._every(self._push_s, self._push_all), name="queue-push"),
        ]
        if self._engine is not None:
            self._tasks.append(
                asyncio.create_task(self._every(SUPPLY_S, self._supply_all), name="queue-supply")
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for show_id in self._active:
            metrics.queue_forgotten(show_id)

    async def _every(self, period: float, work: Any) -> None:
        while True:
            started = time.monotonic()
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("waiting room: %s failed", work.__name__)
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def _tick_all(self) -> None:
        cutoff = time.monotonic() - ACTIVE_S
        for show_id, used in list(self._active.items()):
            if used < cutoff and show_id not in self._watchers:
                del self._active[show_id]
                metrics.queue_forgotten(show_id)
                continue
            try:
                admitted, expired, waiting = await self._room.tick(show_id)
            except flash_sales.NotAFlashSale:
                self._active.pop(show_id, None)
                metrics.queue_forgotten(show_id)
            else:
                metrics.queue_ticked(show_id, admitted, expired, waiting)

    async def _supply_all(self) -> None:
        """Tell each line what its show has left: admission pauses while every seat left is
        in someone's hold, and a show with every seat booked is sold out."""
        for show_id in list(self._active):
            try:
                snapshot = await self._engine.snapshot(show_id)
            except Exception as exc:  # the show's host is away: leave the line as it is
                log.warning("waiting room: no seat count for show %d (%s)", show_id, exc)
                continue
            states = collections.Counter(snapshot.seats.values())
            supply = (
                "open"
                if states[SeatState.AVAILABLE]
                else "paused"
                if states[SeatState.HELD]
                else "sold_out"
            )
            with contextlib.suppress(flash_sales.NotAFlashSale):
                await self._room.set_supply(show_id, supply)

    async def _push_all(self) -> None:
        for show_id, sockets in list(self._watchers.items()):
            if not sockets:
                continue
            pairs = list(sockets.items())
            standings = await self._room.statuses(show_id, [user for _, user in pairs])
            # All at once: one backed-up socket must not hold up everyone else's news.
            await asyncio.gather(
                *(
                    _send(ws, {"type": "queue", **standing.public()})
                    for (ws, _), standing in zip(pairs, standings, strict=True)
                )
            )

    async def watch(self, ws: web.WebSocketResponse, show_id: int, user_id: int) -> None:
        """Push where ``user_id`` stands until the socket closes."""
        self.touch(show_id)
        standing = await self._room.status(show_id, user_id)
        await _send(ws, {"type": "queue", **standing.public()})
        self._watchers.setdefault(show_id, {})[ws] = user_id
        try:
            async for message in ws:
                if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break  # anything the client says after auth is ignored
        finally:
            sockets = self._watchers.get(show_id, {})
            sockets.pop(ws, None)
            if not sockets:
                self._watchers.pop(show_id, None)


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    """Send, or drop a socket backed up for ``SEND_TIMEOUT_S`` (its client reconnects or
    polls)."""
    if ws.closed:
        return
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await ws.send_str(json.dumps(message))
    except TimeoutError:
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_TOO_SLOW[0], message=CLOSE_TOO_SLOW[1])
    except (ConnectionError, RuntimeError):
        pass


async def _refuse(ws: web.WebSocketResponse, exc: BaseException, code: int) -> None:
    _, body, _ = describe(exc)
    with contextlib.suppress(Exception):
        await ws.send_str(json.dumps({"type": "error", **body}))
        await ws.close(code=code, message=body["error"]["code"].encode())


async def _first_message(ws: web.WebSocketResponse) -> str:
    """The access token of the client's first message."""
    try:
        message = await ws.receive(timeout=AUTH_TIMEOUT_S)
    except TimeoutError:
        raise BadRequest('send {"type": "auth", "access_token": ...} first') from None
    if message.type != WSMsgType.TEXT:
        raise BadRequest("the first message must be text")
    try:
        data = json.loads(message.data)
    except ValueError:
        raise BadRequest("the first message must be JSON") from None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("type") != "auth" or not isinstance(token, str):
        raise BadRequest('send {"type": "auth", "access_token": ...} first')
    return token


async def queue_socket(request: web.Request) -> web.WebSocketResponse:
    """One visitor's live standing in a flash sale's line."""
    config = request.app[keys.CONFIG]
    ws = web.WebSocketResponse(
        heartbeat=config.ws_heartbeat_s, max_msg_size=MAX_FRAME, timeout=CLOSE_GRACE_S
    )
    await ws.prepare(request)
    text = request.match_info["show_id"]
    if not _SHOW_ID.fullmatch(text):
        error = ValidationFailed("show_id must be a positive integer", {"show_id": text[:32]})
        await _refuse(ws, error, CLOSE_BAD)
        return ws
    show_id = int(text)
    sockets = request.app[keys.SOCKETS]
    sockets.add(ws)
    metrics.QUEUE_SOCKETS.inc()
    try:
        try:
            token = await _first_message(ws)
        except ApiError as exc:
            await _refuse(ws, exc, CLOSE_BAD)
            return ws
        try:
            principal = request.app[keys.AUTH].verify(token)
            details = await request.app[keys.SHOW_INFO](show_id)
            flash_sales.require_flash_sale(show_id, details.status)
        except Exception as exc:
            status = describe(exc)[0]
            code = {401: CLOSE_UNAUTHORIZED, 404: CLOSE_NOT_FOUND, 409: CLOSE_NOT_FLASH_SALE}
            await _refuse(ws, exc, code.get(status, 1011))
            if status >= 500:
                raise
            return ws
        await request.app[keys.QUEUE_HUB].watch(ws, show_id, principal.user_id)
    finally:
        sockets.discard(ws)
        metrics.QUEUE_SOCKETS.dec()
    return ws


async def queue_ctx(app: web.Application) -> AsyncIterator[None]:
    """The waiting room, the rate limiter and this process's hub."""
    from gateway.ratelimit import Limiter
    from gateway.redisbatch import ScriptBatcher

    config = app[keys.CONFIG]
    batch = ScriptBatcher(app[keys.REDIS])  # joins, polls and rate limits share pipelines
    room = WaitingRoom(
        app[keys.REDIS],
        app[keys.POOL],
        prefix=config.redis_prefix,
        secret=config.jwt_secret,
        place_ttl_s=config.queue_place_ttl_s,
        return_grace_s=config.queue_return_grace_s,
        batch=batch,
        on_admit=functools.partial(count_admitted, app),
    )
    app[keys.WAITING_ROOM] = room
    if config.rate_limits is not None:
        app[keys.LIMITER] = Limiter(
            app[keys.REDIS],
            config.redis_prefix,
            config.rate_limits,
            secret=config.jwt_secret,
            batch=batch,
        )
    hub = app[keys.QUEUE_HUB] = QueueHub(
        room, tick_s=config.queue_tick_s, push_s=config.queue_push_s, engine=app.get(keys.ENGINE)
    )
    hub.start()
    try:
        yield
    finally:
        await hub.close()
        batch.close()
