"""The saga's records: payment attempts, refunds, the step log and webhook receipts.

Every change of a payment's status is a conditional update (``WHERE status = ANY(...)``), so two
workers settling the same payment (a webhook and the reconciler) cannot both move it, and each
change writes a row of ``payment_steps`` in the same transaction.

>>> payment = await create_payment(conn, PaymentDraft(...))
>>> moved = await move_payment(conn, payment.payment_id, ("open",), "succeeded", step="paid")
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import NotFound

LIVE = ("creating", "open")


@dataclass(frozen=True)
class Payment:
    payment_id: str
    hold_id: str
    show_id: int
    user_id: int
    seats: tuple[str, ...]
    attempt: int
    provider: str
    provider_ref: str | None
    client_secret: str | None
    amount_cents: int
    currency: str
    status: str
    booking_id: str | None
    refunded_cents: int
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def idempotency_key(self) -> str:
        """The provider key of this attempt's intent: a new attempt gets a new key."""
        return f"seatserver-{self.payment_id}-create"


@dataclass(frozen=True)
class RefundRecord:
    refund_id: str
    payment_id: str
    booking_id: str | None
    reason: str
    amount_cents: int
    currency: str
    status: str
    provider_ref: str | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class PaymentDraft:
    payment_id: str
    hold_id: str
    show_id: int
    user_id: int
    seats: tuple[str, ...]
    attempt: int
    provider: str
    amount_cents: int
    currency: str


_PAYMENT_COLUMNS = """payment_id, hold_id, show_id, user_id, seats, attempt, provider,
    provider_ref, client_secret, amount_cents, currency, status, booking_id, refunded_cents,
    last_error, created_at, updated_at"""


