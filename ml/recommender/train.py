"""Training from Postgres: evaluate on the bookings, then train the chosen model on all of them
and publish it as a ``recommender`` artifact (weights, ids, index, metrics, eval.png)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import numpy as np

from ml import drift
from ml.artifacts import Artifact, ArtifactStore, Gate
from ml.recommender.evaluate import evaluate
from ml.recommender.interactions import Interactions, load_bookings
from ml.recommender.models import defaults, fit
from ml.recommender.plots import eval_plot
from ml.recommender.serving import write_files

GATE_RULE = (
    "the model's HR@10 and NDCG@10 (leave-one-out, latest booking ranked among up to 100 "
    "unbooked movies) beat the popularity baseline's"
)


def gate(report: dict[str, Any]) -> Gate:
    """Passed when the model beats popularity on both leave-one-out metrics."""
    model, popularity = report["model"], report["popularity"]
    passed = all(model[key] > popularity[key] for key in ("hr@10", "ndcg@10"))
    return Gate(passed, GATE_RULE)


async def evaluate_database(
    conn: Any, *, progress: bool = True, seed: int = 0, epochs: int | None = None
) -> dict[str, Any]:
    """The evaluation report on the bookings in the database (no artifact)."""
    data = await load_bookings(conn)
    return await asyncio.to_thread(_report, data, progress, seed, epochs)


async def train(
    conn: Any,
    store: ArtifactStore,
    *,
    progress: bool = True,
    seed: int = 0,
    epochs: int | None = None,
) -> Artifact:
    """Evaluate on the bookings, train the chosen model on all of them, commit the artifact
    (its gate says whether it may serve).

    >>> artifact = await train(conn, ArtifactStore(Path("data/models")))
    >>> artifact.gate.passed, artifact.metrics["model"]["ndcg@10"]
    """
    data = await load_bookings(conn)
    return await asyncio.to_thread(_train, data, store, progress, seed, epochs)


def input_reference(data: Interactions) -> dict[str, Any]:
    """The training customers' distribution of the model's input: how many movies each booked."""
    per_user = np.bincount(data.users, minlength=data.n_users)
    return drift.reference({"movies_booked": [float(n) for n in per_user if n > 0]})


def _report(data: Interactions, progress: bool, seed: int, epochs: int | None) -> dict[str, Any]:
    report = evaluate(data, seed=seed, epochs=epochs, progress=progress)
    report["data"] = {"source": "bookings", **data.summary()}
    return report


def _train(
    data: Interactions, store: ArtifactStore, progress: bool, seed: int, epochs: int | None
) -> Artifact:
    started = time.perf_counter()
    report = _report(data, progress, seed, epochs)
    config = defaults(report["chosen"], epochs=epochs, seed=seed)
    model = fit(data, config, progress)
    with store.draft("recommender") as draft:
        write_files(draft.path, model, data)
        drift.write_reference(draft.path, input_reference(data))
        eval_plot(report, draft.path / "eval.png")
        return draft.commit(
            metrics=report,
            gate=gate(report),
            data=report["data"],
            params=dataclasses.asdict(config),
            training_s=time.perf_counter() - started,
        )
