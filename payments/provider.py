"""What the booking saga needs of a payment provider, and nothing of any one provider.

Amounts are integers in the currency's minor unit (cents); currencies are ISO 4217 codes in
lower case, as Stripe spells them. Every call that changes money carries an idempotency key: a
retry with the same key (after a timeout whose answer was lost) gets the first result, never a
second intent or refund.

Errors are of three kinds, and the saga treats them differently:
``ProviderUnavailable`` (network, timeouts, 5xx, the circuit breaker open: try again later, the
hold stays), ``PaymentDeclined`` (the customer's card said no: a new attempt may succeed), and
``ProviderRejected`` (the provider refused the request itself, a 4xx: a bug or bad state, not
retried).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Intent",
    "IntentStatus",
    "PaymentDeclined",
    "PaymentProvider",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "Refund",
    "WebhookEvent",
    "WebhookRejected",
]

# Stripe's PaymentIntent statuses; other providers map onto them.
IntentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
]


@dataclass(frozen=True)
class Intent:
    """A provider's payment intent, as far as the saga cares."""

    ref: str  # the provider's id, e.g. "pi_..."
    status: IntentStatus
    amount_cents: int
    currency: str
    client_secret: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Why the last attempt to pay failed (a decline code), if it did.
    last_error: str | None = None


@dataclass(frozen=True)
class Refund:
    ref: str  # e.g. "re_..."
    intent_ref: str
    amount_cents: int
    status: str  # "succeeded", "pending", "failed", "canceled"
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookEvent:
    """A verified notification from the provider."""

    event_id: str
    type: str  # e.g. "payment_intent.succeeded"
    created: int  # provider's epoch seconds
    intent: Intent | None  # the PaymentIntent it is about, if it is about one


class ProviderError(Exception):
    """Base of what a provider raises."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or answered 5xx/429; the request may or may not have
    taken effect (retry with the same idempotency key). ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, *, retry_after: float = 5.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PaymentDeclined(ProviderError):
    """The payment method was declined (``code`` is the provider's decline code)."""


class ProviderRejected(ProviderError):
    """The provider refused the request (4xx other than a decline)."""


class WebhookRejected(ProviderError):
    """A webhook whose signature is missing, wrong or too old."""


class PaymentProvider(Protocol):
    """A payment provider. Implementations are safe to share between tasks of one loop."""

    name: str

    async def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        description: str = "",
    ) -> Intent: ...

    async def retrieve_intent(self, ref: str) -> Intent: ...

    async def confirm_intent(
        self, ref: str, *, payment_method: str, idempotency_key: str
    ) -> Intent:
        """Attach ``payment_method`` (an id the browser got from the provider, never card data)
        and confirm. Raises ``PaymentDeclined`` when the card says no."""
        ...

    async def cancel_intent(self, ref: str, *, idempotency_key: str) -> Intent:
        """Cancel an intent that has not succeeded; an intent already canceled is returned as
        it is. Raises ``ProviderRejected`` if it cannot be canceled (it succeeded)."""
        ...

    async def refund(
        self,
        intent_ref: str,
        *,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> Refund: ...

    async def refunds_of(self, intent_ref: str) -> list[Refund]:
        """Refunds already made against an intent (to settle a refund whose answer was lost)."""
        ...

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """Verify and parse a webhook; raises ``WebhookRejected``."""
        ...

    async def close(self) -> None: ...

    def public_config(self) -> dict[str, Any]:
        """What the web page needs to collect a payment method (publishable key, JS base)."""
        ...
