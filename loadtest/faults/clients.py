"""The fault run's clients: customers booking, waiting-room visitors and seat-map watchers, each
request written down as a ``model.Call`` of what the client saw (failed tries and requests that
got no answer included).

    stop, finish = asyncio.Event(), asyncio.Event()
    clients = Clients(plan, history, seed=7, stop=stop, finish=finish,
                      customers=8, watchers=4, visitors=20, say=print)
    task = asyncio.create_task(clients.run())
    stop.set()                   # journeys in flight end, each within ``Tuning.drain_s``
    await clients.drained.wait() # every customer and visitor is done
    finish.set()                 # the stack settled: watchers catch up with the map and close
    await task                   # history.calls and history.watchers are filled

Customers (``plan.customers``' tokens) loop over journeys on ``plan.shows``: hold 1-3 best
seats, then release the hold, abandon it (it expires), or check out and pay: through the gateway
with a test card, or as a browser's provider script does with a card that asks for
authentication (the gateway's confirm leaves the intent waiting; the browser authenticates it at
the provider with the publishable key and the intent's client secret, and the provider's webhook
books it). Then they follow the payment until it settles, read the booking, and sometimes cancel
it. Visitors (``plan.visitors``, one place each) join the flash show's line, poll it until
admitted, hold with the admission token, check out and pay. Watchers follow a show's seat map on
the websocket as the web page does (``gateway/static/app.js``).

A retry of one step keeps its Idempotency-Key (the product's promise: a retry gets the first
answer). Tried again: no answer, 5xx, 429, 202 (outcome not known yet) and 409
``idempotency_request_in_progress``, after a pause (Retry-After when given), within
``Tuning.tries`` and ``Tuning.step_s``. Other 4xx end the journey. All randomness comes from
``random.Random(seed + index)`` per client, idempotency keys included (with the run's start time
in them, so two runs of one seed never share a key).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from loadtest.locust.scenarios import API, PAYMENT_METHOD

__all__ = ["Clients", "Say", "Tuning"]

Say = Callable[[str], None]

AUTHENTICATED_CARD = "4000002760003184"  # a test card the provider makes the browser authenticate
SECRET_FIELDS = frozenset(
    {"client_secret", "admission_token", "access_token", "refresh_token", "quote_token"}
)
BULKY_FIELDS = frozenset({"layout", "provider", "prices"})
PROVIDER_FIELDS = ("id", "object", "status", "amount", "amount_received", "currency")
IN_PROGRESS = "idempotency_request_in_progress"
SETTLED = frozenset({"booked", "refunded", "failed", "canceled"})
LINE_OVER = frozenset({"sold_out", "ended", "closed"})  # phases of a line that admit no one
ADMISSION_HEADER = "Admission-Token"
WS_CLOSE_S = 2.0


@dataclass(frozen=True)
class Tuning:
    """Pace, patience and the odds of each journey's branches."""

    think_s: tuple[float, float] = (0.01, 0.05)  # a customer's pause between steps
    request_timeout_s: float = 10.0  # one request, answer read
    tries: int = 8  # of one step, same key
    step_s: float = 20.0  # a step is not tried again after this long
    pause_s: float = 2.0  # the longest pause between tries without a Retry-After
    retry_after_cap_s: float = 5.0  # a longer Retry-After is waited this long
    drain_s: float = 30.0  # after ``stop``, a journey in flight gives up after this long
    seats: tuple[int, int] = (1, 3)
    release_share: float = 0.15
    abandon_share: float = 0.1  # the rest check out
    provider_share: float = 0.3  # of payments: authenticated at the provider
    cancel_share: float = 0.5  # of bookings: seats come back, the shows do not sell out
    refused_s: tuple[float, float] = (0.2, 0.5)  # a customer's pause after a refused hold
    payment_polls: int = 40
    payment_poll_s: float = 0.25
    visitor_spread_s: float = 1.0  # visitors arrive over this long
    admission_wait_s: float = 60.0
    line_poll_s: tuple[float, float] = (0.2, 1.0)  # bounds of the pause between polls
    ws_open_s: float = 5.0
    ws_backoff_s: tuple[float, float] = (0.2, 5.0)  # first and longest pause before reconnecting
    ws_silence_s: float = 45.0  # no message for this long: the connection is taken as lost
    resync_fallback_s: float = 5.0  # no snapshot this long after a resync: read it over HTTP
    catch_up_s: float = 8.0  # after ``finish``, how long a watcher may take to catch up
    catch_up_poll_s: float = 0.5


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
                body = _parse(await resp.read())
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

    async def buy(self, show: int, hold_id: str, *, at_provider: bool) -> dict[str, Any] | None:
        """Check out a hold and pay; the payment as last seen (None: refused or never
        answered)."""
        path = f"/shows/{show}/holds/{hold_id}/checkout"
        ids = {"hold_id": hold_id}
        checkout = await self.step("checkout", "POST", self.run.api(path), show_id=show, ids=ids)
        payment_id = checkout.get("payment_id")
        if not isinstance(payment_id, str):
            return None
        ids["payment_id"] = payment_id
        await self.think()
        if at_provider:
            paid = await self.pay_at_provider(show, checkout.body, ids)
        else:
            paid = await self.confirm(show, ids, PAYMENT_METHOD)
        if paid.status is not None and not paid.done and not paid.again:
            return None  # declined, or no longer payable: the journey ends
        last = paid.body if paid.done else checkout.body
        return await self.follow_payment(show, ids, last)

    async def confirm(self, show: int, ids: dict[str, str], method: str) -> Answer:
        url = self.run.api(f"/payments/{ids['payment_id']}/confirm")
        body = {"payment_method": method}
        return await self.step("pay", "POST", url, show_id=show, ids=ids, json=body)

    async def pay_at_provider(self, show: int, payment: dict[str, Any], ids: dict[str, str]) -> Any:
        """As the browser's provider script: a card token at the provider, the gateway's
        confirm (the intent then waits for authentication), the intent authenticated at the
        provider with the publishable key and the client secret."""
        provider, key = self.run.plan.provider_url.rstrip("/"), self.run.plan.publishable_key
        card = {"number": AUTHENTICATED_CARD, "exp_month": "12", "exp_year": "2030", "cvc": "123"}
        form = {"key": key, **{f"card[{k}]": v for k, v in card.items()}}
        token = await self.step(
            "pay_at_provider", "POST", provider + "/v1/tokens", keyed=False, auth=False,
            show_id=show, ids={**ids, "provider_call": "tokens"}, trim=_provider_trimmed,
            data=form,
        )  # fmt: skip
        card_id = (token.get("card") or {}).get("id")
        if not isinstance(card_id, str):
            return token
        confirmed = await self.confirm(show, ids, card_id)
        secret = confirmed.get("client_secret") or payment.get("client_secret")
        if confirmed.get("status") != "open" or not isinstance(secret, str):
            return confirmed
        intent = secret.split("_secret_")[0]
        await self.step(
            "pay_at_provider", "POST",
            f"{provider}/v1/payment_intents/{intent}/_authenticate?success=true",
            keyed=False, auth=False, show_id=show, trim=_provider_trimmed,
            ids={**ids, "provider_ref": intent, "provider_call": "authenticate"},
            json={"key": key, "client_secret": secret},
        )  # fmt: skip
        return confirmed  # whatever the provider said, the payment itself tells what came of it

    async def follow_payment(
        self, show: int, ids: dict[str, str], last: Any
    ) -> dict[str, Any] | None:
        """Poll the payment until it settles (bounded); the last answer seen."""
        url = self.run.api(f"/payments/{ids['payment_id']}")
        payment = last if isinstance(last, dict) else None
        for _ in range(self.t.payment_polls):
            if payment is not None and payment.get("status") in SETTLED:
                break
            if self.run.late():
                raise GaveUp("payment_status")
            await asyncio.sleep(self.t.payment_poll_s)
            answer = await self.send("payment_status", "GET", url, show_id=show, ids=ids)
            if answer.done and isinstance(answer.body, dict):
                payment = answer.body
            elif not answer.again:
                break
        if payment is not None and payment.get("status") == "booked":
            self.run.counts["bookings"] += 1
        return payment


