"""One table of endpoints drives both the aiohttp routes and the OpenAPI document.

An ``Endpoint`` names its method, path, handler and the pydantic models of its path, query,
body and answer. ``handle(endpoint)`` makes the aiohttp handler: it validates the input at the
edge (422 ``validation_failed`` with pydantic's errors as details), checks the
``Idempotency-Key`` of a state-changing call and replays the first answer, runs the view with a
``Call``, and turns what it returns (a dict, a list, bytes of JSON, or a response) and every
domain error into a response with the one error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway import audit, idempotency, keys, phases
from gateway.auth import Principal, require_user
from gateway.errors import BadRequest, PreconditionRequired, ValidationFailed, describe
from gateway.ratelimit import client_address

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Call:
    request: web.Request
    path: Any
    query: Any
    body: Any
    principal: Principal | None
    idempotency_key: str | None

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "the endpoint must require a user"
        return self.principal


View = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    view: View
    summary: str
    tag: str
    response: type[BaseModel] | None = None  # None: no content (204)
    status: int = 200
    path_model: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    # "none": public; "optional": a token is read when sent; any other: the roles allowed
    # ("user" allows every role).
    auth: tuple[str, ...] = ("none",)
    idempotency: str = "optional"  # "optional", "required" or "none"
    # The rate limit this call pays into ("login", "join", "hold"; see gateway.ratelimit).
    limit: str | None = None
    errors: tuple[int, ...] = ()
    extra_responses: dict[int, type[BaseModel]] = field(default_factory=dict)
    # Other content types the answer may come in, as text (e.g. "text/csv" for an export).
    media_types: tuple[str, ...] = ()
    # What the audit log calls this call ("personal_data.export", say): set on every endpoint
    # that reads personal data; staff endpoints that change something are audited under
    # their name when this is None.
    audit: str | None = None

    @property
    def name(self) -> str:
        return self.view.__name__

    @property
    def needs_user(self) -> bool:
        return self.auth not in (("none",), ("optional",))


def _invalid(exc: ValidationError, where: str) -> ValidationFailed:
    errors = [
        {"loc": [where, *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return ValidationFailed(f"the {where} is not valid", {"errors": errors})


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 ``body_too_large`` past ``limit`` bytes. One
    ``content.read(n)`` returns what has arrived so far, not n bytes: a body that comes in
    several pieces is read in a loop."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while size <= limit and (part := await request.content.read(limit + 1 - size)):
        parts.append(part)
        size += len(part)
    if size > limit:
        raise _too_large(limit)
    return b"".join(parts)


def _too_large(limit: int) -> BadRequest:
    return BadRequest("the body is too large", {"limit": limit}, code="body_too_large", status=413)


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await read_limited(request, request.app[keys.CONFIG].max_body_bytes)
    if raw.strip() and request.content_type not in ("application/json", ""):
        raise BadRequest(
            "send the body as application/json",
            {"content_type": request.content_type},
            code="unsupported_media_type",
            status=415,
        )
    request[keys.RAW_BODY] = raw
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise _invalid(exc, "body") from exc


def _respond(endpoint: Endpoint, result: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if endpoint.response is None:
        return web.Response(status=204)
    body = result if isinstance(result, bytes) else json.dumps(result, default=str).encode()
    return web.Response(status=endpoint.status, body=body, content_type="application/json")


def error_response(exc: BaseException) -> web.Response:
    status, body, headers = describe(exc)
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def handle(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await _run(endpoint, request)
        except web.HTTPException:
            raise
        except Exception as exc:
            response = error_response(exc)
            if response.status >= 500:
                raise  # the middleware logs it and answers with the envelope
            return response
        finally:
            phases.lap(phases.REST)

    handler.__name__ = endpoint.name
    mutating = endpoint.method in MUTATING
    # Admin actions and reads of personal data leave a row in the audit log (gateway.audit).
    recorded = audit.recorded(endpoint, handler, mutating=mutating)
    audited = audit.action_of(endpoint, mutating=mutating) is not None
    return phases.timed(endpoint.name, recorded, tail="audit" if audited else phases.REST)


async def _run(endpoint: Endpoint, request: web.Request) -> web.StreamResponse:
    principal: Principal | None = None
    if endpoint.needs_user:
        roles = () if endpoint.auth == ("user",) else endpoint.auth
        principal = await require_user(request, *roles)
    elif endpoint.auth == ("optional",):
        principal = await request.app[keys.AUTH].principal(request)
    phases.lap("auth")
    try:
        path = (
            endpoint.path_model.model_validate(dict(request.match_info))
            if endpoint.path_model
            else None
        )
    except ValidationError as exc:
        raise _invalid(exc, "path") from exc
    try:
        query = endpoint.query.model_validate(dict(request.query)) if endpoint.query else None
    except ValidationError as exc:
        raise _invalid(exc, "query") from exc
    body = await _read_body(request, endpoint.body) if endpoint.body else None
    phases.lap("input")
    if endpoint.limit is not None:
        await _pay_limit(endpoint.limit, request, principal, body)
        phases.lap("rate_limit")
    key = None
    if endpoint.method in MUTATING and endpoint.idempotency != "none":
        key = idempotency.read_key(request)
        if key is None and endpoint.idempotency == "required":
            raise PreconditionRequired(
                f"send an {idempotency.HEADER} header so that a retry is safe",
                {"header": idempotency.HEADER},
            )
    call = Call(request, path, query, body, principal, key)
    if key is None or principal is None:
        return _responded(endpoint, await _viewed(endpoint, call))
    return await _run_once(endpoint, call, key, principal)


async def _viewed(endpoint: Endpoint, call: Call) -> Any:
    result = await endpoint.view(call)
    phases.lap("view")
    return result


def _responded(endpoint: Endpoint, result: Any) -> web.StreamResponse:
    response = _respond(endpoint, result)
    phases.lap("respond")
    return response


async def _pay_limit(
    action: str, request: web.Request, principal: Principal | None, body: Any
) -> None:
    """429 ``rate_limited`` when the caller's buckets for ``action`` are empty."""
    limiter = request.app.get(keys.LIMITER)
    if limiter is None:
        return
    await limiter.check(
        action,
        user_id=None if principal is None else principal.user_id,
        account=getattr(body, "email", None),
        address=client_address(request, request.app[keys.CONFIG].forwarded_hops),
    )


async def _run_once(
    endpoint: Endpoint, call: Call, key: str, principal: Principal
) -> web.StreamResponse:
    store = call.app[keys.IDEMPOTENCY]
    owner = f"user:{principal.user_id}"
    route = f"{endpoint.method} {call.request.path}"
    print_ = idempotency.fingerprint(endpoint.method, route, call.request.get(keys.RAW_BODY, b""))
    replay = await store.begin(owner, key, print_)
    phases.lap("idempotency")
    if replay is not None:
        return replay
    try:
        response = _responded(endpoint, await _viewed(endpoint, call))
    except Exception as exc:
        response = error_response(exc)
        await store.finish(owner, key, print_, response)
        phases.lap("idempotency")
        if response.status >= 500:
            raise
        return response
    finally:
        store.let_go(owner, key)  # cancelled midway: the claim lapses instead
    await store.finish(owner, key, print_, response)
    phases.lap("idempotency")
    return response
