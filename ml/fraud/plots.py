"""The fraud artifact's eval.png: score histograms of legitimate and fraudulent checkouts, and
precision, recall and false-positive rate at the thresholds, model against rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ml.fraud.rules import Thresholds  # noqa: E402


def plot_evaluation(
    path: Path,
    combined: np.ndarray,
    rules: np.ndarray,
    y: np.ndarray,
    metrics: dict[str, Any],
    thresholds: Thresholds,
) -> None:
    """Writes the evaluation figure of the held-out set to ``path``."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    bins = np.linspace(0, 1, 41)
    for ax, scores, title in ((axes[0], combined, "model + rules"), (axes[1], rules, "rules")):
        ax.hist(scores[~y], bins=bins, alpha=0.6, label=f"legitimate ({int((~y).sum())})")
        ax.hist(scores[y], bins=bins, alpha=0.6, label=f"fraud ({int(y.sum())})")
        for value, name in ((thresholds.verify, "verify"), (thresholds.block, "block")):
            ax.axvline(value, color="k", linestyle="--", linewidth=1)
            ax.text(value, ax.get_ylim()[1], name, ha="right", va="top", rotation=90)
        ax.set_yscale("log")
        ax.set(title=f"Scores on the held-out set: {title}", xlabel="score", ylabel="checkouts")
        ax.legend(loc="upper center")
    names = [f"{who}\n{level}" for who in ("model", "rules") for level in ("verify", "block")]
    values = [metrics[who][level] for who in ("model", "rules") for level in ("verify", "block")]
    x = np.arange(len(names))
    for offset, key in ((-0.27, "precision"), (0.0, "recall"), (0.27, "fpr")):
        bars = axes[2].bar(x + offset, [v[key] for v in values], width=0.27, label=key)
        axes[2].bar_label(bars, fmt="%.2f", fontsize=7)
    axes[2].axhline(metrics["fpr_budget"], color="r", linewidth=1, label="FPR budget")
    axes[2].set(xticks=x, xticklabels=names, ylim=(0, 1.1), title="At the thresholds")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