class Customer(Client):
    """A loop of journeys on the plan's shows until ``stop``."""

    async def live(self) -> None:
        while not self.run.stop.is_set():
            self.run.counts["journeys"] += 1
            try:
                await self.journey()
            except GaveUp as exc:
                self.run.counts["gave_up"] += 1
                self.run.history.notes.append(f"{self.name} gave up a journey at {exc}")
            await self.think()

    async def journey(self) -> None:
        show = self.rng.choice(self.run.plan.shows)
        want = {"count": self.rng.randint(*self.t.seats), "category": "standard"}
        url = self.run.api(f"/shows/{show}/holds")
        hold = await self.step(
            "hold", "POST", url, show_id=show, json={**want, "allow_split": True}
        )
        hold_id = hold.get("hold_id")
        if not isinstance(hold_id, str):  # sold out (409) or refused: another show next time,
            await asyncio.sleep(self.rng.uniform(*self.t.refused_s))  # after a longer pause
            return
        roll = self.rng.random()
        await self.think()
        if roll < self.t.release_share:
            path = f"/shows/{show}/holds/{hold_id}"
            ids = {"hold_id": hold_id}
            await self.step("release", "DELETE", self.run.api(path), show_id=show, ids=ids)
        elif roll >= self.t.release_share + self.t.abandon_share:
            at_provider = self.rng.random() < self.t.provider_share
            payment = await self.buy(show, hold_id, at_provider=at_provider)
            booking_id = (payment or {}).get("booking_id")
            if isinstance(booking_id, str) and payment and payment.get("status") == "booked":
                await self.after_booking(show, booking_id)

    async def after_booking(self, show: int, booking_id: str) -> None:
        ids = {"booking_id": booking_id}
        url = self.run.api(f"/bookings/{booking_id}")
        await self.step("booking", "GET", url, keyed=False, show_id=show, ids=ids)
        if self.rng.random() < self.t.cancel_share:
            await self.think()
            cancel = self.run.api(f"/bookings/{booking_id}/cancel")
            await self.step("cancel", "POST", cancel, show_id=show, ids=ids)


