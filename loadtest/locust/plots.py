"""The report's PNGs (the driver's side, matplotlib): each run's throughput and latency
percentiles over time, the mixed day's steps, and the CPU by process group.

    run_plot(Path("out/funnel.png"), ("the booking funnel", timeline(samples, origin), 2.1))
    overview_plot(Path("out/scenarios.png"), [(title, points, measured_from), ...])
    steps_plot(Path("out/mixed_steps.png"), steps)
    cpu_plot(Path("out/cpu.png"), {"funnel": {"gateway": 0.8, ...}, ...}, cores=2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtest.locust.scenarios import GROUPS, HOLD, HOLD_P99_GOAL_MS, READ, READ_P99_GOAL_MS

COLORS = {
    "read": "tab:blue",
    "hold": "tab:red",
    "write": "tab:orange",
    "ws": "tab:purple",
    "journey": "tab:green",
}
CPU_COLORS = {
    "gateway": "tab:blue",
    "show hosts": "tab:red",
    "ray (other)": "tab:pink",
    "postgres": "tab:green",
    "postgres (other)": "palegreen",
    "redis": "tab:brown",
    "localstripe": "tab:olive",
    "locust": "tab:orange",
    "driver": "tab:gray",
    "other": "lightgray",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)


def _draw_run(
    top: Any, bottom: Any, title: str, points: Sequence[Mapping[str, Any]], measured_from: float
) -> None:
    """Requests a second by group (top) and the HTTP percentiles, p99 by group (bottom); a
    grey line where the measured window opens."""
    xs = [p["t"] for p in points]
    for ax in (top, bottom):
        ax.axvline(measured_from, color="grey", lw=0.8, ls="--")
    for group in GROUPS:
        ys = [p["per_s"].get(group, 0) for p in points]
        if any(ys):
            top.plot(xs, ys, label=group, color=COLORS[group], lw=1.2)
    top.set_ylabel("per second")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=7, loc="upper left")
    top.grid(alpha=0.3)
    for q, style in ((50, ":"), (95, "--"), (99, "-")):
        ys = [p[f"p{q}"] for p in points]
        if any(math.isfinite(y) for y in ys):
            bottom.plot(xs, ys, ls=style, color="black", lw=1, label=f"HTTP p{q}")
    for group in (READ, HOLD, "ws"):
        ys = [p["p99_by_group"].get(group, math.nan) for p in points]
        if any(math.isfinite(y) for y in ys):
            bottom.plot(xs, ys, color=COLORS[group], lw=1, alpha=0.8, label=f"{group} p99")
    bottom.set_yscale("log")
    bottom.set_ylabel("ms (trailing 5 s)")
    bottom.set_xlabel("seconds since the run started")
    bottom.legend(fontsize=7, loc="upper left", ncol=2)
    bottom.grid(alpha=0.3)


Shown = tuple[str, Sequence[Mapping[str, Any]], float]  # title, timeline, measured from


def run_plot(path: Path, shown: Shown) -> None:
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    _draw_run(top, bottom, *shown)
    _save(fig, path)


def overview_plot(path: Path, runs: Sequence[Shown]) -> None:
    """One row per run: throughput (left) and latency percentiles (right) over time."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(runs), 2, figsize=(13, 2.6 * len(runs)), squeeze=False)
    for shown, (left, right) in zip(runs, axes, strict=True):
        _draw_run(left, right, *shown)
        right.set_title(f"{shown[0]}: latency", fontsize=10)
    _save(fig, path)


def steps_plot(path: Path, steps: Sequence[Mapping[str, Any]]) -> None:
    """The mixed day's steps: requests a second reached at each user count, and the p99 of
    reads and holds against their goals; passing steps filled, failing ones hollow, undecided
    ones (too few holds to judge) a gray cross."""
    plt = _pyplot()
    fig, left = plt.subplots(figsize=(8, 4.2))
    ordered = sorted(steps, key=lambda s: s["users"])
    users = [s["users"] for s in ordered]
    left.plot(users, [s["per_s"] for s in ordered], color="black", lw=1, label="requests/s")
    for s in ordered:
        if s.get("undecided"):  # too few holds to judge their p99
            left.plot(s["users"], s["per_s"], "x", color="gray", ms=8)
        else:
            fill = "full" if s["ok"] else "none"
            left.plot(s["users"], s["per_s"], "o", color="black", fillstyle=fill)
    left.set_xlabel("users (each pauses 0.5–1.5 s between visits)")
    left.set_ylabel("requests / s")
    left.set_xscale("log", base=2)
    right = left.twinx()
    for key, goal, color in (
        ("read_p99_ms", READ_P99_GOAL_MS, COLORS[READ]),
        ("hold_p99_ms", HOLD_P99_GOAL_MS, COLORS[HOLD]),
    ):
        ys = [s[key] if s[key] is not None else math.nan for s in ordered]
        right.plot(users, ys, color=color, lw=1, marker=".", label=key.replace("_ms", " (ms)"))
        right.axhline(goal, color=color, ls="--", lw=0.8)
    right.set_yscale("log")
    right.set_ylabel("p99 ms (dashed: goals)")
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, fontsize=8, loc="upper left")
    left.set_title(
        "a mixed day, stepped up (filled: met both goals; hollow: missed; ×: too few holds)",
        fontsize=10,
    )
    left.grid(alpha=0.3)
    _save(fig, path)


def cpu_plot(path: Path, by_run: Mapping[str, Mapping[str, float]], cores: int) -> None:
    """Cores each process group kept busy, on average over each run's measured window."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(by_run) + 3), 4.2))
    labels = list(by_run)
    bottoms = [0.0] * len(labels)
    for group, color in CPU_COLORS.items():
        values = [by_run[label].get(group, 0.0) for label in labels]
        if not any(values):
            continue
        ax.bar(labels, values, bottom=bottoms, color=color, label=group, width=0.6)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.axhline(cores, color="black", ls="--", lw=0.8)
    ax.annotate(f"{cores} cores", (len(labels) - 0.5, cores), fontsize=8, va="bottom", ha="right")
    ax.set_ylabel("cores busy (mean)")
    ax.set_title("where the CPU went, by process group", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    _save(fig, path)
