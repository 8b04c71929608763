"""Backtest: the optimizer's prices against the static price table on held-out shows.

Neither policy's counterfactual sales were observed, so both are simulated the same way: a
*simulator* (a demand model fitted on all the history, held-out weeks included) gives the
expected seats sold in each bucket at the price in force, capped by the seats left, and the
occupancy moves on by those sales. The optimizer prices with the model trained on the older
shows only, through the serving path (``PricingModel.quote``), deciding at each bucket's start
under the same rules as in production (no holds are live in a replay). The history's own
revenue for the same shows and categories is reported beside the two simulated ones.

The simulator can only say what the history shows: the demo's customers choose *between* shows
by relative price, so the lift of raising every price at once is an extrapolation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from ml.pricing.demand import DemandModel
from ml.pricing.facts import ShowFacts
from ml.pricing.features import BUCKET_EDGES, N_BUCKETS, feature_matrix
from ml.pricing.history import Series, bucket_columns
from ml.pricing.optimizer import PriceState
from ml.pricing.serving import PricingModel, QuoteRequest


def run_backtest(
    series: Series,
    facts: Mapping[int, ShowFacts],
    model: PricingModel,
    simulator: DemandModel,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Revenue and seats of the static and the dynamic policy on ``series`` (held-out shows
    whose facts are given), with the history's actual figures and the lift."""
    series = series.subset(np.isin(series.show_id, list(facts)))
    if not len(series):
        raise ValueError("no held-out shows to backtest")
    static = _Policy(series)
    dynamic = _Policy(series)
    states: dict[int, PriceState] = {int(s): PriceState() for s in np.unique(series.show_id)}
    by_show: dict[int, list[int]] = {}
    for i, show in enumerate(series.show_id):
        by_show.setdefault(int(show), []).append(i)
    for b in tqdm(range(N_BUCKETS), desc="backtest", disable=not progress):
        static.sell(simulator, b, series.base_cents)
        prices = _dynamic_prices(series, facts, model, dynamic, states, by_show, b)
        dynamic.sell(simulator, b, prices)
    actual_seats = series.demand.sum(axis=1)
    return _report(series, static, dynamic, actual_seats)


class _Policy:
    """Simulated sales of one pricing policy over the buckets."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self.taken = np.zeros(len(series))  # seats sold so far per series
        self.seats = np.zeros((len(series), N_BUCKETS))
        self.revenue = np.zeros((len(series), N_BUCKETS))
        self.prices = np.zeros((len(series), N_BUCKETS))
        totals: dict[int, float] = {}
        for show, seats in zip(series.show_id, series.seats, strict=True):
            totals[int(show)] = totals.get(int(show), 0.0) + float(seats)
        self.show_seats = np.array([totals[int(s)] for s in series.show_id])

    def occupancy(self) -> np.ndarray:
        return np.asarray(self.taken / self.series.seats)

    def show_occupancy(self) -> np.ndarray:
        sold: dict[int, float] = {}
        for show, taken in zip(self.series.show_id, self.taken, strict=True):
            sold[int(show)] = sold.get(int(show), 0.0) + float(taken)
        sold_by_series = np.array([sold[int(s)] for s in self.series.show_id])
        return np.asarray(sold_by_series / self.show_seats)

    def sell(self, simulator: DemandModel, bucket: int, prices: np.ndarray) -> None:
        columns = bucket_columns(
            self.series, simulator.encoders, bucket, price_cents=prices,
            occupancy=self.occupancy(), show_occupancy=self.show_occupancy(),
        )  # fmt: skip
        expected = simulator.predict(feature_matrix(columns))
        sold = np.minimum(expected, self.series.seats - self.taken)
        self.taken += sold
        self.seats[:, bucket] = sold
        self.revenue[:, bucket] = sold * prices
        self.prices[:, bucket] = prices


def _dynamic_prices(
    series: Series,
    facts: Mapping[int, ShowFacts],
    model: PricingModel,
    policy: _Policy,
    states: dict[int, PriceState],
    by_show: Mapping[int, list[int]],
    bucket: int,
) -> np.ndarray:
    """The optimizer's price per series at the start of ``bucket``; ``states`` moves on."""
    occupancy = policy.occupancy()
    shows = sorted(by_show)
    requests = []
    for show in shows:
        rows = by_show[show]
        now = dt.datetime.fromtimestamp(
            series.starts[rows[0]] - BUCKET_EDGES[bucket] * 3600, dt.UTC
        )
        show_facts = dataclasses.replace(
            facts[show],
            movie_popularity=int(series.popularity[rows[0], bucket]),
            city_bookings=int(series.city_bookings[rows[0], bucket]),
        )
        taken = {str(series.category[i]): float(occupancy[i]) for i in rows}
        requests.append(QuoteRequest(show_facts, taken, states[show], now))
    prices = np.zeros(len(series))
    for show, request, decisions in zip(shows, requests, model.quote(requests), strict=True):
        state = states[show]
        changed = {c: request.now.timestamp() for c, d in decisions.items() if d.changed}
        states[show] = PriceState(
            prices={**state.prices, **{c: d.price_cents for c, d in decisions.items()}},
            changed_at={**state.changed_at, **changed},
        )
        for i in by_show[show]:
            prices[i] = decisions[str(series.category[i])].price_cents
    return prices


def _report(
    series: Series, static: _Policy, dynamic: _Policy, actual_seats: np.ndarray
) -> dict[str, Any]:
    def totals(revenue: np.ndarray, seats: np.ndarray) -> dict[str, float]:
        return {"revenue_cents": round(float(revenue.sum())), "seats": round(float(seats.sum()), 1)}

    def lift(new: float, old: float) -> float:
        return round((new - old) / old, 4) if old else 0.0

    by_category = {}
    for category in sorted(set(series.category)):
        pick = series.category == category
        s, d = static.revenue[pick].sum(), dynamic.revenue[pick].sum()
        by_category[str(category)] = {
            "static_cents": round(float(s)), "dynamic_cents": round(float(d)), "lift": lift(d, s),
        }  # fmt: skip
    ratio = dynamic.prices / series.base_cents[:, None]
    return {
        "shows": int(len(np.unique(series.show_id))),
        "series": int(len(series)),
        "static": totals(static.revenue, static.seats),
        "dynamic": totals(dynamic.revenue, dynamic.seats),
        "actual_history": totals(actual_seats * series.base_cents, actual_seats),
        "lift": lift(dynamic.revenue.sum(), static.revenue.sum()),
        "seats_change": lift(dynamic.seats.sum(), static.seats.sum()),
        "max_price_ratio": round(float(ratio.max()), 4),
        "min_price_ratio": round(float(ratio.min()), 4),
        "by_category": by_category,
        "by_hours_before": {
            f"{BUCKET_EDGES[b]:g}h": {
                "static_cents": round(float(static.revenue[:, b].sum())),
                "dynamic_cents": round(float(dynamic.revenue[:, b].sum())),
                "mean_price_ratio": round(float(ratio[:, b].mean()), 4),
            }
            for b in range(N_BUCKETS)
        },
    }
