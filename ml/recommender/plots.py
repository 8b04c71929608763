"""The evaluation plot of a recommender artifact: the model against its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

METHODS = ("model", "popularity", "itemknn")
METRICS = (  # (label, protocol, key); protocol None = leave-one-out
    ("HR@10", None, "hr@10"),
    ("NDCG@10", None, "ndcg@10"),
    ("P@10", "time_split", "precision@10"),
    ("R@10", "time_split", "recall@10"),
)


def eval_plot(report: dict[str, Any], path: Path) -> None:
    """Grouped bars of HR@10, NDCG@10 (leave-one-out) and P@10, R@10 (time split) per method."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(METHODS)
    positions = np.arange(len(METRICS))
    for n, method in enumerate(METHODS):
        values = [
            (report[protocol] if protocol else report)[method][key] for _, protocol, key in METRICS
        ]
        label = f"model ({report['chosen']})" if method == "model" else method
        bars = axes.bar(positions + (n - 1) * width, values, width, label=label)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.set_xticks(positions, [label for label, _, _ in METRICS])
    axes.set_ylabel("score")
    axes.set_title("Recommender: leave-one-out (HR, NDCG) and time split (P, R)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
