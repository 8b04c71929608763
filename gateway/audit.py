"""The audit log's recording side: every admin action and every access to personal data leaves
one row in ``audit_log`` (``storage.audit``), with who, what, when and the outcome.

What is recorded (``action_of``):

- an **admin action**: a staff endpoint (auth ``("admin",)`` or ``("admin", "theater_admin")``)
  that changes something (POST, PUT, PATCH, DELETE), under the endpoint's name
  (``create_theater``), whatever its outcome: done, refused (403), invalid (422), failed (500);
- an **access to personal data**: an endpoint with ``Endpoint.audit`` set, under that name
  (``personal_data.me``), whatever its outcome, whoever calls (the customer their own data
  too). Personal data is whatever is about an identifiable customer: the account's fields,
  purchases (holds, payments, bookings, refunds), messages and chat transcripts, devices and
  phone, settings and what their history says of them (favourite theaters, usual time). Seat
  maps, the catalog, prices, queue places and figures over many customers are not.

A call without a known caller is not recorded: there is nobody to name and nothing was
done (401: no token, a bad or expired one; a failed login). An endpoint without a token whose
caller proves who they are (register, log in, refresh) names them with ``identify``. The row
names the target from the route's last path parameter (``PARAMS``: ``/admin/shows/{show_id}``
→ show 12), or what the answer names (``ANSWER_KEY``: a created thing's ``id``, a hold's
``hold_id``); the subject (whose personal data) is the ``user_id`` of the path or the body,
the one a view named (``subject``: a booking read by staff), the caller for ``/me…`` and
``/auth…`` routes, else the ``user_id`` of the items the answer lists (one row per subject),
else, on a customer's endpoint (auth ``user`` or ``optional``), the caller. Details hold the
other path ids, counts and whatever the view noted with ``note``: ids and counts only, never
personal data (``storage.audit`` checks, and so does Postgres).

When the row cannot be written. One INSERT per audited call, before the answer leaves, so no
row waits in memory to be lost at shutdown. If it fails, it is logged (ids only) and counted
(``seatserver_audit_rows{outcome="failed"}``: alert on it), and then:

- a **read of personal data** is refused (503 ``audit_unavailable``): no unaudited access;
- an **action** keeps its answer: it already took effect, and answering "failed" would
  misreport it and invite a retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import Counter

from gateway import keys
from gateway.errors import ServiceUnavailable, describe
from storage import audit as store

if TYPE_CHECKING:
    from gateway.endpoint import Endpoint

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STAFF_ROLES = frozenset({"admin", "theater_admin"})
ROWS = Counter("seatserver_audit_rows", "Audit rows by outcome (written, failed)", ["outcome"])
NOTES = web.RequestKey("audit_notes", dict)
CALLER = web.RequestKey("audit_caller", Any)  # a Caller an endpoint without a token learnt
SUBJECT = web.RequestKey("audit_subject", int)  # whose data, as a view named it
MAX_ANSWER_BYTES = 1_000_000  # larger answers are not read for their subjects
MAX_SUBJECTS = 500  # rows one call may write (one per subject its answer lists)
CANCELLED = 499  # the outcome recorded when the caller went away mid-call

# A path parameter → the kind of thing it names.
PARAMS = {
    "city_id": "city",
    "theater_id": "theater",
    "screen_id": "screen",
    "movie_id": "movie",
    "show_id": "show",
    "hold_id": "hold",
    "booking_id": "booking",
    "payment_id": "payment",
    "user_id": "user",
    "handoff_id": "chat_handoff",
    "decision_id": "fraud_decision",
    "alert_id": "alert",
}
# A route's last literal segment → the kind of thing it lists or creates.
COLLECTIONS = {
    "cities": "city",
    "theaters": "theater",
    "screens": "screen",
    "movies": "movie",
    "shows": "show",
    "holds": "hold",
    "bookings": "booking",
    "payments": "payment",
    "admins": "theater_admin",
    "experiments": "experiment",
    "handoffs": "chat_handoff",
    "decisions": "fraud_decision",
    "alerts": "alert",
    "models": "model",
    "audit": "audit_log",
    "me": "user",
    "checkout": "payment",
    "messages": "chat_conversation",
}
# What names the target in the answer when the path does not (else "id").
ANSWER_KEY = {
    "experiment": "name",
    "hold": "hold_id",
    "payment": "payment_id",
    "chat_conversation": "conversation_id",
}
OWN = (["me"], ["auth"])  # /api/v1/me…, /api/v1/auth…: the caller's own account
CUSTOMER_AUTH = (("user",), ("optional",))  # a customer's endpoints: their own data


def action_of(endpoint: Endpoint, *, mutating: bool) -> str | None:
    """The action an endpoint is recorded under, or None when it is not audited."""
    if endpoint.audit is not None:
        return endpoint.audit
    staff = endpoint.needs_user and set(endpoint.auth) <= STAFF_ROLES
    return endpoint.name if staff and mutating else None


def note(request: web.Request, **details: Any) -> None:
    """Add ids or counts to the details of this call's audit row (a view's filters, say)."""
    if NOTES not in request:
        request[NOTES] = {}
    request[NOTES].update(details)


@dataclass(frozen=True)
class Caller:
    """Who called, as the audit log names them (a ``gateway.auth.Principal`` serves too)."""

    user_id: int
    role: str


def identify(request: web.Request, user_id: int, role: str) -> None:
    """Name the caller of an endpoint without a token once they proved who they are (a
    registration, a login, a refresh): the row's actor and subject."""
    request[CALLER] = Caller(user_id, role)


