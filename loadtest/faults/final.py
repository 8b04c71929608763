"""The final state of a fault run, read once the load has stopped and everything has settled.

    final = await settle_and_collect(stack, last_hold_expiry=t, hold_slack_s=5.0, say=print)

Settling, in order: every fault put back; every show host answers and has flushed; passes of
the saga's reconciler (an in-process ``payments.Saga`` on the stack's Postgres and provider,
the same one the gateways run) until no payment or refund is left unsettled; the last hold's
expiry passed and no show has a live hold left; a last flush. Each wait is
bounded: what did not settle in time is said and read as it is, for the checker to judge.

Then the reading: the rows of Postgres, each show's snapshot from its actor, and the
provider's intents and refunds (localstripe, through the Stripe SDK).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadtest.faults import model

if TYPE_CHECKING:
    from loadtest.faults.stack import FaultStack

Say = Callable[[str], None]

SETTLE_BUDGET_S = 90.0  # the most settling waits past the last hold's expiry plus the slack
PASS_PAUSE_S = 1.0  # between reconciler passes
HOST_TIMEOUT_S = 60.0  # a host answers and flushes within this
PAGE = 100  # provider objects per list call
MAX_PAGES = 1000

UNSETTLED_SQL = """
SELECT (SELECT count(*) FROM payments
         WHERE status IN ('creating', 'open', 'succeeded', 'refunding'))
     + (SELECT count(*) FROM refunds WHERE status = 'pending')
