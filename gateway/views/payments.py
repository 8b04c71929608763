"""Paying for a hold, the provider's webhooks, and cancelling a booking with its refund.

The browser never sends card data here: it gets a payment-method id from the provider's own
script (with the local provider, a card token from localstripe) and the gateway confirms the
payment with that id, so the answer can wait until the booking is durable.
"""

from __future__ import annotations

from typing import Any

import storage
from gateway import keys
from gateway.endpoint import Call, read_limited
from gateway.errors import ServiceUnavailable
from payments.errors import PaymentDeclinedError
from storage.payments import Payment, RefundRecord


def _saga(call: Call) -> Any:
    saga = call.app[keys.SAGA]
    if saga is None:
        raise ServiceUnavailable(
            "payments are not configured on this server", code="payments_disabled"
        )
    return saga


def payment_out(payment: Payment, provider: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "payment_id": payment.payment_id,
        "hold_id": payment.hold_id,
        "show_id": payment.show_id,
        "seats": list(payment.seats),
        "attempt": payment.attempt,
        "status": payment.status,
        "amount_cents": payment.amount_cents,
        "currency": payment.currency.upper(),
        "booking_id": payment.booking_id,
        "refunded_cents": payment.refunded_cents,
        "last_error": payment.last_error,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
    }
    if provider is not None:
        out["client_secret"] = payment.client_secret if payment.status == "open" else None
        out["provider"] = provider
    return out


def refund_out(refund: RefundRecord | None) -> dict[str, Any] | None:
    if refund is None:
        return None
    return {
        "refund_id": refund.refund_id,
        "reason": refund.reason,
        "amount_cents": refund.amount_cents,
        "currency": refund.currency.upper(),
        "status": refund.status,
        "created_at": refund.created_at.isoformat(),
    }


async def checkout(call: Call) -> dict[str, Any]:
    saga = _saga(call)
    user_id, show_id, hold_id = call.user.user_id, call.path.show_id, call.path.hold_id
    hold = (await call.app[keys.ENGINE].snapshot(show_id)).live_hold(hold_id, str(user_id))
    show = await call.app[keys.SHOW_INFO](show_id)
    await call.app[keys.FRAUD].check(
        call.request,
        user_id=user_id,
        show=show,
        hold=hold,
        billing_city_id=call.body.billing_city_id,
    )
    payment = await saga.checkout(user_id=user_id, show_id=show_id, hold_id=hold_id)
    return payment_out(payment, saga.provider.public_config())


async def confirm_payment(call: Call) -> dict[str, Any]:
    saga = _saga(call)
    fraud = call.app[keys.FRAUD]
    try:
        payment = await saga.confirm(
            user_id=call.user.user_id,
            payment_id=call.path.payment_id,
            payment_method=call.body.payment_method,
        )
    except PaymentDeclinedError:
        await fraud.declined(call.request, call.user.user_id)
        raise
    if payment.status in ("succeeded", "booked"):
        await fraud.paid(call.user.user_id, payment.hold_id)
    return payment_out(payment, saga.provider.public_config())


async def get_payment(call: Call) -> dict[str, Any]:
    saga = _saga(call)
    payment = await saga.get(call.path.payment_id, user_id=call.user.user_id)
    return payment_out(payment, saga.provider.public_config())


async def webhook(call: Call) -> dict[str, Any]:
    """The provider's notifications: verified by signature, acted on once."""
    saga = _saga(call)
    request = call.request
    payload = await read_limited(request, call.app[keys.CONFIG].max_body_bytes)
    outcome = await saga.handle_webhook(payload, request.headers.get("Stripe-Signature"))
    return {"received": True, "outcome": outcome}


async def cancel_booking(call: Call) -> dict[str, Any]:
    saga = _saga(call)
    done = await saga.cancel_booking(call.path.booking_id, user_id=call.user.user_id)
    return await _cancellation(call, done)


async def _cancellation(call: Call, done: Any) -> dict[str, Any]:
    from gateway.views.holds import booking_out

    async with call.app[keys.POOL].acquire() as conn:
        booking = await storage.get_booking(conn, done.booking_id)
    return {"booking": booking_out(booking), "refund": refund_out(done.refund)}
