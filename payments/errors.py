"""Refusals of the booking saga. Like the seat core's errors they know nothing of HTTP: each
class has a stable ``code`` and the gateway maps classes to statuses.

    PaymentError
     ├── CheckoutClosed        the hold is paid for already, or its show no longer sells
     ├── TooManyAttempts       the hold has used its payment attempts
     ├── PaymentNotOpen        the payment is past the point where it could be paid
     ├── PaymentDeclinedError  the card said no (a new attempt may succeed)
     ├── ProviderDown          the provider is unreachable or the breaker is open
     ├── ProviderRefused       the provider refused a request of ours (a bug or a bad setup)
     ├── SettlementPending     money moved but the seat side is not settled yet: try later
     ├── CancellationClosed    the show has started; a booking can no longer be cancelled
     └── InvalidWebhook        unsigned, tampered or stale notification
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class PaymentError(Exception):
    code: ClassVar[str] = "payment_error"

    def __init__(
        self,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after


class CheckoutClosed(PaymentError):
    code = "checkout_closed"


class TooManyAttempts(PaymentError):
    code = "too_many_payment_attempts"


class PaymentNotOpen(PaymentError):
    code = "payment_not_open"


class PaymentDeclinedError(PaymentError):
    code = "payment_declined"


class ProviderDown(PaymentError):
    code = "payment_provider_unavailable"


class ProviderRefused(PaymentError):
    code = "payment_provider_refused"


class SettlementPending(PaymentError):
    code = "settlement_pending"


class CancellationClosed(PaymentError):
    code = "cancellation_closed"


class InvalidWebhook(PaymentError):
    code = "invalid_webhook"
