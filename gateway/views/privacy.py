"""A customer's own data: download all of it, or delete the account.

The export is one JSON file: the account (email and phone opened), every stored row about the
user by table (``storage.privacy.REGISTRY``; secrets such as token hashes left out), what Redis
holds (conversations, queue places, stored answers, risk signals), and when it was made. The
rows are read in one snapshot.

Deleting asks for the password again, and is refused (409 ``deletion_blocked``, listing them)
while the user has a live hold, a payment in flight or a confirmed booking of a show to come:
cancel those first (refunds by the usual policy), or wait until the show is over. Then, in one
transaction, every registry table is erased or anonymized and the account's personal fields
are erased, its refresh tokens with them. After the commit, whatever Redis does:

1. every access token of the account is denied in this process (it cannot fail), then on every
   gateway through Redis (``Auth.deny_user``); should Redis refuse, the answer is still 204
   (the account is gone, and a retry could not deny again: its token is refused here and the
   account is missing everywhere else), logged and counted (``seatserver_account_deny_failed``:
   alert on it), and this process offers the deny to Redis again every second until Redis
   takes it (``Auth``): until then the other gateways take those tokens on routes that do not
   read the account (at most one access token lifetime, 15 minutes by default);
2. then its data in Redis is deleted; a failure there is logged, and what is left expires by
   itself (minutes to a day).

The audit row notes what did not happen (``deny_shared`` or ``redis_forgotten`` false). The
email may register again, as a new account.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from aiohttp import web
from prometheus_client import Counter

import storage
from gateway import audit, keys
from gateway.endpoint import Call
from gateway.errors import Conflict, Unauthorized
from gateway.privacy_redis import forget_in_redis, redis_data_of
from storage import privacy, privacy_ops

log = logging.getLogger(__name__)

DENY_FAILED = Counter(
    "seatserver_account_deny_failed",
    "Deleted accounts whose access tokens could not be denied through Redis",
)


def _gone() -> Unauthorized:
    return Unauthorized("this account no longer exists", code="invalid_token")


async def export_my_data(call: Call) -> web.Response:
    user_id = call.user.user_id
    async with (
        call.app[keys.POOL].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        try:
            account = await privacy_ops.account_of(conn, user_id, keyring=call.app[keys.KEYRING])
        except storage.NotFound as exc:
            raise _gone() from exc
        tables = await privacy_ops.export_rows(conn, user_id)
    held = await redis_data_of(call.app, user_id)
    now = dt.datetime.now(dt.UTC)
    body = {
        "generated_at": now.isoformat(),
        "account": account,
        "tables": tables,
        "redis": privacy.plain(held),
    }
    audit.note(call.request, rows=sum(len(rows) for rows in tables.values()))
    name = f"seatserver-my-data-{now:%Y-%m-%d}.json"
    return web.Response(
        body=json.dumps(body, indent=1, default=str).encode(),
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def delete_my_account(call: Call) -> None:
    auth, principal = call.app[keys.AUTH], call.user
    async with call.app[keys.POOL].acquire() as conn:
        try:
            user = await storage.get_user(conn, principal.user_id, keyring=call.app[keys.KEYRING])
        except storage.NotFound as exc:
            raise _gone() from exc
    if not await auth.verify_password(user.password_hash, call.body.password):
        raise Unauthorized("wrong password", code="invalid_credentials")
    if user.role == "admin":
        raise Conflict(
            "an operations account cannot delete itself: another admin removes it",
            {"role": user.role},
            code="staff_account",
        )
    async with call.app[keys.POOL].acquire() as conn:
        try:
            done = await privacy_ops.delete_account(conn, user.id)
        except storage.NotFound as exc:
            raise _gone() from exc
        except privacy_ops.AccountInUse as exc:
            raise Conflict(
                "cancel these holds, payments and bookings first, or wait until the shows are over",
                exc.blockers.public(),
                code="deletion_blocked",
            ) from exc
    audit.note(call.request, **{k: v for k, v in done.items() if v})
    await _forget_sessions_and_redis(call, user)


async def _forget_sessions_and_redis(call: Call, user: storage.User) -> None:
    """After the commit: deny every access token of the account, here and then on every
    gateway, whatever Redis does; then drop what Redis holds. Failures are logged, ids only."""
    if not await _deny_everywhere(call, user.id):
        audit.note(call.request, deny_shared=False)
    try:
        counts = await forget_in_redis(call.app, user.id, user.email)
    except Exception as exc:
        log.warning(
            "account %d deleted; its data in Redis is left to expire (%s)",
            user.id,
            type(exc).__name__,
        )
        audit.note(call.request, redis_forgotten=False)
        return
    audit.note(call.request, **{f"redis_{k}": v for k, v in counts.items() if v})


async def _deny_everywhere(call: Call, user_id: int) -> bool:
    """Deny the account's tokens: ``Auth.deny_user`` denies them in this process before it
    touches Redis, and offers a deny Redis refused to it again by itself."""
    try:
        await call.app[keys.AUTH].deny_user(user_id)
    except Exception as exc:
        DENY_FAILED.inc()
        log.error(
            "account %d deleted; its access tokens are denied on this gateway, not yet "
            "through Redis (%s): offered to Redis again every second until it takes them",
            user_id,
            type(exc).__name__,
        )
        return False
    return True
