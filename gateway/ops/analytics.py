"""Business figures per theater, city, movie or day over a date range, for operations (every
theater) and theater admins (only theirs): tickets, revenue and average price per currency,
occupancy, the booking funnel (seat-map views → holds → checkouts → bookings), cancellations,
refunds and waiting-room admissions, as JSON or CSV.

They are sums of the per-show rollup (``storage.analytics``), which two jobs keep current:
``analytics.rollup`` (leased, every 10 s) recomputes the shows whose sources changed, in
bounded chunks; ``analytics.funnel`` (every gateway, every 5 s) adds the seat-map views and
admissions this process counted (``gateway.ops.analytics_funnel``).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

import storage
from gateway import keys
from gateway.endpoint import Call, Endpoint
from gateway.errors import Forbidden
from gateway.ops import analytics_schemas as s
from gateway.ops.config import OpsConfig
from gateway.ops.jobs import Job
from storage import analytics
from storage import jobs as job_leases

log = logging.getLogger(__name__)
ROLLUP_JOB = "analytics.rollup"
PROGRESS_S = 2.0  # a backlog being drained logs its progress this often


# -- the figures -----------------------------------------------------------------------------


async def figures(call: Call) -> Any:
    q = call.query
    async with call.app[keys.POOL].acquire() as conn:
        mine = None if call.user.is_ops else await storage.theaters_of(conn, call.user.user_id)
        theater_ids = _scope(call, mine)
        rows = await analytics.figures(
            conn,
            by=q.by,
            first=q.from_,
            last=q.to,
            theater_ids=theater_ids,
            city_id=q.city_id,
            movie_id=q.movie_id,
        )
        grouped: dict[Any, list[analytics.FigureRow]] = defaultdict(list)
        for row in rows:
            grouped[row.key].append(row)
        names = await analytics.labels(conn, q.by, list(grouped)) if q.by != "day" else {}
        choices = await analytics.theater_choices(conn, mine)
        pending = await analytics.pending(conn)
        states = {j.name: j for j in await job_leases.job_states(conn)}
    groups = [
        {"key": str(key), "label": names.get(key, str(key)), **_block(part)}
        for key, part in grouped.items()
    ]
    if q.format == "csv":
        return _csv(q, groups, _block(rows))
    state = states.get(ROLLUP_JOB)
    return {
        "by": q.by,
        "from": q.from_.isoformat(),
        "to": q.to.isoformat(),
        "theater_ids": theater_ids,
        "groups": groups,
        "totals": _block(rows),
        "theaters": [vars(c) for c in choices],
        "pending_changes": pending,
        "refreshed_at": state.last_finished_at.isoformat()
        if state and state.last_finished_at
        else None,
    }


def _scope(call: Call, mine: list[int] | None) -> list[int] | None:
    """The theaters counted: operations (``mine`` None) see every one (None), a theater admin
    only theirs; asking for another theater is refused."""
    wanted = call.query.theater_id
    if mine is None:
        return None if wanted is None else [wanted]
    if wanted is None:
        return mine
    if wanted not in mine:
        raise Forbidden("you are not an admin of this theater", {"theater_id": wanted})
    return [wanted]


def _ratio(part: int, whole: int, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def _block(rows: list[analytics.FigureRow]) -> dict[str, Any]:
    """The figures of ``rows`` (one group, or all of them) summed; money per currency."""

    def total(name: str) -> int:
        return sum(getattr(r, name) for r in rows)

    money: dict[str, dict[str, int]] = defaultdict(
        lambda: {"tickets": 0, "revenue_cents": 0, "refunded_cents": 0}
    )
    for r in rows:
        m = money[r.currency]
        m["tickets"] += r.tickets
        m["revenue_cents"] += r.revenue_cents
        m["refunded_cents"] += r.refunded_cents
    made = total("bookings") + total("cancellations")
    views, holds, checkouts = total("seatmap_views"), total("holds"), total("checkouts")
    return {
        "shows": total("shows"),
        "capacity": total("capacity"),
        "tickets": total("tickets"),
        "bookings": total("bookings"),
        "occupancy": _ratio(total("tickets"), total("capacity")),
        "money": [
            {
                "currency": currency,
                **m,
                "average_price_cents": round(m["revenue_cents"] / m["tickets"])
                if m["tickets"]
                else None,
            }
            for currency, m in sorted(money.items())
        ],
        "cancellations": total("cancellations"),
        "cancelled_tickets": total("cancelled_tickets"),
        "refunds": total("refunds"),
        "queue_admissions": total("queue_admissions"),
        "funnel": {
            "seatmap_views": views,
            "holds": holds,
            "checkouts": checkouts,
            "bookings": made,
            "view_to_hold": _ratio(holds, views),
            "hold_to_checkout": _ratio(checkouts, holds),
            "checkout_to_booking": _ratio(made, checkouts),
        },
    }


CSV_COLUMNS = (
    "key",
    "label",
    "currency",
    "revenue_cents",
    "average_price_cents",
    "refunded_cents",
    "shows",
    "capacity",
    "tickets",
    "occupancy",
    "bookings",
    "cancellations",
    "cancelled_tickets",
    "refunds",
    "queue_admissions",
    "seatmap_views",
    "holds",
    "checkouts",
    "bookings_made",
)


def _csv_cell(value: Any) -> Any:
    """A spreadsheet must not run a label as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _csv(q: Any, groups: list[dict[str, Any]], totals: dict[str, Any]) -> web.Response:
    """One line per group and currency (a group without money: one line, no currency), then
    the totals (key ``total``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for group in [*groups, {"key": "total", "label": "Total", **totals}]:
        funnel = group["funnel"]
        common = {
            **{k: group[k] for k in CSV_COLUMNS if k in group},
            "seatmap_views": funnel["seatmap_views"],
            "holds": funnel["holds"],
            "checkouts": funnel["checkouts"],
            "bookings_made": funnel["bookings"],
        }
        for money in group["money"] or [{}]:
            line = {**common, **{k: v for k, v in money.items() if k != "tickets"}}
            writer.writerow([_csv_cell(line.get(k)) for k in CSV_COLUMNS])
    name = f"figures-{q.by}-{q.from_.isoformat()}-{q.to.isoformat()}.csv"
    return web.Response(
        body=out.getvalue().encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- the jobs --------------------------------------------------------------------------------


def _config(app: web.Application) -> OpsConfig:
    config = app[keys.CONFIG].ops
    return config if isinstance(config, OpsConfig) else OpsConfig()


async def rollup(app: web.Application) -> None:
    """Recompute the changed shows' rollup, a chunk per transaction, for at most the
    configured budget; a backlog (demo data just loaded) logs its progress."""
    config = _config(app)
    started = logged = time.monotonic()
    done = chunks = 0
    async with app[keys.POOL].acquire() as conn:
        while time.monotonic() - started < config.analytics_rollup_budget_s:
            count = await analytics.refresh_chunk(conn, limit=config.analytics_rollup_chunk)
            if count:
                done, chunks = done + count, chunks + 1
            if chunks > 1 and (not count or time.monotonic() - logged >= PROGRESS_S):
                logged = time.monotonic()
                log.info(
                    "analytics rollup: %d shows refreshed in %.1f s, %d changes pending",
                    done,
                    logged - started,
                    await analytics.pending(conn),
                )
            if not count:
                break


async def flush_funnel(app: web.Application) -> None:
    """Add what this process counted since the last flush (kept for the next on failure)."""
    counts = app.get(keys.FUNNEL)
    if counts is None:
        return
    taken = counts.take()
    if not taken:
        return
    try:
        async with app[keys.POOL].acquire() as conn:
            await analytics.add_funnel(conn, taken)
    except BaseException:
        counts.put_back(taken)
        raise


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/api/v1/admin/analytics/figures",
        figures,
        "Business figures per theater, city, movie or day (JSON, or CSV with format=csv)",
        "analytics",
        response=s.FiguresAnswer,
        query=s.FiguresQuery,
        auth=("admin", "theater_admin"),
        idempotency="none",
        errors=(401, 403, 422),
        media_types=("text/csv",),
    ),
)
JOBS: tuple[Job, ...] = (
    Job(ROLLUP_JOB, 10.0, rollup),
    Job("analytics.funnel", 5.0, flush_funnel, leased=False),
)
