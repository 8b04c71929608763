"""The price optimizer: for each seat category of a show, the allowed price with the highest
expected revenue over the time left. Pure: no I/O, no clock (``now`` comes in).

Revenue at a price is ``price × min(expected remaining demand at that price, seats left)``,
over a grid of prices the rules allow:

* floor ≤ price ≤ ceiling (factors of the category's base price), and never above the surge
  cap (2 × base, hard);
* a change only an hour (``min_interval_s``) after the category's last change, and by at most
  ``max_step`` (10 %) of the price in force;
* no rise in the last hour (``freeze_s``) before the show for a category with a seat in a live
  hold;
* whole multiples of ``step_cents`` (whole cents for a price whose allowed step is smaller),
  rounded inwards so rounding never breaks a bound;
* wheelchair and companion seats stay at the base price: accessible seats never surge.

The work is split so a batch of shows needs one demand call: ``plan`` gives, per category,
either a final ``Decision`` or a ``Plan`` (candidate prices to score); ``decide`` picks from
the scored candidates. ``optimize`` does both for one show.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ml.pricing.facts import ShowFacts

ACCESSIBLE = frozenset({"wheelchair", "companion"})


class PricingError(ValueError):
    """Rules, state or inputs the optimizer cannot price with."""


@dataclass(frozen=True)
class PriceRules:
    """Limits on dynamic prices; factors are of the category's base price."""

    floor: float = 0.7
    ceiling: float = 2.0
    surge_cap: float = 2.0  # hard: never above this × base, whatever the ceiling says
    max_step: float = 0.10  # most a price moves in one change, as a share of the price in force
    min_interval_s: float = 3600.0  # between two changes of one category
    freeze_s: float = 3600.0  # before the start: no rise for a category with held seats
    step_cents: int = 25  # prices are multiples of this
    grid_points: int = 21  # candidate prices tried per category
    min_gain: float = 0.005  # a change must raise expected revenue by this share
    fixed: frozenset[str] = ACCESSIBLE  # categories always at their base price
    category_bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for category, (low, high) in {
            "*": (self.floor, self.ceiling),
            **self.category_bounds,
        }.items():
            if not 0 < low <= 1 <= high:
                raise PricingError(f"bounds for {category}: need 0 < floor <= 1 <= ceiling")
        if self.surge_cap < 1:
            raise PricingError("surge_cap must be at least 1")
        if not 0 < self.max_step < 1:
            raise PricingError("max_step must be between 0 and 1")
        if self.min_interval_s < 0 or self.freeze_s < 0:
            raise PricingError("min_interval_s and freeze_s must not be negative")
        if self.step_cents < 1 or self.grid_points < 2 or self.min_gain < 0:
            raise PricingError("need step_cents >= 1, grid_points >= 2 and min_gain >= 0")

    def bounds(self, category: str) -> tuple[float, float]:
        """(floor, upper) factors for a category, the upper one already capped by surge_cap."""
        low, high = self.category_bounds.get(category, (self.floor, self.ceiling))
        return low, min(high, self.surge_cap)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fixed"] = sorted(self.fixed)
        data["category_bounds"] = {k: list(v) for k, v in self.category_bounds.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceRules:
        values = dict(data)
        values["fixed"] = frozenset(values.get("fixed", ACCESSIBLE))
        values["category_bounds"] = {
            k: (float(v[0]), float(v[1])) for k, v in values.get("category_bounds", {}).items()
        }
        return cls(**values)


@dataclass(frozen=True)
class PriceState:
    """Prices in force for one show. A category missing from ``prices`` is at its base price;
    missing from ``changed_at``, it never changed."""

    prices: Mapping[str, int] = field(default_factory=dict)  # cents
    changed_at: Mapping[str, float] = field(default_factory=dict)  # epoch seconds
    held: frozenset[str] = frozenset()  # categories with a seat in a live hold now

    def in_force(self, category: str, base_cents: int) -> int:
        return int(self.prices.get(category, base_cents))


@dataclass(frozen=True)
class Decision:
    """The price a category gets now; ``changed`` when it differs from the price in force."""

    price_cents: int
    changed: bool
    reason: str
    base_cents: int


@dataclass(frozen=True)
class Plan:
    """A category whose price is for the demand model to choose among ``candidates``."""

    category: str
    base_cents: int
    in_force: int
    candidates: tuple[int, ...]  # sorted, includes in_force
    seats_left: float
    floor_cents: int  # the lowest and highest price the bounds allow
    ceiling_cents: int
    held_in_freeze: bool


@dataclass(frozen=True)
class QuoteRequest:
    """One show to price now: occupancy is the share of each category's seats taken or held."""

    facts: ShowFacts
    occupancy: Mapping[str, float]
    state: PriceState
    now: dt.datetime


@dataclass(frozen=True)
class DemandQuery:
    """Expected seats of ``category`` sold from ``now`` to the start, at each of ``prices``."""

    facts: ShowFacts
    category: str
    occupancy: Mapping[str, float]
    now: dt.datetime
    prices: tuple[int, ...]


# Expected remaining demand (seats) per query, one value per price of the query.
Scores = Sequence[float] | np.ndarray
DemandModel = Callable[[Sequence[DemandQuery]], Sequence[Scores]]


@functools.lru_cache(maxsize=256)
def _factor(value: float) -> Fraction:
    return Fraction(value).limit_denominator(10**6)


def _inwards(low: Fraction, high: Fraction, step: int) -> tuple[int, int]:
    """The multiples of ``step`` closest to the inside of [low, high] (may cross if none)."""
    return math.ceil(low / step) * step, math.floor(high / step) * step


def plan(
    facts: ShowFacts,
    occupancy: Mapping[str, float],
    state: PriceState,
    now: dt.datetime,
    rules: PriceRules,
) -> dict[str, Decision | Plan]:
    """Per category of the show: a final decision, or a plan for the demand model."""
    if now.tzinfo is None:
        raise PricingError("now must be timezone-aware")
    for category, share in occupancy.items():
        if not 0.0 <= float(share) <= 1.0:
            raise PricingError(f"occupancy of {category!r} must be within 0..1, got {share}")
    return {
        category: _plan_category(facts, category, occupancy, state, now, rules)
        for category in sorted(facts.seats)
    }


def _plan_category(
    facts: ShowFacts,
    category: str,
    occupancy: Mapping[str, float],
    state: PriceState,
    now: dt.datetime,
    rules: PriceRules,
) -> Decision | Plan:
    base = int(facts.base_prices[category])
    in_force = state.in_force(category, base)
    if category in rules.fixed or base <= 0:
        reason = "accessible seats at base price" if category in rules.fixed else "free seats"
        return Decision(base, in_force != base, reason, base)
    low_f, high_f = rules.bounds(category)
    low_exact, high_exact = _factor(low_f) * base, _factor(high_f) * base
    step = rules.step_cents
    floor_c, ceiling_c = _inwards(low_exact, high_exact, step)
    if floor_c > ceiling_c:  # bounds too narrow for the step (a small base price)
        step = 1
        floor_c, ceiling_c = _inwards(low_exact, high_exact, step)
    if in_force < low_exact:  # the price in force breaks a bound (the rules changed): fix it
        return Decision(floor_c, True, "floor", base)
    if in_force > high_exact:
        return Decision(ceiling_c, True, "ceiling", base)
    seconds_left = (facts.starts_at - now).total_seconds()
    if seconds_left <= 0:
        return Decision(in_force, False, "show started", base)
    seats_left = facts.seats[category] * (1.0 - float(occupancy.get(category, 0.0)))
    if seats_left <= 0:
        return Decision(in_force, False, "sold out", base)
    last = state.changed_at.get(category)
    if last is not None and now.timestamp() - float(last) < rules.min_interval_s:
        return Decision(in_force, False, "one change an hour", base)
    move = _factor(rules.max_step) * in_force
    if move < step:  # a price too small to move by a whole step: whole cents
        step = 1
    low, high = _inwards(max(low_exact, in_force - move), min(high_exact, in_force + move), step)
    held_in_freeze = category in state.held and seconds_left <= rules.freeze_s
    if held_in_freeze:
        high = min(high, in_force // step * step)
    grid = {in_force}
    if low <= high:
        steps = (high - low) // step
        top = rules.grid_points - 1
        grid.update(low + round(steps * i / top) * step for i in range(rules.grid_points))
    return Plan(
        category,
        base,
        in_force,
        tuple(sorted(grid)),
        seats_left,
        floor_c,
        ceiling_c,
        held_in_freeze,
    )


def decide(step: Decision | Plan, demand: Scores | None, rules: PriceRules) -> Decision:
    """The decision for one category, given the expected remaining demand at each candidate
    (``None`` for a category already decided)."""
    if isinstance(step, Decision):
        return step
    if demand is None or len(demand) != len(step.candidates):
        raise PricingError(f"need one demand value per candidate price for {step.category}")
    revenue = [
        p * min(max(float(d), 0.0), step.seats_left)
        for p, d in zip(step.candidates, demand, strict=True)
    ]
    keep = revenue[step.candidates.index(step.in_force)]
    best = max(
        range(len(revenue)), key=lambda i: (revenue[i], -abs(step.candidates[i] - step.in_force))
    )
    price = step.candidates[best]
    if price == step.in_force or revenue[best] <= keep * (1 + rules.min_gain):
        reason = "held seats in the last hour" if step.held_in_freeze else "best price in force"
        return Decision(step.in_force, False, reason, step.base_cents)
    reason = (
        "floor"
        if price == step.floor_cents
        else "ceiling"
        if price == step.ceiling_cents
        else "revenue"
    )
    return Decision(price, True, reason, step.base_cents)


def optimize(
    facts: ShowFacts,
    occupancy: Mapping[str, float],
    state: PriceState,
    now: dt.datetime,
    demand_model: DemandModel,
    rules: PriceRules | None = None,
) -> dict[str, Decision]:
    """The price of every seat category of one show now.

    >>> optimize(facts, {"standard": 0.4}, PriceState(), now, model.expected_demand)
    {'standard': Decision(price_cents=1375, changed=True, reason='revenue', base_cents=1250)}
    """
    rules = rules or PriceRules()
    steps = plan(facts, occupancy, state, now, rules)
    return resolve([steps], [facts], [occupancy], [now], demand_model, rules)[0]


def resolve(
    steps: Sequence[Mapping[str, Decision | Plan]],
    facts: Sequence[ShowFacts],
    occupancy: Sequence[Mapping[str, float]],
    now: Sequence[dt.datetime],
    demand_model: DemandModel,
    rules: PriceRules,
) -> list[dict[str, Decision]]:
    """Decisions for several shows' plans with one call of the demand model."""
    queries, where = [], []
    for i, show_steps in enumerate(steps):
        for category, step in show_steps.items():
            if isinstance(step, Plan):
                queries.append(
                    DemandQuery(facts[i], category, occupancy[i], now[i], step.candidates)
                )
                where.append((i, category))
    demand = demand_model(queries) if queries else []
    if len(demand) != len(queries):
        raise PricingError("the demand model must answer every query")
    scored: dict[tuple[int, str], Scores] = dict(zip(where, demand, strict=True))
    return [
        {c: decide(step, scored.get((i, c)), rules) for c, step in show_steps.items()}
        for i, show_steps in enumerate(steps)
    ]
