"""Request ids, and the one error envelope for whatever a handler did not answer itself."""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway import keys
from gateway.endpoint import error_response
from gateway.errors import ApiError, MethodNotAllowed, ResourceNotFound

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
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(_http_error(request, exc))
    except Exception as exc:
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, rid)
        response = error_response(exc)
    if not response.prepared:
        response.headers[REQUEST_ID] = rid
    return response


def _http_error(request: web.Request, exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return ResourceNotFound("no such route", {"path": request.path})
    if exc.status == 405:
        return MethodNotAllowed(
            "method not allowed", {"method": request.method, "path": request.path}
        )
    return ApiError(exc.reason, code="http_error", status=exc.status)
