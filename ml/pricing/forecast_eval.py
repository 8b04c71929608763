"""The forecast on held-out history: calibrate its interval, measure it against the naive one.

For held-out past shows, the forecast is made as of several hours before the start (336 …
1, ``CALIBRATION_HOURS``) from the bookings made by then, through the serving path
(``ml.pricing.forecast.expected_final``), and compared with the final seats (bookings confirmed
before the start, less those cancelled by then). The interval's quantiles come from the
validation shows' errors; metrics and coverage from the test shows, at 72, 24 and 3 hours.

MAPE is over shows whose actual occupancy is above 5 % (``storage.forecasts``); WAPE (sum of
absolute errors over the sum of actual seats) and MAE of occupancy are over all of them. The
naive forecast is same weekday last week, never below what is sold (``naive_seats``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ml.pricing.demand import DemandModel
from ml.pricing.facts import SOLD_SEATS_SQL, load_show_facts
from ml.pricing.features import BUCKET_EDGES, N_BUCKETS
from ml.pricing.forecast import Calibration, ForecastRequest, assemble, expected_final, naive_seats
from ml.pricing.history import Series
from storage import forecasts as store

REPORT_HORIZONS_H = store.HORIZONS_H
# Hours before the start the held-out forecasts are made at: the bottom and the middle of
# each time bucket, so every bucket's interval is calibrated.
CALIBRATION_HOURS = (336.0, 168.0, 120.0, 72.0, 48.0, 24.0, 12.0, 8.0, 5.0, 3.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Cases:
    """Forecasts of held-out shows, one entry per (show, hours before the start)."""

    requests: list[ForecastRequest]
    hours: np.ndarray
    capacity: np.ndarray
    sold: np.ndarray
    point: np.ndarray  # the model's expected final seats
    naive: np.ndarray
    actual: np.ndarray


async def evaluate(
    conn: Any,
    demand: DemandModel,
    valid: Series,
    test: Series,
    *,
    max_shows: int = 1500,
    seed: int = 0,
) -> tuple[Calibration, dict[str, Any]]:
    """The interval calibrated on ``valid`` and the forecast's metrics on ``test``."""
    rng = np.random.default_rng(seed)
    edges = sorted({*CALIBRATION_HOURS, *map(float, REPORT_HORIZONS_H)}, reverse=True)
    calib = await cases(conn, demand, valid, _sample(valid, max_shows, rng), edges)
    calibration = Calibration.fit(calib.hours, (calib.actual - calib.point) / calib.capacity)
    held = await cases(conn, demand, test, _sample(test, max_shows, rng), edges)
    return calibration, report(held, calibration)


def report(cases: Cases, calibration: Calibration) -> dict[str, Any]:
    """Model against naive per horizon, with the interval's coverage."""
    out: dict[str, Any] = {
        "definition": "mape over shows with actual occupancy > 5 %; wape over all; mae in "
        "occupancy share; naive: same weekday last week, never below sold",
        "interval": calibration.to_json(),
    }
    for h in REPORT_HORIZONS_H:
        pick = np.isclose(cases.hours, h)
        requests = [r for r, p in zip(cases.requests, pick, strict=True) if p]
        forecasts = [
            assemble(r, float(x), calibration.band(h))
            for r, x in zip(requests, cases.point[pick], strict=True)
        ]
        lo = np.array([f.seats_lo for f in forecasts])
        hi = np.array([f.seats_hi for f in forecasts])
        point = np.array([f.seats for f in forecasts])
        actual, capacity = cases.actual[pick], cases.capacity[pick]
        out[f"{h}h"] = {
            "shows": int(pick.sum()),
            "model": _errors(point, actual, capacity),
            "naive": _errors(cases.naive[pick], actual, capacity),
            "coverage": round(float(np.mean((actual >= lo - 0.5) & (actual <= hi + 0.5))), 4),
            "mean_width": round(float(np.mean((hi - lo) / capacity)), 4),
        }
    return out


def _errors(forecast: np.ndarray, actual: np.ndarray, capacity: np.ndarray) -> dict[str, float]:
    error = np.abs(forecast - actual)
    big = actual > store.MAPE_MIN_OCCUPANCY * capacity
    return {
        "mape": round(float(np.mean(error[big] / actual[big])), 4) if big.any() else float("nan"),
        "wape": round(float(error.sum() / max(actual.sum(), 1e-9)), 4),
        "mae": round(float(np.mean(error / capacity)), 4),
        "mape_shows": int(big.sum()),
    }


def _sample(series: Series, n: int, rng: np.random.Generator) -> list[int]:
    ids = np.unique(series.show_id)
    return sorted(int(i) for i in rng.permutation(ids)[:n])


async def cases(
    conn: Any, demand: DemandModel, series: Series, show_ids: Sequence[int], hours: Sequence[float]
) -> Cases:
    """The forecasts of ``show_ids`` (shows of ``series``) at each of ``hours`` before their
    start, with the naive forecast and the actual final seats."""
    facts = await load_show_facts(conn, show_ids, series.cutoff)
    ids = [i for i in show_ids if i in facts and sum(facts[i].seats.values()) > 0]
    seats = await _seat_times(conn, ids)
    last_week = await store.last_week_occupancy(conn, ids)
    first_row = {int(s): i for i, s in reversed(list(enumerate(series.show_id)))}
    requests, meta = [], []
    for show in ids:
        f = facts[show]
        start = f.starts_at.timestamp()
        bought, cancelled, category = seats.get(show, (np.empty(0), np.empty(0), np.empty(0)))
        final = int(_live(bought, cancelled, start).sum())
        row = first_row[show]
        for h in hours:
            b = max(i for i in range(N_BUCKETS) if BUCKET_EDGES[i] >= h)  # the bucket begun
            now = start - h * 3600.0
            live = _live(bought, cancelled, now)
            names, counts = np.unique(category[live], return_counts=True)
            sold = {str(c): int(n) for c, n in zip(names, counts, strict=True)}
            known = dataclasses.replace(
                f,
                movie_popularity=int(series.popularity[row, b]),
                city_bookings=int(series.city_bookings[row, b]),
            )
            requests.append(
                ForecastRequest(known, sold, {}, dt.datetime.fromtimestamp(now, dt.UTC))
            )
            capacity = sum(f.seats.values())
            n_sold = min(sum(sold.values()), capacity)
            meta.append(
                (h, capacity, n_sold, naive_seats(capacity, n_sold, last_week.get(show)), final)
            )
    point = np.array(expected_final(demand.remaining, requests))
    h_, cap, sold_, naive, actual = (
        np.array(col, dtype=np.float64) for col in zip(*meta, strict=True)
    )
    return Cases(requests, h_, cap, sold_, np.maximum(point, sold_), naive, np.minimum(actual, cap))


def _live(bought: np.ndarray, cancelled: np.ndarray, at: float) -> np.ndarray:
    return np.asarray((bought < at) & ~(cancelled < at))


async def _seat_times(
    conn: Any, show_ids: Sequence[int]
) -> Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per show: each booked seat's confirmation and cancellation time (NaN: never) and its
    category."""
    rows = await conn.fetch(f"{SOLD_SEATS_SQL} WHERE b.show_id = ANY($1::bigint[])", list(show_ids))
    grouped: dict[int, list[Any]] = {}
    for r in rows:
        grouped.setdefault(r["show_id"], []).append(r)
    return {
        show: (
            np.array([r["bought"] for r in rs], dtype=np.float64),
            np.array([np.nan if r["cancelled"] is None else r["cancelled"] for r in rs]),
            np.array([r["category"] for r in rs], dtype=object),
        )
        for show, rs in grouped.items()
    }
