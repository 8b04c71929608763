"""Dynamic pricing trained on the demo history: the artifact and its gate, the demand model
against its baseline and its price response, the backtest, and quotes on real show facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import numpy as np
import pytest

from ml.artifacts import Artifact, ArtifactStore
from ml.pricing import (
    DemandQuery,
    PriceState,
    PricingModel,
    QuoteRequest,
    ShowFacts,
    load_show_facts,
)
from ml.pricing.features import BUCKET_EDGES
from ml.pricing.history import load_history
from ml.pricing.serving import CONFIG_FILE, MODEL_FILE
from ml.pricing.train import train

PRICED = ("standard", "premium", "recliner")


@pytest.fixture(scope="module")
async def trained(demo_history, tmp_path_factory) -> AsyncIterator[tuple[ArtifactStore, Artifact]]:
    conn = await demo_history.connect()
    try:
        store = ArtifactStore(tmp_path_factory.mktemp("models"))
        artifact = await train(conn, store, progress=False, seed=0, rounds=150, backtest_shows=400)
    finally:
        await conn.close()
    yield store, artifact


@pytest.fixture(scope="module")
async def upcoming(demo_history) -> dict[int, ShowFacts]:
    """Facts of shows on sale in the coming week, as of the demo's today at noon."""
    conn = await demo_history.connect()
    try:
        ids = await conn.fetch(
            "SELECT id FROM shows WHERE status = 'on_sale' AND starts_at > $1 ORDER BY id LIMIT 16",
            _today_noon(demo_history) + dt.timedelta(hours=3),
        )
        facts = await load_show_facts(
            conn, [r["id"] for r in ids] + [10**9], _today_noon(demo_history)
        )
    finally:
        await conn.close()
    return facts


def _today_noon(demo_history) -> dt.datetime:
    return dt.datetime.combine(demo_history.today, dt.time(12), tzinfo=dt.UTC)


async def test_training_commits_an_artifact_that_passed_its_gate(trained) -> None:
    store, artifact = trained
    assert artifact.gate.passed, artifact.gate.rule
    assert store.latest("pricing").version == artifact.version
    for name in (MODEL_FILE, CONFIG_FILE, "eval.png"):
        assert artifact.file(name).stat().st_size > 0
    assert artifact.data["rows"]["train"] > artifact.data["rows"]["test"] > 0
    assert artifact.data["span"]["test_from"] < artifact.data["span"]["cutoff"]


async def test_the_demand_model_beats_the_naive_baseline(trained) -> None:
    metrics = trained[1].metrics
    assert metrics["model"]["poisson_deviance"] < metrics["baseline"]["poisson_deviance"]
    assert metrics["model"]["mae"] < metrics["baseline"]["mae"]


async def test_demand_falls_with_price(trained, upcoming) -> None:
    response = list(trained[1].metrics["price_response"].values())
    assert all(a >= b for a, b in zip(response, response[1:], strict=False))
    assert response[0] > response[-1]  # the price feature is used, not ignored
    model = PricingModel.load(trained[1])
    now = min(f.starts_at for f in upcoming.values()) - dt.timedelta(hours=30)
    queries = [
        DemandQuery(
            f, c, {}, now, tuple(int(f.base_prices[c] * k) for k in np.linspace(0.5, 3, 26))
        )
        for f in upcoming.values()
        for c in PRICED
        if c in f.seats
    ]
    for demand in model.expected_demand(queries):
        assert np.all(np.diff(demand) <= 1e-12) and demand[-1] >= 0


async def test_the_backtest_is_sane(trained) -> None:
    backtest = trained[1].metrics["backtest"]
    assert backtest["shows"] > 100
    for policy in ("static", "dynamic", "actual_history"):
        assert backtest[policy]["revenue_cents"] > 0 and backtest[policy]["seats"] > 0
    assert 0.7 <= backtest["min_price_ratio"] <= backtest["max_price_ratio"] <= 2.0
    assert backtest["lift"] >= 0


async def test_quotes_on_real_facts_keep_the_rules(trained, upcoming, demo_history) -> None:
    assert 10**9 not in upcoming and len(upcoming) == 16
    model = PricingModel.load(trained[1])
    now = _today_noon(demo_history)
    occupancy = {c: 0.2 for c in PRICED}
    fresh = model.quote([QuoteRequest(f, occupancy, PriceState(), now) for f in upcoming.values()])
    moved = 0
    for facts, decisions in zip(upcoming.values(), fresh, strict=True):
        assert set(decisions) == set(facts.seats)
        for category, decision in decisions.items():
            base = facts.base_prices[category]
            if category in ("wheelchair", "companion"):
                assert decision.price_cents == base
                continue
            assert 10 * abs(decision.price_cents - base) <= base
            assert decision.price_cents % 25 == 0 or not decision.changed
            moved += decision.changed
    assert moved > 0

    def state(facts: ShowFacts, **extra: object) -> PriceState:
        return PriceState(prices=dict(facts.base_prices), **extra)

    recent = (now - dt.timedelta(minutes=10)).timestamp()
    frozen = model.quote(
        [
            QuoteRequest(f, occupancy, state(f, changed_at=dict.fromkeys(f.seats, recent)), now)
            for f in upcoming.values()
        ]
    )
    for decisions in frozen:
        for category, decision in decisions.items():
            assert not decision.changed
            if category in PRICED:
                assert decision.reason == "one change an hour"

    held = model.quote(
        [
            QuoteRequest(
                f,
                occupancy,
                state(f, held=frozenset(f.seats)),
                f.starts_at - dt.timedelta(minutes=30),
            )
            for f in upcoming.values()
        ]
    )
    for facts, decisions in zip(upcoming.values(), held, strict=True):
        for category, decision in decisions.items():
            assert decision.price_cents <= facts.base_prices[category]
    unheld = model.quote(
        [
            QuoteRequest(f, occupancy, state(f), f.starts_at - dt.timedelta(minutes=30))
            for f in upcoming.values()
        ]
    )
    rises = [d.price_cents > d.base_cents for decisions in unheld for d in decisions.values()]
    assert any(rises)  # without the holds the same quotes would have risen


async def test_show_facts_match_the_training_rows(demo_history) -> None:
    """The serving path's facts of a past show, as of a bucket's start, are the features the
    training rows have for that show and bucket."""
    conn = await demo_history.connect()
    try:
        history = await load_history(conn)
        rows = np.flatnonzero(history.popularity[:, 3] > 0)[:: max(1, len(history) // 20)][:20]
        for i in rows:
            as_of = dt.datetime.fromtimestamp(history.starts[i] - BUCKET_EDGES[3] * 3600, dt.UTC)
            facts = (await load_show_facts(conn, [int(history.show_id[i])], as_of))[
                int(history.show_id[i])
            ]
            assert facts.movie_popularity == history.popularity[i, 3]
            assert facts.city_bookings == history.city_bookings[i, 3]
            for name in ("weekday", "hour", "movie_age_days", "holiday_days", "screen_seats"):
                assert getattr(facts, name) == history.static[name][i], name
            assert facts.seats[str(history.category[i])] == history.seats[i]
            assert facts.base_prices[str(history.category[i])] == history.base_cents[i]
    finally:
        await conn.close()
