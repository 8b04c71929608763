"""The plain values payments need, and the wiring of provider, breaker and saga from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.policy import DEFAULT_POLICY, RefundPolicy
from payments.provider import PaymentProvider
from payments.saga import Saga, SagaConfig


@dataclass(frozen=True)
class PaymentsConfig:
    stripe_api_key: str
    stripe_webhook_secret: str
    stripe_publishable_key: str
    # None: Stripe itself; the local provider (localstripe) gives its loopback URL.
    stripe_api_base: str | None = None
    # Where the web page loads the provider's script from (None: Stripe's own).
    stripe_js_base: str | None = None
    timeout_s: float = 10.0
    webhook_tolerance_s: int = 300
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    max_attempts: int = 3
    settle_after_s: float = 60.0
    refund_policy: str = DEFAULT_POLICY
    # Seconds between reconciliation passes in this process; 0: none here.
    reconcile_interval_s: float = 15.0


def build_provider(config: PaymentsConfig) -> PaymentProvider:
    """Stripe behind a circuit breaker."""
    from payments.breaker import CircuitBreaker, GuardedProvider
    from payments.stripe_provider import StripeProvider

    stripe = StripeProvider(
        config.stripe_api_key,
        config.stripe_webhook_secret,
        publishable_key=config.stripe_publishable_key,
        api_base=config.stripe_api_base,
        js_base=config.stripe_js_base,
        timeout_s=config.timeout_s,
        webhook_tolerance_s=config.webhook_tolerance_s,
    )
    breaker = CircuitBreaker(
        failure_threshold=config.breaker_failures, reset_after_s=config.breaker_reset_s
    )
    return GuardedProvider(stripe, breaker)


def build_saga(
    config: PaymentsConfig, pool: Any, engine: Any, provider: PaymentProvider, **kw: Any
) -> Saga:
    saga_config = SagaConfig(
        max_attempts=config.max_attempts,
        settle_after_s=config.settle_after_s,
        policy=RefundPolicy.parse(config.refund_policy),
    )
    return Saga(pool, engine, provider, saga_config, **kw)
