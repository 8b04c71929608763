"""Seat holds: create (explicit seats or best available), read, release, extend; and bookings.

Holds go to the show's actor through the batching ``ShowClient``; a hold's id is derived from
the caller's ``Idempotency-Key``, so a retry whose stored answer was lost still cannot make a
second hold (the actor refuses a hold id it already has, and the retry reads that hold back).
A hold on a show in a flash sale needs the ``Admission-Token`` the waiting room gave the caller
for that show (``gateway.waitingroom``); the actor refuses a hold the gateway did not mark as
admitted, so a process whose cached status is stale cannot let one through.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import actors
import storage
from gateway import admission, audit, keys, metrics, phases, serialize
from gateway.endpoint import Call
from gateway.errors import describe
from gateway.idempotency import derived_id
from gateway.pricing import hold_prices
from storage import payments as payments_store


async def _currency(call: Call, show_id: int) -> str:
    details = await call.app[keys.SHOW_INFO](show_id)
    return str(details.currency)


async def create_hold(call: Call) -> dict[str, Any]:
    """Place a hold, timed for ``seatserver_hold_seconds`` by mode and outcome."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        answer = await _place_hold(call)
        outcome = "held"
        return answer
    except Exception as exc:
        outcome = "refused" if describe(exc)[0] < 500 else "failed"
        raise
    finally:
        mode = "seats" if call.body.seats is not None else "best"
        metrics.HOLD_SECONDS.labels(mode, outcome).observe(time.perf_counter() - started)


async def _place_hold(call: Call) -> dict[str, Any]:
    show_id, body, user = call.path.show_id, call.body, str(call.user.user_id)
    try:
        details = await call.app[keys.SHOW_INFO](show_id)
    except storage.NotFound:
        details = None  # the actor answers for a show it does not know
    phases.lap("show_info")
    admitted = details is not None and details.status == "flash_sale"
    if admitted:  # only those the waiting room let in
        await _check_admission(call, show_id)
        phases.lap("admission")
    hold_id = derived_id(user, call.idempotency_key, f"hold:{show_id}")
    prices, arm = await _quoted(call, details, body.quote_token)
    phases.lap("pricing")
    command: actors.HoldSeats | actors.HoldBest
    if body.seats is not None:
        command = actors.HoldSeats(hold_id, user, tuple(body.seats), admitted, prices, arm)
    else:
        command = actors.HoldBest(
            hold_id, user, body.count, body.category, body.allow_split, admitted, prices, arm
        )
    try:
        hold = await _hold(call, show_id, command)
    except actors.AdmissionRequired:
        # The show went into a flash sale since this process cached it: the actor knows.
        call.app[keys.SHOW_INFO].forget(show_id)
        await _check_admission(call, show_id)
        hold = await _hold(call, show_id, dataclasses.replace(command, admitted=True))
    await call.app[keys.FRAUD].held(call.request, call.user.user_id, hold)
    phases.lap("fraud")
    currency = details.currency if details is not None else await _currency(call, show_id)
    return serialize.hold(hold, show_id, str(currency))


async def _quoted(
    call: Call, details: Any, token: str | None
) -> tuple[tuple[tuple[str, int], ...], str]:
    """The prices the hold is charged (those of the customer's quote, or of a fresh one) and
    the pricing arm; nothing for a show this process does not know (the actor answers)."""
    if details is None:
        return (), "control"
    pricing = call.app[keys.PRICING]
    user_id = call.user.user_id
    if token is not None:
        prices, arm = pricing.read(token, details.show_id, user_id)
    else:
        prices, arm, _ = await pricing.prices(details, user_id)  # no token to sign
    return hold_prices(prices), arm


async def quote(call: Call) -> dict[str, Any]:
    details = await call.app[keys.SHOW_INFO](call.path.show_id)
    found = await call.app[keys.PRICING].quote(details, call.user.user_id)
    return found.public(details.currency)


async def _check_admission(call: Call, show_id: int) -> None:
    token = call.request.headers.get(admission.HEADER)
    await call.app[keys.WAITING_ROOM].check_admission(show_id, call.user.user_id, token)


async def _hold(call: Call, show_id: int, command: actors.HoldSeats | actors.HoldBest) -> Any:
    """The command's hold; its time is ``host_lane`` and ``host_call`` (``gateway.phases``)."""
    try:
        return await call.app[keys.ENGINE].execute(show_id, command)
    except actors.InvalidRequest as exc:
        if exc.details.get("hold_id") != command.hold_id:
            raise
        return await _find_hold(call, show_id, command.hold_id)  # the first try made it
    finally:
        phases.lap("host_call")


async def _find_hold(call: Call, show_id: int, hold_id: str) -> actors.Hold:
    snapshot = await call.app[keys.ENGINE].snapshot(show_id)
    return snapshot.live_hold(hold_id, str(call.user.user_id))


async def get_hold(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    hold = await _find_hold(call, show_id, call.path.hold_id)
    return serialize.hold(hold, show_id, await _currency(call, show_id))


async def release_hold(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    command = actors.Release(call.path.hold_id, str(call.user.user_id))
    hold = await call.app[keys.ENGINE].execute(show_id, command)
    await call.app[keys.FRAUD].released(call.user.user_id, hold)
    return serialize.hold(hold, show_id, await _currency(call, show_id))


async def extend_hold(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    command = actors.Extend(call.path.hold_id, str(call.user.user_id))
    hold = await call.app[keys.ENGINE].execute(show_id, command)
    return serialize.hold(hold, show_id, await _currency(call, show_id))


def booking_out(b: storage.BookingRecord) -> dict[str, Any]:
    return {
        "booking_id": b.booking_id,
        "show_id": b.show_id,
        "hold_id": b.hold_id,
        "seats": list(b.seats),
        "price_cents": b.price_cents,
        "currency": b.currency,
        "status": b.status,
        "confirmed_at": b.confirmed_at.isoformat(),
        "cancelled_at": serialize.iso(b.cancelled_at),
        "movie_title": b.movie_title,
        "theater_id": b.theater_id,
        "theater_name": b.theater_name,
        "starts_at": b.starts_at.isoformat(),
        "price_arm": b.price_arm,
    }


async def my_bookings(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        found = await storage.bookings_of_user(
            conn, call.user.user_id, limit=call.query.limit, before=call.query.before
        )
    return {"bookings": [booking_out(b) for b in found]}


async def get_booking(call: Call) -> dict[str, Any]:
    principal = call.user
    async with call.app[keys.POOL].acquire() as conn:
        booking = await storage.get_booking(conn, call.path.booking_id)
        audit.subject(call.request, booking.user_id)
        allowed = (
            booking.user_id == principal.user_id
            or principal.is_ops
            or (
                principal.role == "theater_admin"
                and await storage.runs_theater(conn, principal.user_id, booking.theater_id)
            )
        )
    if not allowed:
        # Someone else's booking is answered as missing: ids are not probed.
        raise storage.NotFound("no such booking", {"booking_id": booking.booking_id})
    async with call.app[keys.POOL].acquire() as conn:
        payment = await payments_store.payment_of_booking(conn, booking.booking_id, booking.hold_id)
        refund = await payments_store.refund_of_booking(conn, booking.booking_id)
    from gateway.views.payments import refund_out

    return {
        **booking_out(booking),
        "payment_id": None if payment is None else payment.payment_id,
        "refund": refund_out(refund),
    }
