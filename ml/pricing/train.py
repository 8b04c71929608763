"""The pricing training run: history rows, a time-based split, the demand model against its
naive baseline, the backtest, and the artifact.

Shows starting in the last ``test_days`` of the history are held out (metrics and backtest),
the ``valid_days`` before them pick the objective and the number of trees, and the model that
serves is trained on the older shows only. The backtest's simulator is fitted on everything.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from ml import drift
from ml.artifacts import Artifact, ArtifactStore, Gate
from ml.pricing.backtest import run_backtest
from ml.pricing.demand import OBJECTIVES, Baseline, DemandModel, poisson_deviance, scores
from ml.pricing.facts import load_show_facts
from ml.pricing.features import BUCKET_EDGES, FEATURES, N_BUCKETS, PRICE_FEATURE
from ml.pricing.forecast_eval import evaluate as evaluate_forecast
from ml.pricing.history import HistoryError, Series, fit_encoders, load_history, training_matrix
from ml.pricing.optimizer import PriceRules
from ml.pricing.plots import eval_plot
from ml.pricing.serving import CONFIG_FILE, MODEL_FILE, PricingModel, write_config

GATE_RULE = (
    "the demand model beats the naive baseline (mean demand per seat category and bucket) on "
    "held-out Poisson deviance and MAE, and the backtest's revenue lift is not negative"
)
RESPONSE_FACTORS = (0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0)


async def train(
    conn: Any,
    store: ArtifactStore,
    *,
    progress: bool = True,
    seed: int = 0,
    rounds: int = 300,
    test_days: int = 28,
    valid_days: int = 28,
    backtest_shows: int = 1500,
    rules: PriceRules | None = None,
) -> Artifact:
    """Train, evaluate and commit a pricing model; the artifact's gate says whether it may serve.

    >>> artifact = await train(conn, ArtifactStore(Path("models")))
    """
    started = time.perf_counter()
    rules = rules or PriceRules()
    history = await load_history(conn)
    parts = _split(history, test_days, valid_days)
    encoders = fit_encoders(parts["train"])
    matrices = {name: training_matrix(part, encoders) for name, part in parts.items()}
    x_test, y_test = matrices["test"]

    baseline = Baseline.fit(*matrices["train"])
    candidates: dict[str, DemandModel] = {}
    valid_deviance: dict[str, float] = {}
    for objective in tqdm(OBJECTIVES, desc="demand model", disable=not progress):
        fitted = DemandModel.fit(
            matrices["train"], matrices["valid"], encoders,
            objective=objective, rounds=rounds, seed=seed,
        )  # fmt: skip
        candidates[objective] = fitted
        x_valid, y_valid = matrices["valid"]
        valid_deviance[objective] = round(poisson_deviance(y_valid, fitted.predict(x_valid)), 5)
    objective = min(valid_deviance, key=valid_deviance.__getitem__)
    demand = candidates[objective]
    model_scores = scores(y_test, demand.predict(x_test))
    # The occupancy forecast: interval calibrated on the validation shows, scored on the test.
    calibration, forecast_metrics = await evaluate_forecast(
        conn, demand, parts["valid"], parts["test"], seed=seed
    )
    baseline_scores = scores(y_test, baseline.predict(x_test))

    everything = Series.concat(list(parts.values()))
    sim_encoders = fit_encoders(everything)
    simulator = DemandModel.fit(
        training_matrix(everything, sim_encoders), None, sim_encoders,
        objective=objective, rounds=demand.booster.num_boosted_rounds(), seed=seed + 1,
    )  # fmt: skip
    test_ids = np.unique(parts["test"].show_id)
    picked = np.random.default_rng(seed).permutation(test_ids)[:backtest_shows]
    facts = await load_show_facts(conn, [int(i) for i in picked], history.cutoff)

    with store.draft("pricing") as draft:
        pricing = PricingModel(demand, rules, draft.version)
        backtest = run_backtest(parts["test"], facts, pricing, simulator, progress=progress)
        response = _price_response(demand, x_test)
        demand.save(draft.path / MODEL_FILE)
        drift.write_reference(draft.path, input_reference(matrices["train"][0]))
        write_config(draft.path / CONFIG_FILE, encoders, rules, objective, calibration)
        eval_plot(
            draft.path / "eval.png",
            buckets=[f"{BUCKET_EDGES[b]:g}-{BUCKET_EDGES[b + 1]:g}h" for b in range(N_BUCKETS)],
            actual=_by_bucket(y_test),
            predicted={
                f"model ({objective})": _by_bucket(demand.predict(x_test)),
                "baseline": _by_bucket(baseline.predict(x_test)),
            },
            response=response,
            backtest=backtest,
        )
        beats = (
            model_scores["poisson_deviance"] < baseline_scores["poisson_deviance"]
            and model_scores["mae"] < baseline_scores["mae"]
        )
        passed = beats and backtest["lift"] >= 0
        return draft.commit(
            metrics={
                "model": model_scores,
                "baseline": baseline_scores,
                "valid_deviance": valid_deviance,
                "price_response": dict(zip(map(str, response[0]), response[1], strict=True)),
                "backtest": backtest,
                "forecast": forecast_metrics,
            },
            gate=Gate(passed, GATE_RULE),
            data={
                "rows": {name: int(len(m[1])) for name, m in matrices.items()},
                "shows": {name: int(len(np.unique(p.show_id))) for name, p in parts.items()},
                "span": {
                    "first_show": _iso(everything.starts.min()),
                    "last_show": _iso(everything.starts.max()),
                    "test_from": _iso(parts["test"].starts.min()),
                    "cutoff": history.cutoff.isoformat(),
                },
            },
            params={
                "objective": objective,
                "trees": demand.booster.num_boosted_rounds(),
                "max_rounds": rounds,
                "seed": seed,
                "features": list(FEATURES),
                "bucket_edges": list(BUCKET_EDGES),
                "test_days": test_days,
                "valid_days": valid_days,
                "rules": rules.to_json(),
            },
            training_s=time.perf_counter() - started,
        )


# The show's facts the gateway sees at every quote, monitored for drift; the ones in
# CATEGORICAL_INPUTS by value, the rest on deciles.
DRIFT_INPUTS = (
    "weekday", "hour", "movie_popularity", "movie_age_days", "screen_seats", "holiday_days",
    "city_bookings",
)  # fmt: skip
CATEGORICAL_INPUTS = ("weekday", "hour")


def input_reference(x: np.ndarray) -> dict[str, Any]:
    """The training rows' distribution of the monitored show facts."""
    columns = {
        name: [
            int(v) if name in CATEGORICAL_INPUTS else float(v) for v in x[:, FEATURES.index(name)]
        ]
        for name in DRIFT_INPUTS
    }
    return drift.reference(columns, categorical=CATEGORICAL_INPUTS)


def _split(history: Series, test_days: int, valid_days: int) -> dict[str, Series]:
    end = history.cutoff.timestamp()
    test_from = end - test_days * 86400
    valid_from = test_from - valid_days * 86400
    parts = {
        "train": history.subset(history.starts < valid_from),
        "valid": history.subset((history.starts >= valid_from) & (history.starts < test_from)),
        "test": history.subset(history.starts >= test_from),
    }
    empty = [name for name, part in parts.items() if not len(part)]
    if empty:
        raise HistoryError(f"the history is too short: no shows for {', '.join(empty)}")
    return parts


def _by_bucket(values: np.ndarray) -> list[float]:
    """Mean per bucket of bucket-major rows (see ``training_matrix``)."""
    return [float(v) for v in values.reshape(N_BUCKETS, -1).mean(axis=1)]


def _price_response(model: DemandModel, x: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean predicted demand of the held-out rows with every price scaled by each factor."""
    column = FEATURES.index(PRICE_FEATURE)
    means = []
    for factor in RESPONSE_FACTORS:
        scaled = x.copy()
        scaled[:, column] *= factor
        means.append(round(float(model.predict(scaled).mean()), 6))
    return list(RESPONSE_FACTORS), means


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).isoformat()
