"""The forecast jobs: refresh the forecasts of upcoming shows, settle the snapshots of shows that
have started.

``refresh`` takes the shows due (``storage.forecasts.due_shows``: next days, not cancelled, no
forecast yet, bookings changed since the last one, a horizon crossed, or older than
``forecasts_stale_s``), at most ``forecasts_max_per_run`` a run, and forecasts them in batches
of ``forecasts_batch`` with one call each to the pricing deployment's ``forecast`` method
(budget ``forecasts_budget_s``); when the model is absent, slow or failing, the naive forecast
(same weekday last week) answers instead, and the stored row says so.

The call is a ``ModelCall`` of its own, kept per application here rather than in ``Models``: its
batches take seconds, and counted with the customers' quotes they would read as a slow pricing
model (its metrics say ``pricing_forecast``).
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.ops.config import OpsConfig
from serve.client import Answer, ModelCall
from storage import forecasts as store

log = logging.getLogger(__name__)

REDO_FALLBACK_S = 300.0
_CALLS: weakref.WeakKeyDictionary[web.Application, ModelCall] = weakref.WeakKeyDictionary()


def ops_config(app: web.Application) -> OpsConfig:
    return app[keys.CONFIG].ops or OpsConfig()


def forecast_call(app: web.Application) -> ModelCall:
    """This application's call to the forecast method (made on first use)."""
    call = _CALLS.get(app)
    if call is None:
        models = app[keys.CONFIG].models
        enabled = bool(models is not None and models.enabled)
        call = _CALLS[app] = ModelCall(
            "pricing",
            "pricing",
            "forecast",
            ops_config(app).forecasts_budget_s,
            key="forecasts",
            enabled=enabled,
            label="pricing_forecast",
        )
    return call


async def refresh(app: web.Application, now: dt.datetime | None = None) -> int:
    """Forecast the shows that are due; how many were stored."""
    config = ops_config(app)
    now = now or dt.datetime.now(dt.UTC)
    pool = app[keys.POOL]
    async with pool.acquire() as conn:
        due = await store.due_shows(
            conn,
            now,
            days=config.forecasts_days,
            stale_s=config.forecasts_stale_s,
            limit=config.forecasts_max_per_run,
            # Once the model answers, the fallback's forecasts are redone within minutes.
            redo_fallback_s=REDO_FALLBACK_S if forecast_call(app).available() else None,
        )
    done = 0
    for at in range(0, len(due), config.forecasts_batch):
        done += await _batch(app, due[at : at + config.forecasts_batch], now)
    return done


async def _batch(app: web.Application, due: Sequence[store.DueShow], now: dt.datetime) -> int:
    from ml.pricing.facts import load_show_facts
    from ml.pricing.forecast import ForecastRequest, fallback, naive_seats

    ids = [d.show_id for d in due]
    async with app[keys.POOL].acquire() as conn:
        facts = await load_show_facts(conn, ids, now)
        sold = await store.sold_by_category(conn, ids)
        prices = await store.prices_in_force(conn, ids)
        last_week = await store.last_week_occupancy(conn, ids)
    shows = [d for d in due if d.show_id in facts]
    requests = [
        ForecastRequest(facts[d.show_id], sold.get(d.show_id, {}), prices.get(d.show_id, {}), now)
        for d in shows
    ]
    if not requests:
        return 0
    answer: Answer[Any] = await forecast_call(app)(requests, fallback=lambda: None)
    if answer.value is None or len(answer.value) != len(requests):
        answer = Answer(
            [fallback(r, last_week.get(r.facts.show_id)) for r in requests],
            "fallback",
            None,
            answer.reason or "bad_answer",
        )
    rows = []
    for d, r, f in zip(shows, requests, answer.value, strict=True):
        naive = naive_seats(f.capacity, f.sold, last_week.get(d.show_id))
        rows.append(
            store.StoredForecast(
                show_id=d.show_id, made_at=now, seat_version=d.seat_version,
                starts_at=d.starts_at, capacity=f.capacity, sold=f.sold, seats=f.seats,
                seats_lo=f.seats_lo, seats_hi=f.seats_hi, naive_seats=naive,
                revenue_cents=f.revenue_cents, revenue_lo_cents=f.revenue_lo_cents,
                revenue_hi_cents=f.revenue_hi_cents, currency=r.facts.currency, flag=f.flag,
                source=answer.source, model_version=answer.version,
            )
        )  # fmt: skip
    async with app[keys.POOL].acquire() as conn:
        await store.save_forecasts(conn, rows)
    if answer.source == "fallback":
        log.info("forecasts of %d shows from the naive fallback (%s)", len(rows), answer.reason)
    return len(rows)


async def settle(app: web.Application, now: dt.datetime | None = None) -> int:
    """Record the actual final seats against the snapshots of shows that have started."""
    now = now or dt.datetime.now(dt.UTC)
    async with app[keys.POOL].acquire() as conn:
        return await store.settle(conn, now, limit=ops_config(app).forecasts_settle_max)