class Visitor(Client):
    """One visit to the flash sale: a place in its line, then a purchase once admitted."""

    async def live(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, self.t.visitor_spread_s))
        if self.run.stop.is_set():
            return
        try:
            await self.visit(self.run.plan.flash_show)
        except GaveUp as exc:
            self.run.counts["gave_up"] += 1
            self.run.history.notes.append(f"{self.name} gave up its visit at {exc}")

    async def visit(self, show: int) -> None:
        url = self.run.api(f"/shows/{show}/queue")
        joined = await self.step("queue_join", "POST", url, show_id=show)
        token = await self.wait_admitted(show, url, joined)
        if token is None:
            return
        self.run.counts["admissions"] += 1
        ids = {"admission": _digest(token)}
        want = {"count": self.rng.randint(*self.t.seats), "category": "standard"}
        hold = await self.step(
            "queue_hold", "POST", self.run.api(f"/shows/{show}/holds"), show_id=show, ids=ids,
            headers={ADMISSION_HEADER: token}, json={**want, "allow_split": True},
        )  # fmt: skip
        hold_id = hold.get("hold_id")
        if isinstance(hold_id, str):
            await self.think()
            await self.buy(show, hold_id, at_provider=False)

    async def wait_admitted(self, show: int, url: str, answer: Answer) -> str | None:
        """The admission token once the line lets this visitor in; None when it will not (the
        sale is over, the place was lost) or the visitor gives up (``stop``, or waiting past
        ``Tuning.admission_wait_s``)."""
        deadline = time.monotonic() + self.t.admission_wait_s
        standing = answer.body if answer.done else None
        while True:
            if isinstance(standing, dict):
                if standing.get("state") == "admitted":
                    token = standing.get("admission_token")
                    return token if isinstance(token, str) else None
                if standing.get("state") != "waiting" or standing.get("phase") in LINE_OVER:
                    return None
            elif not answer.again:
                return None  # refused outright
            if self.run.stop.is_set() or time.monotonic() > deadline:
                return None
            await asyncio.sleep(self.poll_pause(standing))
            answer = await self.step("queue_poll", "GET", url, keyed=False, show_id=show)
            standing = answer.body if answer.done else None

    def poll_pause(self, standing: Any) -> float:
        """The answer gives no polling interval: a quarter of the estimated wait, bounded."""
        low, high = self.t.line_poll_s
        eta = standing.get("eta_s") if isinstance(standing, dict) else None
        wanted = eta / 4 if isinstance(eta, int | float) else high
        return min(high, max(low, wanted)) * self.rng.uniform(0.8, 1.2)


