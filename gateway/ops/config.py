"""The plain values of the operator features; built by the composition root from ``Settings``.

Each area keeps its fields in its own block below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpsConfig:
    # -- analytics --
    # Shows' changes the rollup takes per transaction (a backlog drains in chunks this big).
    analytics_rollup_chunk: int = 2000
    # Longest a rollup run keeps taking chunks; the rest waits for the next run.
    analytics_rollup_budget_s: float = 8.0

    # -- forecasts --
    # Shows starting within this many days are forecast.
    forecasts_days: float = 7.0
    # A forecast older than this is made again even if the show's bookings did not change.
    forecasts_stale_s: float = 3600.0
    # Shows per call to the pricing deployment's forecast method.
    forecasts_batch: int = 200
    # Most shows forecast in one run (the rest wait for the next).
    forecasts_max_per_run: int = 2000
    # Budget of one forecast call; past it the naive forecast answers.
    forecasts_budget_s: float = 30.0
    # Most snapshots of started shows settled against what sold in one run.
    forecasts_settle_max: int = 2000

    # -- experiments --
    # How long a gateway keeps an experiment's row (a stop reaches every gateway within it).
    experiments_cache_s: float = 2.0
    # Fewest visitors per arm before a result may be called conclusive.
    experiments_min_visitors: int = 100

    # -- monitoring --
    # Minutes of counts the latency and error-rate alerts look at, and the drift alert.
    monitoring_window_minutes: int = 15
    drift_window_minutes: int = 1440
    # Fewest calls in the window before latency and error rates are judged.
    monitoring_min_calls: int = 100
    # Alert thresholds: model latency p99 (ms), error rate, recommendation CTR drop (the last
    # 24 h against the 7 days before), PSI of any input feature, with its fewest samples.
    alert_latency_p99_ms: float = 200.0
    alert_error_rate: float = 0.01
    alert_ctr_drop: float = 0.2
    alert_drift_psi: float = 0.2
    drift_min_samples: int = 500
    # Fewest impressions in the last 24 h (and in the 7 days before) to judge the CTR.
    ctr_min_impressions: int = 500
    # A model serving for longer than its retraining period (days) is stale.
    retrain_recommender_days: float = 7.0
    retrain_pricing_days: float = 7.0
    retrain_fraud_days: float = 3.0
    # Days of counts and impressions kept.
    monitoring_keep_days: int = 8