def _payment(row: Any) -> Payment:
    return Payment(
        payment_id=str(row["payment_id"]),
        hold_id=str(row["hold_id"]),
        show_id=row["show_id"],
        user_id=row["user_id"],
        seats=tuple(row["seats"]),
        attempt=row["attempt"],
        provider=row["provider"],
        provider_ref=row["provider_ref"],
        client_secret=row["client_secret"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        status=row["status"],
        booking_id=None if row["booking_id"] is None else str(row["booking_id"]),
        refunded_cents=row["refunded_cents"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _refund(row: Any) -> RefundRecord:
    return RefundRecord(
        refund_id=str(row["refund_id"]),
        payment_id=str(row["payment_id"]),
        booking_id=None if row["booking_id"] is None else str(row["booking_id"]),
        reason=row["reason"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        status=row["status"],
        provider_ref=row["provider_ref"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def record_step(conn: Any, payment_id: str, step: str, **detail: Any) -> None:
    await conn.execute(
        "INSERT INTO payment_steps (payment_id, step, detail) VALUES ($1, $2, $3)",
        uuid.UUID(payment_id),
        step,
        json.loads(json.dumps(detail, default=str)),  # plain JSON values (the codec encodes)
    )


async def lock_hold(conn: Any, hold_id: str) -> None:
    """Serialize checkouts of one hold until the transaction ends (a double click waits)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('checkout:' || $1))", hold_id)


async def payments_of_hold(conn: Any, hold_id: str) -> list[Payment]:
    rows = await conn.fetch(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE hold_id = $1 ORDER BY attempt",
        uuid.UUID(hold_id),
    )
    return [_payment(r) for r in rows]


async def create_payment(conn: Any, draft: PaymentDraft) -> Payment:
    row = await conn.fetchrow(
        f"""INSERT INTO payments (payment_id, hold_id, show_id, user_id, seats, attempt, provider,
                                  amount_cents, currency, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'creating')
            RETURNING {_PAYMENT_COLUMNS}""",
        uuid.UUID(draft.payment_id),
        uuid.UUID(draft.hold_id),
        draft.show_id,
        draft.user_id,
        list(draft.seats),
        draft.attempt,
        draft.provider,
        draft.amount_cents,
        draft.currency,
    )
    await record_step(
        conn, draft.payment_id, "created", attempt=draft.attempt, amount=draft.amount_cents
    )
    return _payment(row)


async def get_payment(conn: Any, payment_id: str, *, for_update: bool = False) -> Payment:
    try:
        key = uuid.UUID(payment_id)
    except ValueError as exc:
        raise NotFound("no such payment", {"payment_id": payment_id}) from exc
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1{lock}", key
    )
    if row is None:
        raise NotFound("no such payment", {"payment_id": payment_id})
    return _payment(row)


async def payment_by_ref(conn: Any, provider: str, ref: str) -> Payment | None:
    row = await conn.fetchrow(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE provider = $1 AND provider_ref = $2",
        provider,
        ref,
    )
    return None if row is None else _payment(row)


async def payment_of_booking(conn: Any, booking_id: str, hold_id: str | None) -> Payment | None:
    """The payment that paid for a booking (found by its hold while not yet marked booked)."""
    row = await conn.fetchrow(
        f"""SELECT {_PAYMENT_COLUMNS} FROM payments
            WHERE booking_id = $1
               OR (hold_id = $2 AND status = 'succeeded' AND booking_id IS NULL)
            ORDER BY (booking_id = $1) DESC NULLS LAST LIMIT 1""",
        uuid.UUID(booking_id),
        None if hold_id is None else uuid.UUID(hold_id),
    )
    return None if row is None else _payment(row)


async def move_payment(
    conn: Any,
    payment_id: str,
    from_statuses: Sequence[str],
    to_status: str,
    *,
    step: str,
    provider_ref: str | None = None,
    client_secret: str | None = None,
    booking_id: str | None = None,
    last_error: str | None = None,
    **detail: Any,
) -> Payment | None:
    """Move a payment to ``to_status`` if it is in one of ``from_statuses``; None if it was not
    (someone else moved it first). Records ``step`` with ``detail``."""
    row = await conn.fetchrow(
        f"""UPDATE payments
            SET status = $3, updated_at = now(),
                provider_ref = coalesce($4, provider_ref),
                client_secret = coalesce($5, client_secret),
                booking_id = coalesce($6::uuid, booking_id),
                last_error = coalesce($7, last_error)
            WHERE payment_id = $1 AND status = ANY($2::text[])
            RETURNING {_PAYMENT_COLUMNS}""",
        uuid.UUID(payment_id),
        list(from_statuses),
        to_status,
        provider_ref,
        client_secret,
        None if booking_id is None else uuid.UUID(booking_id),
        last_error,
    )
    if row is None:
        return None
    await record_step(conn, payment_id, step, status=to_status, **detail)
    return _payment(row)


async def unsettled_payments(
    conn: Any, statuses: Sequence[str], older_than: dt.datetime, *, limit: int = 100
) -> list[Payment]:
    """Payments in ``statuses`` not touched since ``older_than``, oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_PAYMENT_COLUMNS} FROM payments
            WHERE status = ANY($1::text[]) AND updated_at < $2
            ORDER BY updated_at LIMIT $3""",
        list(statuses),
        older_than,
        limit,
    )
    return [_payment(r) for r in rows]


async def touch_payment(conn: Any, payment_id: str) -> None:
    """Push a payment back in the reconciler's queue (it was looked at and left alone)."""
    await conn.execute(
        "UPDATE payments SET updated_at = now() WHERE payment_id = $1", uuid.UUID(payment_id)
    )


# -- refunds ----------------------------------------------------------------------------------

_REFUND_COLUMNS = """refund_id, payment_id, booking_id, reason, amount_cents, currency, status,
    provider_ref, last_error, created_at, updated_at"""


async def plan_refund(
    conn: Any,
    *,
    refund_id: str,
    payment: Payment,
    booking_id: str | None,
    reason: str,
    amount_cents: int,
) -> RefundRecord:
    """Record the refund to make (once per payment): a retry gets the first plan back, with
    the amount computed the first time."""
    await conn.execute(
        """INSERT INTO refunds (refund_id, payment_id, booking_id, reason, amount_cents,
                                currency, status)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $5 = 0 THEN 'none' ELSE 'pending' END)
           ON CONFLICT (payment_id) DO NOTHING""",
        uuid.UUID(refund_id),
        uuid.UUID(payment.payment_id),
        None if booking_id is None else uuid.UUID(booking_id),
        reason,
        amount_cents,
        payment.currency,
    )
    row = await conn.fetchrow(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE payment_id = $1",
        uuid.UUID(payment.payment_id),
    )
    return _refund(row)


async def refund_of_payment(conn: Any, payment_id: str) -> RefundRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    return None if row is None else _refund(row)


async def lock_pending_refund(conn: Any, refund_id: str) -> RefundRecord | None:
    """The refund, locked for this transaction, if it is pending and nobody else holds it."""
    row = await conn.fetchrow(
        f"""SELECT {_REFUND_COLUMNS} FROM refunds
            WHERE refund_id = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED""",
        uuid.UUID(refund_id),
    )
    return None if row is None else _refund(row)


async def finish_refund(
    conn: Any, refund: RefundRecord, provider_ref: str, *, payment_status: str | None
) -> None:
    """Record a refund the provider made; the payment's refunded total (and, for a payment
    that found no seat, its status) follows in the same transaction."""
    await conn.execute(
        """UPDATE refunds SET status = 'succeeded', provider_ref = $2, updated_at = now(),
                              last_error = NULL
           WHERE refund_id = $1""",
        uuid.UUID(refund.refund_id),
        provider_ref,
    )
    await conn.execute(
        """UPDATE payments SET refunded_cents = refunded_cents + $2, updated_at = now(),
                               status = coalesce($3, status)
           WHERE payment_id = $1""",
        uuid.UUID(refund.payment_id),
        refund.amount_cents,
        payment_status,
    )
    await record_step(
        conn,
        refund.payment_id,
        "refunded",
        refund_id=refund.refund_id,
        amount=refund.amount_cents,
        reason=refund.reason,
        provider_ref=provider_ref,
    )


async def note_refund_error(conn: Any, refund_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE refunds SET last_error = $2, updated_at = now() WHERE refund_id = $1",
        uuid.UUID(refund_id),
        error[:500],
    )


async def pending_refunds(
    conn: Any, older_than: dt.datetime, *, limit: int = 100
) -> list[RefundRecord]:
    rows = await conn.fetch(
        f"""SELECT {_REFUND_COLUMNS} FROM refunds
            WHERE status = 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2""",
        older_than,
        limit,
    )
    return [_refund(r) for r in rows]


async def refund_of_booking(conn: Any, booking_id: str) -> RefundRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE booking_id = $1", uuid.UUID(booking_id)
    )
    return None if row is None else _refund(row)


async def enqueue_message(conn: Any, topic: str, dedup_key: str, payload: dict[str, Any]) -> None:
    """An outbox row, in the caller's transaction; a second one with the same key is dropped."""
    await conn.execute(
        """INSERT INTO outbox (topic, dedup_key, payload) VALUES ($1, $2, $3)
           ON CONFLICT (dedup_key) DO NOTHING""",
        topic,
        dedup_key,
        payload,
    )


# -- bookings the saga must undo ---------------------------------------------------------------


async def live_bookings_of_cancelled_shows(
    conn: Any, *, show_id: int | None = None, limit: int = 500
) -> list[tuple[str, int]]:
    """(booking id, show id) of confirmed bookings whose show is cancelled; with ``show_id``,
    those of that show (whose cancellation its actor may not have written behind yet)."""
    rows = await conn.fetch(
        """SELECT b.booking_id, b.show_id FROM bookings b JOIN shows s ON s.id = b.show_id
           WHERE b.status = 'confirmed'
             AND (($1::bigint IS NULL AND s.status = 'cancelled') OR s.id = $1)
           ORDER BY b.confirmed_at LIMIT $2""",
        show_id,
        limit,
    )
    return [(str(r["booking_id"]), r["show_id"]) for r in rows]


async def booking_status(conn: Any, booking_id: str) -> str | None:
    value = await conn.fetchval(
        "SELECT status FROM bookings WHERE booking_id = $1", uuid.UUID(booking_id)
    )
    return None if value is None else str(value)


# -- webhooks ----------------------------------------------------------------------------------


async def receive_webhook(conn: Any, provider: str, event_id: str, type_: str) -> bool:
    """Note a delivery; True if the event still needs processing (new, or an earlier delivery
    did not finish)."""
    processed = await conn.fetchval(
        """INSERT INTO webhook_events (provider, event_id, type) VALUES ($1, $2, $3)
           ON CONFLICT (provider, event_id)
           DO UPDATE SET deliveries = webhook_events.deliveries + 1
           RETURNING processed_at IS NOT NULL""",
        provider,
        event_id,
        type_,
    )
    return not processed


async def finish_webhook(conn: Any, provider: str, event_id: str, outcome: str) -> None:
    await conn.execute(
        """UPDATE webhook_events SET processed_at = now(), outcome = $3
           WHERE provider = $1 AND event_id = $2""",
        provider,
        event_id,
        outcome,
    )
