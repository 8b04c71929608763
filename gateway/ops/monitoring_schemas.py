"""Request and response shapes of model monitoring, alerts and recommendation clicks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from gateway.schemas import Id, Lenient, Strict


class MonitoringQuery(Lenient):
    minutes: Annotated[int, Field(ge=1, le=10080)] = Field(
        default=60, description="how far back to look, in minutes (at most 7 days)"
    )


class LatencyOut(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None


class PredictionsOut(BaseModel):
    meaning: str
    histogram: dict[str, int] = Field(description="count per bin, keyed by the bin's upper edge")


class FeatureDriftOut(BaseModel):
    samples: int
    psi: float | None
    status: Literal["ok", "warning", "drift", "too_few_samples"]
    alert: bool = Field(description="whether its drift raises an alert (else only reported)")


class DriftOut(BaseModel):
    reference: bool = Field(description="whether the serving version has a training reference")
    note: str | None
    features: dict[str, FeatureDriftOut]
    drifted: list[str] = Field(description="the features whose drift raises an alert now")


class ModelMonitorOut(BaseModel):
    model: str
    version: str | None
    trained_at: str | None
    age_days: float | None
    retrain_days: float
    stale: bool
    calls: int
    answers: int
    errors: int
    error_rate: float | None
    fallback_rate: float | None
    fallbacks: dict[str, int]
    latency_ms: LatencyOut
    predictions: PredictionsOut
    drift: DriftOut
    counters: dict[str, int]
    processes: int


class RecTotalsOut(BaseModel):
    impressions: int
    clicks: int
    impressions_logged_in: int
    conversions: int
    ctr: float | None
    conversion_rate: float | None


class RecDayOut(BaseModel):
    day: str
    impressions: int
    clicks: int
    conversions: int


class RecommendationsMonitorOut(BaseModel):
    last_24h: RecTotalsOut
    previous_7d: RecTotalsOut
    ctr_change: float | None
    by_source_last_24h: dict[str, RecTotalsOut]
    by_day: list[RecDayOut]


class MonitoringOut(BaseModel):
    window_minutes: int
    generated_at: dt.datetime
    models: list[ModelMonitorOut]
    recommendations: RecommendationsMonitorOut


class AlertsQuery(Lenient):
    state: Literal["open", "all"] = "open"
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class AlertPath(Lenient):
    alert_id: Id


class AlertOut(BaseModel):
    id: int
    kind: str
    model: str
    state: Literal["open", "resolved"]
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    acked_at: dt.datetime | None
    acked_by: int | None
    details: dict[str, Any]


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class ClickIn(Strict):
    movie_id: Id
    source: Literal["model", "fallback"] = Field(
        description="where the list came from, as the recommendations answer said"
    )


class ClickOut(BaseModel):
    recorded: bool
