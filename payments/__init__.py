"""Payments: the booking saga on a payment provider (Stripe), refunds by policy, reconciliation
and the circuit breaker around the provider. It builds on the show actors (seats) and storage
(the saga's records); the gateway exposes it over HTTP."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module it lives in, loaded on first use: the settings check a refund
# policy (``payments.policy``) before Ray's environment is set, and must not start the saga's
# imports (the show actors, Ray) on the way.
_WHERE = {
    "Cancellation": "payments.refunds",
    "CancellationClosed": "payments.errors",
    "CheckoutClosed": "payments.errors",
    "DEFAULT_POLICY": "payments.policy",
    "InvalidWebhook": "payments.errors",
    "PaymentDeclinedError": "payments.errors",
    "PaymentError": "payments.errors",
    "PaymentNotOpen": "payments.errors",
    "PaymentsConfig": "payments.config",
    "PolicyError": "payments.policy",
    "ProviderDown": "payments.errors",
    "ProviderRefused": "payments.errors",
    "RefundPolicy": "payments.policy",
    "Saga": "payments.saga",
    "SagaConfig": "payments.saga",
    "SettlementPending": "payments.errors",
    "TooManyAttempts": "payments.errors",
    "booking_id_of": "payments.ids",
    "build_provider": "payments.config",
    "build_saga": "payments.config",
    "run_reconciler": "payments.reconcile",
}

__all__ = [
    "DEFAULT_POLICY",
    "CancellationClosed",
    "Cancellation",
    "CheckoutClosed",
    "InvalidWebhook",
    "PaymentDeclinedError",
    "PaymentError",
    "PaymentNotOpen",
    "PaymentsConfig",
    "PolicyError",
    "ProviderDown",
    "ProviderRefused",
    "RefundPolicy",
    "Saga",
    "SagaConfig",
    "SettlementPending",
    "TooManyAttempts",
    "booking_id_of",
    "build_provider",
    "build_saga",
    "run_reconciler",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'payments' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
