"""The gateway's own view of a run (the driver's side): its request-time histograms from
``/metrics``, read before and after, so that the report sets the time the gateway's handlers
took beside the time the client saw. Where the client's p99 is far above the handlers', the
requests waited outside them: in the event loop's queue before their handler ran, or in the
client. Inside them, the phases of a hold and of a seat-map read (``gateway.phases``: auth,
idempotency, pricing, the wait in the show host's lane, the Ray call, fraud, ...) say where,
and the hosts' decision times (polled by the gateway every few seconds, so a little late)
whether a slow call to the host went to deciding or to getting there and back.

    before = scrape(url)
    ... the run ...
    view = summarize(difference(before, scrape(url)))
    # {"read": {...}, "hold": {...}, "phases": {"create_hold": {"host_call": {...}, ...}},
    #  "decision": {...}}

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
PHASE_SECONDS = "seatserver_request_phase_seconds"
DECISION_SECONDS = "seatserver_show_decision_seconds"
# The labels that name a series of each family read (the others, host and node, are added up).
LABELS = {
    REQUEST_SECONDS: ("method", "route"),
    PHASE_SECONDS: ("view", "phase"),
    DECISION_SECONDS: ("command",),
}
HOLD_COMMANDS = ("hold_seats", "hold_best")
Histograms = dict[tuple[str, ...], dict[float, float]]  # labels → {le: count}
Scraped = dict[str, Histograms]  # by family (``LABELS``' keys)


def scrape(url: str, timeout_s: float = 10.0) -> Scraped | None:
    """The histograms of ``LABELS``, cumulative counts per bucket, series of the same labels
    added up; None when the server has no metrics to give."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout_s) as resp:
            text = resp.read().decode()
    except (OSError, ValueError):
        return None
    out: Scraped = {name: defaultdict(lambda: defaultdict(float)) for name in LABELS}
    for family in text_string_to_metric_families(text):
        if family.name not in LABELS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                key = tuple(sample.labels.get(label, "") for label in LABELS[family.name])
                out[family.name][key][float(sample.labels["le"])] += float(sample.value)
    return {name: {k: dict(v) for k, v in series.items()} for name, series in out.items()}


def difference(before: Scraped | None, after: Scraped | None) -> Scraped | None:
    """What was counted between the two scrapes."""
    if before is None or after is None:
        return None
    return {
        name: {
            key: {
                le: count - before.get(name, {}).get(key, {}).get(le, 0.0)
                for le, count in b.items()
            }
            for key, b in series.items()
        }
        for name, series in after.items()
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


def _figures(buckets: Mapping[float, float]) -> dict[str, Any]:
    return {
        "requests": int(buckets.get(math.inf, 0.0)),
        "p50_le_ms": bound_ms(buckets, 50),
        "p99_le_ms": bound_ms(buckets, 99),
    }


def _merged(series: Histograms, keep: Any) -> dict[float, float]:
    """The buckets of the series whose labels ``keep`` accepts, added up."""
    merged: dict[float, float] = defaultdict(float)
    for key, buckets in series.items():
        if keep(*key):
            for le, count in buckets.items():
                merged[le] += count
    return merged


def _group(method: str, route: str) -> str | None:
    if method == "GET" and route.startswith("/api/") and not route.endswith("/health"):
        return READ
    if method == "POST" and route.endswith("/holds"):
        return HOLD
    return None


def summarize(scraped: Scraped | None) -> dict[str, Any]:
    """The gateway's reads (GET under the API but health) and holds (POST …/holds): requests
    counted, p50 and p99 as bucket bounds; the same for each phase of each timed view
    (``phases``), and for the hosts' decisions of holds (``decision``)."""
    if not scraped:
        return {}
    requests = scraped.get(REQUEST_SECONDS, {})
    out: dict[str, Any] = {}
    for group in (READ, HOLD):
        merged = _merged(requests, lambda m, r, group=group: _group(m, r) == group)
        if merged.get(math.inf, 0.0) > 0:
            out[group] = _figures(merged)
    phases: dict[str, dict[str, Any]] = defaultdict(dict)
    for (view, phase), buckets in scraped.get(PHASE_SECONDS, {}).items():
        if buckets.get(math.inf, 0.0) > 0:
            phases[view][phase] = _figures(buckets)
    if phases:
        out["phases"] = dict(phases)
    decisions = _merged(scraped.get(DECISION_SECONDS, {}), lambda c: c in HOLD_COMMANDS)
    if decisions.get(math.inf, 0.0) > 0:
        out["decision"] = _figures(decisions)
    return out
