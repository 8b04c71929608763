"""The websocket of a show's seat map, ``GET /ws/shows/{show_id}``, and the fan-out's place in
the application's life.

    app.cleanup_ctx.append(fanout_ctx)
    app.router.add_get("/ws/shows/{show_id}", show_socket)

On connect the client gets the seat map snapshot with its version, then deltas in version
order, heartbeats, and a resync followed by a fresh snapshot when it fell behind (see
``gateway.fanout`` for every message). A show id that is not a positive integer gets an error
message and close code 4400; an unknown show, an error message and 4404.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import keys, metrics
from gateway.errors import ValidationFailed
from gateway.fanout import (
    CLOSE_BAD_SHOW,
    CLOSE_GRACE_S,
    MAX_FRAME,
    DetailsLoader,
    Fanout,
    make_details_loader,
    refuse,
)
from gateway.ops.analytics_funnel import count_view

_SHOW_ID = re.compile(r"[1-9][0-9]{0,17}")


async def show_socket(request: web.Request) -> web.WebSocketResponse:
    """Serve one browser's live seat map until either side closes."""
    config = request.app[keys.CONFIG]
    ws = web.WebSocketResponse(
        heartbeat=config.ws_heartbeat_s,  # ping/pong, so that dead peers are noticed
        compress=False,  # every socket gets the same pre-built frames
        max_msg_size=MAX_FRAME,
        timeout=CLOSE_GRACE_S,
    )
    await ws.prepare(request)
    text = request.match_info["show_id"]
    if not _SHOW_ID.fullmatch(text):
        error = ValidationFailed("show_id must be a positive integer", {"show_id": text[:32]})
        await refuse(ws, error, code=CLOSE_BAD_SHOW)
        return ws
    count_view(request.app, int(text))  # unknown shows are dropped when the count is flushed
    sockets = request.app[keys.SOCKETS]
    sockets.add(ws)
    metrics.SEATMAP_SOCKETS.inc()
    try:
        await request.app[keys.FANOUT].watch(int(text), ws)
    finally:
        sockets.discard(ws)
        metrics.SEATMAP_SOCKETS.dec()
    return ws


async def fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the fan-out into ``app[keys.FANOUT]``; close its sockets and subscription at
    cleanup. Uses ``app[keys.SHOW_INFO]`` for show details when the app has one."""
    config = app[keys.CONFIG]
    engine: Any = app[keys.ENGINE]
    shared: Any = app.get(keys.SHOW_INFO)  # the REST views' cache, when the app has one
    details: DetailsLoader = shared or make_details_loader(app[keys.POOL])
    fanout = Fanout(
        app[keys.REDIS],
        engine.snapshot,
        details,
        queue_limit=config.ws_queue_limit,
        heartbeat_s=config.ws_heartbeat_s,
        channel_prefix=config.redis_prefix,  # the hosts publish under the same prefix
    )
    app[keys.FANOUT] = fanout
    try:
        yield
    finally:
        await fanout.close()
