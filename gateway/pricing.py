"""Price quotes, and the quote a hold is charged at.

A quote gives the prices of a show's seat categories for one customer, signed and good for
``quote_ttl_s``: the hold that presents it is charged those prices (the show's actor checks
them against its price table and the 2x surge cap), so the price a customer saw is the price
they pay. A hold without a quote gets a fresh one made on the spot.

Which prices: the pricing experiment puts each user in an arm by a stable hash of their id
(``gateway.ops.experiments_registry``: once an operator stops it, everyone gets its final arm;
each user's first quote is recorded as their exposure).
The control arm pays the show's price table. The dynamic arm gets the optimizer's prices from
the pricing model on Serve (within its budget), each change recorded in ``price_changes`` so
every gateway keeps to one change an hour; when the model is slow, failing or absent, the price
table answers. The arm's prices of a show are the same for all its customers, so one answer
serves them all for ``DYNAMIC_TTL_S``. Every quote says its arm and where its prices came from.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.layout import Layout, SeatState
from gateway.errors import ApiError
from gateway.showinfo import TtlCache
from gateway.signed import Signed, Unreadable
from serve.client import Answer
from storage import prices as price_store

FACTS_TTL_S = 60.0
STATE_TTL_S = 5.0
OCCUPANCY_TTL_S = 2.0
DYNAMIC_TTL_S = 5.0  # the dynamic arm's prices of a show, shared by its customers
MAX_LAYOUTS = 10_000
CONTROL_ARM = "control_arm"  # why a quote has the price table: the user is in the control arm


class QuoteRefused(ApiError):
    status, code = 409, "quote_invalid"


@dataclass(frozen=True)
class Quote:
    show_id: int
    prices: dict[str, int]
    arm: str
    answer: Answer[Any]
    token: str
    expires_at: float

    def public(self, currency: str) -> dict[str, Any]:
        return {
            "show_id": self.show_id,
            "prices": self.prices,
            "currency": currency,
            "arm": self.arm,
            "quote_token": self.token,
            "expires_at": dt.datetime.fromtimestamp(self.expires_at, dt.UTC).isoformat(),
            **self.answer.describe(),
        }


class Pricing:
    def __init__(
        self, pool: Any, engine: Any, models: Any, secret: str, experiments: Any = None
    ) -> None:
        from ml.pricing.arms import assign_arm
        from ml.pricing.facts import load_show_facts

        self._pool, self._engine, self._models = pool, engine, models
        self._config = models.config
        self._assign = assign_arm
        # gateway.ops.experiments_registry.Experiments: the experiment's row (stopped or not)
        # and the exposures; None: the settings' hash alone.
        self._experiments = experiments
        self._signed = Signed(secret, "quote")

        async def facts(show_id: int) -> Any:
            async with pool.acquire() as conn:
                found = await load_show_facts(conn, [show_id], dt.datetime.now(dt.UTC))
            return found[show_id]

        async def state(show_id: int) -> dict[str, price_store.PriceInForce]:
            async with pool.acquire() as conn:
                return await price_store.prices_in_force(conn, show_id)

        self._facts = TtlCache(facts, FACTS_TTL_S)
        self._state = TtlCache(state, STATE_TTL_S)
        self._occupancy = TtlCache(self._load_occupancy, OCCUPANCY_TTL_S)
        self._dynamic = TtlCache(self._price_now, DYNAMIC_TTL_S)
        self._layouts: dict[int, Layout] = {}

    async def arm(self, user_id: int, currency: str = "") -> str:
        """``user_id``'s pricing arm now (everyone's final arm once the experiment is stopped),
        recorded as an exposure the first time."""
        name = self._config.pricing_experiment
        if self._experiments is not None:
            arm = await self._experiments.arm(name, user_id, currency=currency)
            return arm if arm in ("control", "dynamic") else "control"
        share = self._config.pricing_dynamic_share
        return str(self._assign(user_id, experiment=name, dynamic_share=share))

    async def prices(self, details: Any, user_id: int) -> tuple[dict[str, int], str, Answer[Any]]:
        """What ``user_id`` pays for ``details``' show now: prices, arm, and their source."""
        show_id, table = details.show_id, dict(details.prices)
        arm = await self.arm(user_id, str(details.currency))
        answer: Answer[Any]
        if arm == "control":
            answer = Answer(table, "fallback", None, CONTROL_ARM)
        else:
            answer = await self._dynamic((show_id, tuple(sorted(table.items()))))
        return {c: int(p) for c, p in answer.value.items() if c in table}, arm, answer

    async def quote(self, details: Any, user_id: int) -> Quote:
        """The prices ``user_id`` pays for ``details``' show now, signed."""
        show_id = details.show_id
        prices, arm, answer = await self.prices(details, user_id)
        now = time.time()
        expires = now + self._config.quote_ttl_s
        claims = {"sub": str(user_id), "show": show_id, "prices": prices, "arm": arm}
        token = self._signed.issue(claims, ttl_s=self._config.quote_ttl_s, now=now)
        return Quote(show_id, prices, arm, answer, token, expires)

    async def _price_now(self, key: tuple[int, tuple[tuple[str, int], ...]]) -> Answer[Any]:
        """The dynamic arm's prices for a show now (the model's, kept in force, or the price
        table); every customer of the arm sees the same ones, so they are shared for a few
        seconds."""
        show_id, table = key[0], dict(key[1])
        request = await self._request(show_id)
        answer = await self._models.pricing(request, fallback=lambda: None)
        if answer.value is None:
            self._models.monitor.priced(request.facts, table, table)
            return Answer(table, answer.source, answer.version, answer.reason)
        prices = await self._keep(show_id, table, answer.value, answer.version)
        self._models.monitor.priced(request.facts, table, prices)
        return Answer(prices, answer.source, answer.version, None)

    def read(self, token: str, show_id: int, user_id: int) -> tuple[dict[str, int], str]:
        """The prices and arm of a quote ``user_id`` got for ``show_id``; ``QuoteRefused``
        (``quote_invalid`` or ``quote_expired``) otherwise."""
        try:
            claims = self._signed.read(token, now=time.time())
        except Unreadable as exc:
            code = "quote_expired" if exc.reason == "expired" else "quote_invalid"
            words = "has expired: ask for a new one" if code == "quote_expired" else "is not valid"
            where = {"show_id": show_id}
            raise QuoteRefused(f"the price quote {words}", where, code=code) from None
        if claims.get("sub") != str(user_id) or claims.get("show") != show_id:
            raise QuoteRefused("the price quote is for another show or user", {"show_id": show_id})
        prices = claims.get("prices")
        if not isinstance(prices, dict) or claims.get("arm") not in ("control", "dynamic"):
            raise QuoteRefused("the price quote is not valid", {"show_id": show_id})
        return {str(c): int(p) for c, p in prices.items()}, str(claims["arm"])

    async def _request(self, show_id: int) -> Any:
        from ml.pricing.optimizer import PriceState, QuoteRequest

        facts = await self._facts(show_id)
        occupancy, held = await self._occupancy(show_id)
        in_force = await self._state(show_id)
        state = PriceState(
            prices={c: p.price_cents for c, p in in_force.items()},
            changed_at={c: p.changed_at.timestamp() for c, p in in_force.items()},
            held=frozenset(held),
        )
        return QuoteRequest(facts, occupancy, state, dt.datetime.now(dt.UTC))

    async def _keep(
        self, show_id: int, table: dict[str, int], decisions: Mapping[str, Any], version: Any
    ) -> dict[str, int]:
        """The model's prices, each change put in force first; where another gateway changed
        the category meanwhile, its price stands."""
        from ml.pricing.optimizer import PriceRules

        prices = {**table, **{c: int(d.price_cents) for c, d in decisions.items() if c in table}}
        changed = [c for c, d in decisions.items() if d.changed and c in table]
        if not changed:
            return prices
        now = dt.datetime.now(dt.UTC)
        async with self._pool.acquire() as conn:
            for category in changed:
                kept = await price_store.record_price_change(
                    conn,
                    show_id,
                    category,
                    price_cents=prices[category],
                    base_cents=table[category],
                    at=now,
                    source="model",
                    model_version=version,
                    min_gap_s=PriceRules().min_interval_s,
                )
                if not kept:
                    current = await price_store.prices_in_force(conn, show_id)
                    if category in current:
                        prices[category] = current[category].price_cents
        self._state.forget(show_id)
        return prices

    async def _load_occupancy(self, show_id: int) -> tuple[dict[str, float], set[str]]:
        """Share of each category's seats taken (held, booked or blocked), and the categories
        with a seat in a live hold."""
        snapshot = await self._engine.snapshot(show_id)
        layout = self._layouts.get(show_id) or await self._layout(show_id)
        totals: dict[str, int] = {}
        taken: dict[str, int] = {}
        held: set[str] = set()
        for spec in layout:
            totals[spec.category] = totals.get(spec.category, 0) + 1
            state = snapshot.seats.get(spec.label, SeatState.AVAILABLE)
            if state != SeatState.AVAILABLE:
                taken[spec.category] = taken.get(spec.category, 0) + 1
            if state == SeatState.HELD:
                held.add(spec.category)
        return {c: taken.get(c, 0) / n for c, n in totals.items()}, held

    async def _layout(self, show_id: int) -> Layout:
        import storage

        async with self._pool.acquire() as conn:
            details = await storage.get_show(conn, show_id)
        if len(self._layouts) >= MAX_LAYOUTS:
            self._layouts.clear()
        layout = self._layouts[show_id] = Layout.from_dict(details.layout)
        return layout


def hold_prices(prices: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """A quote's prices as a hold command carries them."""
    return tuple(sorted((str(c), int(p)) for c, p in prices.items()))
