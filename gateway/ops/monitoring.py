"""Model monitoring: live statistics of each model across gateways, drift of its inputs against
the training data, recommendation click-through and conversion, and alerts.

Each gateway counts what its models do in memory (``monitoring_stats.Monitor``, fed by
``serve.client.ModelCall`` and the fraud check, pricing and recommendation views) and flushes
the counts every ``FLUSH_S`` (15 s) into ``model_stats`` (job ``monitoring.flush``, in every
gateway). ``monitoring.conversions`` marks the recommended movies their customer booked within
24 h; ``monitoring.alerts`` evaluates the thresholds once a minute across all gateways: an
alert opens once per (kind, model) while its condition holds (a warning log line, the counter
``seatserver_alerts_opened_total``, the gauge ``seatserver_alerts_open``, a row in ``alerts``)
and resolves when it clears.

    GET  /api/v1/admin/models/monitoring?minutes=60   per model: latency, errors, drift, ...
    GET  /api/v1/admin/alerts?state=open|all          POST /api/v1/admin/alerts/{id}/ack
    POST /api/v1/recommendations/clicks               a click on a recommended movie
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge

import storage
from gateway import keys
from gateway.endpoint import Call, Endpoint
from gateway.ops import monitoring_eval as ev
from gateway.ops import monitoring_schemas as s
from gateway.ops.config import OpsConfig
from gateway.ops.jobs import Job
from gateway.ops.monitoring_stats import MODELS, serving_versions
from storage import monitoring as store

log = logging.getLogger(__name__)

ALERTS_OPENED = Counter(
    "seatserver_alerts_opened", "Model alerts opened, by kind and model", ["kind", "model"]
)
ALERTS_OPEN = Gauge(
    "seatserver_alerts_open", "Model alerts open now (1) or not (0)", ["kind", "model"]
)
FLUSH_S = 15.0  # how often each gateway writes what it counted
ALERTS_S = 60.0  # how often the thresholds are evaluated (once across all gateways)
CONVERSIONS_S = 300.0  # how often bookings of recommended movies are looked for
SERVING_TTL_S = 60.0  # how long a gateway keeps what it read of the serving versions
CONVERSION_LOOKBACK = dt.timedelta(hours=50)  # impressions whose 24 h may still convert
API = "/api/v1"
OPS = ("admin",)


def _config(app: web.Application) -> OpsConfig:
    found = app[keys.CONFIG].ops
    return found if isinstance(found, OpsConfig) else OpsConfig()


def _models_dir(app: web.Application) -> str | None:
    return app[keys.MODELS].config.models_dir


_serving_cache: dict[str | None, tuple[float, dict[str, Any]]] = {}


async def serving(app: web.Application, *, fresh: bool = False) -> dict[str, ev.Serving]:
    """The serving version of each model (read from the artifacts, kept for a minute)."""
    where = _models_dir(app)
    cached = _serving_cache.get(where)
    if cached is not None and not fresh and cached[0] > time.monotonic():
        return cached[1]
    found = await asyncio.to_thread(serving_versions, where)
    _serving_cache[where] = (time.monotonic() + SERVING_TTL_S, found)
    return found


# -- jobs -----------------------------------------------------------------------------------


async def flush(app: web.Application) -> None:
    """Keep what this process counted since the last flush; learn the serving versions (and
    their references) and the open alerts for this process's gauge."""
    monitor = app[keys.MODELS].monitor
    rows, impressions = monitor.take()
    try:
        async with app[keys.POOL].acquire() as conn:
            async with conn.transaction():
                await store.add_stats(conn, rows)
                await store.add_impressions(conn, impressions)
            open_now = await store.list_alerts(conn, state="open", limit=500)
    except BaseException:
        monitor.put_back(rows, impressions)
        raise
    monitor.set_serving(await serving(app))
    _set_gauge({(a.kind, a.model) for a in open_now})


def _set_gauge(open_now: set[tuple[str, str]]) -> None:
    for kind in store.ALERT_KINDS:
        for model in MODELS:
            ALERTS_OPEN.labels(kind, model).set(1 if (kind, model) in open_now else 0)


async def conversions(app: web.Application) -> None:
    """Mark recommended movies booked by their customer within 24 h of being shown."""
    since = dt.datetime.now(dt.UTC) - CONVERSION_LOOKBACK
    async with app[keys.POOL].acquire() as conn:
        await store.mark_conversions(conn, since)


async def alerts(app: web.Application) -> None:
    """Evaluate every alert condition; open or resolve alerts accordingly."""
    config = _config(app)
    now = dt.datetime.now(dt.UTC)
    found = await serving(app, fresh=True)
    versions = {model: v.version for model, v in found.items()}
    async with app[keys.POOL].acquire() as conn:
        since = now - dt.timedelta(minutes=max(config.monitoring_window_minutes,
                                               config.drift_window_minutes))  # fmt: skip
        rows = await store.stats_since(conn, since)
        recent = now - dt.timedelta(minutes=config.monitoring_window_minutes)
        drift_from = now - dt.timedelta(minutes=config.drift_window_minutes)
        window = ev.merge([r for r in rows if r.at is not None and r.at >= recent], versions)
        drift_rows = [r for r in rows if r.at is not None and r.at >= drift_from]
        last, before = await _ctr_windows(conn, now)
        conditions = ev.evaluate(
            window, ev.merge(drift_rows, versions), found, last, before, config, now
        )
        for condition in conditions:
            await _apply(conn, condition)
        await store.prune(conn, now - dt.timedelta(days=config.monitoring_keep_days))
        open_now = await store.list_alerts(conn, state="open", limit=500)
    _set_gauge({(a.kind, a.model) for a in open_now})


