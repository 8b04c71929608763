"""Fraud detection at checkout: the feature row, the rules and their fallback verdict (pure
Python, imported by the gateway), and the Isolation Forest model: its labelled data set,
training, evaluation and serving (scikit-learn and numpy, loaded only when asked for).

Imports nothing of ours but ``storage``.
"""

from __future__ import annotations

from typing import Any

from ml.fraud.features import FEATURES, CheckoutFeatures
from ml.fraud.rules import DEFAULT_THRESHOLDS, Thresholds, Verdict, rules_verdict

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FEATURES",
    "CheckoutFeatures",
    "FraudModel",
    "Thresholds",
    "Verdict",
    "load_labels",
    "rules_verdict",
]

_HEAVY = {
    "FraudModel": "ml.fraud.serving",
    "load_labels": "ml.fraud.model",
    "train": "ml.fraud.train",
}


def __getattr__(name: str) -> Any:
    """The model's names load on first use, so the rules stay importable without numpy."""
    if name in _HEAVY:
        import importlib

        return getattr(importlib.import_module(_HEAVY[name]), name)
    raise AttributeError(f"module 'ml.fraud' has no attribute {name!r}")
