"""The reconciler, part of the saga (``Saga`` mixes this in): each pass settles what a crash or
a missed webhook left past the bound: attempts still open (asked of the provider: paid, abandoned
or still waiting), payments paid but not booked, refunds not made, and bookings of cancelled
shows not yet refunded. One item's failure leaves it for the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable
from typing import Any

import actors
from payments.errors import ProviderDown, SettlementPending
from payments.ids import refund_id_of
from payments.provider import ProviderError
from storage import payments as records
from storage.payments import Payment, RefundRecord

log = logging.getLogger(__name__)


class Reconciliation:
    """The reconciling half of ``Saga``."""

    _pool: Any
    _clock: Any
    config: Any

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


async def run_reconciler(saga: Any, stop: asyncio.Event, *, interval_s: float = 15.0) -> None:
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
