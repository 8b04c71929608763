"""The models' health from the counts every gateway kept: merged histograms, percentiles,
rates, drift against the training reference, and the alert conditions. Pure functions: the
monitoring views and the alert job read the rows and hand them here.

    merged = merge(rows)                    # per model, every process's rows added up
    percentile(merged["fraud"].latency, 0.99)
    conditions = evaluate(inputs, config)  # [Condition("latency", "fraud", True, {...}), ...]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.ops.monitoring_stats import MODELS, PREDICTION_MEANING
from ml import drift
from storage.monitoring import ModelCounts, StatsRow


@dataclass
class Merged(ModelCounts):
    """One model's rows added up (features: only those binned on the version serving), and
    the processes that counted them."""

    processes: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Serving:
    """The version of a model that serves, when it was trained, its input reference."""

    version: str
    trained_at: dt.datetime
    reference: dict[str, Any] | None


@dataclass(frozen=True)
class Condition:
    kind: str  # storage.monitoring.ALERT_KINDS
    model: str
    firing: bool
    details: dict[str, Any]


def _add(into: dict[str, int], counts: Mapping[str, Any]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + int(n)


def merge(rows: Iterable[StatsRow], versions: Mapping[str, str] | None = None) -> dict[str, Merged]:
    """Every row added up per model; features only from rows binned on the version serving now
    (``versions``: model -> version)."""
    out: dict[str, Merged] = {}
    for row in rows:
        m = out.setdefault(row.model, Merged())
        m.add(row, features=versions is not None and row.version == versions.get(row.model))
        m.processes.add(row.process)
    return out


def percentile(histogram: Mapping[str, int], q: float) -> float | None:
    """The upper edge of the bucket holding the ``q`` quantile of a histogram keyed by upper
    edges; None when it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    edges = sorted((float(k), n) for k, n in histogram.items())
    target = q * total
    seen = 0
    for edge, n in edges:
        seen += n
        if seen >= target:
            return edge
    return edges[-1][0]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def drift_report(
    serving: Serving | None, features: Mapping[str, Mapping[str, int]], min_samples: int
) -> dict[str, Any]:
    if serving is None:
        return {
            "reference": False,
            "note": "no trained version serves",
            "features": {},
            "drifted": [],
        }
    if serving.reference is None:
        note = f"version {serving.version} was trained without an input reference: retrain it"
        return {"reference": False, "note": note, "features": {}, "drifted": []}
    found = drift.feature_drift(serving.reference, features, min_samples=min_samples)
    drifted = sorted(name for name, f in found.items() if f["status"] == "drift" and f["alert"])
    return {"reference": True, "note": None, "features": found, "drifted": drifted}


def retrain_days(config: Any, model: str) -> float:
    return float(getattr(config, f"retrain_{model}_days"))


def model_report(
    model: str, m: Merged, serving: Serving | None, config: Any, now: dt.datetime
) -> dict[str, Any]:
    """What the monitoring endpoint says of one model."""
    age = (now - serving.trained_at).total_seconds() / 86400 if serving else None
    period = retrain_days(config, model)
    return {
        "model": model,
        "version": serving.version if serving else None,
        "trained_at": serving.trained_at.isoformat() if serving else None,
        "age_days": round(age, 3) if age is not None else None,
        "retrain_days": period,
        "stale": age is not None and age > period,
        "calls": m.calls,
        "answers": m.answers,
        "errors": m.errors,
        "error_rate": _rate(m.errors, m.calls),
        "fallback_rate": _rate(m.calls - m.answers, m.calls),
        "fallbacks": dict(m.fallbacks),
        "latency_ms": {f"p{int(q * 100)}": percentile(m.latency, q) for q in (0.5, 0.95, 0.99)},
        "predictions": {"meaning": PREDICTION_MEANING[model], "histogram": dict(m.predictions)},
        "drift": drift_report(serving, m.features, config.drift_min_samples),
        "counters": dict(m.extra),
        "processes": len(m.processes),
    }


