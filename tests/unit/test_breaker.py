"""The circuit breaker's state machine, on an injected clock: no sleeps, no I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from payments.breaker import CircuitBreaker, GuardedProvider
from payments.provider import (
    Intent,
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    Refund,
    WebhookEvent,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


INTENT = Intent("pi_1", "requires_payment_method", 500, "eur")


class FakeProvider:
    """Answers with ``INTENT``, or raises ``self.error``; counts calls."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None  # when set, calls wait for it

    async def _answer(self, what: str) -> Intent:
        self.calls.append(what)
        gate = self.gate  # the gate of the time of the call
        if gate is not None:
            await gate.wait()
        if self.error is not None:
            raise self.error
        return INTENT

    async def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        description: str = "",
    ) -> Intent:
        return await self._answer("create")

    async def retrieve_intent(self, ref: str) -> Intent:
        return await self._answer("retrieve")

    async def confirm_intent(
        self, ref: str, *, payment_method: str, idempotency_key: str
    ) -> Intent:
        return await self._answer("confirm")

    async def cancel_intent(self, ref: str, *, idempotency_key: str) -> Intent:
        return await self._answer("cancel")

    async def refund(
        self,
        intent_ref: str,
        *,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> Refund:
        await self._answer("refund")
        return Refund("re_1", intent_ref, amount_cents, "succeeded")

    async def refunds_of(self, intent_ref: str) -> list[Refund]:
        await self._answer("refunds_of")
        return []

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        self.calls.append("parse_webhook")
        return WebhookEvent("evt_1", "payment_intent.succeeded", 1, INTENT)

    async def close(self) -> None:
        self.calls.append("close")

    def public_config(self) -> dict[str, Any]:
        self.calls.append("public_config")
        return {"name": "fake"}


DOWN = ProviderUnavailable("down", code="unreachable")


def guarded(threshold: int = 3, reset: float = 30.0) -> tuple[GuardedProvider, FakeProvider, Clock]:
    clock = Clock()
    inner = FakeProvider()
    breaker = CircuitBreaker(failure_threshold=threshold, reset_after_s=reset, clock=clock)
    return GuardedProvider(inner, breaker), inner, clock


async def fail(provider: GuardedProvider, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ProviderUnavailable) as info:
            await provider.retrieve_intent("pi_1")
        assert info.value.code == "unreachable"


async def test_closed_until_the_threshold_of_consecutive_failures() -> None:
    provider, inner, _ = guarded(threshold=3)
    inner.error = DOWN
    await fail(provider, 2)
    assert provider.breaker.state == "closed"
    inner.error = None
    assert await provider.retrieve_intent("pi_1") == INTENT  # a success resets the count
    inner.error = DOWN
    await fail(provider, 2)
    assert provider.breaker.state == "closed"
    await fail(provider, 1)
    assert provider.breaker.state == "open"
    assert len(inner.calls) == 6


async def test_open_fails_at_once_with_the_time_until_a_trial() -> None:
    provider, inner, clock = guarded(threshold=2, reset=30.0)
    inner.error = DOWN
    await fail(provider, 2)
    calls = len(inner.calls)
    clock.now += 10
    with pytest.raises(ProviderUnavailable) as info:
        await provider.create_intent(
            amount_cents=500, currency="eur", idempotency_key="k", metadata={}
        )
    assert info.value.code == "circuit_open"
    assert info.value.retry_after == pytest.approx(20.0)
    assert len(inner.calls) == calls  # the provider was not asked
    clock.now += 19.5
    with pytest.raises(ProviderUnavailable) as info:
        await provider.refund("pi_1", amount_cents=1, idempotency_key="r", metadata={})
    assert info.value.retry_after == 1.0  # never less than a second
    assert len(inner.calls) == calls


async def test_every_guarded_method_is_refused_while_open() -> None:
    provider, inner, _ = guarded(threshold=1)
    inner.error = DOWN
    await fail(provider, 1)
    inner.calls.clear()
    attempts = [
        provider.create_intent(amount_cents=1, currency="eur", idempotency_key="k", metadata={}),
        provider.retrieve_intent("pi_1"),
        provider.confirm_intent("pi_1", payment_method="pm_card_visa", idempotency_key="c"),
        provider.cancel_intent("pi_1", idempotency_key="x"),
        provider.refund("pi_1", amount_cents=1, idempotency_key="r", metadata={}),
        provider.refunds_of("pi_1"),
    ]
    for attempt in attempts:
        with pytest.raises(ProviderUnavailable, match="unavailable"):
            await attempt
    assert inner.calls == []


async def test_webhooks_and_public_config_are_not_guarded() -> None:
    provider, inner, _ = guarded(threshold=1)
    inner.error = DOWN
    await fail(provider, 1)
    assert provider.breaker.state == "open"
    assert provider.parse_webhook(b"{}", "t=1,v1=x").event_id == "evt_1"
    assert provider.public_config() == {"name": "fake"}
    await provider.close()
    assert inner.calls[-3:] == ["parse_webhook", "public_config", "close"]
    assert provider.name == "fake"


async def test_half_open_trial_success_closes() -> None:
    provider, inner, clock = guarded(threshold=2, reset=30.0)
    inner.error = DOWN
    await fail(provider, 2)
    clock.now += 30
    assert provider.breaker.state == "half_open"
    inner.error = None
    assert await provider.retrieve_intent("pi_1") == INTENT
    assert provider.breaker.state == "closed"
    inner.error = DOWN
    await fail(provider, 1)  # the count started again
    assert provider.breaker.state == "closed"


async def test_half_open_trial_failure_opens_again_for_a_full_period() -> None:
    provider, inner, clock = guarded(threshold=2, reset=30.0)
    inner.error = DOWN
    await fail(provider, 2)
    clock.now += 45
    await fail(provider, 1)  # the trial
    assert provider.breaker.state == "open"
    assert provider.breaker.retry_after() == pytest.approx(30.0)
    clock.now += 29
    assert provider.breaker.state == "open"
    clock.now += 1
    assert provider.breaker.state == "half_open"


async def test_half_open_lets_one_trial_through_at_a_time() -> None:
    provider, inner, clock = guarded(threshold=1, reset=5.0)
    inner.error = DOWN
    await fail(provider, 1)
    clock.now += 5
    inner.error = None
    inner.gate = asyncio.Event()
    trial = asyncio.create_task(provider.retrieve_intent("pi_1"))
    await asyncio.sleep(0)  # the trial is now waiting on the provider
    assert inner.calls[-1] == "retrieve"
    calls = len(inner.calls)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.retrieve_intent("pi_1")
    assert info.value.code == "circuit_open" and info.value.retry_after >= 1.0
    assert len(inner.calls) == calls
    inner.gate.set()
    assert await asyncio.wait_for(trial, 5) == INTENT
    assert provider.breaker.state == "closed"


async def test_a_cancelled_trial_frees_the_slot() -> None:
    provider, inner, clock = guarded(threshold=1, reset=5.0)
    inner.error = DOWN
    await fail(provider, 1)
    clock.now += 5
    inner.error = None
    inner.gate = asyncio.Event()
    trial = asyncio.create_task(provider.retrieve_intent("pi_1"))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert provider.breaker.state == "half_open"
    inner.gate.set()
    assert await provider.retrieve_intent("pi_1") == INTENT
    assert provider.breaker.state == "closed"


@pytest.mark.parametrize(
    "answer", [PaymentDeclined("no", code="card_declined"), ProviderRejected("bad", code="x")]
)
async def test_declines_and_refusals_are_answers_not_failures(answer: Exception) -> None:
    provider, inner, clock = guarded(threshold=2, reset=10.0)
    inner.error = DOWN
    await fail(provider, 1)
    inner.error = answer
    with pytest.raises(type(answer)):
        await provider.confirm_intent("pi_1", payment_method="pm", idempotency_key="c")
    inner.error = DOWN
    await fail(provider, 1)
    assert provider.breaker.state == "closed"  # the decline reset the count
    await fail(provider, 1)
    assert provider.breaker.state == "open"
    clock.now += 10
    inner.error = answer
    with pytest.raises(type(answer)):  # the trial, answered: the provider is back
        await provider.confirm_intent("pi_1", payment_method="pm", idempotency_key="c")
    assert provider.breaker.state == "closed"


async def test_a_call_begun_before_it_opened_does_not_close_it() -> None:
    provider, inner, _ = guarded(threshold=1)
    gate = inner.gate = asyncio.Event()
    slow = asyncio.create_task(provider.retrieve_intent("pi_1"))
    await asyncio.sleep(0)
    inner.gate = None
    inner.error = DOWN
    await fail(provider, 1)
    assert provider.breaker.state == "open"
    inner.error = None
    gate.set()
    assert await asyncio.wait_for(slow, 5) == INTENT
    assert provider.breaker.state == "open"  # only a trial closes it


def test_stats() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10.0, clock=clock)
    assert breaker.stats() == {
        "state": "closed",
        "consecutive_failures": 0,
        "retry_after_s": 0.0,
        "calls": 0,
        "failures": 0,
        "rejected": 0,
        "opened": 0,
    }
    for _ in range(2):
        trial = breaker.before()
        breaker.failed(trial)
    with pytest.raises(ProviderUnavailable):
        breaker.before()
    clock.now += 4
    stats = breaker.stats()
    assert stats["state"] == "open"
    assert stats["retry_after_s"] == pytest.approx(6.0)
    assert (stats["calls"], stats["failures"], stats["rejected"], stats["opened"]) == (2, 2, 1, 1)


@pytest.mark.parametrize("threshold, reset", [(0, 1.0), (1, 0.0), (-1, 5.0)])
def test_bad_settings_are_refused(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, reset_after_s=reset)
