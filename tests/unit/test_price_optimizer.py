"""The price optimizer's rules and the experiment's arms: pure, with fake demand functions."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.pricing import (
    DemandQuery,
    PriceRules,
    PriceState,
    PricingError,
    ShowFacts,
    assign_arm,
    optimize,
)
from ml.pricing.optimizer import plan, resolve

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
HOUR = 3600.0


def show(
    *, hours_ahead: float = 48.0, base: int = 1200, seats: int = 100, **extra_prices: int
) -> ShowFacts:
    prices = {"standard": base, "wheelchair": base, "companion": base, **extra_prices}
    return ShowFacts(
        show_id=1,
        starts_at=NOW + dt.timedelta(hours=hours_ahead),
        weekday=0,
        hour=20,
        movie_id=1,
        movie_popularity=10,
        movie_age_days=5,
        screen_id=1,
        screen_seats=seats + 4 + 10 * len(extra_prices),
        seats={"standard": seats, "wheelchair": 2, "companion": 2}
        | dict.fromkeys(extra_prices, 10),
        city_id=1,
        country="US",
        holiday_days=9,
        base_prices=prices,
        currency="USD",
        city_bookings=100,
    )


def elastic(elasticity: float, level: float = 10.0):
    """Constant-elasticity demand around the base price: level × (price / base) ** -e."""

    def demand(queries: Sequence[DemandQuery]) -> list[list[float]]:
        return [
            [level * (p / q.facts.base_prices[q.category]) ** -elasticity for p in q.prices]
            for q in queries
        ]

    return demand


INELASTIC = elastic(0.2)  # revenue rises with price: the optimizer wants up
ELASTIC = elastic(4.0)  # revenue falls with price: the optimizer wants down


def test_inelastic_demand_raises_by_at_most_a_step() -> None:
    decision = optimize(show(), {}, PriceState(), NOW, INELASTIC)["standard"]
    assert decision.changed and decision.reason == "revenue"
    assert 1200 < decision.price_cents <= 1320 and decision.price_cents % 25 == 0


def test_elastic_demand_lowers_by_at_most_a_step() -> None:
    decision = optimize(show(), {}, PriceState(), NOW, ELASTIC)["standard"]
    assert decision.changed and 1080 <= decision.price_cents < 1200


def run_hourly(demand, rules: PriceRules, hours: int, **facts_args: int) -> list[int]:
    """The standard price over ``hours`` hourly decisions, each applied as the new state."""
    facts, state, prices = show(hours_ahead=hours + 5, **facts_args), PriceState(), []
    for h in range(hours):
        now = NOW + dt.timedelta(hours=h)
        decision = optimize(facts, {}, state, now, demand, rules)["standard"]
        prices.append(decision.price_cents)
        if decision.changed:
            state = PriceState(
                prices={"standard": decision.price_cents},
                changed_at={"standard": now.timestamp()},
            )
    return prices


def test_ceiling_and_floor_are_reached_but_never_crossed() -> None:
    rules = PriceRules(floor=0.8, ceiling=1.5)
    up = run_hourly(INELASTIC, rules, 30)
    assert max(up) == 1800 and up[-1] == 1800
    down = run_hourly(ELASTIC, rules, 30)
    assert min(down) == 975 and down[-1] == 975  # 0.8 × 1200 = 960, rounded inwards to 25


def test_the_surge_cap_holds_whatever_the_ceiling() -> None:
    prices = run_hourly(INELASTIC, PriceRules(ceiling=3.0), 40)
    assert max(prices) == 2400  # 2 × 1200


def test_one_change_an_hour() -> None:
    facts = show()
    recent = PriceState(prices={"standard": 1250}, changed_at={"standard": NOW.timestamp() - 600})
    decision = optimize(facts, {}, recent, NOW, INELASTIC)["standard"]
    assert (decision.price_cents, decision.changed) == (1250, False)
    assert decision.reason == "one change an hour"
    later = PriceState(prices={"standard": 1250}, changed_at={"standard": NOW.timestamp() - 3601})
    assert optimize(facts, {}, later, NOW, INELASTIC)["standard"].changed


def test_no_rise_in_the_last_hour_for_held_seats() -> None:
    facts = show(hours_ahead=0.5)
    held = PriceState(prices={"standard": 1200}, held=frozenset({"standard"}))
    decision = optimize(facts, {}, held, NOW, INELASTIC)["standard"]
    assert (decision.price_cents, decision.changed) == (1200, False)
    assert decision.reason == "held seats in the last hour"
    assert optimize(facts, {}, held, NOW, ELASTIC)["standard"].price_cents < 1200  # down is fine
    assert optimize(facts, {}, PriceState(), NOW, INELASTIC)["standard"].price_cents > 1200
    early = optimize(show(hours_ahead=2), {}, held, NOW, INELASTIC)["standard"]
    assert early.price_cents > 1200


def test_accessible_seats_stay_at_base_price() -> None:
    decisions = optimize(show(), {}, PriceState(), NOW, INELASTIC)
    for category in ("wheelchair", "companion"):
        assert decisions[category].price_cents == 1200 and not decisions[category].changed
    wrong = PriceState(prices={"wheelchair": 1500})
    assert optimize(show(), {}, wrong, NOW, INELASTIC)["wheelchair"].price_cents == 1200


def test_seats_left_cap_the_expected_sales() -> None:
    # More demand than seats at every price: revenue is price × seats left, so prices rise
    # even against very elastic demand.
    flood = elastic(4.0, level=10_000.0)
    assert (
        optimize(show(), {"standard": 0.5}, PriceState(), NOW, flood)["standard"].price_cents > 1200
    )


def test_sold_out_and_started_shows_keep_their_price() -> None:
    assert optimize(show(), {"standard": 1.0}, PriceState(), NOW, INELASTIC)["standard"].reason == (
        "sold out"
    )
    started = optimize(show(hours_ahead=-1), {}, PriceState(), NOW, INELASTIC)["standard"]
    assert (started.changed, started.reason) == (False, "show started")


def test_a_price_out_of_bounds_is_brought_back() -> None:
    decision = optimize(show(), {}, PriceState(prices={"standard": 5000}), NOW, ELASTIC)
    assert decision["standard"].price_cents == 2400 and decision["standard"].reason == "ceiling"
    decision = optimize(show(), {}, PriceState(prices={"standard": 100}), NOW, INELASTIC)
    assert decision["standard"].price_cents == 850 and decision["standard"].reason == "floor"


def test_a_small_base_price_still_moves_in_whole_cents_within_bounds() -> None:
    decision = optimize(show(base=90), {}, PriceState(), NOW, INELASTIC)["standard"]
    assert 90 < decision.price_cents <= 99


def test_a_batch_needs_one_demand_call() -> None:
    calls: list[int] = []

    def counted(queries: Sequence[DemandQuery]) -> list[list[float]]:
        calls.append(len(queries))
        return INELASTIC(queries)

    rules = PriceRules()
    shows = [show(premium=1800), show(hours_ahead=10), show(base=2000)]
    steps = [plan(f, {}, PriceState(), NOW, rules) for f in shows]
    out = resolve(steps, shows, [{}] * 3, [NOW] * 3, counted, rules)
    assert calls == [4] and len(out) == 3 and out[0]["premium"].changed


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(PricingError):
        optimize(show(), {}, PriceState(), NOW.replace(tzinfo=None), INELASTIC)
    with pytest.raises(PricingError):
        optimize(show(), {"standard": 1.5}, PriceState(), NOW, INELASTIC)
    with pytest.raises(PricingError):
        PriceRules(floor=1.2)
    with pytest.raises(PricingError):
        PriceRules(max_step=0)


def test_rules_round_trip_through_json() -> None:
    rules = PriceRules(floor=0.8, category_bounds={"recliner": (0.9, 1.5)})
    assert PriceRules.from_json(rules.to_json()) == rules


@settings(max_examples=300, deadline=None)
@given(
    base=st.integers(50, 20_000),
    in_force_factor=st.floats(0.7, 2.0),
    changed_ago=st.one_of(st.none(), st.floats(0, 3 * HOUR)),
    held=st.booleans(),
    hours_ahead=st.floats(-0.5, 400),
    occupancy=st.floats(0, 1),
    elasticity=st.floats(0, 6),
    level=st.floats(0, 500),
)
def test_every_decision_keeps_every_rule(
    base: int,
    in_force_factor: float,
    changed_ago: float | None,
    held: bool,
    hours_ahead: float,
    occupancy: float,
    elasticity: float,
    level: float,
) -> None:
    rules = PriceRules()
    in_force = min(max(round(base * in_force_factor), -(-7 * base // 10)), 2 * base)
    state = PriceState(
        prices={"standard": in_force},
        changed_at={} if changed_ago is None else {"standard": NOW.timestamp() - changed_ago},
        held=frozenset({"standard"}) if held else frozenset(),
    )
    facts = show(hours_ahead=hours_ahead, base=base)
    decision = optimize(
        facts, {"standard": occupancy}, state, NOW, elastic(elasticity, level), rules
    )
    price = decision["standard"].price_cents
    assert 10 * price >= 7 * base and price <= 2 * base  # floor and the hard cap, exactly
    if not decision["standard"].changed:
        assert price == in_force
        return
    assert 10 * abs(price - in_force) <= in_force  # at most 10 % of the price in force
    assert changed_ago is None or changed_ago >= rules.min_interval_s
    assert hours_ahead > 0
    assert price % (25 if in_force >= 250 else 1) == 0
    if held and hours_ahead * HOUR <= rules.freeze_s:
        assert price < in_force


def test_arms_are_stable_and_split_as_asked() -> None:
    first = [assign_arm(user) for user in range(10_000)]
    assert first == [assign_arm(user) for user in range(10_000)]
    share = Counter(first)["dynamic"] / 10_000
    assert abs(share - 0.5) < 0.02
    tenth = Counter(assign_arm(u, dynamic_share=0.1) for u in range(10_000))["dynamic"] / 10_000
    assert abs(tenth - 0.1) < 0.01
    other = [assign_arm(user, experiment="pricing-2") for user in range(10_000)]
    assert other != first  # a new experiment reshuffles the users
    assert {assign_arm(u, dynamic_share=0.0) for u in range(100)} == {"control"}
    assert {assign_arm(u, dynamic_share=1.0) for u in range(100)} == {"dynamic"}
    with pytest.raises(ValueError):
        assign_arm(1, dynamic_share=1.5)
