"""The virtual waiting room of flash sales: one place per visitor, a serving counter that
advances at the show's admission rate, and signed admission tokens bound to user and show.

    room = WaitingRoom(redis, pool, prefix="seatserver:", secret=jwt_secret)
    standing = await room.join(show_id, user_id)      # a place (the same one on every retry)
    standing = await room.status(show_id, user_id)    # position, wait; heartbeat
    await room.tick(show_id)                          # expire the gone, admit at the rate
    await room.check_admission(show_id, user_id, token)   # before a hold; AdmissionRefused

Everything lives in Redis (see ``gateway.waitingroom_lua`` for the keys and the scripts), so
every gateway process serves the same line; the sale's terms come from Postgres
(``storage.flash_sales``) and are copied into Redis on first use and on every change.

Before the sale opens, arrivals get random numbers (their order is drawn by lot, and no
position is shown: it would change as others arrive); after it, first come first served. A
visitor who stops sending heartbeats (polls or an open websocket) for ``place_ttl_s`` drops out
of the line and stops counting toward its length; coming back within ``return_grace_s`` gives
them their old number back, so a phone that slept or a lost connection costs no place.

Admission tokens (``gateway.admission``) are bound to user, show and queue number; a hold also
checks that the token is the user's current admission in Redis, so an admission that lapsed,
was given up or was replaced cannot be used.

Each admission is also written to Postgres as a notification event (``storage.notify``: one
per user, show and place), so the customer hears of it by push, text or email: the script
that admits keeps the admission in a list until a tick's gateway has written it (several
gateways may write one; the event's dedup key keeps one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway import waitingroom_lua as lua
from gateway.admission import AdmissionRefused, AdmissionTokens
from gateway.errors import ApiError
from gateway.redisbatch import Script, ScriptBatcher
from gateway.showinfo import TtlCache
from storage import flash_sales
from storage import notify as notify_events

KEY_LIFETIME_AFTER_CLOSE_MS = 86_400_000  # the line's keys end a day after the show starts
SWEEP_LIMIT = 1_000  # abandoned places expired per advance
SCAN_LIMIT = 5_000  # places looked at per advance beyond those admitted
SUPPLIES = ("open", "paused", "sold_out", "ended")
KEY_NAMES = ("cfg", "q", "seen", "adm", "st", "seq", "mark", "gone", "new")  # waitingroom_lua
REPORT_RETRY_S = 5.0  # after a failed write of admission events, a line's next try waits this
TERMS_TTL_S = 2.0  # how long a process trusts the terms it read (for answers only)

log = logging.getLogger(__name__)


class QueueRefused(ApiError):
    status, code = 409, "queue_refused"


class QueueNotOpen(QueueRefused):
    code = "queue_not_open"


class QueueClosed(QueueRefused):
    code = "queue_closed"


class QueueSoldOut(QueueRefused):
    code = "sold_out"


@dataclass(frozen=True)
class Standing:
    """Where a visitor stands in a show's line."""

    show_id: int
    state: str  # "waiting", "admitted" or "not_in_queue"
    sale_opens_at: dt.datetime
    admission_per_min: int
    # "before_queue", "pre_sale" (order drawn at the start), "on_sale", "paused" (every seat
    # left is in a hold: nobody is let in until some come back), "sold_out", "ended" (no
    # admission needed any more), "closed" (the show started)
    phase: str
    position: int | None = None  # 1 = next; None before the sale (the order is not drawn yet)
    waiting: int = 0  # visitors in the line
    eta_s: float | None = None
    progress: float = 0.0  # share of the way from joining to the front, 0..1
    admission_token: str | None = None
    token_expires_at: dt.datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "show_id": self.show_id,
            "state": self.state,
            "phase": self.phase,
            "position": self.position,
            "waiting": self.waiting,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "progress": round(self.progress, 4),
            "admission_token": self.admission_token,
            "token_expires_at": None
            if self.token_expires_at is None
            else self.token_expires_at.isoformat(),
            "sale_opens_at": self.sale_opens_at.isoformat(),
            "admission_per_min": self.admission_per_min,
        }


