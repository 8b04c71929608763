"""Dynamic pricing: show facts, the demand model (XGBoost, monotone in price), the constrained
revenue-maximizing optimizer, the backtest, the experiment's arms and the serving core.

Imports nothing of ours but ``storage`` and ``ml.artifacts``. The optimizer and the arms are
pure (no I/O, no clock). Names load from their modules on first use, so the gateway, which
needs the facts, the arms and the optimizer's dataclasses, never loads XGBoost or matplotlib.
Training is ``ml.pricing.train.train``.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ARMS": "ml.pricing.arms",
    "Arm": "ml.pricing.arms",
    "assign_arm": "ml.pricing.arms",
    "FactsError": "ml.pricing.facts",
    "ShowFacts": "ml.pricing.facts",
    "load_show_facts": "ml.pricing.facts",
    "FEATURES": "ml.pricing.features",
    "Decision": "ml.pricing.optimizer",
    "DemandQuery": "ml.pricing.optimizer",
    "PriceRules": "ml.pricing.optimizer",
    "PriceState": "ml.pricing.optimizer",
    "PricingError": "ml.pricing.optimizer",
    "optimize": "ml.pricing.optimizer",
    "PricingModel": "ml.pricing.serving",
    "QuoteRequest": "ml.pricing.optimizer",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ml.pricing' has no attribute {name!r}")