class Watcher(Client):
    """A show's seat map kept from the websocket's snapshot and deltas, as the web page keeps
    it; after ``finish``, caught up with the show's current version, then recorded."""

    def __init__(self, run: Run, name: str, index: int, show_id: int) -> None:
        super().__init__(run, name, index, None)
        self.show_id = show_id
        self.version = -1
        self.seats: dict[str, str] = {}
        self.connects = self.gaps = self.messages = 0
        self.awaiting = True  # no snapshot on this connection yet, or a resync asked for one
        self.resync_at: float | None = None
        self.heard_at = time.monotonic()
        self.refused = self.caught_up = False
        self.finish_by: float | None = None
        self.checked_at = 0.0

    def over(self) -> bool:
        """Refused for good, caught up, or out of time to catch up (``finish`` seen)."""
        now = time.monotonic()
        if self.finish_by is None and self.run.finish.is_set():
            self.finish_by = now + self.t.catch_up_s
        past = self.finish_by is not None and now > self.finish_by
        return self.refused or self.caught_up or past

    async def live(self) -> None:
        url = self.run.plan.url.rstrip("/") + f"/ws/shows/{self.show_id}"
        failures = 0
        while not self.over():
            try:
                async with asyncio.timeout(self.t.ws_open_s):
                    ws = await self.run.session.ws_connect(
                        url, timeout=aiohttp.ClientWSTimeout(ws_close=WS_CLOSE_S)
                    )
            except (aiohttp.ClientError, OSError, TimeoutError):
                ws = None
            if ws is not None:
                self.connects += 1
                try:
                    failures = 0 if await self.follow(ws) else failures
                finally:
                    await ws.close()
                self.refused = ws.close_code == 1008 or 4400 <= (ws.close_code or 0) < 4500
            if not self.over():
                await asyncio.sleep(self.backoff(failures))
                failures += 1
        self.record()

    def backoff(self, failures: int) -> float:
        first, longest = self.t.ws_backoff_s
        return min(longest, first * 2.0**failures) * self.rng.uniform(0.6, 1.0)

    async def follow(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read one connection until it closes or the watcher is done; True once it gave a
        snapshot."""
        self.awaiting, self.resync_at, self.heard_at = True, None, time.monotonic()
        had_snapshot = False
        reader = asyncio.create_task(self.read(ws))
        try:
            while not reader.done():
                await asyncio.wait({reader}, timeout=0.2)
                had_snapshot = had_snapshot or not self.awaiting
                await self.tend(ws)
                if self.over() or time.monotonic() - self.heard_at > self.t.ws_silence_s:
                    break
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        return had_snapshot

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            self.messages += 1
            self.heard_at = time.monotonic()
            body = _parse(msg.data.encode())
            if isinstance(body, dict):
                await self.on_message(ws, body)

    async def on_message(self, ws: aiohttp.ClientWebSocketResponse, msg: dict[str, Any]) -> None:
        kind, version = msg.get("type"), _version(msg)
        if kind == "snapshot":
            self.install(msg)
        elif kind == "resync":
            self.awaiting = True  # a snapshot follows
        elif self.awaiting or kind not in ("delta", "heartbeat"):
            return  # before the next snapshot nothing else counts
        elif kind == "delta" and version == self.version + 1:
            self.version = version
            changes = msg.get("changes") or ()
            self.seats.update({str(seat): str(state) for seat, state in changes})
        elif version > self.version + (1 if kind == "delta" else 0):
            await self.resync(ws)  # a version skipped, or a heartbeat ahead of this map

    def install(self, seatmap: dict[str, Any]) -> None:
        seats = seatmap.get("seats")
        if _version(seatmap) < 0 or not isinstance(seats, dict):
            return  # not a seat map: still waiting for one
        self.version = _version(seatmap)
        self.seats = {str(k): str(v) for k, v in seats.items()}
        self.awaiting, self.resync_at = False, None

    async def resync(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A gap in versions: ask for a fresh snapshot, as the page does."""
        self.gaps += 1
        self.awaiting, self.resync_at = True, time.monotonic()
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await ws.send_json({"type": "resync"})

    async def tend(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The page's fallback (a resync unanswered: the map over HTTP), and after ``finish``
        the check that this map reached the show's current version."""
        now = time.monotonic()
        if self.resync_at is not None and now - self.resync_at > self.t.resync_fallback_s:
            self.resync_at = now
            seatmap = await self.fetch()
            if seatmap is not None and self.awaiting:
                self.install(seatmap)
        if not self.run.finish.is_set():
            return
        if now - self.checked_at >= self.t.catch_up_poll_s and not self.awaiting:
            self.checked_at = now
            seatmap = await self.fetch()
            current = None if seatmap is None else seatmap.get("version")
            self.caught_up = current == self.version and not self.awaiting

    async def fetch(self) -> dict[str, Any] | None:
        url = self.run.api(f"/shows/{self.show_id}/seatmap")
        answer = await self.send("seatmap", "GET", url, show_id=self.show_id)
        return answer.body if answer.done and isinstance(answer.body, dict) else None

    def record(self) -> None:
        if self.refused:
            self.run.history.notes.append(f"{self.name}: the gateway refused its websocket")
        self.run.history.watchers.append(
            model.Watcher(
                client=self.name,
                show_id=self.show_id,
                connects=self.connects,
                version=self.version,
                seats=dict(self.seats),
                gaps=self.gaps,
                messages=self.messages,
            )
        )


class Clients:
    """Customers, visitors and watchers of one run (see the module's docstring).
    ``drained`` is set once every customer and visitor is done (after ``stop``)."""

    def __init__(
        self,
        plan: model.Plan,
        history: model.History,
        *,
        seed: int,
        stop: asyncio.Event,
        finish: asyncio.Event,
        customers: int,
        watchers: int,
        visitors: int,
        say: Say,
        tuning: Tuning | None = None,
    ) -> None:
        _check_counts(plan, customers=customers, watchers=watchers, visitors=visitors)
        self.plan, self.history, self.seed = plan, history, seed
        self.stop, self.finish, self.say = stop, finish, say
        self.sizes = (customers, visitors, watchers)
        self.tuning = tuning or Tuning()
        self.drained = asyncio.Event()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        # No session-wide total timeout: it would cut the websockets; each request sets its own.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            run = Run(
                self.plan, self.history, session, self.tuning, self.seed, self.stop, self.finish
            )
            await self._run(run)

    async def _run(self, run: Run) -> None:
        customers, visitors, watchers = self._clients(run)
        self.say(
            f"clients: {len(customers)} customers, {len(visitors)} visitors and "
            f"{len(watchers)} watchers on {self.plan.url}"
        )
        load = [asyncio.create_task(c.live()) for c in (*customers, *visitors)]
        watching = [asyncio.create_task(w.live()) for w in watchers]
        stopping = asyncio.create_task(self._stopping(run))
        try:
            await asyncio.gather(*load)
            self.drained.set()
            counts = run.counts
            self.say(
                f"clients: {counts['journeys']} journeys, {counts['bookings']} bookings, "
                f"{counts['admissions']} admissions, {counts['gave_up']} given up, "
                f"{len(self.history.calls)} calls"
            )
            await asyncio.gather(*watching)
            caught = sum(w.caught_up for w in watchers)
            self.say(f"clients: {caught} of {len(watchers)} watchers caught up")
        finally:
            for task in (*load, *watching, stopping):
                task.cancel()
            await asyncio.gather(*load, *watching, stopping, return_exceptions=True)

    def _clients(self, run: Run) -> tuple[list[Customer], list[Visitor], list[Watcher]]:
        """Each client's random stream is ``seed + index``, numbered across all of them."""
        n_customers, n_visitors, n_watchers = self.sizes
        accounts = self.plan.customers
        customers = [
            Customer(run, f"customer-{i}", i, accounts[i % len(accounts)])
            for i in range(n_customers)
        ]
        visitors = [
            Visitor(run, f"visitor-{i}", n_customers + i, self.plan.visitors[i])
            for i in range(n_visitors)
        ]
        shows = [*self.plan.shows, self.plan.flash_show]
        first = n_customers + n_visitors
        watchers = [
            Watcher(run, f"watcher-{i}", first + i, shows[i % len(shows)])
            for i in range(n_watchers)
        ]
        return customers, visitors, watchers

    async def _stopping(self, run: Run) -> None:
        await self.stop.wait()
        run.stopped_at = time.monotonic()
        self.say(f"clients: stopping; journeys in flight get {self.tuning.drain_s:g} s to end")


def _check_counts(plan: model.Plan, *, customers: int, watchers: int, visitors: int) -> None:
    """Refuse counts the plan cannot serve, with a message that says why."""
    for name, value in (("customers", customers), ("watchers", watchers), ("visitors", visitors)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number, 0 or more (got {value!r})")
    if customers and not (plan.customers and plan.shows):
        raise ValueError("customers need the plan's customer accounts and shows (none given)")
    if visitors > len(plan.visitors):
        raise ValueError(
            f"{visitors} visitors asked for, but the plan has {len(plan.visitors)} visitor "
            "accounts (one place in the line each)"
        )


def _parse(raw: bytes) -> Any:
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


def _version(msg: Mapping[str, Any]) -> int:
    """A message's version, -1 when it has none."""
    value = msg.get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _digest(token: str) -> str:
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
        found["admission"] = _digest(token)
    return found


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _trimmed(body: Any) -> dict[str, Any] | None:
    """The gateway's answer without secrets and without the bulky static parts."""
    if not isinstance(body, dict):
        return None
    return {k: v for k, v in body.items() if k not in SECRET_FIELDS and k not in BULKY_FIELDS}


def _provider_trimmed(body: Any) -> dict[str, Any] | None:
    """The provider's answer: the object, its status and amounts (no client secret)."""
    if not isinstance(body, dict):
        return None
    kept = {k: body[k] for k in PROVIDER_FIELDS if k in body}
    card = body.get("card")
    if isinstance(card, dict) and "id" in card:
        kept["card"] = card["id"]
    return kept
