"""Drift of a model's inputs: the training data's distribution of each input feature (the
reference, kept in the artifact as ``reference.json``) against what the model sees live,
measured by the population stability index.

Pure Python (no numpy): training writes the reference, the gateway bins live inputs on it.

    ref = reference({"seats_in_hold": [2, 2, 3, 1, ...], "city": ["7", "7", "9", ...]})
    write_reference(draft.path, ref)
    live = {"seats_in_hold": {"1": 120, "2": 300, ...}}      # counts per bin (bin_of)
    psi(ref["seats_in_hold"]["shares"], live["seats_in_hold"])  # > 0.2: drift

A numeric feature has ``edges`` (the inner cut points: the training data's deciles, repeated
ones dropped, or every value seen when there are at most twice as many as bins, as for counts)
and the share of training rows per bin; bin ``i`` holds values in
``[edges[i-1], edges[i])``. A categorical feature has the share per value; a value training
never saw counts in ``OTHER``.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REFERENCE_FILE = "reference.json"
BINS = 10
FLOOR = 1e-4  # the share an empty bin counts as, so the logarithm stays finite
OTHER = "other"
DRIFT_AT, WARN_AT = 0.2, 0.1  # PSI above which a feature has drifted / deserves a look
MIN_SAMPLES = 500  # live inputs needed before a PSI is computed


def numeric_reference(values: Sequence[float], bins: int = BINS) -> dict[str, Any]:
    """Decile edges of ``values`` and the share of them in each bin."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("no values to take a reference from")
    n = len(ordered)
    distinct = sorted(set(ordered))
    if len(distinct) <= 2 * bins:  # counts and the like: a bin per value seen
        edges = distinct[1:]
    else:
        edges = sorted({ordered[min(n - 1, (n * k) // bins)] for k in range(1, bins)})
    counts = [0] * (len(edges) + 1)
    for value in ordered:
        counts[bisect.bisect_right(edges, value)] += 1
    return {"type": "numeric", "edges": edges, "shares": [c / n for c in counts], "n": n}


def categorical_reference(values: Sequence[Any]) -> dict[str, Any]:
    """The share of each value of ``values`` (as text)."""
    if not values:
        raise ValueError("no values to take a reference from")
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    n = len(values)
    return {"type": "categorical", "shares": {k: c / n for k, c in counts.items()}, "n": n}


def reference(
    columns: Mapping[str, Sequence[Any]],
    categorical: Iterable[str] = (),
    reported_only: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """The reference of every column (numeric unless named in ``categorical``); the drift of
    those in ``reported_only`` is reported but raises no alert (a feature that trends by
    nature, like the age of the customers' accounts)."""
    kinds, quiet = set(categorical), set(reported_only)
    out = {
        name: categorical_reference(values) if name in kinds else numeric_reference(values)
        for name, values in columns.items()
    }
    for name in quiet & set(out):
        out[name]["alert"] = False
    return out


def bin_of(feature: Mapping[str, Any], value: Any) -> str:
    """The bin ``value`` falls in on ``feature``'s reference, as a key of the live counts."""
    if feature["type"] == "categorical":
        key = str(value)
        return key if key in feature["shares"] else OTHER
    return str(bisect.bisect_right(feature["edges"], float(value)))


def reference_shares(feature: Mapping[str, Any]) -> dict[str, float]:
    """The reference's shares keyed as ``bin_of`` keys them."""
    shares = feature["shares"]
    if feature["type"] == "categorical":
        return {str(k): float(v) for k, v in shares.items()}
    return {str(i): float(v) for i, v in enumerate(shares)}


def psi(expected: Mapping[str, float], live_counts: Mapping[str, float]) -> float:
    """Population stability index of live counts per bin against expected shares per bin:
    the sum over bins of (live - expected) * ln(live / expected), both floored at ``FLOOR``.

    >>> round(psi({"0": 0.5, "1": 0.5}, {"0": 50, "1": 50}), 6)
    0.0
    """
    total = sum(live_counts.values())
    if total <= 0:
        raise ValueError("no live counts")
    out = 0.0
    for key in set(expected) | set(live_counts):
        e = max(float(expected.get(key, 0.0)), FLOOR)
        a = max(float(live_counts.get(key, 0.0)) / total, FLOOR)
        out += (a - e) * math.log(a / e)
    return out


def feature_drift(
    ref: Mapping[str, Mapping[str, Any]],
    live: Mapping[str, Mapping[str, float]],
    *,
    min_samples: int = MIN_SAMPLES,
) -> dict[str, dict[str, Any]]:
    """Per feature of ``ref``: live samples, PSI (None below ``min_samples``), a status,
    "drift", "warning", "ok" or "too_few_samples", and whether its drift raises an alert."""
    out: dict[str, dict[str, Any]] = {}
    for name, feature in ref.items():
        counts = live.get(name, {})
        n = int(sum(counts.values()))
        alerting = bool(feature.get("alert", True))
        if n < min_samples:
            out[name] = {"samples": n, "psi": None, "status": "too_few_samples", "alert": alerting}
            continue
        value = psi(reference_shares(feature), counts)
        status = "drift" if value > DRIFT_AT else "warning" if value > WARN_AT else "ok"
        out[name] = {"samples": n, "psi": round(value, 4), "status": status, "alert": alerting}
    return out


def write_reference(directory: Path, ref: Mapping[str, Any]) -> Path:
    """Keep ``ref`` in an artifact's directory."""
    path = Path(directory) / REFERENCE_FILE
    path.write_text(json.dumps(ref, sort_keys=True))
    return path


def read_reference(directory: Path) -> dict[str, Any] | None:
    """The reference kept in an artifact's directory, or None (trained before references were
    kept, or unreadable)."""
    try:
        found = json.loads((Path(directory) / REFERENCE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