@dataclass(frozen=True)
class Terms:
    """The sale's terms as Redis keeps them (milliseconds since the epoch)."""

    queue_ms: int
    sale_ms: int
    close_ms: int
    rate: int
    ttl_ms: int

    def phase(self, now_ms: int) -> str:
        if now_ms < self.queue_ms:
            return "before_queue"
        if now_ms < self.sale_ms:
            return "pre_sale"
        return "on_sale" if now_ms < self.close_ms else "closed"

    @classmethod
    def of(cls, sale: flash_sales.FlashSale) -> Terms:
        return cls(
            queue_ms=_ms(sale.queue_opens_at),
            sale_ms=_ms(sale.sale_opens_at),
            close_ms=_ms(sale.starts_at),
            rate=sale.admission_per_min,
            ttl_ms=sale.token_ttl_s * 1000,
        )


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _instant(ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WaitingRoom:
    def __init__(
        self,
        redis: Any,
        pool: Any,
        *,
        prefix: str,
        secret: str,
        place_ttl_s: float = 60.0,
        return_grace_s: float = 600.0,
        burst_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        batch: ScriptBatcher | None = None,
        on_admit: Callable[[int, int], None] | None = None,
    ) -> None:
        self._redis = redis
        # Told (show_id, how many) when a tick lets visitors out of the line (the funnel).
        self._on_admit = on_admit
        self._batch = batch or ScriptBatcher(redis)
        self._pool = pool
        self._prefix = prefix
        self._tokens = AdmissionTokens(secret)
        self._place_ms = int(place_ttl_s * 1000)
        self._grace_ms = int(return_grace_s * 1000)
        self._burst_ms = int(burst_s * 1000)
        self._clock = clock
        register = self._batch.register
        self._join = register(lua.JOIN)
        self._status = register(lua.STATUS)
        self._leave = register(lua.LEAVE)
        self._tick = register(lua.TICK)
        self._configure = register(lua.CONFIGURE)
        self._stats = register(lua.STATS)
        self._supply = register(lua.SUPPLY)
        # The terms last seen, per show, for answers (read from Redis, one read at a time).
        self._known_terms = TtlCache(self._read_terms, TERMS_TTL_S)
        self._keys: dict[int, list[str]] = {}
        self._report_after: dict[int, float] = {}  # show → when to try writing events again

    def keys(self, show_id: int) -> list[str]:
        known = self._keys.get(show_id)
        if known is None:
            base = f"{self._prefix}wr:{{{show_id}}}:"
            known = [base + name for name in KEY_NAMES]
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[show_id] = known
        return known

    def _now_ms(self, now_ms: int | None) -> int:
        return int(self._clock() * 1000) if now_ms is None else now_ms

    # -- the terms -------------------------------------------------------------------------

    async def load_terms(self, show_id: int, *, replace: bool) -> Terms:
        """Copy the sale's terms from Postgres into Redis (``replace``: even over a copy that
        is there). ``NotAFlashSale`` when the show is not in flash-sale status."""
        async with self._pool.acquire() as conn:
            sale = await flash_sales.flash_sale_terms(conn, show_id, now=dt.datetime.now(dt.UTC))
        flash_sales.require_flash_sale(show_id, sale.status)
        terms = Terms.of(sale)
        await self.write_terms(show_id, terms, replace=replace)
        return terms

    async def write_terms(
        self, show_id: int, terms: Terms, *, replace: bool, now_ms: int | None = None
    ) -> None:
        fields: list[Any] = []
        for name, value in (
            ("queue_ms", terms.queue_ms),
            ("sale_ms", terms.sale_ms),
            ("close_ms", terms.close_ms),
            ("rate", terms.rate),
            ("ttl_ms", terms.ttl_ms),
            ("place_ms", self._place_ms),
            ("grace_ms", self._grace_ms),
            ("burst_ms", self._burst_ms),
        ):
            fields += [name, value]
        now = self._now_ms(now_ms)
        await self._batch.run(
            self._configure, self.keys(show_id), [now, "1" if replace else "0", *fields]
        )
        self._known_terms.forget(show_id)

    async def _run(self, script: Script, show_id: int, args: list[Any]) -> list[Any]:
        """Run a script; copy the terms in first when Redis has none yet."""
        answer = await self._batch.run(script, self.keys(show_id), args)
        if isinstance(answer, list) and answer and _text(answer[0]) == "no_config":
            await self.load_terms(show_id, replace=False)
            answer = await self._batch.run(script, self.keys(show_id), args)
        return list(answer) if isinstance(answer, list) else [answer]

    async def _read_terms(self, show_id: int) -> Terms:
        raw = await self._redis.hgetall(self.keys(show_id)[0])
        if not raw:
            return await self.load_terms(show_id, replace=False)
        got = {_text(k): int(float(_text(v))) for k, v in raw.items()}
        return Terms(got["queue_ms"], got["sale_ms"], got["close_ms"], got["rate"], got["ttl_ms"])

    async def has_line(self, show_id: int) -> bool:
        """Whether the show has (had) a line in Redis."""
        return bool(await self._redis.exists(self.keys(show_id)[0]))

    # -- visitors --------------------------------------------------------------------------

    async def join(self, show_id: int, user_id: int, *, now_ms: int | None = None) -> Standing:
        now = self._now_ms(now_ms)
        early = secrets.randbelow(lua.EARLY - 1) + 1
        answer = await self._run(self._join, show_id, [now, user_id, early])
        kind = _text(answer[0])
        if kind == "not_open":
            opens = _instant(float(answer[1]))
            raise QueueNotOpen(
                "the queue for this sale is not open yet",
                {"show_id": show_id, "queue_opens_at": opens.isoformat()},
            )
        if kind == "closed":
            raise QueueClosed("this sale's queue has closed", {"show_id": show_id})
        if kind == "sold_out":
            raise QueueSoldOut("every seat of this show is sold", {"show_id": show_id})
        if kind == "ended":
            raise QueueClosed(
                "this show's flash sale has ended: hold seats directly", {"show_id": show_id}
            )
        return await self._standing(show_id, user_id, answer, now)

    async def status(
        self, show_id: int, user_id: int, *, heartbeat: bool = True, now_ms: int | None = None
    ) -> Standing:
        now = self._now_ms(now_ms)
        answer = await self._run(self._status, show_id, [now, user_id, "1" if heartbeat else "0"])
        return await self._standing(show_id, user_id, answer, now)

    async def statuses(
        self, show_id: int, user_ids: Sequence[int], *, now_ms: int | None = None
    ) -> list[Standing]:
        """Many visitors' standings (with heartbeats) in one round trip: the websocket push."""
        now = self._now_ms(now_ms)
        keys = self.keys(show_id)
        answers = await asyncio.gather(
            *(self._batch.run(self._status, keys, [now, user_id, "1"]) for user_id in user_ids)
        )
        return [
            await self._standing(show_id, user_id, list(answer), now)
            for user_id, answer in zip(user_ids, answers, strict=True)
        ]

    async def leave(self, show_id: int, user_id: int, *, now_ms: int | None = None) -> bool:
        answer = await self._batch.run(
            self._leave, self.keys(show_id), [self._now_ms(now_ms), user_id]
        )
        return bool(int(answer))

    async def _standing(self, show_id: int, user_id: int, answer: list[Any], now: int) -> Standing:
        terms = await self._known_terms(show_id)
        kind, phase = _text(answer[0]), terms.phase(now)
        if kind == "waiting":
            supply = _text(answer[5])
            if supply == "ended" or (supply != "open" and phase == "on_sale"):
                phase = supply
        common = {
            "show_id": show_id,
            "phase": phase,
            "sale_opens_at": _instant(terms.sale_ms),
            "admission_per_min": terms.rate,
        }
        if kind == "admitted":
            number, admitted_ms = int(float(_text(answer[1]))), int(answer[2])
            expires_ms = admitted_ms + terms.ttl_ms
            token = self.token(show_id, user_id, number, admitted_ms, expires_ms)
            return Standing(
                state="admitted",
                position=0,
                eta_s=0.0,
                progress=1.0,
                admission_token=token,
                token_expires_at=_instant(expires_ms),
                **common,
            )
        if kind != "waiting":  # never joined, left, expired, or an admission that lapsed
            return Standing(state="not_in_queue", **common)
        rank, waiting, since = int(answer[2]), int(answer[3]), int(answer[4])
        if phase == "pre_sale":
            # The order is drawn by lot at the start: everyone here waits for the opening,
            # and then half the line on average.
            wait_s = (terms.sale_ms - now) / 1000 + waiting * 60 / terms.rate / 2
            return Standing(state="waiting", waiting=waiting, eta_s=wait_s, **common)
        position = rank + 1
        return Standing(
            state="waiting",
            position=position,
            waiting=waiting,
            eta_s=position * 60 / terms.rate,
            progress=since / (since + position),
            **common,
        )

    # -- the serving counter ---------------------------------------------------------------

    async def tick(self, show_id: int, *, now_ms: int | None = None) -> tuple[int, int, int]:
        """Expire abandoned places and admit at the rate: (admitted, expired, waiting)."""
        answer = await self._run(
            self._tick,
            show_id,
            [self._now_ms(now_ms), SWEEP_LIMIT, SCAN_LIMIT, KEY_LIFETIME_AFTER_CLOSE_MS],
        )
        if self._on_admit is not None and int(answer[0]) > 0:
            self._on_admit(show_id, int(answer[0]))
        if len(answer) > 3 and answer[3] and self._pool is not None:
            await self._report(show_id, [_text(entry) for entry in answer[3]])
        return int(answer[0]), int(answer[1]), int(answer[2])

    async def _report(self, show_id: int, entries: list[str]) -> None:
        """Write admissions as notification events, then take them off the line's list; on a
        failure they stay there for a later tick."""
        if time.monotonic() < self._report_after.get(show_id, 0.0):
            return
        admissions = []
        for entry in entries:
            user, number, at = entry.split(":")
            admissions.append(notify_events.Admission(int(user), int(float(number)), int(at)))
        try:
            terms = await self._known_terms(show_id)
            async with self._pool.acquire() as conn:
                await notify_events.record_admissions(
                    conn, show_id, admissions, token_ttl_s=terms.ttl_ms / 1000
                )
        except Exception as exc:  # Postgres away: the list keeps them
            log.warning("waiting room: admissions of show %d not written yet (%s)", show_id, exc)
            self._report_after[show_id] = time.monotonic() + REPORT_RETRY_S
            return
        self._report_after.pop(show_id, None)
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.lrem(self.keys(show_id)[8], 1, entry)
            await pipe.execute()

    async def set_supply(
        self, show_id: int, supply: str, *, force: bool = False, now_ms: int | None = None
    ) -> str:
        """Tell the line what the show has left: "open", "paused" (every seat left is held;
        admission waits), "sold_out" (every seat booked: joins are refused) or "ended" (the
        show left flash-sale status; only ``force`` opens such a line again). The previous
        value."""
        if supply not in SUPPLIES:
            raise ValueError(f"unknown supply {supply!r}")
        args = [self._now_ms(now_ms), supply, "1" if force else "0"]
        answer = await self._batch.run(self._supply, self.keys(show_id), args)
        return _text(answer)

    async def stats(self, show_id: int, *, now_ms: int | None = None) -> dict[str, Any]:
        answer = await self._run(self._stats, show_id, [self._now_ms(now_ms)])
        flat = [_text(v) for v in answer[0]]
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        supply = raw.pop("supply", "open")
        counters = {name: float(value) for name, value in raw.items()}
        terms = await self._known_terms(show_id)
        return {
            "show_id": show_id,
            "waiting": int(answer[1]),
            "admitted_now": int(answer[2]),
            "joined": int(counters.get("joined", 0)),
            "early": int(counters.get("early", 0)),
            "admitted": int(counters.get("admitted", 0)),
            "expired": int(counters.get("expired", 0)),
            "returned": int(counters.get("returned", 0)),
            "lapsed": int(counters.get("lapsed", 0)),
            "admission_per_min": terms.rate,
            "sale_opens_at": _instant(terms.sale_ms).isoformat(),
            "supply": supply,
        }

    # -- admission tokens ------------------------------------------------------------------

    def token(
        self, show_id: int, user_id: int, number: int, admitted_ms: int, expires_ms: int
    ) -> str:
        return self._tokens.issue(show_id, user_id, number, admitted_ms, expires_ms)

    async def check_admission(
        self, show_id: int, user_id: int, token: str | None, *, now_ms: int | None = None
    ) -> None:
        """``AdmissionRefused`` unless ``token`` is this user's current admission to this
        show and has not expired."""
        number = self._tokens.verify(show_id, user_id, token, self._now_ms(now_ms))
        current = await self._redis.hget(self.keys(show_id)[3], str(user_id))
        if current is None or int(float(_text(current).split(":", 1)[0])) != number:
            raise AdmissionRefused(
                "this admission is no longer current: join the queue again",
                {"show_id": show_id},
                code="admission_expired",
            )
