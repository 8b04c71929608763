"""One client's requests, each written down as a ``model.Call`` of what the client saw (failed
tries and requests that got no answer included), and the step: one request tried again while
the answer says so.

A retry of one step keeps its Idempotency-Key (the product's promise: a retry gets the first
answer). Tried again: no answer, 5xx, 429, 202 (outcome not known yet) and 409
``idempotency_request_in_progress``, after a pause (Retry-After when given), within
``Tuning.tries`` and ``Tuning.step_s``. Other 4xx end the journey. All randomness comes from
``random.Random(seed + index)`` per client, idempotency keys included (with the run's start time
in them, so two runs of one seed never share a key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtest.faults import model
from loadtest.faults.clients.tuning import Tuning
from loadtest.locust.scenarios import API

SECRET_FIELDS = frozenset(
    {"client_secret", "admission_token", "access_token", "refresh_token", "quote_token"}
)
BULKY_FIELDS = frozenset({"layout", "provider", "prices"})
IN_PROGRESS = "idempotency_request_in_progress"


class GaveUp(Exception):
    """A journey still running past its deadline (``Tuning.drain_s`` after ``stop``)."""


@dataclass
class Answer:
    status: int | None  # None: no answer
    body: Any = None
    code: str | None = None
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        """A final success (a 202 says the outcome is not known yet)."""
        return self.status is not None and 200 <= self.status < 300 and self.status != 202

    @property
    def again(self) -> bool:
        """Worth trying again with the same key."""
        status = self.status
        return status is None or status >= 500 or status in (202, 429) or self.code == IN_PROGRESS

    def get(self, name: str) -> Any:
        return self.body.get(name) if self.done and isinstance(self.body, dict) else None


@dataclass
class Run:
    """What every client of one run shares."""

    plan: model.Plan
    history: model.History
    session: aiohttp.ClientSession
    tuning: Tuning
    seed: int
    stop: asyncio.Event
    finish: asyncio.Event
    stopped_at: float | None = None  # monotonic, once ``stop`` was seen
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def nonce(self) -> str:
        return f"{int(self.history.started * 1000):x}"

    def late(self) -> bool:
        return (
            self.stopped_at is not None and time.monotonic() > self.stopped_at + self.tuning.drain_s
        )

    def api(self, path: str) -> str:
        return self.plan.url.rstrip("/") + API + path


class Client:
    """One client: its name, account, random stream and the requests it records."""

    def __init__(self, run: Run, name: str, index: int, account: model.Account | None) -> None:
        self.run, self.name, self.account = run, name, account
        self.rng = random.Random(run.seed + index)
        self.t = run.tuning

    def new_key(self) -> str:
        return f"{self.run.nonce}-{self.name}-{self.rng.getrandbits(64):016x}"

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.t.think_s))

    async def send(
        self,
        op: str,
        method: str,
        url: str,
        *,
        show_id: int | None = None,
        ids: Mapping[str, str] | None = None,
        attempt: int = 1,
        headers: Mapping[str, str] | None = None,
        trim: Callable[[Any], dict[str, Any] | None] | None = None,
        auth: bool = True,
        **data: Any,
    ) -> Answer:
        """One request, recorded; ``data``: ``json=`` or ``data=`` (a form). ``auth``: with
        the account's access token (never sent to the provider)."""
        sent = dict(headers or {})
        if auth and self.account is not None:
            sent["Authorization"] = f"Bearer {self.account.token}"
        timeout = aiohttp.ClientTimeout(total=self.t.request_timeout_s)
        started = time.time()
        try:
            async with self.run.session.request(
                method, url, headers=sent, timeout=timeout, **data
            ) as resp:
                body = parse(await resp.read())
                answer = Answer(resp.status, body, _code(body), _seconds(resp.headers))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            answer = Answer(None, code=type(exc).__name__)
        self.run.history.calls.append(
            model.Call(
                client=self.name,
                op=op,
                started=started,
                ended=time.time(),
                status=answer.status,
                code=answer.code,
                show_id=show_id,
                user_id=None if self.account is None else self.account.user_id,
                attempt=attempt,
                ids={**(ids or {}), **_answer_ids(answer)},
                body=(trim or _trimmed)(answer.body) if answer.done else None,
            )
        )
        return answer

    async def step(
        self, op: str, method: str, url: str, *, keyed: bool = True, **kw: Any
    ) -> Answer:
        """One logical step, tried again (same key) while the answer says so; its last answer.
        Raises ``GaveUp`` past the journey's deadline."""
        headers = dict(kw.pop("headers", None) or {})
        ids = dict(kw.pop("ids", None) or {})
        if keyed:
            headers["Idempotency-Key"] = ids["key"] = self.new_key()
        began = time.monotonic()
        attempt = 1
        while True:
            if self.run.late():
                raise GaveUp(op)
            answer = await self.send(
                op, method, url, attempt=attempt, headers=headers, ids=ids, **kw
            )
            spent = time.monotonic() - began
            if not answer.again or attempt >= self.t.tries or spent > self.t.step_s:
                return answer
            await asyncio.sleep(self.pause(attempt, answer))
            attempt += 1

    def pause(self, attempt: int, answer: Answer) -> float:
        if answer.retry_after is not None:
            return min(answer.retry_after, self.t.retry_after_cap_s) * self.rng.uniform(1.0, 1.2)
        return min(0.1 * 2.0 ** (attempt - 1), self.t.pause_s) * self.rng.uniform(0.5, 1.0)

    async def live(self) -> None:
        raise NotImplementedError


def parse(raw: bytes) -> Any:
    """A body's JSON; None when it is empty or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _code(body: Any) -> str | None:
    """The error envelope's code (the gateway's), or the provider's error type."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return str(code) if code else None


def _seconds(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def digest(token: str) -> str:
    """An admission token's identity, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _answer_ids(answer: Answer) -> dict[str, str]:
    """The ids an answer names: its hold, payment, booking, refund, admission."""
    body = answer.body if answer.done and isinstance(answer.body, dict) else {}
    found = {k: body[k] for k in ("hold_id", "payment_id", "booking_id") if _text(body.get(k))}
    for part, name in (("booking", "booking_id"), ("refund", "refund_id")):
        inner = body.get(part)
        if isinstance(inner, dict) and _text(inner.get(name)):
            found[name] = inner[name]
    token = body.get("admission_token")
    if isinstance(token, str) and token:
        found["admission"] = digest(token)
    return found


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _trimmed(body: Any) -> dict[str, Any] | None:
    """The gateway's answer without secrets and without the bulky static parts."""
    if not isinstance(body, dict):
        return None
    return {k: v for k, v in body.items() if k not in SECRET_FIELDS and k not in BULKY_FIELDS}
