"""A circuit breaker around the payment provider.

Closed, calls go through and consecutive provider failures are counted; at the threshold it
opens and calls fail at once (``ProviderUnavailable`` with the seconds until a trial) instead of
piling up behind a dead provider; after ``reset_after_s`` it is half-open and lets one trial call
through: a success closes it, a failure opens it again. Only ``ProviderUnavailable`` counts as a
failure: a declined card or a refused request means the provider is answering. A call that
began before the breaker opened decides nothing when it ends; only the trial closes it again.

Usage::

    provider = GuardedProvider(StripeProvider(...), CircuitBreaker(failure_threshold=5))
    provider.breaker.state  # "closed", "open" or "half_open"
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from payments.provider import (
    Intent,
    PaymentProvider,
    ProviderUnavailable,
    Refund,
    WebhookEvent,
)

__all__ = ["CircuitBreaker", "GuardedProvider"]

T = TypeVar("T")


class CircuitBreaker:
    """Counts consecutive provider failures; ``clock`` (seconds, monotonic) is injectable.
    Meant for one event loop: it takes no locks."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_after_s <= 0:
            raise ValueError("failure_threshold >= 1 and reset_after_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # a half-open trial call is in flight
        self._counts = {"calls": 0, "failures": 0, "rejected": 0, "opened": 0}

    @property
    def state(self) -> str:
        """ "closed", "open" or "half_open" (open, and ``reset_after_s`` have passed)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_after_s:
            return "half_open"
        return "open"

    def retry_after(self) -> float:
        """Seconds until a trial may go through (at least 1 while not closed)."""
        if self._opened_at is None:
            return 0.0
        return max(1.0, self.reset_after_s - (self._clock() - self._opened_at))

    def before(self) -> bool:
        """Raise ``ProviderUnavailable`` if a call may not go through now; else return whether
        it is the half-open trial (pass that to ``succeeded``, ``failed`` or ``abandoned``)."""
        state = self.state
        if state == "open" or (state == "half_open" and self._trial):
            self._counts["rejected"] += 1
            raise ProviderUnavailable(
                "payment provider unavailable", retry_after=self.retry_after(), code="circuit_open"
            )
        self._counts["calls"] += 1
        if state == "half_open":
            self._trial = True
            return True
        return False

    def succeeded(self, trial: bool = False) -> None:
        """The provider answered (a result, a decline or a refusal)."""
        if trial or self._opened_at is None:
            self._failures = 0
            self._opened_at = None
        if trial:
            self._trial = False

    def failed(self, trial: bool = False) -> None:
        """The provider did not answer (``ProviderUnavailable``)."""
        self._counts["failures"] += 1
        self._failures += 1
        if trial or (self._opened_at is None and self._failures >= self.failure_threshold):
            self._counts["opened"] += 1
            self._opened_at = self._clock()
        if trial:
            self._trial = False

    def abandoned(self, trial: bool = False) -> None:
        """The call was cancelled before an answer: it says nothing of the provider."""
        if trial:
            self._trial = False

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` through the breaker."""
        trial = self.before()
        try:
            result = await work()
        except ProviderUnavailable:
            self.failed(trial)
            raise
        except Exception:
            self.succeeded(trial)  # a decline or a refusal: the provider is answering
            raise
        except BaseException:
            self.abandoned(trial)
            raise
        self.succeeded(trial)
        return result

    def stats(self) -> dict[str, Any]:
        """The state and counters since start: calls let through, failures, calls rejected
        while open, times opened."""
        return {
            "state": self.state,
            "consecutive_failures": self._failures,
            "retry_after_s": self.retry_after(),
            **self._counts,
        }


class GuardedProvider:
    """A provider behind a breaker; webhooks and the public config are not guarded."""

    def __init__(self, inner: PaymentProvider, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker
        self.name = inner.name

    async def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        description: str = "",
    ) -> Intent:
        return await self.breaker.call(
            lambda: self.inner.create_intent(
                amount_cents=amount_cents,
                currency=currency,
                idempotency_key=idempotency_key,
                metadata=metadata,
                description=description,
            )
        )

    async def retrieve_intent(self, ref: str) -> Intent:
        return await self.breaker.call(lambda: self.inner.retrieve_intent(ref))

    async def confirm_intent(
        self, ref: str, *, payment_method: str, idempotency_key: str
    ) -> Intent:
        return await self.breaker.call(
            lambda: self.inner.confirm_intent(
                ref, payment_method=payment_method, idempotency_key=idempotency_key
            )
        )

    async def cancel_intent(self, ref: str, *, idempotency_key: str) -> Intent:
        return await self.breaker.call(
            lambda: self.inner.cancel_intent(ref, idempotency_key=idempotency_key)
        )

    async def refund(
        self,
        intent_ref: str,
        *,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> Refund:
        return await self.breaker.call(
            lambda: self.inner.refund(
                intent_ref,
                amount_cents=amount_cents,
                idempotency_key=idempotency_key,
                metadata=metadata,
            )
        )

    async def refunds_of(self, intent_ref: str) -> list[Refund]:
        return await self.breaker.call(lambda: self.inner.refunds_of(intent_ref))

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        return self.inner.parse_webhook(payload, signature)

    async def close(self) -> None:
        await self.inner.close()

    def public_config(self) -> dict[str, Any]:
        return self.inner.public_config()