def recommendation_totals(totals: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Impressions, clicks and conversions of all sources, with the CTR and conversion rate."""
    summed: dict[str, int] = {}
    for counts in totals.values():
        _add(summed, counts)
    return _with_rates(summed)


def _with_rates(counts: Mapping[str, int]) -> dict[str, Any]:
    shown, known = counts.get("impressions", 0), counts.get("impressions_logged_in", 0)
    out: dict[str, Any] = {
        key: int(counts.get(key, 0))
        for key in ("impressions", "clicks", "impressions_logged_in", "conversions")
    }
    out["ctr"] = _rate(out["clicks"], shown)
    out["conversion_rate"] = _rate(out["conversions"], known)
    return out


def by_source(totals: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    return {source: _with_rates(counts) for source, counts in totals.items()}


def evaluate(
    window: Mapping[str, Merged],
    drift_window: Mapping[str, Merged],
    serving: Mapping[str, Serving],
    ctr_last: Mapping[str, Any],
    ctr_before: Mapping[str, Any],
    config: Any,
    now: dt.datetime,
) -> list[Condition]:
    """Every alert condition, firing or not: latency, error rate, drift and staleness per
    model, the CTR drop of the recommendations."""
    out: list[Condition] = []
    for model in MODELS:
        m = window.get(model, Merged())
        p99 = percentile(m.latency, 0.99)
        enough = m.answers >= config.monitoring_min_calls
        slow = enough and p99 is not None and p99 > config.alert_latency_p99_ms
        out.append(
            Condition("latency", model, slow, {"p99_ms": p99, "answers": m.answers,
                      "threshold_ms": config.alert_latency_p99_ms})
        )  # fmt: skip
        rate = _rate(m.errors, m.calls)
        failing = m.calls >= config.monitoring_min_calls and (rate or 0) > config.alert_error_rate
        out.append(
            Condition("error_rate", model, failing, {"error_rate": rate, "calls": m.calls,
                      "errors": m.errors, "threshold": config.alert_error_rate})
        )  # fmt: skip
        found = serving.get(model)
        d = drift_window.get(model, Merged())
        report = drift_report(found, d.features, config.drift_min_samples)
        psis = {
            name: f["psi"]
            for name, f in report["features"].items()
            if f["alert"] and f["psi"] is not None and f["psi"] > config.alert_drift_psi
        }
        out.append(
            Condition("drift", model, bool(psis), {"psi": psis, "version": found and found.version,
                      "threshold": config.alert_drift_psi})
        )  # fmt: skip
        if found is not None:
            age = (now - found.trained_at).total_seconds() / 86400
            period = retrain_days(config, model)
            out.append(
                Condition("stale_model", model, age > period, {"version": found.version,
                          "age_days": round(age, 3), "retrain_days": period})
            )  # fmt: skip
    out.append(ctr_condition(ctr_last, ctr_before, config))
    return out


def ctr_condition(last: Mapping[str, Any], before: Mapping[str, Any], config: Any) -> Condition:
    """The recommendations' CTR of the last 24 h against the 7 days before, once both have
    ``ctr_min_impressions``: firing when it fell by more than ``alert_ctr_drop``."""
    enough = min(last.get("impressions", 0), before.get("impressions", 0))
    change = None
    if last.get("ctr") is not None and before.get("ctr"):
        change = round(last["ctr"] / before["ctr"] - 1, 4)
    firing = (
        enough >= config.ctr_min_impressions
        and change is not None
        and change < -config.alert_ctr_drop
    )
    details = {
        "ctr_last_24h": last.get("ctr"),
        "ctr_previous_7d": before.get("ctr"),
        "change": change,
        "impressions_last_24h": last.get("impressions", 0),
        "threshold": -config.alert_ctr_drop,
    }
    return Condition("ctr_drop", "recommender", firing, details)