async def _apply(conn: Any, condition: ev.Condition) -> None:
    kind, model = condition.kind, condition.model
    if condition.firing:
        opened = await store.open_alert(conn, kind, model, condition.details)
        if opened is not None:
            ALERTS_OPENED.labels(kind, model).inc()
            log.warning(
                "alert opened: %s on %s (alert %s) %s",
                kind,
                model,
                opened,
                condition.details,
                extra={"alert_id": opened, "alert_kind": kind, "model": model,
                       "details": condition.details},
            )  # fmt: skip
    else:
        resolved = await store.resolve_alert(conn, kind, model)
        if resolved is not None:
            log.info("alert resolved: %s on %s (alert %s)", kind, model, resolved)


async def _ctr_windows(conn: Any, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recommendations' totals of the last 24 h and of the 7 days before them (whole
    hours: impressions are kept per hour)."""
    hour = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    day = hour - dt.timedelta(hours=24)
    last = await store.recommendation_totals(conn, day, hour)
    before = await store.recommendation_totals(conn, day - dt.timedelta(days=7), day)
    return ev.recommendation_totals(last), ev.recommendation_totals(before)


# -- views ----------------------------------------------------------------------------------


async def model_monitoring(call: Call) -> dict[str, Any]:
    config = _config(call.app)
    minutes = call.query.minutes
    now = dt.datetime.now(dt.UTC)
    found = await serving(call.app)
    versions = {model: v.version for model, v in found.items()}
    async with call.app[keys.POOL].acquire() as conn:
        rows = await store.stats_since(conn, now - dt.timedelta(minutes=minutes))
        hour = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        day = hour - dt.timedelta(hours=24)
        last_by_source = await store.recommendation_totals(conn, day, hour)
        before = await store.recommendation_totals(conn, day - dt.timedelta(days=7), day)
        days = await store.recommendation_days(conn, day - dt.timedelta(days=7))
    merged = ev.merge(rows, versions)
    last = ev.recommendation_totals(last_by_source)
    return {
        "window_minutes": minutes,
        "generated_at": now.isoformat(),
        "models": [
            ev.model_report(model, merged.get(model, ev.Merged()), found.get(model), config, now)
            for model in MODELS
        ],
        "recommendations": {
            "last_24h": last,
            "previous_7d": ev.recommendation_totals(before),
            "ctr_change": ev.ctr_condition(last, ev.recommendation_totals(before), config).details[
                "change"
            ],
            "by_source_last_24h": ev.by_source(last_by_source),
            "by_day": days,
        },
    }


async def list_alerts(call: Call) -> dict[str, Any]:
    q = call.query
    async with call.app[keys.POOL].acquire() as conn:
        found = await store.list_alerts(
            conn, state=None if q.state == "all" else q.state, limit=q.limit
        )
    return {"alerts": [a.public() for a in found]}


async def ack_alert(call: Call) -> dict[str, Any]:
    alert_id = call.path.alert_id
    async with call.app[keys.POOL].acquire() as conn:
        found = await store.ack_alert(conn, alert_id, call.user.user_id)
    if found is None:
        raise storage.NotFound(f"no alert {alert_id}", {"alert_id": alert_id})
    return found.public()


async def recommendation_click(call: Call) -> dict[str, Any]:
    b = call.body
    async with call.app[keys.POOL].acquire() as conn:
        known = await conn.fetchval("SELECT EXISTS (SELECT FROM movies WHERE id = $1)", b.movie_id)
    if not known:
        raise storage.NotFound(f"no movie {b.movie_id}", {"movie_id": b.movie_id})
    user_id = call.principal.user_id if call.principal is not None else None
    call.app[keys.MODELS].monitor.clicked(user_id, b.movie_id, b.source, dt.datetime.now(dt.UTC))
    return {"recorded": True}


def _e(method: str, path: str, view: Any, summary: str, tag: str, **kw: Any) -> Endpoint:
    return Endpoint(method, API + path, view, summary, tag, **kw)


ENDPOINTS: tuple[Endpoint, ...] = (
    _e(
        "GET",
        "/admin/models/monitoring",
        model_monitoring,
        "Each model's health over the last minutes: latency percentiles, error and fallback "
        "rates, predictions, drift of its inputs against the training data, its age; and the "
        "recommendations' click-through and conversion (ops)",
        "admin",
        query=s.MonitoringQuery,
        response=s.MonitoringOut,
        auth=OPS,
        idempotency="none",
        errors=(401, 403, 422),
    ),
    _e(
        "GET",
        "/admin/alerts",
        list_alerts,
        "Model alerts, newest first: the open ones, or all (ops)",
        "admin",
        query=s.AlertsQuery,
        response=s.AlertsOut,
        auth=OPS,
        idempotency="none",
        errors=(401, 403, 422),
    ),
    _e(
        "POST",
        "/admin/alerts/{alert_id}/ack",
        ack_alert,
        "Acknowledge an alert (ops)",
        "admin",
        path_model=s.AlertPath,
        response=s.AlertOut,
        auth=OPS,
        errors=(401, 403, 404, 422),
    ),
    _e(
        "POST",
        "/recommendations/clicks",
        recommendation_click,
        "Count a click on a recommended movie (for the recommendations' click-through; a retry "
        "with the same Idempotency-Key counts once)",
        "recommendations",
        body=s.ClickIn,
        response=s.ClickOut,
        auth=("optional",),
        errors=(401, 404, 422),
    ),
)
JOBS: tuple[Job, ...] = (
    Job("monitoring.flush", FLUSH_S, flush, leased=False),
    Job("monitoring.conversions", CONVERSIONS_S, conversions),
    Job("monitoring.alerts", ALERTS_S, alerts),
)
