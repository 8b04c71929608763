"""Forecasts of a show's final occupancy and revenue, with an interval and a flag. Pure: no I/O,
no clock, no XGBoost (the gateway builds its fallback forecasts with this module).

The point forecast, per seat category: the seats sold so far plus the demand model's expected
seats from ``now`` to the start at the price in force, capped by the category's seats.
Accessible seats (never priced by the model) fill in the same share of what is left as the
priced ones. Revenue is seats × price per category.

The interval (80 %) is empirical: quantiles of (actual − forecast) final occupancy, per time
bucket before the start, measured on held-out shows at training time (``Calibration``, kept in
the pricing artifact's config); the model's Poisson noise alone is far too narrow. It is
clipped to [sold, capacity].

Flags (``flag_of``): ``sell_out`` when the interval's low end is at least 90 % of capacity or
the point at least 95 %; ``empty`` when the interval's high end is below 20 %.

The naive forecast (and the fallback when no model answers): same weekday last week, i.e. the
final occupancy of the same screen's show 7 days earlier nearest the start (± 2 h), else the
theater's mean that day, never below what is sold; its interval is ``FALLBACK_BAND`` around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.pricing.facts import ShowFacts
from ml.pricing.features import BUCKET_EDGES, N_BUCKETS, bucket_of
from ml.pricing.optimizer import ACCESSIBLE, DemandQuery

INTERVAL = (0.1, 0.9)  # quantiles of the error: an 80 % interval
SELL_OUT_LOW, SELL_OUT_POINT, EMPTY_HIGH = 0.90, 0.95, 0.20
# An uncalibrated band (occupancy share) for the naive fallback and for artifacts without one.
FALLBACK_BAND = (-0.15, 0.15)

# Expected seats per query from now to the start (one price per query).
Remaining = Callable[[Sequence[DemandQuery]], Sequence[Any]]


@dataclass(frozen=True)
class ForecastRequest:
    """A show now: its facts, seats sold per category, prices in force (base where absent)."""

    facts: ShowFacts
    sold: Mapping[str, int]
    prices: Mapping[str, int]
    now: dt.datetime

    @property
    def capacity(self) -> int:
        return int(sum(self.facts.seats.values()))

    def price(self, category: str) -> int:
        return int(self.prices.get(category, self.facts.base_prices[category]))


@dataclass(frozen=True)
class Forecast:
    show_id: int
    capacity: int
    sold: int
    seats: float
    seats_lo: float
    seats_hi: float
    revenue_cents: int
    revenue_lo_cents: int
    revenue_hi_cents: int
    flag: str | None


@dataclass(frozen=True)
class Calibration:
    """Quantiles (low, high) of actual − forecast final occupancy, per time bucket."""

    bands: tuple[tuple[float, float], ...] = (FALLBACK_BAND,) * N_BUCKETS
    calibrated: bool = False

    def band(self, hours_before: float) -> tuple[float, float]:
        return self.bands[bucket_of(hours_before)]

    @classmethod
    def fit(cls, hours_before: np.ndarray, errors: np.ndarray) -> Calibration:
        """From held-out forecasts' hours before the start and their errors; a bucket with
        fewer than 20 of them keeps the fallback band."""
        buckets = np.array([bucket_of(float(h)) for h in hours_before], dtype=np.int64)
        bands = []
        for b in range(N_BUCKETS):
            e = errors[buckets == b]
            bands.append(
                (float(np.quantile(e, INTERVAL[0])), float(np.quantile(e, INTERVAL[1])))
                if len(e) >= 20
                else FALLBACK_BAND
            )
        return cls(tuple(bands), True)

    def to_json(self) -> dict[str, Any]:
        return {
            "interval": list(INTERVAL),
            "bucket_edges": list(BUCKET_EDGES),
            "bands": [[round(lo, 5), round(hi, 5)] for lo, hi in self.bands],
            "calibrated": self.calibrated,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Calibration:
        if not data or list(data.get("bucket_edges", [])) != list(BUCKET_EDGES):
            return cls()
        bands = tuple((float(lo), float(hi)) for lo, hi in data["bands"])
        return cls(bands, bool(data.get("calibrated", True)))


def flag_of(capacity: int, seats: float, lo: float, hi: float) -> str | None:
    """``sell_out``, ``empty`` or None (the rule is in the module docstring)."""
    if capacity <= 0:
        return None
    if lo >= SELL_OUT_LOW * capacity or seats >= SELL_OUT_POINT * capacity:
        return "sell_out"
    if hi < EMPTY_HIGH * capacity:
        return "empty"
    return None


def expected_final(remaining: Remaining, requests: Sequence[ForecastRequest]) -> list[float]:
    """Expected final seats of each show: one demand call for the whole batch."""
    queries, where = [], []
    for i, r in enumerate(requests):
        f = r.facts
        occupancy = {c: min(r.sold.get(c, 0) / n, 1.0) for c, n in f.seats.items() if n}
        for category, n in f.seats.items():
            if category not in ACCESSIBLE and n and r.sold.get(category, 0) < n:
                price = (r.price(category),)
                queries.append(DemandQuery(f, category, occupancy, r.now, price))
                where.append((i, category))
    expected = remaining(queries) if queries else []
    more: list[dict[str, float]] = [{} for _ in requests]
    for (i, category), value in zip(where, expected, strict=True):
        more[i][category] = float(np.asarray(value).reshape(-1)[0])
    return [_show_final(r, m) for r, m in zip(requests, more, strict=True)]


def _show_final(r: ForecastRequest, more: Mapping[str, float]) -> float:
    final = priced_left = priced_added = 0.0
    for category, n in r.facts.seats.items():
        if category in ACCESSIBLE:
            continue
        sold = min(r.sold.get(category, 0), n)
        added = min(max(more.get(category, 0.0), 0.0), n - sold)
        final += sold + added
        priced_left += n - sold
        priced_added += added
    fill = priced_added / priced_left if priced_left else 0.0
    for category, n in r.facts.seats.items():
        if category in ACCESSIBLE:
            sold = min(r.sold.get(category, 0), n)
            final += sold + fill * (n - sold)
    return final


def assemble(r: ForecastRequest, seats: float, band: tuple[float, float]) -> Forecast:
    """A forecast of ``seats`` final seats with ``band`` (occupancy shares) around it."""
    capacity = r.capacity
    sold = min(int(sum(r.sold.get(c, 0) for c in r.facts.seats)), capacity)
    seats = float(min(max(seats, sold), capacity))
    lo = float(min(max(seats + band[0] * capacity, sold), seats))
    hi = float(max(min(seats + band[1] * capacity, capacity), seats))
    revenue_sold = sum(min(r.sold.get(c, 0), n) * r.price(c) for c, n in r.facts.seats.items())
    left = {c: n - min(r.sold.get(c, 0), n) for c, n in r.facts.seats.items()}
    n_left = sum(left.values())
    per_seat = sum(left[c] * r.price(c) for c in left) / n_left if n_left else 0.0

    def revenue(x: float) -> int:
        return round(revenue_sold + (x - sold) * per_seat)

    return Forecast(
        r.facts.show_id, capacity, sold, round(seats, 2), round(lo, 2), round(hi, 2),
        revenue(seats), revenue(lo), revenue(hi), flag_of(capacity, seats, lo, hi),
    )  # fmt: skip


def forecast(
    remaining: Remaining, calibration: Calibration, requests: Sequence[ForecastRequest]
) -> list[Forecast]:
    """The model's forecast of each show, in request order."""
    finals = expected_final(remaining, requests)
    return [
        assemble(r, seats, calibration.band(_hours(r)))
        for r, seats in zip(requests, finals, strict=True)
    ]


def naive_seats(capacity: int, sold: int, last_week: float | None) -> float:
    """Same weekday last week's occupancy × capacity, never below what is sold."""
    return float(min(capacity, max(sold, (last_week or 0.0) * capacity)))


def fallback(r: ForecastRequest, last_week: float | None) -> Forecast:
    """The naive forecast as a ``Forecast``, with ``FALLBACK_BAND``."""
    sold = int(sum(r.sold.get(c, 0) for c in r.facts.seats))
    return assemble(r, naive_seats(r.capacity, sold, last_week), FALLBACK_BAND)


def _hours(r: ForecastRequest) -> float:
    return max((r.facts.starts_at - r.now).total_seconds() / 3600.0, 0.0)