def subject(request: web.Request, user_id: int) -> None:
    """Name whose personal data this call touched when neither the path, the body nor the
    answer does (a booking a theater's admin reads)."""
    request[SUBJECT] = user_id


@dataclass(frozen=True)
class _Shape:
    """What an endpoint's rows take from its route, worked out once."""

    action: str
    method: str
    route: str
    reads: bool
    target_param: str | None
    target_type: str | None
    body_subject: bool
    own: bool
    customers: bool

    @classmethod
    def of(cls, endpoint: Endpoint, action: str, *, mutating: bool) -> _Shape:
        parts = [p for p in endpoint.path.split("/") if p]
        params = [p[1:-1] for p in parts if p.startswith("{")]
        literals = [p for p in parts if not p.startswith("{")]
        own = literals[2:3] in OWN
        param = params[-1] if params and endpoint.status != 201 and not own else None
        last = literals[-1] if literals else ""
        if own:
            kind = "user"
        elif param is not None:
            before = parts[parts.index("{" + param + "}") - 1]
            kind = PARAMS.get(param) or COLLECTIONS.get(before, before)
        else:
            kind = COLLECTIONS.get(last, last)
        body = endpoint.body
        return cls(
            action=action,
            method=endpoint.method,
            route=endpoint.path,
            reads=not mutating,
            target_param=param,
            target_type=kind if store.NAME.match(kind) and len(kind) <= 32 else None,
            body_subject=body is not None and "user_id" in body.model_fields,
            own=own,
            customers=endpoint.auth in CUSTOMER_AUTH,
        )


