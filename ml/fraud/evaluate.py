"""Evaluation of fraud scores on labelled rows: precision, recall and false-positive rate at
the verify and block thresholds, for the model with the rules and for the rules alone, recall
per fraud pattern, and recall at a false-positive budget (to compare the two fairly)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.fraud.dataset import NORMAL
from ml.fraud.rules import Thresholds

FPR_BUDGET = 0.02  # the gate: at most this share of legitimate checkouts verified
BUDGETS = (0.005, 0.01, FPR_BUDGET)  # false-positive rates recall is also reported at


def at_threshold(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and false-positive rate of flagging ``scores >= threshold``."""
    flagged = scores >= threshold
    positives, negatives = int(y.sum()), int((~y).sum())
    caught = int((flagged & y).sum())
    return {
        "precision": round(caught / int(flagged.sum()), 4) if flagged.any() else 1.0,
        "recall": round(caught / positives, 4) if positives else 0.0,
        "fpr": round(int((flagged & ~y).sum()) / negatives, 4) if negatives else 0.0,
    }


def recall_at_fpr(scores: np.ndarray, y: np.ndarray, budget: float) -> float:
    """The best recall of any threshold whose false-positive rate stays within ``budget``."""
    negatives = np.sort(scores[~y])[::-1]
    if not y.any():
        return 0.0
    allowed = int(budget * len(negatives))
    if allowed >= len(negatives):
        return 1.0
    return round(float((scores[y] > negatives[allowed]).mean()), 4)


def _summary(scores: np.ndarray, y: np.ndarray, thresholds: Thresholds) -> dict[str, Any]:
    return {
        "verify": at_threshold(scores, y, thresholds.verify),
        "block": at_threshold(scores, y, thresholds.block),
        "recall_at_fpr": {str(b): recall_at_fpr(scores, y, b) for b in BUDGETS},
    }


def evaluate(
    combined: np.ndarray,
    rules: np.ndarray,
    y: np.ndarray,
    pattern: np.ndarray,
    thresholds: Thresholds,
) -> dict[str, Any]:
    """The figures of the model (with the rules) and of the rules alone on one labelled set."""
    per_pattern = {}
    for name in sorted(set(pattern.tolist()) - {NORMAL}):
        rows = pattern == name
        if not y[rows].any():
            continue  # e.g. analysts' labels that all say legitimate
        frauds = rows & y
        per_pattern[name] = {
            "n": int(frauds.sum()),
            "recall_verify": round(float((combined[frauds] >= thresholds.verify).mean()), 4),
            "recall_block": round(float((combined[frauds] >= thresholds.block).mean()), 4),
            "rules_recall_verify": round(float((rules[frauds] >= thresholds.verify).mean()), 4),
        }
    model = _summary(combined, y, thresholds)
    return {
        "rows": int(len(y)),
        "fraud_rows": int(y.sum()),
        "fpr_budget": FPR_BUDGET,
        "model": model,
        "rules": _summary(rules, y, thresholds),
        # The rules' best recall when allowed the model's false-positive rate at verify.
        "rules_recall_at_model_fpr": recall_at_fpr(rules, y, model["verify"]["fpr"]),
        "per_pattern": per_pattern,
    }
