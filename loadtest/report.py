"""Benchmark output: a table for people, JSON for machines, a PNG for the eye."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtest.workload import Result

PERCENTILES = (50, 90, 99, 99.9)


def table(results: Sequence[Result]) -> str:
    """One line per engine: ops/s, p50, p99, conflicts, double holds, errors."""
    head = f"{'engine':<14} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'conflicts':>10} "
    head += f"{'double_holds':>12} {'errors':>7}"
    lines = [head, "-" * len(head)]
    for r in results:
        s = r.summary()
        lines.append(
            f"{r.engine:<14} {s['ops_per_s']:>9.1f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{s['conflicts']:>10} {s['double_holds']:>12} {s['errors']:>7}"
        )
    return "\n".join(lines)


def ratio(results: Sequence[Result], top: str, bottom: str) -> float:
    by_name = {r.engine: r for r in results}
    if top not in by_name or bottom not in by_name or not by_name[bottom].ops:
        return math.nan
    return by_name[top].ops_per_s / by_name[bottom].ops_per_s


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def plot(path: Path, results: Sequence[Result], title: str) -> None:
    """Latency percentiles (log scale) and throughput per engine, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = [r.engine for r in results]
    width = 0.8 / len(PERCENTILES)
    for i, q in enumerate(PERCENTILES):
        xs = [n + (i - (len(PERCENTILES) - 1) / 2) * width for n in range(len(results))]
        left.bar(xs, [r.percentile(q) for r in results], width, label=f"p{q:g}")
    left.set_xticks(range(len(results)), names)
    left.set_yscale("log")
    left.set_ylabel("operation latency (ms)")
    left.set_title("latency percentiles")
    left.legend()
    right.bar(names, [r.ops_per_s for r in results], color="tab:green")
    right.set_ylabel("operations / s")
    right.set_title("throughput")
    for n, r in enumerate(results):
        right.annotate(f"{r.ops_per_s:,.0f}", (n, r.ops_per_s), ha="center", va="bottom")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def say(line: str) -> None:
    """Progress for people, on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def positive(kind: type, high: float) -> Callable[[str], Any]:
    """An argparse type: a positive ``kind`` of at most ``high``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in (0, {high:g}]")
        return value

    return parse


def start_local_ray(cpus: int) -> bool:
    """``ray.init`` a local Ray of ``cpus`` CPUs on loopback (``local_ray_environment`` must
    have run before Ray was imported); False when this process already has one."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    context = ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,  # the show hosts' logs stay in Ray's files
    )
    address: str = context.address_info["gcs_address"]  # type: ignore[attr-defined]
    if not address.startswith("127.0.0.1:") or address.endswith(":6379"):
        ray.shutdown()
        raise RuntimeError(f"the local Ray bound {address}: not loopback, or Redis's port")
    return True
