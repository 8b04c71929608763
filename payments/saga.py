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
every step can be retried and finds what an earlier try did.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
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
    CancellationClosed,
    CheckoutClosed,
    InvalidWebhook,
    PaymentDeclinedError,
    PaymentNotOpen,
    ProviderDown,
    ProviderRefused,
    SettlementPending,
    TooManyAttempts,
)
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
from storage import payments as records
from storage.payments import Payment, RefundRecord

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6c1e7f4e-7d0a-4d55-9b0e-2f3c8a1d5e90")
_UNSEATED = (
    actors.HoldNotFound,  # also HoldExpired
    actors.HoldNotYours,
    actors.ShowNotOnSale,
    actors.CompanionWithoutWheelchair,
)
_NOT_YET = (actors.ConfirmationPending, actors.ShowUnavailable)
# Refunds that end the payment (no booking was ever given for it).
_FINAL_REFUNDS = ("hold_lost", "duplicate_payment")

Observer = Callable[[str, str], Awaitable[None] | None]


def booking_id_of(payment_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"booking:{payment_id}"))


def refund_id_of(payment_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"refund:{payment_id}"))


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


@dataclass(frozen=True)
class Cancellation:
    booking_id: str
    show_id: int
    refund: RefundRecord | None


class Saga:
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
        hold = await self._live_hold(show_id, hold_id, user_id)
        async with self._pool.acquire() as conn:
            terms = await records.show_terms(conn, show_id)
            if terms is None:
                raise actors.ShowNotFound("no such show", {"show_id": show_id})
            currency, _, status = terms
            if status == "cancelled":
                raise CheckoutClosed("the show is cancelled", {"show_id": show_id})
            async with conn.transaction():
                await records.lock_hold(conn, hold_id)
                payment = await self._attempt(conn, hold, show_id, user_id, currency)
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
            await records.move_payment(
                conn,
                payment.payment_id,
                ("creating", "open", "failed", "canceled"),
                "succeeded",
                step="paid",
                provider_ref=intent.ref,
                amount=intent.amount_cents,
            )
            payment = await records.get_payment(conn, payment.payment_id)
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
            return await self._refund_unseated(payment, exc)
        except _NOT_YET as exc:
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

    async def _refund_unseated(self, payment: Payment, why: actors.BookingError) -> Payment:
        async with self._pool.acquire() as conn, conn.transaction():
            others = await records.payments_of_hold(conn, payment.hold_id)
            duplicate = any(p.status == "booked" for p in others)
            reason = "duplicate_payment" if duplicate else "hold_lost"
            moved = await records.move_payment(
                conn,
                payment.payment_id,
                ("succeeded",),
                "refunding",
                step="unseated",
                reason=reason,
                actor=why.code,
            )
            if moved is not None:
                await records.plan_refund(
                    conn,
                    refund_id=refund_id_of(payment.payment_id),
                    payment=moved,
                    booking_id=None,
                    reason=reason,
                    amount_cents=moved.amount_cents,
                )
        await self._run_refund(refund_id_of(payment.payment_id))
        return await self.get(payment.payment_id)

    async def _run_refund(self, refund_id: str) -> RefundRecord | None:
        """Carry out a planned refund once; a failure leaves it pending for the reconciler."""
        failure: Exception | None = None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                refund = await records.lock_pending_refund(conn, refund_id)
                if refund is not None:
                    payment = await records.get_payment(conn, refund.payment_id)
                    try:
                        ref = await self._refund_at_provider(refund, payment)
                    except ProviderError as exc:
                        failure = exc
                    else:
                        final = "refunded" if refund.reason in _FINAL_REFUNDS else None
                        await records.finish_refund(conn, refund, ref, payment_status=final)
                        await records.enqueue_message(
                            conn,
                            "refund.succeeded",
                            f"refund.succeeded:{refund.refund_id}",
                            {
                                "refund_id": refund.refund_id,
                                "payment_id": refund.payment_id,
                                "booking_id": refund.booking_id,
                                "show_id": payment.show_id,
                                "user_id": str(payment.user_id),
                                "amount_cents": refund.amount_cents,
                                "currency": refund.currency,
                                "reason": refund.reason,
                                "at": self._clock(),
                            },
                        )
            if failure is not None:
                await records.note_refund_error(conn, refund_id, f"{failure}")
                log.warning("refund %s left pending: %s", refund_id, failure)
            row = await conn.fetchrow(
                "SELECT payment_id FROM refunds WHERE refund_id = $1", uuid.UUID(refund_id)
            )
            if row is None:
                return None
            return await records.refund_of_payment(conn, str(row["payment_id"]))

    async def _refund_at_provider(self, refund: RefundRecord, payment: Payment) -> str:
        assert payment.provider_ref is not None
        for made in await self.provider.refunds_of(payment.provider_ref):
            if made.metadata.get("refund_id") == refund.refund_id:
                return made.ref  # made before a crash lost its answer
        done = await self.provider.refund(
            payment.provider_ref,
            amount_cents=refund.amount_cents,
            idempotency_key=f"seatserver-{refund.refund_id}-refund",
            metadata={
                "refund_id": refund.refund_id,
                "payment_id": payment.payment_id,
                "reason": refund.reason,
            },
        )
        return done.ref

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

    # -- cancellations -------------------------------------------------------------------------

    async def cancel_booking(
        self, booking_id: str, *, user_id: int | None, reason: str = "customer_cancel"
    ) -> Cancellation:
        """Cancel a booking and refund by the policy (in full when the show is cancelled);
        ``user_id`` None is an admin. A retry finds the first cancellation and its refund."""
        async with self._pool.acquire() as conn:
            booking = await storage.get_booking(conn, booking_id)
            if user_id is not None and booking.user_id != user_id:
                raise storage.NotFound("no such booking", {"booking_id": booking_id})
            payment = await records.payment_of_booking(conn, booking_id, booking.hold_id)
            terms = await records.show_terms(conn, booking.show_id)
        assert terms is not None
        _, starts_at, show_status = terms
        if show_status == "cancelled":
            reason = "show_cancelled"
        if booking.status == "cancelled":
            return await self._cancelled(booking_id, booking.show_id, payment)
        lead = starts_at.timestamp() - self._clock()
        if reason == "customer_cancel" and lead <= 0:
            raise CancellationClosed(
                "the show has started; the booking can no longer be cancelled",
                {"booking_id": booking_id, "starts_at": starts_at.isoformat()},
            )
        if payment is not None:
            payment = await self._plan_cancellation_refund(payment, booking_id, reason, lead)
        command = actors.Cancel(booking_id, None if user_id is None else str(user_id))
        try:
            await self._engine.execute(booking.show_id, command)
        except actors.BookingNotFound as exc:
            async with self._pool.acquire() as conn:
                if await records.booking_status(conn, booking_id) != "cancelled":
                    raise SettlementPending(
                        "the booking is not settled yet",
                        {"booking_id": booking_id},
                        retry_after=1,
                    ) from exc
        except _NOT_YET as exc:
            raise SettlementPending(
                "the cancellation could not be written yet; it will complete",
                {"booking_id": booking_id},
                retry_after=1,
            ) from exc
        return await self._cancelled(booking_id, booking.show_id, payment)

    async def _plan_cancellation_refund(
        self, payment: Payment, booking_id: str, reason: str, lead: float
    ) -> Payment:
        async with self._pool.acquire() as conn, conn.transaction():
            if payment.status == "succeeded":  # booked before a crash could mark it
                payment = (
                    await records.move_payment(
                        conn,
                        payment.payment_id,
                        ("succeeded",),
                        "booked",
                        step="booked",
                        booking_id=booking_id,
                    )
                    or payment
                )
            refundable = payment.amount_cents - payment.refunded_cents
            if reason == "customer_cancel":
                amount = min(
                    refundable,
                    self.config.policy.refund_cents(payment.amount_cents, seconds_before=lead),
                )
            else:
                amount = refundable
            refund = await records.plan_refund(
                conn,
                refund_id=refund_id_of(payment.payment_id),
                payment=payment,
                booking_id=booking_id,
                reason=reason,
                amount_cents=amount,
            )
            await records.record_step(
                conn,
                payment.payment_id,
                "cancellation_planned",
                reason=refund.reason,
                refund=refund.amount_cents,
                seconds_before=round(lead),
            )
        return payment

    async def _cancelled(
        self, booking_id: str, show_id: int, payment: Payment | None
    ) -> Cancellation:
        refund = None
        if payment is not None:
            refund = await self._run_refund(refund_id_of(payment.payment_id))
        return Cancellation(booking_id, show_id, refund)

    async def cancel_show(self, show_id: int) -> dict[str, int]:
        """Refund every booking of a cancelled show in full (the show's status is already
        cancelled); what fails now is finished by the reconciler."""
        done = failed = 0
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(booking_id: str) -> bool:
            async with gate:
                try:
                    await self.cancel_booking(booking_id, user_id=None, reason="show_cancelled")
                except (SettlementPending, ProviderDown, actors.BookingError) as exc:
                    log.warning("booking %s of cancelled show %d: %s", booking_id, show_id, exc)
                    return False
                return True

        while True:
            async with self._pool.acquire() as conn:
                batch = await records.live_bookings_of_cancelled_shows(
                    conn, show_id=show_id, limit=self.config.batch
                )
            if not batch:
                break
            results = await asyncio.gather(*(one(b) for b, _ in batch))
            done += sum(results)
            failed += len(results) - sum(results)
            if not any(results):
                break
        return {"bookings_cancelled": done, "bookings_left_for_later": failed}

    # -- reconciliation ------------------------------------------------------------------------

    async def reconcile(self) -> dict[str, int]:
        """One pass over what is unsettled past the bound; returns counts by what was done."""
        counts: dict[str, int] = {}
        bound = dt.datetime.fromtimestamp(self._clock() - self.config.settle_after_s, dt.UTC)
        async with self._pool.acquire() as conn:
            stale = await records.unsettled_payments(
                conn,
                ("creating", "open", "succeeded", "refunding"),
                bound,
                limit=self.config.batch,
            )
            refunds = await records.pending_refunds(conn, bound, limit=self.config.batch)
        for payment in stale:
            outcome = await self._guarded(self._reconcile_payment(payment))
            counts[outcome] = counts.get(outcome, 0) + 1
        for refund in refunds:
            outcome = await self._guarded(self._reconcile_refund(refund))
            counts[outcome] = counts.get(outcome, 0) + 1
        async with self._pool.acquire() as conn:
            orphans = await records.live_bookings_of_cancelled_shows(conn, limit=self.config.batch)
        for booking_id, _ in orphans:
            outcome = await self._guarded(self._reconcile_show_cancellation(booking_id))
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    async def _guarded(self, work: Awaitable[str]) -> str:
        try:
            return await work
        except (ProviderDown, SettlementPending, ProviderError) as exc:
            log.info("reconcile: left for the next pass: %s", exc)
            return "retry_later"
        except actors.BookingError as exc:
            log.warning("reconcile: %s", exc)
            return "retry_later"

    async def _reconcile_payment(self, payment: Payment) -> str:
        if payment.status == "succeeded":
            return f"succeeded->{(await self._book(payment)).status}"
        if payment.status == "refunding":
            await self._run_refund(refund_id_of(payment.payment_id))
            return "refund_retried"
        if payment.status == "creating":
            if await self._hold_alive(payment):
                return "left_alone"
            async with self._pool.acquire() as conn:
                await records.move_payment(
                    conn,
                    payment.payment_id,
                    ("creating",),
                    "canceled",
                    step="abandoned",
                    why="hold_ended_before_intent",
                )
            return "creating->canceled"
        intent = await self._retrieve(payment)
        if intent.status in ("succeeded", "canceled") or (
            intent.status == "requires_payment_method" and intent.last_error
        ):
            after = await self._apply(payment, intent, raise_decline=False)
            return f"open->{after.status}"
        if intent.status != "processing" and not await self._hold_alive(payment):
            after = await self._abandon(payment, "hold_ended_unpaid")
            return f"open->{after.status}"
        async with self._pool.acquire() as conn:
            await records.touch_payment(conn, payment.payment_id)
        return "left_alone"

    async def _reconcile_refund(self, refund: RefundRecord) -> str:
        if refund.booking_id is not None:
            async with self._pool.acquire() as conn:
                status = await records.booking_status(conn, refund.booking_id)
            if status == "confirmed":  # the cancellation stopped before the seats moved
                await self.cancel_booking(refund.booking_id, user_id=None, reason=refund.reason)
                return "cancellation_resumed"
        await self._run_refund(refund.refund_id)
        return "refund_retried"

    async def _reconcile_show_cancellation(self, booking_id: str) -> str:
        await self.cancel_booking(booking_id, user_id=None, reason="show_cancelled")
        return "show_cancellation_refunded"

    async def _live_hold(self, show_id: int, hold_id: str, user_id: int) -> actors.Hold:
        snapshot = await self._engine.snapshot(show_id)
        for hold in snapshot.holds:
            if hold.hold_id == hold_id:
                if hold.user_id != str(user_id):
                    raise actors.HoldNotYours("the hold is not yours", {"hold_id": hold_id})
                return hold
        raise actors.HoldNotFound("no live hold with this id", {"hold_id": hold_id})

    async def _hold_alive(self, payment: Payment) -> bool:
        snapshot = await self._engine.snapshot(payment.show_id)
        return any(h.hold_id == payment.hold_id for h in snapshot.holds)

    async def _step(self, payment_id: str, step: str) -> None:
        if self._observe is not None:
            result = self._observe(payment_id, step)
            if result is not None:
                await result


async def run_reconciler(saga: Saga, stop: asyncio.Event, *, interval_s: float = 15.0) -> None:
    """Reconcile every ``interval_s`` until ``stop``; one pass's failure never ends the loop."""
    while not stop.is_set():
        try:
            counts = await saga.reconcile()
            if counts:
                log.info("reconciled: %s", counts)
        except Exception:
            log.exception("reconciliation pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
