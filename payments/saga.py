"""The booking saga: hold → PaymentIntent → booking; or release, or refund.

Money is never taken without a seat, and a seat never given without money:

- ``checkout`` records an attempt (``creating``) before it asks the provider for an intent,
  then marks it ``open`` and the hold payment-pending (its expiry pushed once, capped). One
  attempt of a hold is alive at a time; a double click finds the first. A new attempt (after a
  decline) gets a new idempotency key.
- A success (the customer's confirm, a webhook or the reconciler, whichever comes first) marks
  the payment ``succeeded`` and then confirms the booking through the show actor, which answers
  once the booking is durable; the payment becomes ``booked``. If the hold has expired or was
  lost, the payment is refunded in full and recorded as such.
- A refund is planned in Postgres (one per payment) before any seat or money moves; carrying it
  out is locked per refund and first asks the provider whether it was already made, so a
  crash, a retry or two workers give one refund.
- ``reconcile`` resumes whatever a crash or a missed webhook left: attempts still open past a
  bound (asked of the provider), payments succeeded but not booked, refunds not made, bookings
  of cancelled shows not yet refunded.

Ids follow from ids: a payment's booking id and refund id are derived from the payment id, so
every step can be retried and finds what an earlier try did. Refunds and cancellations live in
``payments.refunds``, the reconciler in ``payments.reconcile``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import actors
import storage
from payments.errors import (
    CheckoutClosed,
    InvalidWebhook,
    PaymentDeclinedError,
    PaymentNotOpen,
    ProviderDown,
    ProviderRefused,
    SettlementPending,
    TooManyAttempts,
)
from payments.ids import booking_id_of, refund_id_of
from payments.metrics import BOOKINGS, PAYMENTS
from payments.policy import DEFAULT_POLICY, RefundPolicy
from payments.provider import (
    Intent,
    PaymentDeclined,
    PaymentProvider,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    WebhookRejected,
)
from payments.reconcile import Reconciliation
from payments.refunds import NOT_YET, Refunds
from storage import payments as records
from storage.payments import Payment

log = logging.getLogger(__name__)

_UNSEATED = (
    actors.HoldNotFound,  # also HoldExpired
    actors.HoldNotYours,
    actors.ShowNotOnSale,
    actors.CompanionWithoutWheelchair,
)

Observer = Callable[[str, str], Awaitable[None] | None]


@dataclass(frozen=True)
class SagaConfig:
    # Payment attempts a hold may use; after the last is declined, the hold is released.
    max_attempts: int = 3
    # The reconciler settles what has been left unsettled this long (a missed webhook).
    settle_after_s: float = 60.0
    policy: RefundPolicy = field(default_factory=lambda: RefundPolicy.parse(DEFAULT_POLICY))
    # Bookings refunded at once when a whole show is cancelled.
    concurrency: int = 8
    # Rows the reconciler looks at per kind and pass.
    batch: int = 100
    # How long a second try waits for a booking the first try is making durable.
    durable_wait_s: float = 5.0


class Saga(Refunds, Reconciliation):
    def __init__(
        self,
        pool: Any,
        engine: Any,
        provider: PaymentProvider,
        config: SagaConfig | None = None,
        *,
        observe: Observer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._engine = engine
        self.provider = provider
        self.config = config or SagaConfig()
        self._observe = observe
        self._clock = clock

    # -- checkout ------------------------------------------------------------------------------

    async def checkout(self, *, user_id: int, show_id: int, hold_id: str) -> Payment:
        """Start (or find) the payment of a hold; the hold becomes payment-pending."""
        hold = (await self._engine.snapshot(show_id)).live_hold(hold_id, str(user_id))
        async with self._pool.acquire() as conn:
            show = await storage.get_show(conn, show_id)
            if show.status == "cancelled":
                raise CheckoutClosed("the show is cancelled", {"show_id": show_id})
            async with conn.transaction():
                await records.lock_hold(conn, hold_id)
                payment = await self._attempt(conn, hold, show_id, user_id, show.currency)
        if payment.status == "open":
            return payment
        payment = await self._create_intent(payment)
        await self._start_payment(payment, hold)
        return payment

    async def _attempt(
        self, conn: Any, hold: actors.Hold, show_id: int, user_id: int, currency: str
    ) -> Payment:
        """The live attempt of the hold, or a new one (under the hold's lock)."""
        attempts = await records.payments_of_hold(conn, hold.hold_id)
        paid = [p for p in attempts if p.status in ("succeeded", "booked")]
        if paid:
            raise CheckoutClosed(
                "this hold is paid for already", {"payment_id": paid[0].payment_id}
            )
        live = [p for p in attempts if p.status in records.LIVE]
        if live:
            return live[0]  # a double click, or a retry after the provider's answer was lost
        if len(attempts) >= self.config.max_attempts:
            raise TooManyAttempts(
                "this hold has used all its payment attempts",
                {"attempts": len(attempts), "hold_id": hold.hold_id},
            )
        return await records.create_payment(
            conn,
            records.PaymentDraft(
                payment_id=str(uuid.uuid4()),
                hold_id=hold.hold_id,
                show_id=show_id,
                user_id=user_id,
                seats=hold.seats,
                attempt=len(attempts) + 1,
                provider=self.provider.name,
                amount_cents=hold.price_cents,
                currency=currency.lower(),
            ),
        )

    async def _create_intent(self, payment: Payment) -> Payment:
        try:
            intent = await self.provider.create_intent(
                amount_cents=payment.amount_cents,
                currency=payment.currency,
                idempotency_key=payment.idempotency_key,
                metadata={
                    "payment_id": payment.payment_id,
                    "hold_id": payment.hold_id,
                    "show_id": str(payment.show_id),
                    "user_id": str(payment.user_id),
                    "attempt": str(payment.attempt),
                },
                description=f"Show {payment.show_id}, seats {', '.join(payment.seats)}",
            )
        except ProviderUnavailable as exc:
            raise ProviderDown(
                "the payment provider is unavailable; the hold is kept, try again shortly",
                {"payment_id": payment.payment_id},
                retry_after=exc.retry_after,
            ) from exc
        except ProviderRejected as exc:
            raise ProviderRefused(
                "the payment provider refused to start this payment",
                {"payment_id": payment.payment_id, "provider_code": exc.code},
            ) from exc
        async with self._pool.acquire() as conn:
            moved = await records.move_payment(
                conn,
                payment.payment_id,
                ("creating",),
                "open",
                step="intent_created",
                provider_ref=intent.ref,
                client_secret=intent.client_secret,
            )
            if moved is None:  # a concurrent click made it first
                return await records.get_payment(conn, payment.payment_id)
        PAYMENTS.labels("started").inc()
        return moved

    async def _start_payment(self, payment: Payment, hold: actors.Hold) -> None:
        if hold.payment_started:
            return
        command = actors.StartPayment(hold.hold_id, str(payment.user_id))
        try:
            await self._engine.execute(payment.show_id, command)
        except actors.InvalidRequest:
            pass  # started already (a concurrent checkout of the same hold)
        except _UNSEATED:
            await self._abandon(payment, "hold_ended_during_checkout")
            raise

    # -- the customer pays -----------------------------------------------------------------------

    async def confirm(self, *, user_id: int, payment_id: str, payment_method: str) -> Payment:
        """Pay an open attempt with ``payment_method`` (an id the browser got from the
        provider). Answers once the booking is durable, or raises ``PaymentDeclinedError``."""
        payment = await self.get(payment_id, user_id=user_id)
        if payment.status != "open":
            if payment.status in ("succeeded", "booked", "refunding", "refunded"):
                return payment
            raise PaymentNotOpen("this payment can no longer be paid", {"status": payment.status})
        assert payment.provider_ref is not None
        digest = hashlib.sha256(payment_method.encode()).hexdigest()[:16]
        try:
            intent = await self.provider.confirm_intent(
                payment.provider_ref,
                payment_method=payment_method,
                idempotency_key=f"seatserver-{payment_id}-confirm-{digest}",
            )
        except PaymentDeclined as exc:
            raise await self._decline(payment, exc.code or "card_declined") from exc
        except ProviderUnavailable as exc:
            raise ProviderDown(
                "the payment provider is unavailable; nothing was charged twice, try again",
                {"payment_id": payment_id},
                retry_after=exc.retry_after,
            ) from exc
        except ProviderRejected:
            intent = await self._retrieve(payment)  # e.g. confirmed already by a double click
        await self._step(payment_id, "charged" if intent.status == "succeeded" else intent.status)
        return await self._apply(payment, intent, raise_decline=True)

    async def get(self, payment_id: str, *, user_id: int | None = None) -> Payment:
        async with self._pool.acquire() as conn:
            payment = await records.get_payment(conn, payment_id)
        if user_id is not None and payment.user_id != user_id:
            raise storage.NotFound("no such payment", {"payment_id": payment_id})
        return payment

    async def _retrieve(self, payment: Payment) -> Intent:
        assert payment.provider_ref is not None
        try:
            return await self.provider.retrieve_intent(payment.provider_ref)
        except ProviderUnavailable as exc:
            raise ProviderDown(
                "the payment provider is unavailable", retry_after=exc.retry_after
            ) from exc

    async def _apply(self, payment: Payment, intent: Intent, *, raise_decline: bool) -> Payment:
        """Act on what the provider says of an attempt's intent."""
        if intent.status == "succeeded":
            return await self.settle_success(payment, intent)
        if intent.status == "canceled":
            return await self._abandon(payment, "intent_canceled")
        if intent.status == "requires_payment_method" and intent.last_error:
            if raise_decline:
                raise await self._decline(payment, intent.last_error)
            return await self._declined_quietly(payment, intent.last_error)
        return payment  # processing, or waiting for the customer

    async def _decline(self, payment: Payment, code: str) -> PaymentDeclinedError:
        """Record a decline; returns the error to answer the customer with."""
        after = await self._declined_quietly(payment, code)
        left = max(0, self.config.max_attempts - payment.attempt)
        return PaymentDeclinedError(
            "the card was declined",
            {
                "decline_code": code,
                "payment_id": payment.payment_id,
                "attempts_left": left,
                "hold_released": after.status == "failed" and left == 0,
            },
        )

    async def _declined_quietly(self, payment: Payment, code: str) -> Payment:
        """A declined attempt: its intent is cancelled (so it can never succeed later) and it is
        marked failed; a new attempt may follow. After the last, the hold is released."""
        if payment.provider_ref is not None:
            try:
                await self.provider.cancel_intent(
                    payment.provider_ref, idempotency_key=f"seatserver-{payment.payment_id}-cancel"
                )
            except ProviderError as exc:
                # Left open: the customer may retry on the same intent; the reconciler settles.
                log.warning("declined intent %s not cancelled: %s", payment.provider_ref, exc)
                return payment
        async with self._pool.acquire() as conn:
            moved = await records.move_payment(
                conn, payment.payment_id, ("open",), "failed", step="declined", last_error=code
            )
        if moved is None:
            return await self.get(payment.payment_id)
        PAYMENTS.labels("declined").inc()
        if moved.attempt >= self.config.max_attempts:
            await self._release_hold(moved, "attempts_exhausted")
        return moved

    async def _abandon(self, payment: Payment, why: str) -> Payment:
        """An attempt that will not be paid: its intent is cancelled, its hold released."""
        if payment.provider_ref is not None:
            try:
                await self.provider.cancel_intent(
                    payment.provider_ref, idempotency_key=f"seatserver-{payment.payment_id}-cancel"
                )
            except ProviderRejected:
                intent = await self._retrieve(payment)
                if intent.status == "succeeded":
                    return await self.settle_success(payment, intent)
            except ProviderUnavailable:
                return payment  # the reconciler tries again
        async with self._pool.acquire() as conn:
            moved = await records.move_payment(
                conn, payment.payment_id, records.LIVE, "canceled", step="abandoned", why=why
            )
        if moved is not None:
            PAYMENTS.labels("abandoned").inc()
            await self._release_hold(moved, why)
            return moved
        return await self.get(payment.payment_id)

    async def _release_hold(self, payment: Payment, why: str) -> None:
        command = actors.Release(payment.hold_id, str(payment.user_id))
        try:
            await self._engine.execute(payment.show_id, command)
        except (actors.HoldNotFound, actors.HoldNotYours):
            return  # ended already
        async with self._pool.acquire() as conn:
            await records.record_step(conn, payment.payment_id, "hold_released", why=why)

    # -- money arrived -------------------------------------------------------------------------

    async def settle_success(self, payment: Payment, intent: Intent) -> Payment:
        """The provider took the money: book the seats, or refund if there are none to book."""
        async with self._pool.acquire() as conn:
            paid = await records.move_payment(
                conn,
                payment.payment_id,
                ("creating", "open", "failed", "canceled"),
                "succeeded",
                step="paid",
                provider_ref=intent.ref,
                amount=intent.amount_cents,
            )
            payment = await records.get_payment(conn, payment.payment_id)
        if paid is not None:
            PAYMENTS.labels("succeeded").inc()
        await self._step(payment.payment_id, "paid")
        if payment.status == "succeeded":
            return await self._book(payment)
        if payment.status == "refunding":
            await self._run_refund(refund_id_of(payment.payment_id))
            return await self.get(payment.payment_id)
        return payment

    async def _book(self, payment: Payment) -> Payment:
        booking_id = booking_id_of(payment.payment_id)
        command = actors.Confirm(payment.hold_id, str(payment.user_id), booking_id)
        try:
            await self._engine.execute(payment.show_id, command)
        except actors.InvalidRequest as exc:
            if exc.details.get("booking_id") != booking_id:
                raise
            await self._until_durable(booking_id, exc)  # an earlier or concurrent try made it
        except _UNSEATED as exc:
            BOOKINGS.labels("unseated").inc()
            return await self._refund_unseated(payment, exc)
        except NOT_YET as exc:
            BOOKINGS.labels("deferred").inc()
            raise SettlementPending(
                "the booking could not be confirmed yet", {"reason": exc.code}, retry_after=1
            ) from exc
        async with self._pool.acquire() as conn:
            moved = await records.move_payment(
                conn,
                payment.payment_id,
                ("succeeded",),
                "booked",
                step="booked",
                booking_id=booking_id,
            )
        if moved is not None:
            BOOKINGS.labels("booked").inc()
        await self._step(payment.payment_id, "booked")
        return moved or await self.get(payment.payment_id)

    async def _until_durable(self, booking_id: str, cause: Exception) -> None:
        """Wait (bounded) until a booking another try confirmed is in Postgres."""
        deadline = time.monotonic() + self.config.durable_wait_s
        while True:
            async with self._pool.acquire() as conn:
                if await records.booking_status(conn, booking_id) is not None:
                    return
            if time.monotonic() > deadline:
                raise SettlementPending(
                    "the booking is not durable yet", {"booking_id": booking_id}, retry_after=1
                ) from cause
            await asyncio.sleep(0.05)

    # -- webhooks ------------------------------------------------------------------------------

    async def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify and act on a provider notification; a replay of a processed one does nothing.
        Returns the outcome; raises ``SettlementPending`` to have the provider send it again."""
        try:
            event = self.provider.parse_webhook(payload, signature)
        except WebhookRejected as exc:
            raise InvalidWebhook(str(exc)) from exc
        async with self._pool.acquire() as conn:
            fresh = await records.receive_webhook(
                conn, self.provider.name, event.event_id, event.type
            )
        if not fresh:
            return "duplicate"
        outcome = "ignored"
        if event.intent is not None and event.type.startswith("payment_intent."):
            async with self._pool.acquire() as conn:
                payment = await records.payment_by_ref(conn, self.provider.name, event.intent.ref)
            if payment is None:
                outcome = "unknown_intent"
            else:
                payment = await self._apply(payment, event.intent, raise_decline=False)
                outcome = payment.status
        async with self._pool.acquire() as conn:
            await records.finish_webhook(conn, self.provider.name, event.event_id, outcome)
        return outcome

    async def _hold_alive(self, payment: Payment) -> bool:
        snapshot = await self._engine.snapshot(payment.show_id)
        return any(h.hold_id == payment.hold_id for h in snapshot.holds)

    async def _step(self, payment_id: str, step: str) -> None:
        if self._observe is not None:
            result = self._observe(payment_id, step)
            if result is not None:
                await result
