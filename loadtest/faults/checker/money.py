"""Every captured payment has a booking or a refund, never both, never neither: the
provider's captured intents joined to the payment, booking and refund rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from loadtest.faults.checker.reading import final_of, some
from loadtest.faults.model import FinalState, History, Violation
from payments import booking_id_of


@dataclass(frozen=True)
class Captured:
    """Money taken at the provider and what the stores say of it."""

    intent_id: str
    amount: int
    payment: dict[str, Any] | None
    booking: dict[str, Any] | None
    refund: dict[str, Any] | None
    provider_refunds: tuple[dict[str, Any], ...]

    @property
    def live(self) -> bool:
        return self.booking is not None and self.booking.get("status") == "confirmed"


def captured_payments(final: FinalState) -> list[Captured]:
    """Every intent the provider captured (``succeeded``, amount received > 0), joined to its
    payment row (by provider_ref), the payment's booking (its booking_id, else the id derived
    from the payment id), its refund row and the provider's refunds of the intent that were
    not failed or canceled."""
    payments = {str(p.get("provider_ref")): p for p in final.payments if p.get("provider_ref")}
    bookings = {str(b["booking_id"]): b for b in final.bookings}
    refunds = {str(r["payment_id"]): r for r in final.refunds}
    made: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for done in final.provider_refunds:
        if done.get("status") not in ("failed", "canceled"):
            made[str(done.get("payment_intent"))].append(done)
    out = []
    for intent in final.intents:
        if intent.get("status") != "succeeded" or not intent.get("amount_received"):
            continue
        intent_id = str(intent["id"])
        payment = payments.get(intent_id)
        booking = refund = None
        if payment is not None:
            payment_id = str(payment["payment_id"])
            booking = bookings.get(str(payment.get("booking_id") or booking_id_of(payment_id)))
            refund = refunds.get(payment_id)
        out.append(
            Captured(
                intent_id,
                int(intent["amount_received"]),
                payment,
                booking,
                refund,
                tuple(made.get(intent_id, ())),
            )
        )
    return out


def payment_unsettled(history: History) -> list[Violation]:
    """Every captured intent has a payment row, and either a confirmed booking or a refund
    row (pending, succeeded, or "none" when the policy gave nothing back); a refund row that
    says succeeded has a refund of the intent at the provider. Money kept with neither a seat
    nor a refund is what this reports."""
    found = []
    for money in captured_payments(final_of(history)):
        if money.payment is None:
            problem = "has no payment row"
        elif not money.live and money.refund is None:
            problem = "has neither a confirmed booking nor a refund"
        elif money.refund is not None and (
            money.refund.get("status") == "succeeded" and not money.provider_refunds
        ):
            problem = "has a refund row that says succeeded but no refund at the provider"
        else:
            continue
        payment_id = None if money.payment is None else money.payment["payment_id"]
        found.append(
            Violation(
                "payment_unsettled",
                f"intent {money.intent_id} (payment {payment_id}, {money.amount} cents "
                f"captured) {problem}",
                {"intent_id": money.intent_id, "payment_id": payment_id},
            )
        )
    return found


def payment_double(history: History) -> list[Violation]:
    """No captured intent has both a confirmed booking and a refund (a refund row, or a
    refund at the provider); no hold has two captured payments with a confirmed booking each
    (an intent captured twice for one hold and both kept)."""
    found = []
    per_hold: dict[str, list[Captured]] = defaultdict(list)
    for money in captured_payments(final_of(history)):
        if not money.live or money.payment is None:
            continue
        per_hold[str(money.payment["hold_id"])].append(money)
        if money.refund is not None or money.provider_refunds:
            refund = money.refund or {}
            found.append(
                Violation(
                    "payment_double",
                    f"intent {money.intent_id} (payment {money.payment['payment_id']}) has a "
                    f"confirmed booking {money.booking and money.booking['booking_id']} and a "
                    f"refund (row {refund.get('refund_id')} {refund.get('status')}, "
                    f"{len(money.provider_refunds)} at the provider)",
                    {"intent_id": money.intent_id, "payment_id": money.payment["payment_id"]},
                )
            )
    for hold_id, kept in sorted(per_hold.items()):
        if len(kept) > 1:
            intents = [m.intent_id for m in kept]
            found.append(
                Violation(
                    "payment_double",
                    f"hold {hold_id} has {len(kept)} captured payments with a confirmed "
                    f"booking each: intents {some(intents)}",
                    {"hold_id": hold_id, "intent_ids": intents},
                )
            )
    return found
