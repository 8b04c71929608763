"""The gateway's side of the models: a call with a time budget that falls back to rules.

``ModelCall`` calls one method of one Serve deployment. Whatever happens (the application is
not deployed, a replica died, the answer is late, the model raised), the caller gets an
``Answer``: the model's value, or the fallback's, and which one it was. Nothing the model does
can fail the customer's request or keep it past the budget.

A breaker (the payments' ``CircuitBreaker``) stops calling a deployment that keeps failing, so
while it is down the fallback answers at once instead of after each timeout; one trial call
goes through every ``reset_after_s``. ``seatserver_model_answers_total`` counts answers by
model, source ("model" or "fallback") and why the fallback answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Histogram

from payments.breaker import CircuitBreaker
from payments.provider import ProviderUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

ANSWERS = Counter(
    "seatserver_model_answers",
    "Answers of the models to the gateway, by model, source and why the fallback answered",
    ["model", "source", "reason"],
)
LATENCY = Histogram(
    "seatserver_model_call_seconds",
    "Time from call to answer of model calls that the model answered",
    ["model"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
)

#: Why the fallback answered.
ABSENT, TIMEOUT, FAILED, OPEN = "absent", "timeout", "failed", "circuit_open"
HANDLE_RETRY_S = 10.0
MAX_BATCH = 64  # most calls that ride in one request to a deployment
# Calls waiting for the next request: their arguments, and where their outcome goes.
Waiting = list[tuple[tuple[Any, ...], "asyncio.Future[tuple[Any, ...]]"]]


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    source: str  # "model" or "fallback"
    version: str | None = None  # the model version that answered
    reason: str | None = None  # why the fallback answered

    def describe(self) -> dict[str, Any]:
        """What an API answer says of where it came from."""
        out: dict[str, Any] = {"source": self.source}
        if self.version:
            out["model_version"] = self.version
        if self.reason:
            out["fallback_reason"] = self.reason
        return out


class ModelCall:
    """Calls ``method`` of the deployment ``deployment`` in the Serve application ``app``
    within ``budget_s``. The method takes a list of calls' arguments and answers
    ``{"version": ..., key: [one value per call]}``: calls that arrive while one request is in
    flight go together in the next (a Serve request costs a millisecond or more of CPU on
    each side, whatever it carries)."""

    def __init__(
        self,
        app: str,
        deployment: str,
        method: str,
        budget_s: float,
        *,
        key: str,
        breaker: CircuitBreaker | None = None,
        enabled: bool = True,
        observer: Callable[[str, str, str | None, float | None], None] | None = None,
        label: str | None = None,
    ) -> None:
        if budget_s <= 0:
            raise ValueError("budget_s must be positive")
        self.app, self.deployment, self.method, self.key = app, deployment, method, key
        # The name its answers are counted under (the deployment's, unless a second method of
        # one deployment is counted apart).
        self.label = label or deployment
        self.budget_s = budget_s
        self.breaker = breaker or CircuitBreaker(failure_threshold=3, reset_after_s=5.0)
        self.enabled = enabled
        # Told of every answer: (label, source, fallback reason, seconds to the answer).
        self.observer = observer
        self._handle: Any = None
        self._looked_at = -HANDLE_RETRY_S
        self._looking: asyncio.Task[Any] | None = None
        self._waiting: Waiting = []
        self._sender: asyncio.Future[None] | None = None

    async def __call__(self, *args: Any, fallback: Callable[[], T]) -> Answer[T]:
        """The model's answer to ``args`` within the budget, or ``fallback()``'s."""
        handle = self._current_handle()
        if handle is None:
            return self._fallback(fallback, ABSENT)
        if self.breaker.state == "open":
            return self._fallback(fallback, OPEN)
        started = time.perf_counter()
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, future))
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send(handle))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), self.budget_s)
        except TimeoutError:
            return self._fallback(fallback, TIMEOUT)
        if outcome[0] != "model":
            return self._fallback(fallback, outcome[0])
        took = time.perf_counter() - started
        LATENCY.labels(self.label).observe(took)
        ANSWERS.labels(self.label, "model", "").inc()
        if self.observer is not None:
            self.observer(self.label, "model", None, took)
        return Answer(outcome[1], "model", outcome[2])

    async def _send(self, handle: Any) -> None:
        """One call in flight to the deployment: whatever arrives meanwhile rides in the next
        one (at most ``MAX_BATCH``), each caller getting its own answer; a call that outlives
        the budget or fails counts against the breaker once."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                try:
                    trial = self.breaker.before()
                except ProviderUnavailable:
                    _settle(batch, (OPEN,))
                    continue
                response = getattr(handle, self.method).remote([args for args, _ in batch])
                try:
                    answer = await asyncio.wait_for(_awaited(response), self.budget_s)
                except TimeoutError:
                    response.cancel()
                    self.breaker.failed(trial)
                    _settle(batch, (TIMEOUT,))
                    continue
                except asyncio.CancelledError:
                    response.cancel()
                    self.breaker.abandoned(trial)
                    _settle(batch, (FAILED,))
                    raise
                except Exception as exc:  # the replica died, the app went, the model raised
                    self.breaker.failed(trial)
                    # The type only: a model's error may quote its input (a customer's query).
                    log.warning(
                        "%s.%s failed: %s", self.deployment, self.method, type(exc).__name__
                    )
                    if _gone(exc):
                        self._handle = None
                    _settle(batch, (FAILED,))
                    continue
                self.breaker.succeeded(trial)
                version = answer.get("version")
                for (_, future), value in zip(batch, answer[self.key], strict=True):
                    if not future.done():
                        future.set_result(("model", value, version))
        finally:
            self._sender = None

    def _fallback(self, fallback: Callable[[], T], reason: str) -> Answer[T]:
        ANSWERS.labels(self.label, "fallback", reason).inc()
        if self.observer is not None:
            self.observer(self.label, "fallback", reason, None)
        return Answer(fallback(), "fallback", None, reason)

    def _current_handle(self) -> Any:
        """The deployment's handle, looked up off the event loop (the lookup asks Serve's
        controller) and at most every ``HANDLE_RETRY_S`` while the app is absent."""
        if not self.enabled:
            return None
        if self._handle is not None:
            return self._handle
        now = time.monotonic()
        if self._looking is None and now - self._looked_at >= HANDLE_RETRY_S:
            self._looked_at = now
            self._looking = asyncio.ensure_future(asyncio.to_thread(self._lookup))
            self._looking.add_done_callback(self._found)
        return None

    def _lookup(self) -> Any:
        from ray import serve

        return serve.get_deployment_handle(self.deployment, app_name=self.app)

    def _found(self, task: asyncio.Task[Any]) -> None:
        self._looking = None
        if task.cancelled() or task.exception() is not None:
            return
        self._handle = task.result()

    def available(self) -> bool:
        """Whether the deployment's handle is known (looking it up, at most every
        ``HANDLE_RETRY_S``, when it is not)."""
        return self._current_handle() is not None

    async def ready(self, timeout_s: float = 30.0) -> bool:
        """Wait until the handle is found (tests and start-up); False if it never is."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._looking is None:
                self._looked_at = -HANDLE_RETRY_S  # look again now, not in HANDLE_RETRY_S
            if self._current_handle() is not None:
                return True
            await asyncio.sleep(0.1)
        return False


def _settle(batch: Waiting, outcome: tuple[Any, ...]) -> None:
    for _, future in batch:
        if not future.done():
            future.set_result(outcome)


async def _awaited(response: Any) -> Any:
    return await response


def _gone(exc: Exception) -> bool:
    """Whether the error says the application or deployment no longer exists."""
    text = f"{type(exc).__name__} {exc}".lower()
    return "not found" in text or "does not exist" in text or "deleted" in text
