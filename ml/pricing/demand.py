"""The demand model: XGBoost on the history's rows, predicting the seats of a category sold in
one time bucket, never rising with price (a monotone constraint on ``price_ratio``).

``DemandModel.remaining`` turns it into what the optimizer needs: the seats expected from now
to the start at each candidate price, summed over the buckets left (the current one pro rata).
Later buckets are predicted with today's occupancy and popularity, the best known now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

from ml.pricing.features import (
    BUCKET_EDGES,
    FEATURES,
    MONOTONE,
    N_BUCKETS,
    Encoders,
    bucket_of,
    feature_matrix,
)
from ml.pricing.optimizer import DemandQuery

OBJECTIVES = ("count:poisson", "reg:squarederror")
# One OpenMP thread, for training and predicting alike: on a busy 2-core machine a second
# thread spin-waits on the first and makes boosting over ten times slower (measured: 0.8 s
# against 14.7 s for the same Poisson model), and quote batches are too small to share.
THREADS = 1


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Mean Poisson deviance of predictions ``mu`` (clipped above zero) for counts ``y``."""
    mu = np.clip(mu, 1e-6, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.mean(term - (y - mu)))


def scores(y: np.ndarray, mu: np.ndarray) -> dict[str, float]:
    return {
        "poisson_deviance": round(poisson_deviance(y, mu), 5),
        "mae": round(float(np.mean(np.abs(y - mu))), 5),
        "mean_actual": round(float(np.mean(y)), 5),
        "mean_predicted": round(float(np.mean(mu)), 5),
    }


@dataclass(frozen=True)
class Baseline:
    """The naive forecast: mean demand per seat category and bucket in the training rows."""

    means: dict[tuple[float, float], float]  # (category code, bucket edge) -> mean demand
    overall: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> Baseline:
        keys = _baseline_keys(x)
        means = {k: float(y[(keys == k).all(axis=1)].mean()) for k in {tuple(r) for r in keys}}
        return cls(means, float(y.mean()))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array([self.means.get(tuple(k), self.overall) for k in _baseline_keys(x)])


def _baseline_keys(x: np.ndarray) -> np.ndarray:
    return x[:, [FEATURES.index("category"), FEATURES.index("hours_to_show")]]


class DemandModel:
    """A trained booster with the encoders its features were built with."""

    def __init__(self, booster: xgb.Booster, encoders: Encoders, objective: str) -> None:
        self.booster, self.encoders, self.objective = booster, encoders, objective
        booster.set_param({"nthread": THREADS})

    @classmethod
    def fit(
        cls,
        train: tuple[np.ndarray, np.ndarray],
        valid: tuple[np.ndarray, np.ndarray] | None,
        encoders: Encoders,
        *,
        objective: str,
        rounds: int,
        seed: int,
        zero_keep: float = 0.2,
    ) -> DemandModel:
        """Boost up to ``rounds`` trees, stopping early on the validation rows (all ``rounds``
        without them). Most rows sell nothing: only ``zero_keep`` of those are kept, weighted up
        to stay unbiased."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}")
        if not 0 < zero_keep <= 1 or rounds < 1:
            raise ValueError("need 0 < zero_keep <= 1 and rounds >= 1")
        params = {
            "objective": objective,
            "eval_metric": "poisson-nloglik" if objective == "count:poisson" else "rmse",
            "tree_method": "hist",
            "max_depth": 6,
            "eta": 0.15,
            "max_bin": 64,
            "min_child_weight": 10,
            "subsample": 0.8,
            "colsample_bytree": 0.9,
            "monotone_constraints": "(" + ",".join(map(str, MONOTONE)) + ")",
            "nthread": THREADS,
            "seed": seed,
        }
        x, y = train
        keep = (y > 0) | (np.random.default_rng(seed).random(len(y)) < zero_keep)
        weight = np.where(y[keep] > 0, 1.0, 1.0 / zero_keep)
        dtrain = xgb.DMatrix(x[keep], label=y[keep], weight=weight, feature_names=list(FEATURES))
        if valid is None:
            booster = xgb.train(params, dtrain, num_boost_round=rounds)
            return cls(booster, encoders, objective)
        dvalid = xgb.DMatrix(valid[0], label=valid[1], feature_names=list(FEATURES))
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=rounds,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=max(10, rounds // 10),
            verbose_eval=False,
        )
        return cls(booster[: booster.best_iteration + 1], encoders, objective)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Expected seats sold in each row's bucket (never negative)."""
        if len(x) == 0:
            return np.empty(0)
        return np.clip(self.booster.inplace_predict(x), 0.0, None).astype(np.float64)

    def remaining(self, queries: Sequence[DemandQuery]) -> list[np.ndarray]:
        """Seats expected from each query's ``now`` to its start, per candidate price: one
        predict call for the whole batch."""
        blocks, shapes = [], []
        for q in queries:
            columns, weights = _remaining_columns(q, self.encoders)
            blocks.append(columns)
            shapes.append(weights)
        if not blocks:
            return []
        merged = {name: np.concatenate([b[name] for b in blocks]) for name in FEATURES}
        predicted = self.predict(feature_matrix(merged))
        out, at = [], 0
        for q, weights in zip(queries, shapes, strict=True):
            size = len(q.prices) * len(weights)
            out.append(predicted[at : at + size].reshape(len(q.prices), len(weights)) @ weights)
            at += size
        return out

    def save(self, path: Path) -> None:
        self.booster.save_model(str(path))

    @classmethod
    def load(cls, path: Path, encoders: Encoders, objective: str) -> DemandModel:
        booster = xgb.Booster()
        booster.load_model(str(path))
        return cls(booster, encoders, objective)


def _remaining_columns(
    q: DemandQuery, encoders: Encoders
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature columns for every (price, bucket left) of one query, price-major, and the weight
    of each bucket (the share of the current one still to come, 1 for later ones)."""
    f = q.facts
    hours = max((f.starts_at - q.now).total_seconds() / 3600.0, 0.0)
    first = bucket_of(hours)
    top, bottom = BUCKET_EDGES[first], BUCKET_EDGES[first + 1]
    weights = np.ones(N_BUCKETS - first)
    weights[0] = (min(hours, top) - bottom) / (top - bottom)
    prices = np.asarray(q.prices, dtype=np.float64)
    n_p, n_b = len(prices), len(weights)
    city, code, reference = encoders.encode(
        np.array([f.city_id]),
        np.array([q.category], dtype=object),
        np.array([float(f.base_prices[q.category])]),
    )
    total = sum(f.seats.values())
    taken = sum(q.occupancy.get(c, 0.0) * n for c, n in f.seats.items())
    columns = {
        "occupancy": float(q.occupancy.get(q.category, 0.0)),
        "show_occupancy": taken / total if total else 0.0,
        "hours_to_show": np.tile(np.asarray(BUCKET_EDGES[first:N_BUCKETS]), n_p),
        "weekday": f.weekday,
        "hour": f.hour,
        "movie_popularity": f.movie_popularity,
        "movie_age_days": f.movie_age_days,
        "screen_seats": f.screen_seats,
        "category_seats": f.seats[q.category],
        "category": code[0],
        "city": city[0],
        "holiday_days": f.holiday_days,
        "city_bookings": f.city_bookings,
        "price_ratio": np.repeat(prices / reference[0], n_b),
    }
    size = n_p * n_b
    return {
        k: np.full(size, v, dtype=np.float64) if np.ndim(v) == 0 else v for k, v in columns.items()
    }, weights
