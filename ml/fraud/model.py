"""The fraud model: an Isolation Forest over the checkout features, its anomaly score
calibrated on the training traffic, combined with the rules into one score and a verdict.

Calibration: a row's raw anomaly score becomes its percentile among the training rows, and
the percentile a score on a fixed curve: the top ``share`` of training traffic reaches the
verify threshold (0.5), the top ``share / 5`` the block threshold (0.8). So a threshold means
a share of ordinary traffic, whatever the forest's raw scale. How the forest and the rules are
combined (their maximum or a weighted mean) and ``share`` are picked on validation data.

    scorer = fit(train.X, seed=0)
    scorer.verdicts(rows, Thresholds())    # [Verdict(score, decision, reasons, "model"), ...]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from ml.fraud.dataset import Dataset
from ml.fraud.features import FEATURES, CheckoutFeatures
from ml.fraud.rules import Thresholds, Verdict, rules_score

log = logging.getLogger(__name__)

TREES = 100
MAX_SAMPLES = 256
BLOCK_SHARE = 0.2  # the share of block among verify, for the model's own score
COMBINES = ("max", "noisy_or", "blend")
MAX_UNUSUAL = 3  # features named in a model's reason


def _transform(X: np.ndarray) -> np.ndarray:
    """log1p of the (clipped at 0) features: counts and durations are heavy-tailed."""
    return np.log1p(np.maximum(X, 0.0))


@dataclass(frozen=True)
class FraudScorer:
    """A fitted forest with its calibration and the way it is combined with the rules."""

    forest: IsolationForest
    paths: list[np.ndarray]  # per tree, each node's path length (see ``path_lengths``)
    train_raw: np.ndarray  # the training rows' raw anomaly scores, sorted
    usual_low: np.ndarray  # per feature: 1st percentile of training rows
    usual_high: np.ndarray  # ... 99th percentile
    share: float = 0.01  # of training traffic the model alone sends to verify
    # "max" of model and rules, their "noisy_or", or "blend": weight * model + rest * rules
    combine: str = "max"
    weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise ValueError(f"share must be in (0, 1), not {self.share}")
        if self.combine not in COMBINES or not 0 <= self.weight <= 1:
            raise ValueError(f"unknown combination {self.combine!r} (weight {self.weight})")

    def tuned(self, *, share: float, combine: str, weight: float) -> FraudScorer:
        return replace(self, share=share, combine=combine, weight=weight)

    def model_scores(self, X: np.ndarray) -> np.ndarray:
        """The forest's calibrated scores in [0, 1] (one vectorized call)."""
        return self.calibrated(self.percentiles(X))

    def percentiles(self, X: np.ndarray) -> np.ndarray:
        """Each row's raw anomaly score as a percentile among the training rows' (0 to 1)."""
        raw = anomaly_scores(self.forest, self.paths, X)
        return np.searchsorted(self.train_raw, raw, side="right") / len(self.train_raw)

    def calibrated(self, percentile: np.ndarray) -> np.ndarray:
        """Percentiles on the curve that sends the top ``share`` to verify."""
        knots = [0.0, 1.0 - self.share, 1.0 - self.share * BLOCK_SHARE, 1.0]
        return np.interp(percentile, knots, [0.0, 0.5, 0.8, 1.0])

    def combined(self, model: np.ndarray, rules: np.ndarray) -> np.ndarray:
        if self.combine == "max":
            return np.maximum(model, rules)
        if self.combine == "noisy_or":
            return 1.0 - (1.0 - model) * (1.0 - rules)
        return self.weight * model + (1.0 - self.weight) * rules

    def scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(combined, rules alone) scores of feature rows."""
        rows = [CheckoutFeatures.from_vector(list(x)) for x in np.asarray(X)]
        rules = np.array([rules_score(r)[0] for r in rows], dtype=np.float64)
        return self.combined(self.model_scores(X), rules), rules

    def verdicts(self, rows: Sequence[CheckoutFeatures], thresholds: Thresholds) -> list[Verdict]:
        """One verdict per row, source "model"."""
        if not rows:
            return []
        X = np.array([r.as_vector() for r in rows], dtype=np.float64)
        model = self.model_scores(X)
        judged = [rules_score(r) for r in rows]
        both = self.combined(model, np.array([score for score, _ in judged]))
        verdicts = []
        for x, m, score, (_, reasons) in zip(X, model, both, judged, strict=True):
            score = float(min(1.0, max(0.0, score)))
            if m >= thresholds.verify:
                reasons = (*reasons, self._anomaly_reason(x, float(m)))
            verdicts.append(Verdict(round(score, 6), thresholds.decide(score), reasons, "model"))
        return verdicts

    def _anomaly_reason(self, x: np.ndarray, model: float) -> str:
        """The features furthest outside their usual training range, for ops."""
        span = np.maximum(self.usual_high - self.usual_low, 1.0)
        beyond = np.maximum(x - self.usual_high, self.usual_low - x) / span
        worst = [i for i in np.argsort(-beyond)[:MAX_UNUSUAL] if beyond[i] > 0]
        named = ", ".join(f"{FEATURES[i]}={x[i]:g}" for i in worst) or "an unusual mix"
        return f"anomaly: model score {model:.2f}; unusual {named}"


def _average_path(n: np.ndarray) -> np.ndarray:
    """The mean path length of an unsuccessful search in a binary tree of ``n`` points."""
    n = np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 3.0)
    long = 2.0 * (np.log(safe - 1.0) + np.euler_gamma) - 2.0 * (safe - 1.0) / safe
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, long))


def path_lengths(forest: IsolationForest) -> list[np.ndarray]:
    """Per tree, the path length a row ending in each node gets: its depth plus the mean path
    of the training points left there (from the trees' public arrays)."""
    paths = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        depth = np.zeros(tree.node_count)
        for node in range(tree.node_count):  # parents come before their children
            for child in (tree.children_left[node], tree.children_right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
        paths.append(depth + _average_path(tree.n_node_samples))
    return paths


def anomaly_scores(forest: IsolationForest, paths: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """``-forest.score_samples`` of the transformed rows, without scikit-learn's per-tree job
    overhead (six times faster on a batch of 32): one ``apply`` per tree."""
    rows = _transform(np.asarray(X, dtype=np.float64)).astype(np.float32)
    total = np.zeros(len(rows))
    for estimator, features, lengths in zip(
        forest.estimators_, forest.estimators_features_, paths, strict=True
    ):
        total += lengths[estimator.tree_.apply(np.ascontiguousarray(rows[:, features]))]
    norm = len(paths) * float(_average_path(np.array([forest.max_samples_]))[0])
    return 2.0 ** (-total / norm)


def fit(X: np.ndarray, *, seed: int = 0) -> FraudScorer:
    """An Isolation Forest on training rows (mostly normal traffic), calibrated on them."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(FEATURES) or len(X) < MAX_SAMPLES:
        raise ValueError(f"need at least {MAX_SAMPLES} rows of {len(FEATURES)} features")
    forest = IsolationForest(
        n_estimators=TREES, max_samples=MAX_SAMPLES, random_state=seed, n_jobs=1
    )
    forest.fit(_transform(X))
    paths = path_lengths(forest)
    raw = np.sort(anomaly_scores(forest, paths, X))
    low, high = np.percentile(X, [1, 99], axis=0)
    return FraudScorer(forest, paths, raw, low, high)


async def load_labels(conn: Any) -> Dataset:
    """The analysts' labels: each labelled decision's stored features and whether it was
    fraud, oldest first (pattern "analyst"). Rows whose features no longer match ``FEATURES``
    are skipped (and logged)."""
    records = await conn.fetch(
        "SELECT d.id, d.created_at, d.features, l.is_fraud FROM fraud_decisions d"
        " JOIN fraud_labels l ON l.decision_id = d.id ORDER BY d.created_at, d.id"
    )
    rows, labels, times = [], [], []
    for record in records:
        stored = record["features"]
        try:
            features = CheckoutFeatures.from_mapping(
                json.loads(stored) if isinstance(stored, str) else stored
            )
        except (TypeError, ValueError) as exc:
            log.warning("fraud decision %s: features not usable: %s", record["id"], exc)
            continue
        rows.append(features.as_vector())
        labels.append(bool(record["is_fraud"]))
        times.append(record["created_at"].timestamp())
    return Dataset(
        np.array(rows, dtype=np.float64).reshape(-1, len(FEATURES)),
        np.array(labels, dtype=bool),
        np.array(["analyst"] * len(rows), dtype=object),
        np.array(times, dtype=np.float64),
    )
