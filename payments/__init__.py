"""Payments: the booking saga on a payment provider (Stripe), refunds by policy, reconciliation
and the circuit breaker around the provider. It builds on the show actors (seats) and storage
(the saga's records); the gateway exposes it over HTTP."""

from payments.config import PaymentsConfig, build_provider, build_saga
from payments.errors import (
    CancellationClosed,
    CheckoutClosed,
    InvalidWebhook,
    PaymentDeclinedError,
    PaymentError,
    PaymentNotOpen,
    ProviderDown,
    ProviderRefused,
    SettlementPending,
    TooManyAttempts,
)
from payments.ids import booking_id_of
from payments.policy import DEFAULT_POLICY, PolicyError, RefundPolicy
from payments.reconcile import run_reconciler
from payments.refunds import Cancellation
from payments.saga import Saga, SagaConfig

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
