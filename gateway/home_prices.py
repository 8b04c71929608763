"""Prices "from" on the home page: every show on the page priced by the pricing deployment in
one batch, within its budget.

A customer in the pricing experiment's control arm pays the price table, so that is what
their home shows (without asking the model). Everyone else (the dynamic arm, and visitors, who
are in no arm yet) sees the price the model would give each seat category now: the calls of
the page go out together (``serve.client.ModelCall`` puts calls that arrive while one is in
flight into one request), and a show the model does not answer in time is priced from its
price table. The answer says which: ``{"source": "model"|"fallback", "model_version",
"fallback_reason"}``. Nothing is written: the price a hold is charged is still its quote's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from gateway import home_rank, keys
from gateway.home_state import HomeState
from gateway.pricing import CONTROL_ARM
from serve.client import Answer
from storage import taste


async def prices_from(
    app: web.Application,
    state: HomeState,
    shows: Sequence[taste.UpcomingShow],
    seats: Mapping[int, Mapping[str, taste.CategoryNow]],
    user_id: int | None,
    now: dt.datetime,
) -> tuple[dict[int, int | None], dict[str, Any] | None]:
    """Each show's lowest price now (by show id), and where the prices came from (None when
    there was nothing to price)."""
    if not shows:
        return {}, None
    tables = {s.show_id: s.prices for s in shows}
    arm = "dynamic"
    if user_id is not None:
        arm = await app[keys.PRICING].arm(user_id, shows[0].currency)
    if arm == "control":
        lowest = {show: home_rank.price_from(table) for show, table in tables.items()}
        return lowest, Answer(None, "fallback", None, CONTROL_ARM).describe()
    facts = await state.facts.get(tables)
    priced = [show for show in tables if show in facts]
    models = app[keys.MODELS]
    answers: list[Answer[Any]] = list(
        await asyncio.gather(
            *(
                models.pricing(_request(facts[show], seats.get(show, {}), now), fallback=_none)
                for show in priced
            )
        )
    )
    lowest = {show: home_rank.price_from(table) for show, table in tables.items()}
    for show, answer in zip(priced, answers, strict=True):
        if answer.value is not None:
            table = tables[show]
            model = {c: int(d.price_cents) for c, d in answer.value.items() if c in table}
            lowest[show] = home_rank.price_from({**table, **model})
    return lowest, _summary(answers)


def _none() -> None:
    return None


def _request(facts: Any, seats: Mapping[str, taste.CategoryNow], now: dt.datetime) -> Any:
    """The pricing model's question for one show now (``ml.pricing.optimizer.QuoteRequest``)."""
    from ml.pricing.optimizer import PriceState, QuoteRequest

    occupancy = {
        c: min(1.0, seats[c].taken / seats[c].seats) if c in seats and seats[c].seats else 0.0
        for c in facts.seats
    }
    in_force = {c: n for c, n in seats.items() if n.price_in_force is not None}
    state = PriceState(
        prices={c: int(n.price_in_force or 0) for c, n in in_force.items()},
        changed_at={c: n.changed_at.timestamp() for c, n in in_force.items() if n.changed_at},
        held=frozenset(c for c, n in seats.items() if n.held),
    )
    return QuoteRequest(facts, occupancy, state, now)


def _summary(answers: Sequence[Answer[Any]]) -> dict[str, Any] | None:
    """One account of many answers: the model's when it answered them all, else the first
    fallback's reason."""
    if not answers:
        return Answer(None, "fallback", None, "no_facts").describe()
    for answer in answers:
        if answer.source != "model":
            return Answer(None, "fallback", None, answer.reason).describe()
    return Answer(None, "model", answers[0].version).describe()
