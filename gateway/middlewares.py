"""Request ids, and the one error envelope for whatever a handler did not answer itself."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway import keys
from gateway.endpoint import error_response
from gateway.errors import ApiError, MethodNotAllowed, ResourceNotFound

log = logging.getLogger("gateway")

REQUEST_ID = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Carry the caller's request id (or a new one) through logs and back in the answer."""
    given = request.headers.get(REQUEST_ID, "")
    rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    request[keys.REQUEST_ID] = rid
    response = await handler(request)
    if not response.prepared:
        response.headers[REQUEST_ID] = rid
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes, wrong methods and unexpected failures in the envelope; never a bare
    500 page, never a traceback to the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error: ApiError
        if exc.status == 404:
            error = ResourceNotFound("no such route", {"path": request.path})
        elif exc.status == 405:
            error = MethodNotAllowed(
                "method not allowed", {"method": request.method, "path": request.path}
            )
        else:
            error = ApiError(exc.reason, code="http_error", status=exc.status)
        return error_response(error)
    except Exception as exc:
        log.exception(
            "unhandled error in %s %s (request %s)",
            request.method,
            request.path,
            request.get(keys.REQUEST_ID),
        )
        return error_response(exc)
