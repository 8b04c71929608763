"""The pricing artifact's eval.png: demand predictions against actual sales, the learned price
response, and the backtest's revenue and seats by policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def eval_plot(
    path: Path,
    *,
    buckets: Sequence[str],
    actual: Sequence[float],
    predicted: Mapping[str, Sequence[float]],
    response: tuple[Sequence[float], Sequence[float]],
    backtest: Mapping[str, Any],
) -> None:
    """Write the four panels to ``path``."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    x = np.arange(len(buckets))

    ax = axes[0, 0]
    ax.plot(x, actual, "ko-", label="actual")
    for name, values in predicted.items():
        ax.plot(x, values, "o--", label=name)
    ax.set(xticks=x, xticklabels=buckets, xlabel="bucket (hours before the show)",
           ylabel="mean seats sold per category", title="Held-out demand by bucket")  # fmt: skip
    ax.legend()

    ax = axes[0, 1]
    ax.plot(response[0], response[1], "o-")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set(xlabel="price / base price", ylabel="mean predicted seats per row",
           title="Learned price response (monotone)")  # fmt: skip

    ax = axes[1, 0]
    policies = ("actual_history", "static", "dynamic")
    revenue = [backtest[p]["revenue_cents"] / 100 for p in policies]
    seats = [backtest[p]["seats"] for p in policies]
    bars = ax.bar(np.arange(3) - 0.2, revenue, 0.4, label="revenue", color="tab:blue")
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_ylim(0, max(revenue) * 1.25)
    ax.set(xticks=np.arange(3), xticklabels=["history", "static (sim)", "dynamic (sim)"],
           ylabel="revenue", title=f"Backtest on {backtest['shows']} held-out shows, "
           f"lift {backtest['lift']:+.1%}")  # fmt: skip
    twin = ax.twinx()
    marks = twin.bar(np.arange(3) + 0.2, seats, 0.4, label="seats", color="tab:orange")
    twin.bar_label(marks, fmt="%.0f", fontsize=8)
    twin.set(ylabel="seats", ylim=(0, max(seats) * 1.25))
    ax.legend([bars, marks], ["revenue (currency units)", "seats"], loc="upper center", ncols=2)

    ax = axes[1, 1]
    by_hours = backtest["by_hours_before"]
    labels = list(by_hours)
    lift = [
        (v["dynamic_cents"] - v["static_cents"]) / v["static_cents"] if v["static_cents"] else 0
        for v in by_hours.values()
    ]
    ax.bar(labels, lift, color="tab:green")
    ax.plot(labels, [v["mean_price_ratio"] - 1 for v in by_hours.values()], "k^-",
            label="mean price / base - 1")  # fmt: skip
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="bucket start (hours before the show)", ylabel="share",
           title="Revenue lift by time before the show")  # fmt: skip
    ax.legend()

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
