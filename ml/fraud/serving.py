"""The fraud model as served: loaded from its artifact, scoring a batch of checkouts with one
vectorized Isolation Forest call. When it cannot answer in time the caller uses
``ml.fraud.rules.rules_verdict`` (source "fallback"), which needs neither numpy nor
scikit-learn.

    model = FraudModel.load(store.latest("fraud"))
    [verdict] = model.score([row])      # Verdict(score, decision, reasons, source="model")
"""

from __future__ import annotations

from collections.abc import Sequence

import joblib

from ml.artifacts import Artifact, ArtifactError
from ml.fraud.features import CheckoutFeatures
from ml.fraud.model import FraudScorer
from ml.fraud.rules import Thresholds, Verdict

MODEL_FILE = "model.joblib"


class FraudModel:
    """A trained fraud scorer, its thresholds and its version."""

    def __init__(self, scorer: FraudScorer, thresholds: Thresholds, version: str) -> None:
        self._scorer = scorer
        self.thresholds = thresholds
        self.version = version

    @classmethod
    def load(cls, artifact: Artifact) -> FraudModel:
        """The model of a fraud artifact; ``ArtifactError`` when it is not one."""
        if artifact.kind != "fraud":
            raise ArtifactError(f"not a fraud model: {artifact.kind} {artifact.version}")
        try:
            saved = joblib.load(artifact.file(MODEL_FILE))
            scorer, thresholds = saved["scorer"], Thresholds(**saved["thresholds"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"unreadable fraud model {artifact.version}: {exc}") from exc
        if not isinstance(scorer, FraudScorer):
            raise ArtifactError(f"fraud model {artifact.version} holds no FraudScorer")
        return cls(scorer, thresholds, artifact.version)

    def score(self, batch: Sequence[CheckoutFeatures]) -> list[Verdict]:
        """One verdict per checkout, in order."""
        for row in batch:
            if not isinstance(row, CheckoutFeatures):
                raise TypeError(f"expected CheckoutFeatures, got {type(row).__name__}")
        return self._scorer.verdicts(batch, self.thresholds)
