"""Ids that follow from a payment's id, so every retried step finds what an earlier try did."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6c1e7f4e-7d0a-4d55-9b0e-2f3c8a1d5e90")


def booking_id_of(payment_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"booking:{payment_id}"))


def refund_id_of(payment_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"refund:{payment_id}"))