def recorded(endpoint: Endpoint, handler: Handler, *, mutating: bool) -> Handler:
    """``handler``, writing an audit row for each call when the endpoint is audited."""
    action = action_of(endpoint, mutating=mutating)
    if action is None:
        return handler
    shape = _Shape.of(endpoint, action, mutating=mutating)

    async def audited(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            await _write(request, shape, exc.status, None)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(_write(request, shape, CANCELLED, None))
            raise
        except Exception as exc:
            await _write(request, shape, describe(exc)[0], None)
            raise
        written = await _write(request, shape, response.status, response)
        if written or not shape.reads or response.status >= 400 or response.prepared:
            return response
        refused = ServiceUnavailable(
            "this access cannot be recorded in the audit log now: try again shortly",
            code="audit_unavailable",
            headers={"Retry-After": "1"},
        )
        status, body, headers = describe(refused)
        return web.json_response(body, status=status, headers=headers)

    audited.__name__ = getattr(handler, "__name__", endpoint.name)
    return audited


async def _write(
    request: web.Request, shape: _Shape, status: int, response: web.StreamResponse | None
) -> bool:
    """Write the call's rows; False (logged and counted) when they could not be written."""
    principal = request.get(keys.PRINCIPAL) or request.get(CALLER)
    if principal is None:
        return True  # nobody to name: the call was refused before anyone was known
    try:
        entries = _entries(request, shape, status, response, principal)
        async with request.app[keys.POOL].acquire() as conn:
            if len(entries) == 1:
                await store.record(conn, entries[0])
            else:
                await store.record_many(conn, entries)
    except Exception as exc:
        ROWS.labels("failed").inc()
        log.error(
            "audit row not written: %s by user %s answered %s (request %s): %s",
            shape.action,
            principal.user_id,
            status,
            request.get(keys.REQUEST_ID),
            type(exc).__name__,
        )
        return False
    ROWS.labels("written").inc(len(entries))
    return True


def _entries(
    request: web.Request,
    shape: _Shape,
    status: int,
    response: web.StreamResponse | None,
    principal: Any,
) -> list[store.AuditEntry]:
    match = request.match_info
    target_id = _token(match.get(shape.target_param)) if shape.target_param else None
    details: dict[str, Any] = {
        name: value
        for name, raw in match.items()
        if name != shape.target_param and (value := _id_value(raw)) is not None
    }
    answer = None if shape.own or status >= 300 else _answer(response)
    if shape.target_param is None and isinstance(answer, dict):
        target_id = _token(answer.get(ANSWER_KEY.get(shape.target_type or "", "id")))
    subjects = _subjects(request, shape, principal, answer)
    if shape.own and target_id is None:
        target_id = str(principal.user_id)
    if isinstance(answer, dict):
        counts = [len(v) for v in answer.values() if isinstance(v, list)]
        if len(counts) == 1 and not shape.own:
            details["count"] = counts[0]
    if response is not None and response.headers.get("Idempotent-Replayed") == "true":
        details["replayed"] = True
    details.update(request.get(NOTES, {}))
    base = {
        "action": shape.action,
        "actor_id": principal.user_id,
        "actor_role": principal.role,
        "target_type": shape.target_type,
        "target_id": target_id,
        "method": shape.method,
        "route": shape.route,
        "status": status,
        "request_id": request.get(keys.REQUEST_ID),
        "details": details,
    }
    whose: list[int | None] = [*subjects] or [None]
    return [store.AuditEntry(subject_id=s, **base) for s in whose]


def _subjects(request: web.Request, shape: _Shape, principal: Any, answer: Any) -> list[int]:
    """Whose personal data the call touched: the path's or body's user, the one the view
    named, the caller on their own routes, else the users the answer names (at most
    ``MAX_SUBJECTS``), else the caller of a customer's endpoint."""
    found = _user_id(request.match_info.get("user_id"))
    if found is None and shape.body_subject:
        found = _user_id(_body(request).get("user_id"))
    if found is None:
        found = request.get(SUBJECT)
    if found is not None:
        return [found]
    if shape.own:
        return [principal.user_id]
    named: list[Any] = []
    if isinstance(answer, dict):
        named.append(answer.get("user_id"))
        for value in answer.values():
            if isinstance(value, list):
                named += [item.get("user_id") for item in value if isinstance(item, dict)]
    ids = [i for i in (_user_id(n) for n in named) if i is not None]
    if not ids and shape.customers:
        return [principal.user_id]
    return list(dict.fromkeys(ids))[:MAX_SUBJECTS]


def _answer(response: web.StreamResponse | None) -> Any:
    """The answer's JSON, when it is a small JSON body."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    body = response.body
    if not isinstance(body, bytes) or len(body) > MAX_ANSWER_BYTES:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _body(request: web.Request) -> dict[str, Any]:
    raw = request.get(keys.RAW_BODY)
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _user_id(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**63:
        return value
    return None


def _token(value: Any) -> str | None:
    """An id as the log keeps it (a number or a short identifier), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value and store.TOKEN.match(value):
        return value
    return None


def _id_value(raw: str) -> int | str | None:
    number = _user_id(raw)
    return number if number is not None else _token(raw)


__all__ = ["Caller", "action_of", "identify", "note", "recorded", "subject"]
