"""What a flash-sale run shows: the admission rate the waiting room kept, how long visitors
waited, what they got; and a PNG of the line over time. Plain functions of the visitors'
stories (``loadtest.flash_visitors``) and the samples of the queue's counters.

    rate = sampled_rate(samples, sale_opens_at=t0)     # per minute, while the line was busy
    seen = admission_rate(visits, sale_opens_at=t0, ended_at=t1)   # the same, from visitors
    waits = spread([v["admitted_at"] - v["joined_at"] for v in admitted(visits)])
    plot(Path("out/sale.png"), samples, sale_opens_at=t0, began_at=tg, rate=600, title="…")

Times are seconds since the epoch, the same clock in every process of the run.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

WAIT_PERCENTILES = (50, 90, 99)


def admitted(visits: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [v for v in visits if "admitted_at" in v]


def busy_intervals(
    visits: Iterable[Mapping[str, Any]], *, sale_opens_at: float, ended_at: float
) -> list[tuple[float, float]]:
    """When the line was not empty after the sale opened: the union of each visitor's wait
    (from joining, or the opening, to admission, or the end), as sorted disjoint intervals.

    >>> busy_intervals([{"joined_at": 0, "admitted_at": 5}, {"joined_at": 7}],
    ...                sale_opens_at=2, ended_at=9)
    [(2, 5), (7, 9)]
    """
    spans = sorted(
        (max(v["joined_at"], sale_opens_at), v.get("admitted_at", ended_at))
        for v in visits
        if "joined_at" in v
    )
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def admission_rate(
    visits: Sequence[Mapping[str, Any]], *, sale_opens_at: float, ended_at: float
) -> tuple[float, int, float]:
    """Admissions a minute while the line was not empty: (rate, admissions, busy seconds)."""
    busy = sum(
        end - start
        for start, end in busy_intervals(visits, sale_opens_at=sale_opens_at, ended_at=ended_at)
    )
    count = len(admitted(visits))
    return (count / busy * 60 if busy > 0 else math.nan), count, busy


def sampled_rate(
    samples: Sequence[Mapping[str, float]], *, sale_opens_at: float
) -> tuple[float, int, float]:
    """Admissions a minute from the queue's own counters, over the stretches between two
    samples that began with someone waiting and the line open (not ``"open": False``, see
    ``mark_open``), after the sale opened: (rate, admissions, seconds). It counts every
    admission, also of visitors whose answers were lost.

    >>> samples = [{"at": 0, "waiting": 9, "admitted": 0}, {"at": 2, "waiting": 5, "admitted": 4},
    ...            {"at": 3, "waiting": 0, "admitted": 9}, {"at": 9, "waiting": 0, "admitted": 9}]
    >>> sampled_rate(samples, sale_opens_at=1)
    (270.0, 9, 2.0)
    """
    count, seconds = 0, 0.0
    for a, b in zip(samples, samples[1:], strict=False):
        if b["at"] <= sale_opens_at or a["waiting"] <= 0 or not a.get("open", True):
            continue
        count += int(b["admitted"] - a["admitted"])
        seconds += b["at"] - max(a["at"], sale_opens_at)
    return (count / seconds * 60 if seconds > 0 else math.nan), count, seconds


STOPPED = frozenset({"paused", "sold_out", "ended", "closed"})  # phases that admit nobody


def mark_open(samples: Sequence[dict[str, Any]], phases: Sequence[Sequence[Any]]) -> None:
    """Set each sample's ``open``: whether the line admitted anyone then. From the sample's
    ``supply`` when the queue's counters give it, else from the last phase the visitors were
    told of (``phases``: (when, phase) changes, in order).

    >>> samples = [{"at": 1}, {"at": 3}, {"at": 5, "supply": "open"}]
    >>> mark_open(samples, [(0, "on_sale"), (2, "paused")])
    >>> [s["open"] for s in samples]
    [True, False, True]
    """
    times = [float(t) for t, _ in phases]
    for sample in samples:
        if "supply" in sample:
            sample["open"] = sample["supply"] == "open"
            continue
        i = bisect.bisect_right(times, sample["at"]) - 1
        sample["open"] = i < 0 or phases[i][1] not in STOPPED


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of values sorted ascending (nan when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def spread(values: Iterable[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max, rounded to the millisecond (None when there are no values)."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for q in WAIT_PERCENTILES:
        out[f"p{q}"] = _round(percentile(ordered, q))
    out["max"] = _round(ordered[-1]) if ordered else None
    return out


def _round(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def outcomes(visits: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return dict(Counter(str(v["outcome"]) for v in visits).most_common())


def errors(visits: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Unexpected answers by "step:status:code" (a full house is expected, not counted)."""
    return dict(Counter(e for v in visits for e in v["errors"]).most_common())


def seats_booked_twice(bookings: Iterable[Sequence[str]]) -> list[str]:
    """Seats that appear in more than one live booking (must be none).

    >>> seats_booked_twice([["A1", "A2"], ["A2", "A3"]])
    ['A2']
    """
    counts = Counter(seat for seats in bookings for seat in seats)
    return sorted(seat for seat, n in counts.items() if n > 1)


def plot(
    path: Path,
    samples: Sequence[Mapping[str, float]],
    *,
    sale_opens_at: float,
    began_at: float,
    rate: int,
    title: str,
) -> None:
    """Queue length and cumulative admissions (and seats sold) over time, with the configured
    rate drawn from the sale's opening; ``samples`` hold ``at``, ``waiting``, ``admitted``,
    ``sold``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    xs = [s["at"] - began_at for s in samples]
    ax.plot(xs, [s["waiting"] for s in samples], label="waiting in line", color="tab:orange")
    ax.plot(xs, [s["admitted"] for s in samples], label="admitted (cumulative)", color="tab:blue")
    ax.plot(xs, [s["sold"] for s in samples], label="seats sold", color="tab:green", ls=":")
    opens = sale_opens_at - began_at
    top = max((s["admitted"] for s in samples), default=0)
    if xs and top:
        end = min(xs[-1], opens + top / rate * 60)
        ax.plot(
            [opens, end],
            [0, (end - opens) * rate / 60],
            color="black",
            ls="--",
            lw=1,
            label=f"configured rate, {rate}/min",
        )
    stopped = [(a, b) for a, b in zip(samples, samples[1:], strict=False) if not a.get("open", 1)]
    for i, (a, b) in enumerate(stopped):  # admission paused, or the show sold out
        label = "admitting nobody (paused, sold out)" if i == 0 else None
        ax.axvspan(
            a["at"] - began_at, b["at"] - began_at, color="grey", alpha=0.15, lw=0, label=label
        )
    ax.axvline(opens, color="grey", lw=0.8)
    ax.annotate("sale opens", (opens, 0), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel("seconds since the first visitor arrived")
    ax.set_ylabel("visitors (seats for the dotted line)")
    ax.set_title(title)
    ax.legend(loc="center left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
