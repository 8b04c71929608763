"""The serving core: a trained pricing artifact loaded once, quoting batches of shows.

One ``quote`` call plans every show's categories under the rules, scores all candidate prices
of the whole batch with one XGBoost predict, and picks each category's price.

>>> model = PricingModel.load(store.latest("pricing"))
>>> [decisions] = model.quote([QuoteRequest(facts, {"standard": 0.3}, PriceState(), now)])
>>> decisions["standard"].price_cents
1375
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.artifacts import Artifact
from ml.pricing.demand import DemandModel
from ml.pricing.features import BUCKET_EDGES, FEATURES, Encoders
from ml.pricing.forecast import Calibration, Forecast, ForecastRequest, forecast
from ml.pricing.optimizer import (
    Decision,
    DemandQuery,
    PriceRules,
    PricingError,
    QuoteRequest,
    plan,
    resolve,
)

MODEL_FILE = "model.json"  # the booster, in XGBoost's JSON format
CONFIG_FILE = "pricing.json"  # features, buckets, encoders, objective and the rules' defaults


def write_config(
    path: Any,
    encoders: Encoders,
    rules: PriceRules,
    objective: str,
    forecast: Calibration | None = None,
) -> None:
    """The side file ``PricingModel.load`` reads beside the booster (``forecast``: the
    forecast interval's calibration)."""
    config = {
        "features": list(FEATURES),
        "bucket_edges": list(BUCKET_EDGES),
        "objective": objective,
        "encoders": encoders.to_json(),
        "rules": rules.to_json(),
        "forecast": (forecast or Calibration()).to_json(),
    }
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


class PricingModel:
    """A demand model and the rules it prices under."""

    def __init__(
        self,
        demand: DemandModel,
        rules: PriceRules,
        version: str,
        calibration: Calibration | None = None,
    ) -> None:
        self.demand, self.rules, self._version = demand, rules, version
        self.calibration = calibration or Calibration()

    @classmethod
    def load(cls, artifact: Artifact, rules: PriceRules | None = None) -> PricingModel:
        """The model of a committed pricing artifact, under its own rules unless given."""
        if artifact.kind != "pricing":
            raise PricingError(f"not a pricing artifact: {artifact.kind}")
        config = json.loads(artifact.file(CONFIG_FILE).read_text())
        if config["features"] != list(FEATURES) or config["bucket_edges"] != list(BUCKET_EDGES):
            raise PricingError(f"artifact {artifact.version} was trained on other features")
        encoders = Encoders.from_json(config["encoders"])
        demand = DemandModel.load(artifact.file(MODEL_FILE), encoders, config["objective"])
        rules = rules or PriceRules.from_json(config["rules"])
        calibration = Calibration.from_json(config.get("forecast"))
        return cls(demand, rules, artifact.version, calibration)

    @property
    def version(self) -> str:
        return self._version

    def expected_demand(self, queries: Sequence[DemandQuery]) -> list[np.ndarray]:
        """Seats expected per query and candidate price until the show (the optimizer's
        ``DemandModel``)."""
        return self.demand.remaining(queries)

    def forecast(self, requests: Sequence[ForecastRequest]) -> list[Forecast]:
        """Each show's forecast of final occupancy and revenue (``ml.pricing.forecast``), in
        request order: one predict call for the batch."""
        return forecast(self.demand.remaining, self.calibration, requests)

    def quote(self, requests: Sequence[QuoteRequest]) -> list[dict[str, Decision]]:
        """Each request's decision per seat category, in request order."""
        steps = [plan(r.facts, r.occupancy, r.state, r.now, self.rules) for r in requests]
        return resolve(
            steps,
            [r.facts for r in requests],
            [r.occupancy for r in requests],
            [r.now for r in requests],
            self.expected_demand,
            self.rules,
        )