"""
# Every table as the checker reads it: ids as text, times as epoch seconds.
QUERIES = {
    "holds": """SELECT hold_id::text, show_id, user_id, seats, status, price_cents,
                       payment_started, extract(epoch FROM created_at)::float8 AS created_at,
                       extract(epoch FROM expires_at)::float8 AS expires_at,
                       extract(epoch FROM ended_at)::float8 AS ended_at
                  FROM holds ORDER BY created_at, hold_id""",
    "bookings": """SELECT booking_id::text, show_id, user_id, hold_id::text, seats, status,
                          price_cents, extract(epoch FROM confirmed_at)::float8 AS confirmed_at,
                          extract(epoch FROM cancelled_at)::float8 AS cancelled_at
                     FROM bookings ORDER BY confirmed_at, booking_id""",
    "payments": """SELECT payment_id::text, hold_id::text, booking_id::text, user_id, show_id,
                          provider_ref, status, amount_cents, refunded_cents, attempt,
                          extract(epoch FROM created_at)::float8 AS created_at
                     FROM payments ORDER BY created_at, payment_id""",
    "refunds": """SELECT refund_id::text, payment_id::text, booking_id::text, reason, status,
                         amount_cents, provider_ref
                    FROM refunds ORDER BY created_at, refund_id""",
    "webhooks": """SELECT event_id, type, deliveries, outcome
                     FROM webhook_events ORDER BY received_at, event_id""",
    # The waiting room's admission events: one outbox row ``admission:{show}:{user}:{number}``
    # per place let out of the line (``storage.notify.record_admissions``).
    "admissions": """SELECT (payload->>'show_id')::bigint AS show_id,
                            (payload->>'user_id')::bigint AS user_id,
                            (payload->>'number')::bigint AS number,
                            (payload->>'at')::float8 AS at
                       FROM outbox WHERE dedup_key LIKE 'admission:%' ORDER BY id""",
}


async def settle_and_collect(
    stack: FaultStack,
    *,
    last_hold_expiry: float,
    hold_slack_s: float,
    say: Say,
    budget_s: float = SETTLE_BUDGET_S,
) -> model.FinalState:
    """Settle the stack (see the module's doc) and read its final state. ``last_hold_expiry``:
    the latest expiry (epoch seconds) of any hold a client was told of; ``hold_slack_s``: how
    long past its expiry a hold may take to end; ``budget_s``: how long settling may take
    beyond that."""
    import actors
    import storage

    for name, value in (("last_hold_expiry", last_hold_expiry), ("hold_slack_s", hold_slack_s)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    put_back = await stack.restore()
    if put_back:
        say(f"settling: put back {', '.join(put_back)}")
    await _flush_hosts(stack, say)
    client = actors.ShowClient(stack.directory)
    config = stack.config
    pool = await storage.create_pool(
        config.database_url, schema=config.database_schema, min_size=1, max_size=4
    )
    try:
        # No need to wait out the slack: the actors expire a due hold as they are asked, and
        # the checker reads when each one ended.
        until = last_hold_expiry
        await _settle(stack, pool, client, until, max(until, time.time()) + budget_s, say)
        await _flush_hosts(stack, say)
        return await _collect(stack, pool, client, hold_slack_s)
    finally:
        await pool.close()


async def _flush_hosts(stack: FaultStack, say: Say) -> None:
    """Every host answers (one restarted by Ray loads its shows again) and writes what it
    has pending; one that cannot within ``HOST_TIMEOUT_S`` is said and left."""
    for host in await asyncio.wait_for(stack.directory.hosts.remote(), HOST_TIMEOUT_S):
        try:
            await asyncio.wait_for(_flush_host(host), HOST_TIMEOUT_S)
        except Exception as exc:  # Ray's errors and timeouts alike: the checker will see
            say(f"settling: a host did not flush: {type(exc).__name__}: {exc}")


async def _flush_host(host: Any) -> None:
    from ray.exceptions import RayError

    while True:
        try:
            await host.stats.remote()
            break
        except RayError:
            await asyncio.sleep(0.2)  # restarting
    await host.flush.remote()


async def _settle(
    stack: FaultStack, pool: Any, client: Any, until: float, deadline: float, say: Say
) -> None:
    """Reconciler passes until nothing is unsettled, ``until`` has passed and no show has a
    live hold; or until ``deadline``."""
    import payments

    settings = stack.config.payments
    provider = payments.build_provider(settings)
    saga = payments.build_saga(settings, pool, client, provider)
    passes, began = 0, time.monotonic()
    try:
        while True:
            passes += 1
            last, unsettled, live = await _pass(stack, saga, pool, client)
            now = time.time()
            if now >= until and not unsettled and not live:
                say(f"settled in {time.monotonic() - began:.1f} s ({passes} reconciler passes)")
                return
            if now >= deadline:
                say(
                    f"settling gave up after {time.monotonic() - began:.1f} s: {unsettled} "
                    f"payments or refunds unsettled, {live} live holds; last pass: {last}"
                )
                return
            await asyncio.sleep(PASS_PAUSE_S)
    finally:
        await provider.close()


async def _pass(stack: FaultStack, saga: Any, pool: Any, client: Any) -> tuple[str, int, int]:
    """One reconciler pass, then what is left: what the pass did, the payments and refunds
    unsettled, the live holds. A pass that fails (a store just back) counts as unsettled."""
    try:
        counts = await saga.reconcile()
        unsettled = int(await pool.fetchval(UNSETTLED_SQL))
        return str(counts), unsettled, await _live_holds(stack, client)
    except Exception as exc:  # the next pass tries again, until the deadline
        return f"failed: {type(exc).__name__}: {exc}", 1, 1


async def _live_holds(stack: FaultStack, client: Any) -> int:
    """Live holds over every show, as their actors have them now (a snapshot first expires
    the holds that are due)."""
    snapshots = await asyncio.gather(*(client.snapshot(show) for show in stack.show_ids))
    return sum(len(snapshot.holds) for snapshot in snapshots)


async def _collect(stack: FaultStack, pool: Any, client: Any, slack: float) -> model.FinalState:
    taken_at = time.time()
    rows: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as conn:
        for name, sql in QUERIES.items():
            rows[name] = [dict(record) for record in await conn.fetch(sql)]
    snapshots = {show: _snapshot(await client.snapshot(show)) for show in stack.show_ids}
    intents, refunds = await _provider_objects(stack.config.payments)
    return model.FinalState(
        taken_at=taken_at,
        hold_slack_s=slack,
        holds=rows["holds"],
        bookings=rows["bookings"],
        payments=rows["payments"],
        refunds=rows["refunds"],
        webhooks=rows["webhooks"],
        admissions=rows["admissions"],
        snapshots=snapshots,
        intents=intents,
        provider_refunds=refunds,
    )


def _snapshot(snapshot: Any) -> dict[str, Any]:
    return {
        "version": snapshot.version,
        "status": snapshot.status,
        "seats": {label: str(state) for label, state in snapshot.seats.items()},
        "bookings": [booking.booking_id for booking in snapshot.bookings],
        "holds": [hold.hold_id for hold in snapshot.holds],
    }


async def _provider_objects(settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every PaymentIntent and Refund the provider has, through the Stripe SDK."""
    import stripe

    http: Any = stripe.AIOHTTPClient(timeout=30.0)  # untyped
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        http_client=http,
        max_network_retries=0,
    )
    try:
        intents = [_intent(i) for i in await _all(client.v1.payment_intents)]
        charges = {i["latest_charge"]: i["id"] for i in intents if i["latest_charge"]}
        refunds = [_refund(r, charges) for r in await _all(client.v1.refunds)]
    finally:
        await http.close_async()
    return intents, refunds


async def _all(service: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": PAGE}
    for _ in range(MAX_PAGES):
        page = await service.list_async(params)
        data = [item.to_dict() for item in page.data]
        found += data
        if not page.has_more or not data:
            return found
        params["starting_after"] = data[-1]["id"]
    raise RuntimeError(f"more than {PAGE * MAX_PAGES} objects at the provider")


def _intent(data: dict[str, Any]) -> dict[str, Any]:
    """An intent as the checker reads it. localstripe reports no ``amount_received``: an
    intent that succeeded received its amount, others nothing."""
    charge = data.get("latest_charge")
    status = str(data["status"])
    return {
        "id": data["id"],
        "status": status,
        "amount": int(data["amount"]),
        "amount_received": int(data.get("amount_received") or 0)
        or (int(data["amount"]) if status == "succeeded" else 0),
        "latest_charge": charge.get("id") if isinstance(charge, dict) else charge,
        "metadata": dict(data.get("metadata") or {}),
    }


def _refund(data: dict[str, Any], intents_by_charge: dict[str, str]) -> dict[str, Any]:
    intent = data.get("payment_intent") or intents_by_charge.get(str(data.get("charge")))
    return {
        "id": data["id"],
        "payment_intent": intent,
        "amount": int(data["amount"]),
        "status": str(data.get("status") or "succeeded"),
        "metadata": dict(data.get("metadata") or {}),
    }
