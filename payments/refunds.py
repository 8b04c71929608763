"""Refunds and cancellations, part of the saga (``Saga`` mixes this in).

A refund is planned in Postgres (one per payment: a customer's cancellation by the policy, a
show cancelled, or money that found no seat) before any seat or money moves. Carrying it out
locks the refund's row, first asks the provider whether it was already made (a crash may have
lost the answer), and records it with its outbox mail in one transaction; a failure leaves it
pending for the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import actors
import storage
from payments.errors import CancellationClosed, ProviderDown, SettlementPending
from payments.ids import refund_id_of
from payments.provider import ProviderError
from storage import payments as records
from storage.payments import Payment, RefundRecord

log = logging.getLogger(__name__)

NOT_YET = (actors.ConfirmationPending, actors.ShowUnavailable)
# Refunds that end the payment (no booking was ever given for it).
_FINAL_REFUNDS = ("hold_lost", "duplicate_payment")


@dataclass(frozen=True)
class Cancellation:
    booking_id: str
    show_id: int
    refund: RefundRecord | None


class Refunds:
    """The refund half of ``Saga``: it uses the saga's pool, engine, provider and config."""

    _pool: Any
    _engine: Any
    provider: Any
    config: Any

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
            show = await storage.get_show(conn, booking.show_id)
        starts_at = show.starts_at
        if show.status == "cancelled":
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
        except NOT_YET as exc:
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
