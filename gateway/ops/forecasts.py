"""Forecasts of every upcoming show for operators: final occupancy and revenue with an 80 %
interval and a flag (likely to sell out, likely to stay empty), and their accuracy against what
sold.

Two leased jobs (``forecasts_refresh``): ``forecasts.refresh`` keeps the latest forecast of every
show of the next days (from the pricing model on Serve, else the naive same-weekday-last-week
forecast) and a snapshot at 72, 24 and 3 hours before the start; ``forecasts.settle`` records
what the show sold once it starts. Ops see every theater; a theater admin only theirs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway import keys
from gateway.auth import require_theater_admin
from gateway.endpoint import Call, Endpoint
from gateway.errors import ValidationFailed
from gateway.ops import forecasts_refresh as jobs
from gateway.ops import forecasts_schemas as s
from gateway.ops.config import OpsConfig
from gateway.ops.jobs import Job
from storage import forecasts as store
from storage import theaters_of

STAFF = ("admin", "theater_admin")
REFRESH_S = 60.0  # how often upcoming shows' forecasts are refreshed (once across gateways)
SETTLE_S = 300.0  # how often started shows' snapshots are settled against what sold
MAPE_DEFINITION = (
    "mape: mean of |forecast - actual| / actual final seats over shows whose actual occupancy is "
    f"above {store.MAPE_MIN_OCCUPANCY:.0%}; wape: sum |forecast - actual| / sum actual; mae: "
    "mean |forecast - actual| / capacity; naive: same weekday last week, never below the "
    "seats sold; coverage: share of actuals inside the 80 % interval"
)


async def _scope(call: Call, theater_id: int | None) -> list[int] | None:
    """The theaters the caller may read, narrowed to ``theater_id``; None: all (ops)."""
    if theater_id is not None:
        await require_theater_admin(call.request, theater_id)
        return [theater_id]
    if call.user.is_ops:
        return None
    async with call.app[keys.POOL].acquire() as conn:
        return list(await theaters_of(conn, call.user.user_id))


async def list_forecasts(call: Call) -> dict[str, Any]:
    q: s.ForecastsQuery = call.query
    theaters = await _scope(call, q.theater_id)
    now = dt.datetime.now(dt.UTC)
    starts_from = s._utc(q.from_) if q.from_ else now
    horizon = dt.timedelta(days=(call.app[keys.CONFIG].ops or OpsConfig()).forecasts_days)
    starts_to = s._utc(q.to) if q.to else starts_from + horizon
    async with call.app[keys.POOL].acquire() as conn:
        rows = await store.list_forecasts(
            conn,
            theater_ids=theaters,
            city_id=q.city_id,
            flag=q.flag,
            starts_from=starts_from,
            starts_to=starts_to,
            limit=q.limit,
            after=_cursor(q.after),
        )
    last = rows[-1] if len(rows) == q.limit else None
    more = None if last is None else f"{_micros(last['starts_at'])}:{last['show_id']}"
    return {"forecasts": [_public(r) for r in rows], "next": more}


def _micros(at: dt.datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def _cursor(after: str | None) -> tuple[dt.datetime, int] | None:
    """The (start, show id) a page's ``next`` names."""
    if after is None:
        return None
    micros, show_id = (int(part) for part in after.split(":"))
    if micros > 4_102_444_800_000_000 or show_id > 2**63 - 1:  # 2100-01-01
        raise ValidationFailed("after is not a page's next", {"after": after})
    at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    return at, show_id


def _public(r: dict[str, Any]) -> dict[str, Any]:
    capacity = r["capacity"]

    def share(seats: float) -> float:
        return round(seats / capacity, 4) if capacity else 0.0

    return {
        "show_id": r["show_id"],
        "movie_title": r["movie_title"],
        "theater_name": r["theater_name"],
        "starts_at": r["starts_at"].isoformat(),
        "capacity": capacity,
        "sold": r["sold"],
        "occupancy": share(r["seats"]),
        "occupancy_lo": share(r["seats_lo"]),
        "occupancy_hi": share(r["seats_hi"]),
        "revenue_cents": r["revenue_cents"],
        "revenue_lo_cents": r["revenue_lo_cents"],
        "revenue_hi_cents": r["revenue_hi_cents"],
        "currency": r["currency"],
        "flag": r["flag"],
        "source": r["source"],
        "model_version": r["model_version"],
        "made_at": r["made_at"].isoformat(),
    }


async def forecast_accuracy(call: Call) -> dict[str, Any]:
    q: s.AccuracyQuery = call.query
    theaters = await _scope(call, q.theater_id)
    starts_from = dt.datetime.combine(q.from_, dt.time(), dt.UTC)
    starts_to = dt.datetime.combine(q.to + dt.timedelta(days=1), dt.time(), dt.UTC)
    async with call.app[keys.POOL].acquire() as conn:
        rows = await store.accuracy(
            conn, theater_ids=theaters, starts_from=starts_from, starts_to=starts_to
        )
    figures = ("mape", "naive_mape", "wape", "naive_wape", "mae", "naive_mae", "coverage")
    weeks = [
        {**r, **{k: None if r[k] is None else round(float(r[k]), 4) for k in figures}} for r in rows
    ]
    return {"definition": MAPE_DEFINITION, "weeks": weeks}


async def _refresh(app: Any) -> None:
    await jobs.refresh(app)


async def _settle(app: Any) -> None:
    await jobs.settle(app)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/api/v1/admin/analytics/forecasts",
        list_forecasts,
        "Forecast final occupancy and revenue of upcoming shows, with intervals and flags",
        "analytics",
        response=s.ForecastsOut,
        query=s.ForecastsQuery,
        auth=STAFF,
        idempotency="none",
        errors=(401, 403, 422),
    ),
    Endpoint(
        "GET",
        "/api/v1/admin/analytics/forecast-accuracy",
        forecast_accuracy,
        "Forecast accuracy per ISO week and horizon: MAPE of the model against the naive one",
        "analytics",
        response=s.AccuracyOut,
        query=s.AccuracyQuery,
        auth=STAFF,
        idempotency="none",
        errors=(401, 403, 422),
    ),
)
JOBS: tuple[Job, ...] = (
    Job("forecasts.refresh", REFRESH_S, _refresh),
    Job("forecasts.settle", SETTLE_S, _settle),
)
