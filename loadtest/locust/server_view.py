"""The gateway's own view of a run (the driver's side): its request-time histograms from
``/metrics``, read before and after, so that the report sets the time the gateway's handlers
took beside the time the client saw. Where the client's p99 is far above the handlers', the
requests waited outside them: in the event loop's queue before their handler ran, or in the
client.

    before = scrape(url)
    ... the run ...
    view = summarize(difference(before, scrape(url)))   # {"read": {...}, "hold": {...}}

Histograms have buckets: a percentile is the bucket's upper bound ("p99 ≤ 50 ms"). A gateway
of several processes answers ``/metrics`` from whichever one the kernel picks: the view is
then one process's, and left out.
"""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from loadtest.locust.scenarios import HOLD, READ

REQUEST_SECONDS = "seatserver_http_request_duration_seconds"
Histograms = dict[tuple[str, str], dict[float, float]]  # (method, route) → {le: count}


def scrape(url: str, timeout_s: float = 10.0) -> Histograms | None:
    """The request-time histograms by (method, route), cumulative counts per bucket; None
    when the server has no metrics to give."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout_s) as resp:
            text = resp.read().decode()
    except (OSError, ValueError):
        return None
    out: Histograms = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        if family.name != REQUEST_SECONDS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                key = (sample.labels.get("method", ""), sample.labels.get("route", ""))
                out[key][float(sample.labels["le"])] = float(sample.value)
    return dict(out)


def difference(before: Histograms | None, after: Histograms | None) -> Histograms | None:
    """What was counted between the two scrapes."""
    if before is None or after is None:
        return None
    return {
        key: {le: count - before.get(key, {}).get(le, 0.0) for le, count in buckets.items()}
        for key, buckets in after.items()
    }


def bound_ms(buckets: Mapping[float, float], q: float) -> float | None:
    """The upper bound, in ms, of the bucket holding the ``q``-th percentile (None: past the
    last finite bucket, or nothing counted).

    >>> bound_ms({0.01: 90, 0.05: 99, math.inf: 100}, 99)
    50.0
    """
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None
    for le in sorted(buckets):
        if buckets[le] >= q / 100 * total:
            return None if math.isinf(le) else round(le * 1000, 3)
    return None


def summarize(histograms: Histograms | None) -> dict[str, Any]:
    """The gateway's reads (GET under the API but health) and holds (POST …/holds): requests
    counted, p50 and p99 as bucket bounds."""
    if not histograms:
        return {}
    merged: dict[str, dict[float, float]] = {READ: defaultdict(float), HOLD: defaultdict(float)}
    for (method, route), buckets in histograms.items():
        if method == "GET" and route.startswith("/api/") and not route.endswith("/health"):
            group = READ
        elif method == "POST" and route.endswith("/holds"):
            group = HOLD
        else:
            continue
        for le, count in buckets.items():
            merged[group][le] += count
    return {
        group: {
            "requests": int(buckets.get(math.inf, 0.0)),
            "p50_le_ms": bound_ms(buckets, 50),
            "p99_le_ms": bound_ms(buckets, 99),
        }
        for group, buckets in merged.items()
        if buckets.get(math.inf, 0.0) > 0
    }
