"""What this gateway process counts of each model between two flushes: calls, model answers,
fallbacks by reason, errors, a latency histogram, a histogram of the predictions, and the
input features binned on the training reference of the version serving; and the recommended
movies shown and clicked. Plain counters in memory (no I/O, no awaits): the monitoring flush
job takes them every few seconds into Postgres (``storage.monitoring``).

    monitor.observe_call("fraud", "model", None, 0.004)
    monitor.prediction("fraud", 0.07)
    monitor.inputs("fraud", features.as_dict())
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml import drift
from storage.monitoring import Impression, ModelCounts, StatsRow

log = logging.getLogger(__name__)

MODELS = ("recommender", "pricing", "fraud")
ERRORS = frozenset({"timeout", "failed"})  # fallback reasons that mean the model went wrong
# Latency buckets, upper edges in milliseconds; a slower answer counts in the last.
LATENCY_MS = (1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000, 10000)
# What each model's prediction histogram counts, on these upper edges (the last is open):
# fraud the score; pricing the chosen prices over the price table (mean over categories);
# the recommender the number of movies in the answer.
PREDICTION_EDGES: dict[str, tuple[float, ...]] = {
    "fraud": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "pricing": (0.8, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.25, 1.5, 2.0),
    "recommender": (0, 1, 3, 5, 10, 20, 50),
}
PREDICTION_MEANING = {
    "fraud": "fraud score",
    "pricing": "chosen price / price table",
    "recommender": "movies recommended",
}
# The show facts the pricing model's reference covers (``ml.pricing.train.DRIFT_INPUTS``).
PRICING_INPUTS = (
    "weekday", "hour", "movie_popularity", "movie_age_days", "screen_seats", "holiday_days",
    "city_bookings",
)  # fmt: skip
MAX_IMPRESSION_KEYS = 50_000  # beyond this many distinct rows between flushes, new ones drop


def _bump(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def latency_bucket(seconds: float) -> str:
    ms = seconds * 1000.0
    i = bisect.bisect_left(LATENCY_MS, ms)
    return str(LATENCY_MS[min(i, len(LATENCY_MS) - 1)])


def prediction_bucket(model: str, value: float) -> str:
    edges = PREDICTION_EDGES[model]
    i = bisect.bisect_left(edges, value)
    return f"{edges[min(i, len(edges) - 1)]:g}"


class Monitor:
    """One gateway process's counters of the models (see the module's docstring)."""

    def __init__(self, process: str | None = None) -> None:
        self.process = process or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        # model -> (serving version, its input reference); absent: no reference to bin on
        self.references: dict[str, tuple[str, dict[str, Any]]] = {}
        self.versions: dict[str, str] = {}  # model -> serving version, with or without reference
        self._counts: dict[str, ModelCounts] = {}
        self._impressions: dict[tuple[dt.datetime, int, int, str], list[int]] = {}
        self.dropped = 0

    def _of(self, model: str) -> ModelCounts:
        found = self._counts.get(model)
        if found is None:
            found = self._counts[model] = ModelCounts()
        return found

    # -- what the models did -----------------------------------------------------------------

    def observe_call(
        self, model: str, source: str, reason: str | None, latency_s: float | None
    ) -> None:
        """One call's outcome (``serve.client.ModelCall`` reports each)."""
        counts = self._of(model)
        counts.calls += 1
        if source == "model":
            counts.answers += 1
            if latency_s is not None:
                _bump(counts.latency, latency_bucket(latency_s))
        else:
            _bump(counts.fallbacks, reason or "unknown")
            if reason in ERRORS:
                counts.errors += 1

    def prediction(self, model: str, value: float) -> None:
        _bump(self._of(model).predictions, prediction_bucket(model, float(value)))

    def inputs(self, model: str, values: Mapping[str, Any]) -> None:
        """One input row of ``model``, binned on its serving version's training reference
        (nothing is counted while there is none)."""
        found = self.references.get(model)
        if found is None:
            return
        features = self._of(model).features
        for name, feature in found[1].items():
            if name in values and values[name] is not None:
                _bump(features.setdefault(name, {}), drift.bin_of(feature, values[name]))

    def priced(self, facts: Any, table: Mapping[str, int], prices: Mapping[str, int]) -> None:
        """One pricing decision for a show: its facts (``ml.pricing.facts.ShowFacts``), its
        price table and the prices chosen."""
        self.inputs("pricing", {name: getattr(facts, name, None) for name in PRICING_INPUTS})
        ratios = [prices[c] / table[c] for c in table if table[c] > 0 and c in prices]
        if ratios:
            self.prediction("pricing", sum(ratios) / len(ratios))

    def count(self, model: str, what: str, n: int = 1) -> None:
        """Another counter of ``model`` (the recommender's "requests" and "cold_start")."""
        _bump(self._of(model).extra, what, n)

    # -- recommendations ---------------------------------------------------------------------

    def recommended(
        self, user_id: int | None, movie_ids: Iterable[int], source: str, now: dt.datetime
    ) -> None:
        """Movies shown to a customer (None: not logged in) from ``source``."""
        hour = now.replace(minute=0, second=0, microsecond=0)
        for movie_id in movie_ids:
            self._impression(hour, user_id or 0, int(movie_id), source, 0)

    def clicked(self, user_id: int | None, movie_id: int, source: str, now: dt.datetime) -> None:
        hour = now.replace(minute=0, second=0, microsecond=0)
        self._impression(hour, user_id or 0, movie_id, source, 1)

    def _impression(self, hour: dt.datetime, user: int, movie: int, source: str, slot: int) -> None:
        key = (hour, user, movie, source)
        row = self._impressions.get(key)
        if row is None:
            if len(self._impressions) >= MAX_IMPRESSION_KEYS:
                self.dropped += 1
                return
            row = self._impressions[key] = [0, 0]
        row[slot] += 1

    # -- flushing ----------------------------------------------------------------------------

    def take(self) -> tuple[list[StatsRow], list[Impression]]:
        """Everything counted since the last take, as rows to keep; the counters start over."""
        counts, self._counts = self._counts, {}
        shown, self._impressions = self._impressions, {}
        rows = [
            StatsRow(model, self.process, self.versions.get(model), **asdict(c))
            for model, c in counts.items()
            if not c.empty()
        ]
        impressions = [(h, u, m, s, v[0], v[1]) for (h, u, m, s), v in shown.items()]
        return rows, impressions

    def put_back(self, rows: list[StatsRow], impressions: list[Impression]) -> None:
        """Counts a failed flush could not keep, to go with the next one."""
        for row in rows:
            self._of(row.model).add(row)
        for hour, user, movie, source, shown, clicks in impressions:
            key = (hour, user, movie, source)
            slot = self._impressions.setdefault(key, [0, 0])
            slot[0] += shown
            slot[1] += clicks

    def set_serving(self, found: Mapping[str, Any]) -> None:
        """The version of each model that serves (``monitoring_eval.Serving``) and its input
        reference, which live inputs are binned on from now."""
        self.versions = {model: s.version for model, s in found.items()}
        self.references = {
            model: (s.version, s.reference) for model, s in found.items() if s.reference is not None
        }


def serving_versions(models_dir: str | None) -> dict[str, Any]:
    """Per model kind, the version that serves (the newest past its gate) as a
    ``monitoring_eval.Serving``. Reads files: call it off the event loop."""
    if not models_dir:
        return {}
    from gateway.ops.monitoring_eval import Serving
    from ml.artifacts import ArtifactStore

    store = ArtifactStore(Path(models_dir))
    found: dict[str, Any] = {}
    for kind in MODELS:
        artifact = store.latest(kind)
        if artifact is None:
            continue
        trained = dt.datetime.fromisoformat(artifact.created_at)
        if trained.tzinfo is None:
            trained = trained.replace(tzinfo=dt.UTC)
        found[kind] = Serving(artifact.version, trained, drift.read_reference(artifact.path))
    return found
