"""Request ids, request metrics, and the one error envelope for whatever a handler did not
answer itself.

The request id is also set in ``actors.REQUEST_ID`` for the whole request: every log record
written meanwhile carries it, and so does every command the request sends to a show host.
Each request is counted by its route's template (never the raw path) and status, and timed
(``gateway.metrics``).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from actors import REQUEST_ID as REQUEST_ID_VAR
from gateway import keys, metrics
from gateway.endpoint import error_response
from gateway.errors import ApiError, MethodNotAllowed, ResourceNotFound
from gateway.logsafe import stack, why

log = logging.getLogger("gateway")

REQUEST_ID = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PROCESS = os.urandom(6).hex()  # request ids: this process's random part and a counter
_COUNTER = itertools.count(1)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Carry the caller's request id (or a new one) through logs and back in the answer; put
    unknown routes, wrong methods and unexpected failures in the error envelope: never a bare
    500 page, never a traceback to the client. (One middleware: each costs a wrapper a call.)"""
    given = request.headers.get(REQUEST_ID, "")
    rid = given if given and _REQUEST_ID.match(given) else f"{_PROCESS}-{next(_COUNTER):x}"
    request[keys.REQUEST_ID] = rid
    token = REQUEST_ID_VAR.set(rid)  # every record logged meanwhile carries it
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            _finish(request, token, started, exc.status)
            raise
        response = error_response(_http_error(request, exc))
    except asyncio.CancelledError:
        _finish(request, token, started, 499)  # the client went away before the answer
        raise
    except Exception as exc:
        # The route's template and the error's type and frames, never its message nor the
        # raw path: either may quote what the caller sent (gateway.logsafe).
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "-"
        response = error_response(exc)
        if response.status == 503:  # Redis or Postgres out of reach: told to retry, no bug
            log.warning("%s %s (request %s): 503, %s", request.method, route, rid, why(exc))
        else:
            log.error(
                "unhandled error in %s %s (request %s): %s\n%s",
                request.method,
                route,
                rid,
                why(exc),
                stack(exc),
            )
    if not response.prepared:
        response.headers[REQUEST_ID] = rid
    _finish(request, token, started, response.status, response)
    return response


def _finish(
    request: web.Request,
    token: contextvars.Token[str | None],
    started: float,
    status: int,
    response: web.StreamResponse | None = None,
) -> None:
    """The request is answered: its id leaves the context; count it, and time it unless it
    was a websocket (whose "answer" lasts as long as the connection)."""
    REQUEST_ID_VAR.reset(token)
    timed = not isinstance(response, web.WebSocketResponse)
    metrics.observe_request(request, status, time.perf_counter() - started, timed=timed)


def _http_error(request: web.Request, exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return ResourceNotFound("no such route", {"path": request.path})
    if exc.status == 405:
        return MethodNotAllowed(
            "method not allowed", {"method": request.method, "path": request.path}
        )
    return ApiError(exc.reason, code="http_error", status=exc.status)
