"""The list of security checks, by group (``auth``, ``ownership``, ``admin``, ``webhook``,
``input``), each request with the refusal it must get, aimed at a victim's hold, booking and
payment."""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from typing import Any

import aiohttp

from loadtest.faults import model
from loadtest.faults.security.forgery import (
    Tokens,
    b64url,
    forge_tokens,
    json_bytes,
    stripe_signature,
)
from loadtest.faults.security.probe import Check, Probe
from loadtest.faults.security.victim import Victim
from loadtest.locust.scenarios import API, PAYMENT_METHOD

OVERSIZED_BYTES = 1024 * 1024 + 1  # past the gateway's body limit (256 KiB by default)
WEBHOOK_STALE_S = 3600  # older than any signature tolerance
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _check(group: str, name: str, request: str, status: int, code: str, **kw: Any) -> Check:
    """``request`` is "METHOD /path"; a ``body`` that is not bytes is sent as JSON; a
    state-changing request carries a fresh Idempotency-Key unless ``keyed=False``."""
    method, _, path = request.partition(" ")
    body = kw.pop("body", None)
    if body is not None and not isinstance(body, bytes):
        body = json_bytes(body)
    kw.setdefault("keyed", method in MUTATING)
    return Check(group, name, method, path, status, code, body=body, **kw)


def _auth_checks(v: Victim, t: Tokens) -> list[Check]:
    """No token, a token that is not a bearer token, expired, signed with another secret,
    unsigned ("alg": "none"), or with its payload changed under its signature: 401."""
    hold, cancel = f"/shows/{v.show_id}/holds/{v.hold_id}", f"/bookings/{v.booking_id}/cancel"
    status = {"status": "scheduled"}
    basic = (("Authorization", "Basic " + b64url(b"a:b")),)

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
    body, other = (
        json_bytes(event),
        json_bytes({**event, "id": f"evt_forged_{secrets.token_hex(8)}"}),
    )
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
    huge = json_bytes({"count": 1, "pad": "x" * OVERSIZED_BYTES})
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


async def all_checks(probe: Probe, victim: Victim) -> list[Check]:
    """Every check, in group order, aimed at ``victim``: its payment's intent read from
    Postgres, a seat of each theater admin's show from its seat map."""
    plan = probe.plan
    ref = await probe.conn.fetchval(
        "SELECT provider_ref FROM payments WHERE payment_id = $1", uuid.UUID(victim.payment_id)
    )
    if ref is None:
        raise RuntimeError(f"payment {victim.payment_id} is not in Postgres with its intent")
    seats = {a.show_id: await _a_seat(probe, a.show_id) for a in plan.theater_admins}
    return [
        *_auth_checks(victim, forge_tokens(plan, victim)),
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
