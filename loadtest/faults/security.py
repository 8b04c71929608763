"""The security checks of a fault run: requests an attacker, a careless client or a forged
notification would send, each of which the gateway must refuse with the right 4xx and its
machine-readable code, with nothing changed.

    victim = await make_victim(plan)        # A holds, pays and books; keeps one more hold
    results = await run_security_checks(plan, victim)
    assert all(r.passed for r in results), describe_failures(results)

The groups: no token, an expired or forged token (``auth``); customer B on A's hold, booking
and payment (``ownership``); a theater's admin on another theater's show, a customer or a
theater admin on an admin or ops endpoint (``admin``: each refusal must also be in the audit
log); unsigned, mis-signed, stale and re-bodied payment webhooks (``webhook``); oversized,
malformed and mistyped requests (``input``).

What "refused" means is what the gateway answers: 401 ``unauthorized`` without a token,
``token_expired`` / ``invalid_token`` for a bad one; someone else's booking or payment is
404 ``not_found`` (ids are not probed), someone else's hold 403 ``hold_not_yours``; 403
``forbidden`` for a role or theater that may not; 400 ``invalid_webhook``; 413
``body_too_large``; 422 ``validation_failed`` for a body, path or query that does not parse
(malformed JSON included); 415, 428 and 400 for the wrong content type, a missing or a
malformed ``Idempotency-Key``.

"Nothing changed" is a fingerprint taken before the checks and after each one: a digest of
every row of the tables a booking, payment or admin action writes in the run's schema, and
the seat-map version of each show involved. ``audit_log`` is left out (it grows by design).
A hold that only reached its expiry meanwhile is not a change. The checks need a quiet stack
(no load): before the first one the fingerprint must hold still for ``QUIET_S``, so that
what was written behind has landed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadtest.faults import model
from loadtest.locust.scenarios import API, PAYMENT_METHOD

__all__ = [
    "TABLES",
    "Check",
    "Fingerprint",
    "Probe",
    "SecurityResult",
    "Victim",
    "describe_failures",
    "differences",
    "fingerprint",
    "make_victim",
    "open_probe",
    "run_security_checks",
    "stripe_signature",
]

OVERSIZED_BYTES = 1024 * 1024 + 1  # past the gateway's body limit (256 KiB by default)
QUIET_S = 1.5  # the fingerprint holds still this long before the first check
SETTLE_TIMEOUT_S = 30.0
STEP_TRIES = 8  # a step of the victim's booking, retried with its key when unavailable
MAX_WAIT_S = 2.0  # the longest pause between two tries of a step
HTTP_TIMEOUT_S = 30.0
REQUEST_ID = "X-Request-Id"
WEBHOOK_STALE_S = 3600  # older than any signature tolerance

# The tables a booking, a payment or an admin action writes, and what keys their rows.
TABLES: dict[str, str] = {
    "holds": "hold_id::text",
    "bookings": "booking_id::text",
    "booking_seats": "booking_id::text || ' ' || seat",
    "payments": "payment_id::text",
    "refunds": "refund_id::text",
    "shows": "id::text",
    "show_blocked_seats": "show_id::text || ' ' || seat",
    "flash_sales": "show_id::text",
    "webhook_events": "provider || ' ' || event_id",
    "idempotency_keys": "user_id::text || ' ' || key",
    "users": "id::text",
    "theater_admins": "user_id::text || ' ' || theater_id::text",
}
# A row's digest leaves out what expiring changes; its status is kept beside it.
_ROWS = (
    "SELECT {key} AS k, md5((to_jsonb(t) - 'status' - 'ended_at')::text) AS d, "
    "to_jsonb(t) ->> 'status' AS s FROM {table} t"
)
_LIVE_HOLDS = (
    "SELECT hold_id::text AS k, show_id, extract(epoch FROM expires_at)::float8 AS exp "
    "FROM holds WHERE status = 'live'"
)


@dataclass(frozen=True)
class Victim:
    """What the checks aim at: customer A's live hold, A's confirmed booking and its payment,
    and customer B, the attacker."""

    customer: model.Account  # A
    attacker: model.Account  # B
    show_id: int  # the show of A's live hold
    hold_id: str
    booking_show_id: int
    booking_id: str
    payment_id: str


@dataclass
class SecurityResult:
    """One check as it went: ``passed`` when the answer had the expected status and code,
    nothing changed and, for a refused staff call, its audit row was found."""

    name: str
    group: str
    method: str
    path: str
    expected_status: int
    expected_code: str
    got_status: int | None  # None: no answer
    got_code: str | None
    changed: bool
    passed: bool
    audited: bool | None = None  # admin checks: the refusal has its audit row
    detail: str = ""  # what changed

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Check:
    """One request and the refusal it must get. ``path`` is under the API prefix; ``body`` is
    sent as is (``content_type``), in chunks without a length when ``chunked``."""

    group: str
    name: str
    method: str
    path: str
    status: int
    code: str
    token: str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    keyed: bool = False  # send a fresh Idempotency-Key
    audited: bool = False  # the refusal must leave an audit row
    chunked: bool = False


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- the fingerprint ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    taken_at: float
    rows: dict[str, dict[str, tuple[str, str | None]]]  # table -> key -> (digest, status)
    live_holds: dict[str, tuple[int, float]]  # hold -> (show, expires at, epoch seconds)
    versions: dict[int, int | None]  # show -> seat-map version (None: no answer)

    def expired_by(self, when: float) -> set[str]:
        """The holds live here whose expiry is past by ``when``."""
        return {k for k, (_, exp) in self.live_holds.items() if exp <= when}


async def fingerprint(
    conn: Any, session: aiohttp.ClientSession, url: str, shows: list[int]
) -> Fingerprint:
    """The rows of ``TABLES`` (on ``conn``, in the run's schema) and the shows' seat-map
    versions (``GET /shows/{id}/seatmap`` at ``url``)."""
    taken_at = time.time()
    rows: dict[str, dict[str, tuple[str, str | None]]] = {}
    for table, key in TABLES.items():
        found = await conn.fetch(_ROWS.format(key=key, table=table))
        rows[table] = {r["k"]: (r["d"], r["s"]) for r in found}
    live = {r["k"]: (r["show_id"], r["exp"]) for r in await conn.fetch(_LIVE_HOLDS)}
    versions = {show: await _version(session, url, show) for show in shows}
    return Fingerprint(taken_at, rows, live, versions)


async def _version(session: aiohttp.ClientSession, url: str, show: int) -> int | None:
    try:
        async with session.get(f"{url}{API}/shows/{show}/seatmap") as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return version if isinstance(version, int) else None


def differences(before: Fingerprint, after: Fingerprint) -> list[str]:
    """What changed between two fingerprints, in words; holds that only expired (and their
    shows' seat-map versions) are left out."""
    expired = before.expired_by(after.taken_at)
    found: list[str] = []
    for table in TABLES:
        old, new = before.rows.get(table, {}), after.rows.get(table, {})
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) == new.get(key):
                continue
            if table == "holds" and _only_expired(key, old.get(key), new.get(key), expired):
                continue
            verb = "added" if key not in old else "removed" if key not in new else "changed"
            found.append(f"{table} row {key} {verb}")
    aged = {before.live_holds[k][0] for k in expired}
    for show, version in after.versions.items():
        if before.versions.get(show) != version and show not in aged:
            found.append(f"show {show} seat map v{before.versions.get(show)} -> v{version}")
    return found


def _only_expired(
    key: str,
    old: tuple[str, str | None] | None,
    new: tuple[str, str | None] | None,
    expired: set[str],
) -> bool:
    return (
        key in expired
        and old is not None
        and new is not None
        and old[0] == new[0]
        and new[1] == "expired"
    )


# -- the probe: one session, one connection -------------------------------------------------


@dataclass
class Probe:
    """What the checks look through: an HTTP session on the gateway and a connection to the
    run's schema; ``shows`` are those whose seat-map versions the fingerprint reads."""

    plan: model.Plan
    session: aiohttp.ClientSession
    conn: Any
    shows: list[int]

    @property
    def url(self) -> str:
        return self.plan.url.rstrip("/").removesuffix(API)

    async def fingerprint(self) -> Fingerprint:
        return await fingerprint(self.conn, self.session, self.url, self.shows)

    async def settle(self) -> Fingerprint:
        """A fingerprint that held still for ``QUIET_S``; ``RuntimeError`` when the state
        keeps changing (the stack is not quiet)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last = await self.fingerprint()
        still_since = time.monotonic()
        while time.monotonic() - still_since < QUIET_S:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stack's state kept changing for {SETTLE_TIMEOUT_S:g} s: run the "
                    "security checks on a quiet stack (no load)"
                )
            await asyncio.sleep(0.25)
            now = await self.fingerprint()
            if differences(last, now):
                still_since = time.monotonic()
            last = now
        return last

    async def send(self, check: Check, request_id: str) -> tuple[int | None, str | None]:
        headers = {REQUEST_ID: request_id, **dict(check.headers)}
        if check.token is not None:
            headers["Authorization"] = f"Bearer {check.token}"
        if check.keyed:
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        data: Any = None
        if check.body is not None:
            headers.setdefault("Content-Type", check.content_type)
            data = _chunks(check.body) if check.chunked else check.body
        try:
            url = f"{self.url}{API}{check.path}"
            async with self.session.request(check.method, url, data=data, headers=headers) as resp:
                return resp.status, _error_code(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, type(exc).__name__

    async def audited(self, request_id: str, status: int | None) -> bool:
        found = await self.conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE request_id = $1 AND status = $2",
            request_id,
            status,
        )
        return bool(found)

    async def run(self, check: Check, before: Fingerprint) -> tuple[SecurityResult, Fingerprint]:
        request_id = f"security-{uuid.uuid4().hex[:20]}"
        status, code = await self.send(check, request_id)
        after = await self.fingerprint()
        changes = differences(before, after)
        audited = await self.audited(request_id, status) if check.audited else None
        passed = status == check.status and code == check.code and not changes
        result = SecurityResult(
            name=check.name,
            group=check.group,
            method=check.method,
            path=check.path,
            expected_status=check.status,
            expected_code=check.code,
            got_status=status,
            got_code=code,
            changed=bool(changes),
            passed=passed and audited is not False,
            audited=audited,
            detail="; ".join(changes[:5]),
        )
        return result, after


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _error_code(raw: bytes) -> str | None:
    try:
        return _code_of(json.loads(raw))
    except ValueError:
        return None


def _code_of(body: Any) -> str | None:
    """The error envelope's code, or None."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


@contextlib.asynccontextmanager
async def open_probe(plan: model.Plan, shows: list[int]) -> AsyncIterator[Probe]:
    """A ``Probe`` on the plan's gateway and Postgres, closed afterwards.

    >>> async with open_probe(plan, [show]) as probe:
    ...     changes = differences(await probe.settle(), await probe.fingerprint())
    """
    import storage

    conn = await storage.connect(plan.database_url, schema=plan.schema)
    try:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield Probe(plan, session, conn, shows)
    finally:
        await conn.close()


# -- tokens and signatures ------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


def _signed(secret: str, account: model.Account, *, issued: float | None = None) -> str:
    """An access token for ``account`` made by the gateway's own code (``gateway.auth``),
    signed with ``secret``; issued ``issued`` (epoch seconds, default now). (The gateway,
    and storage, load only here: the rest of this module needs neither.)"""
    import storage
    from gateway.auth import Auth
    from gateway.config import GatewayConfig

    config = GatewayConfig(
        database_url="", redis_url="", jwt_secret=secret, argon2_time_cost=1, argon2_memory_kib=1024
    )
    user = storage.User(
        id=account.user_id,
        email=account.email,
        role="customer",
        display_name="",
        home_city_id=None,
        password_hash="",
    )
    if issued is None:
        issued = time.time()
    return Auth(config, None, None).access_token(user, now=issued)


@dataclass(frozen=True)
class _Tokens:
    expired: str  # A's, signed with the gateway's secret, expired a minute ago
    other_secret: str  # A's, signed with another secret
    unsigned: str  # A's claims with the role admin, "alg": "none"
    tampered: str  # B's token with A's id in its payload, B's signature kept
    escalated: str  # B's token with the role admin in its payload, B's signature kept


def _tokens(plan: model.Plan, victim: Victim) -> _Tokens:
    from gateway.config import GatewayConfig

    ttl = GatewayConfig.access_token_ttl_s
    a, b = victim.customer, victim.attacker
    head, _, signature = b.token.split(".")
    mine = _claims(b.token)
    header = _b64(_json({"alg": "none", "typ": "JWT"}))
    return _Tokens(
        expired=_signed(plan.jwt_secret, a, issued=time.time() - ttl - 60),
        other_secret=_signed("not-the-secret-" + secrets.token_hex(16), a),
        unsigned=f"{header}.{_b64(_json({**_claims(a.token), 'role': 'admin'}))}.",
        tampered=f"{head}.{_b64(_json({**mine, 'sub': str(a.user_id)}))}.{signature}",
        escalated=f"{head}.{_b64(_json({**mine, 'role': 'admin'}))}.{signature}",
    )


def stripe_signature(secret: str, payload: bytes, at: int) -> str:
    """A ``Stripe-Signature`` header over ``payload`` at ``at`` (epoch seconds)."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256)
    return f"t={at},v1={mac.hexdigest()}"


# -- the checks -----------------------------------------------------------------------------

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _check(group: str, name: str, request: str, status: int, code: str, **kw: Any) -> Check:
    """``request`` is "METHOD /path"; a ``body`` that is not bytes is sent as JSON; a
    state-changing request carries a fresh Idempotency-Key unless ``keyed=False``."""
    method, _, path = request.partition(" ")
    body = kw.pop("body", None)
    if body is not None and not isinstance(body, bytes):
        body = _json(body)
    kw.setdefault("keyed", method in MUTATING)
    return Check(group, name, method, path, status, code, body=body, **kw)


def _auth_checks(v: Victim, t: _Tokens) -> list[Check]:
    """No token, a token that is not a bearer token, expired, signed with another secret,
    unsigned ("alg": "none"), or with its payload changed under its signature: 401."""
    hold, cancel = f"/shows/{v.show_id}/holds/{v.hold_id}", f"/bookings/{v.booking_id}/cancel"
    status = {"status": "scheduled"}
    basic = (("Authorization", "Basic " + _b64(b"a:b")),)

    def c(name: str, request: str, code: str, **kw: Any) -> Check:
        return _check("auth", name, request, 401, code, **kw)

    return [
        c("no token: hold", f"POST /shows/{v.show_id}/holds", "unauthorized", body={"count": 1}),
        c("no token: my bookings", "GET /me/bookings", "unauthorized"),
        c("no token: cancel", f"POST {cancel}", "unauthorized"),
        c("no token: release", f"DELETE {hold}", "unauthorized"),
        c("no token: payment", f"GET /payments/{v.payment_id}", "unauthorized"),
        c("not a bearer token", "GET /me/bookings", "invalid_token", headers=basic),
        c("expired: my bookings", "GET /me/bookings", "token_expired", token=t.expired),
        c("expired: release", f"DELETE {hold}", "token_expired", token=t.expired),
        c("expired: cancel", f"POST {cancel}", "token_expired", token=t.expired),
        c("other secret: release", f"DELETE {hold}", "invalid_token", token=t.other_secret),
        c("other secret: cancel", f"POST {cancel}", "invalid_token", token=t.other_secret),
        c("alg none: release", f"DELETE {hold}", "invalid_token", token=t.unsigned),
        c("alg none: my bookings", "GET /me/bookings", "invalid_token", token=t.unsigned),
        c("tampered sub: release", f"DELETE {hold}", "invalid_token", token=t.tampered),
        c("tampered sub: cancel", f"POST {cancel}", "invalid_token", token=t.tampered),
        c(
            "tampered role: show status",
            f"PUT /admin/shows/{v.show_id}/status",
            "invalid_token",
            token=t.escalated,
            body=status,
        ),
    ]


def _ownership_checks(v: Victim) -> list[Check]:
    """B on A's things. Someone else's hold is 403 ``hold_not_yours``; someone else's booking
    or payment answers as missing (404), so its id cannot be probed."""
    hold = f"/shows/{v.show_id}/holds/{v.hold_id}"
    booking, payment = f"/bookings/{v.booking_id}", f"/payments/{v.payment_id}"
    pay = {"payment_method": PAYMENT_METHOD}

    def c(name: str, request: str, status: int, code: str, **kw: Any) -> Check:
        return _check("ownership", name, request, status, code, token=v.attacker.token, **kw)

    return [
        c("B reads A's hold", f"GET {hold}", 403, "hold_not_yours"),
        c("B releases A's hold", f"DELETE {hold}", 403, "hold_not_yours"),
        c("B extends A's hold", f"POST {hold}/extend", 403, "hold_not_yours"),
        c("B checks out A's hold", f"POST {hold}/checkout", 403, "hold_not_yours", body={}),
        c("B reads A's booking", f"GET {booking}", 404, "not_found"),
        c("B cancels A's booking", f"POST {booking}/cancel", 404, "not_found"),
        c("B reads A's payment", f"GET {payment}", 404, "not_found"),
        c("B confirms A's payment", f"POST {payment}/confirm", 404, "not_found", body=pay),
    ]


def _admin_checks(plan: model.Plan, v: Victim, seats: dict[int, str]) -> list[Check]:
    """Each theater's admin on the other theater's show, B on admin endpoints and a theater
    admin on an ops one: 403 ``forbidden``, and an audit row for each refused staff call."""
    first, second = plan.theater_admins[0], plan.theater_admins[1]
    checks = _theater_checks(first, second.show_id, seats[second.show_id])
    checks += _theater_checks(second, first.show_id, seats[first.show_id])
    b, show = v.attacker.token, first.show_id

    def c(name: str, request: str, token: str, **kw: Any) -> Check:
        return _check("admin", name, request, 403, "forbidden", token=token, audited=True, **kw)

    return checks + [
        c(
            "customer sets a show's status",
            f"PUT /admin/shows/{show}/status",
            b,
            body={"status": "scheduled"},
        ),
        c(
            "customer blocks seats",
            f"POST /admin/shows/{show}/blocks",
            b,
            body={"seats": [seats[show]]},
        ),
        c("customer adds a city", "POST /admin/cities", b, body={"name": "Nowhere"}),
        c("customer reads the audit log", "GET /admin/audit", b),
        c(
            "theater admin sets the admission rate (ops only)",
            f"PUT /admin/shows/{show}/flash-sale/rate",
            first.account.token,
            body={"admission_per_min": 1000},
        ),
    ]


def _theater_checks(admin: model.TheaterAdmin, show: int, seat: str) -> list[Check]:
    base = f"/admin/shows/{show}"
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    terms = {
        "queue_opens_at": soon.isoformat(),
        "sale_opens_at": (soon + dt.timedelta(minutes=30)).isoformat(),
        "admission_per_min": 60,
        "token_ttl_s": 600,
    }
    who = f"theater {admin.theater_id}'s admin on show {show}"

    def c(what: str, request: str, audited: bool = True, **kw: Any) -> Check:
        token = admin.account.token
        return _check(
            "admin", f"{who}: {what}", request, 403, "forbidden", token=token, audited=audited, **kw
        )

    return [
        c("status", f"PUT {base}/status", body={"status": "scheduled"}),
        c("block seats", f"POST {base}/blocks", body={"seats": [seat]}),
        c("unblock seats", f"POST {base}/unblocks", body={"seats": [seat]}),
        c("prices", f"PATCH {base}", body={"prices": {"standard": 1}}),
        c("flash-sale terms", f"PUT {base}/flash-sale", body=terms),
        c("read flash-sale terms", f"GET {base}/flash-sale", audited=False),  # not audited
    ]


def _webhook_checks(plan: model.Plan, intent_ref: str) -> list[Check]:
    """A forged "payment succeeded" about A's intent, refused however it is signed; and one
    past the body limit."""
    now = int(time.time())
    event = {
        "id": f"evt_forged_{secrets.token_hex(8)}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": now,
        "data": {"object": {"id": intent_ref, "object": "payment_intent", "status": "succeeded"}},
    }
    body, other = _json(event), _json({**event, "id": f"evt_forged_{secrets.token_hex(8)}"})
    huge = body + b" " * OVERSIZED_BYTES
    secret, stranger = plan.webhook_secret, "whsec_" + secrets.token_hex(12)

    def c(
        name: str,
        signature: str | None,
        payload: bytes = body,
        status: int = 400,
        code: str = "invalid_webhook",
    ) -> Check:
        headers = () if signature is None else (("Stripe-Signature", signature),)
        return _check(
            "webhook",
            name,
            "POST /payments/webhook",
            status,
            code,
            body=payload,
            headers=headers,
            keyed=False,
        )

    return [
        c("no signature", None),
        c("garbled signature", "t=oops,v1="),
        c("signed with another secret", stripe_signature(stranger, body, now)),
        c("stale timestamp", stripe_signature(secret, body, now - WEBHOOK_STALE_S)),
        c("signature over another body", stripe_signature(secret, other, now)),
        c("oversized", stripe_signature(secret, huge, now), huge, 413, "body_too_large"),
    ]


def _input_checks(v: Victim) -> list[Check]:
    """A's own token on A's own things: only the request's shape is wrong."""
    holds = f"POST /shows/{v.show_id}/holds"
    hold = f"/shows/{v.show_id}/holds/{v.hold_id}"
    confirm = f"POST /payments/{v.payment_id}/confirm"
    huge = _json({"count": 1, "pad": "x" * OVERSIZED_BYTES})
    bad = "validation_failed"

    def c(name: str, request: str, status: int, code: str, body: Any = None, **kw: Any) -> Check:
        return _check("input", name, request, status, code, token=v.customer.token, body=body, **kw)

    return [
        c("oversized body", holds, 413, "body_too_large", huge),
        c("oversized body, chunked", holds, 413, "body_too_large", huge, chunked=True),
        c("malformed JSON", holds, 422, bad, b'{"count": 1,'),
        c("not UTF-8", holds, 422, bad, b"\xff\xfe{}"),
        c("not JSON", holds, 415, "unsupported_media_type", b"count=1", content_type="text/plain"),
        c("a list for a body", holds, 422, bad, []),
        c("null for a body", holds, 422, bad, b"null"),
        c("a string for a count", holds, 422, bad, {"count": "two"}),
        c("a negative count", holds, 422, bad, {"count": -1}),
        c("a huge count", holds, 422, bad, {"count": 10**40}),
        c("a string for seats", holds, 422, bad, {"seats": "A1"}),
        c("NUL in a seat", holds, 422, bad, {"seats": ["A\u00001"]}),
        c("an unknown field", holds, 422, bad, {"count": 1, "user_id": v.attacker.user_id}),
        c("card data for a payment method", confirm, 422, bad, {"payment_method": "4242" * 4}),
        c("hold id not a UUID", f"GET /shows/{v.show_id}/holds/not-a-uuid", 422, bad),
        c("hold id in capitals", f"DELETE /shows/{v.show_id}/holds/{v.hold_id.upper()}", 422, bad),
        c("booking id not a UUID", "GET /bookings/12345", 422, bad),
        c(
            "payment id not a UUID",
            "POST /payments/pi_1/confirm",
            422,
            bad,
            {"payment_method": PAYMENT_METHOD},
        ),
        c("show id a string", "GET /shows/abc/seatmap", 422, bad),
        c("show id zero", "POST /shows/0/holds", 422, bad, {"count": 1}),
        c("show id past 64 bits", f"GET /shows/{2**64}/seatmap", 422, bad),
        c("limit a string", "GET /me/bookings?limit=ten", 422, bad),
        c(
            "checkout without an Idempotency-Key",
            f"POST {hold}/checkout",
            428,
            "idempotency_key_required",
            {},
            keyed=False,
        ),
        c(
            "a malformed Idempotency-Key",
            f"DELETE {hold}",
            400,
            "invalid_idempotency_key",
            headers=(("Idempotency-Key", "has spaces in it"),),
            keyed=False,
        ),
    ]


# -- running them ---------------------------------------------------------------------------


async def run_security_checks(plan: model.Plan, victim: Victim) -> list[SecurityResult]:
    """Send every check in turn on a quiet stack; each result says what came back and whether
    anything changed.

    >>> results = await run_security_checks(plan, await make_victim(plan))
    """
    _require(plan, admins=2)
    shows = sorted(
        {victim.show_id, victim.booking_show_id, *(a.show_id for a in plan.theater_admins)}
    )
    async with open_probe(plan, shows) as probe:
        checks = await _all_checks(probe, victim)
        before = await probe.settle()
        if victim.hold_id not in before.live_holds:
            raise RuntimeError(
                f"A's hold {victim.hold_id} is not live: make the victim just before the checks"
            )
        results = []
        for check in checks:
            result, before = await probe.run(check, before)
            results.append(result)
    return results


async def _all_checks(probe: Probe, victim: Victim) -> list[Check]:
    plan = probe.plan
    ref = await probe.conn.fetchval(
        "SELECT provider_ref FROM payments WHERE payment_id = $1", uuid.UUID(victim.payment_id)
    )
    if ref is None:
        raise RuntimeError(f"payment {victim.payment_id} is not in Postgres with its intent")
    seats = {a.show_id: await _a_seat(probe, a.show_id) for a in plan.theater_admins}
    return [
        *_auth_checks(victim, _tokens(plan, victim)),
        *_ownership_checks(victim),
        *_admin_checks(plan, victim, seats),
        *_webhook_checks(plan, str(ref)),
        *_input_checks(victim),
    ]


async def _a_seat(probe: Probe, show: int) -> str:
    """A seat of the show (an available one when there is one), for the block checks."""
    try:
        async with probe.session.get(f"{probe.url}{API}/shows/{show}/seatmap") as resp:
            status, body = resp.status, await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise RuntimeError(f"the seat map of show {show} did not come: {exc!r}") from exc
    if status != 200 or not isinstance(body, dict) or not body.get("seats"):
        raise RuntimeError(f"the seat map of show {show} answered {status}")
    seats: dict[str, str] = body["seats"]
    free = sorted(s for s, state in seats.items() if state == "available")
    return free[0] if free else sorted(seats)[0]


def describe_failures(results: list[SecurityResult]) -> str:
    """One line per failed check: what was sent, what was expected, what came back."""
    lines = []
    for r in results:
        if r.passed:
            continue
        line = (
            f"[{r.group}] {r.name}: {r.method} {r.path} expected {r.expected_status} "
            f"{r.expected_code}, got {r.got_status} {r.got_code}"
        )
        if r.changed:
            line += f"; changed: {r.detail}"
        if r.audited is False:
            line += "; no audit row"
        lines.append(line)
    return "\n".join(lines) or "every check passed"


def _require(plan: model.Plan, *, customers: int = 2, admins: int = 0) -> None:
    if len(plan.customers) < customers:
        raise ValueError(f"the plan needs {customers} customers (A the victim, B the attacker)")
    if len(plan.theater_admins) < admins:
        raise ValueError(f"the plan needs {admins} theater admins of two theaters")
    if admins and plan.theater_admins[0].theater_id == plan.theater_admins[1].theater_id:
        raise ValueError("the plan's first two theater admins must run different theaters")


# -- the victim -----------------------------------------------------------------------------


@dataclass
class _Step:
    """One request of a client's journey, retried with its Idempotency-Key while the answer
    says "try again" (no answer, 5xx, 429, 202, a first try still running)."""

    session: aiohttp.ClientSession
    url: str
    token: str

    async def __call__(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": uuid.uuid4().hex}
        status: int | None = None
        answer: Any = None
        for attempt in range(STEP_TRIES):
            status, answer, wait = await self._once(method, path, body, headers)
            if status is not None and not _again(status, answer):
                return status, answer
            await asyncio.sleep(wait if wait is not None else min(MAX_WAIT_S, 0.25 * 2**attempt))
        raise RuntimeError(f"{method} {path} still answered {status} after {STEP_TRIES} tries")

    async def _once(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int | None, Any, float | None]:
        try:
            async with self.session.request(
                method, f"{self.url}{API}{path}", json=body, headers=headers
            ) as resp:
                answer = await resp.json(content_type=None)
                after = resp.headers.get("Retry-After", "")
                wait = min(float(after), MAX_WAIT_S) if after.isdigit() else None
                return resp.status, answer, wait
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None, None, None


def _again(status: int, answer: Any) -> bool:
    if status >= 500 or status in (202, 429):
        return True
    return status == 409 and _code_of(answer) == "idempotency_request_in_progress"


async def make_victim(plan: model.Plan) -> Victim:
    """Customer A (``plan.customers[0]``) holds a seat, checks out and pays with the test card
    through the gateway (a confirmed booking), then holds one more seat and keeps it;
    B is ``plan.customers[1]``. ``RuntimeError`` when A cannot."""
    _require(plan)
    a, b = plan.customers[0], plan.customers[1]
    url = plan.url.rstrip("/").removesuffix(API)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        step = _Step(session, url, a.token)
        quiet = [admin.show_id for admin in plan.theater_admins]  # shows the load left alone
        paid_show, paid_hold = await _hold_somewhere(step, quiet)
        checkout = f"/shows/{paid_show}/holds/{paid_hold}/checkout"
        payment = await _expect(step, "POST", checkout, {}, 201)
        confirm = f"/payments/{payment['payment_id']}/confirm"
        paid = await _expect(step, "POST", confirm, {"payment_method": PAYMENT_METHOD}, 200)
        if paid.get("status") != "booked" or not paid.get("booking_id"):
            raise RuntimeError(f"A's payment ended {paid.get('status')}, not booked")
        show, hold = await _hold_somewhere(step, quiet)
    return Victim(a, b, show, hold, paid_show, paid["booking_id"], paid["payment_id"])


async def _expect(step: _Step, method: str, path: str, body: Any, ok: int) -> dict[str, Any]:
    status, answer = await step(method, path, body)
    if status != ok or not isinstance(answer, dict):
        raise RuntimeError(f"{method} {path} answered {status}: {answer}")
    return answer


async def _hold_somewhere(step: _Step, shows: list[int]) -> tuple[int, str]:
    """A one-seat hold on the first of ``shows`` that has a seat for A."""
    refusals = []
    for show in shows:
        body = {"count": 1, "allow_split": True}
        status, answer = await step("POST", f"/shows/{show}/holds", body)
        if status == 201 and isinstance(answer, dict):
            return show, str(answer["hold_id"])
        refusals.append(f"show {show}: {status} {_code_of(answer)}")
    raise RuntimeError(f"A could hold no seat: {', '.join(refusals) or 'the plan has no shows'}")
