"""Business figures from the per-show rollup (``show_stats``, migration 0009).

Triggers log every show whose bookings, holds, payments, refunds, blocked seats, funnel counts
or own row changed (``show_stats_dirty``); ``refresh_chunk`` recomputes a bounded number of
them in one transaction, and figures then sum rollup rows, never bookings:

    while await refresh_chunk(conn, limit=2000):
        ...
    rows = await figures(conn, by="city", first=day1, last=day2, theater_ids=None)

A show's figures: ``tickets``, ``bookings`` and ``revenue_cents`` of its live (confirmed)
bookings; ``cancellations`` (and their tickets) of its cancelled ones; ``refunds`` paid out
(status succeeded) with their amount; ``holds`` ever taken; ``checkouts``, the holds with a
payment attempt; ``seatmap_views`` and ``queue_admissions`` counted by the gateways.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GROUPINGS = ("theater", "city", "movie", "day")
_KEY = {"theater": "theater_id", "city": "city_id", "movie": "movie_id", "day": "local_date"}

# The chunk's shows, each recomputed from its sources; set-based per source (one index scan
# per partition of bookings for the whole chunk).
_REFRESH = """
WITH ids AS (SELECT DISTINCT unnest($1::bigint[]) AS show_id),
bk AS (
    SELECT show_id,
           count(*) FILTER (WHERE status = 'confirmed') AS bookings,
           coalesce(sum(cardinality(seats)) FILTER (WHERE status = 'confirmed'), 0) AS tickets,
           coalesce(sum(price_cents) FILTER (WHERE status = 'confirmed'), 0) AS revenue_cents,
           count(*) FILTER (WHERE status = 'cancelled') AS cancellations,
           coalesce(sum(cardinality(seats)) FILTER (WHERE status = 'cancelled'), 0)
               AS cancelled_tickets
    FROM bookings WHERE show_id = ANY($1::bigint[]) GROUP BY show_id),
hd AS (SELECT show_id, count(*) AS holds FROM holds
       WHERE show_id = ANY($1::bigint[]) GROUP BY show_id),
pm AS (SELECT show_id, count(DISTINCT hold_id) AS checkouts FROM payments
       WHERE show_id = ANY($1::bigint[]) GROUP BY show_id),
rf AS (SELECT p.show_id, count(*) AS refunds, sum(r.amount_cents) AS refunded_cents
       FROM payments p JOIN refunds r ON r.payment_id = p.payment_id
       WHERE p.show_id = ANY($1::bigint[]) AND r.status = 'succeeded' GROUP BY p.show_id),
bl AS (SELECT show_id, count(*) AS blocked FROM show_blocked_seats
       WHERE show_id = ANY($1::bigint[]) GROUP BY show_id)
INSERT INTO show_stats AS st (
    show_id, theater_id, city_id, movie_id, local_date, starts_at, status, capacity, currency,
    tickets, bookings, revenue_cents, cancellations, cancelled_tickets, refunds, refunded_cents,
    holds, checkouts, seatmap_views, queue_admissions, updated_at)
SELECT s.id, t.id, t.city_id, s.movie_id, (s.starts_at AT TIME ZONE t.time_zone)::date,
       s.starts_at, s.status, greatest(sc.seat_count - coalesce(bl.blocked, 0), 0), s.currency,
       coalesce(bk.tickets, 0), coalesce(bk.bookings, 0), coalesce(bk.revenue_cents, 0),
       coalesce(bk.cancellations, 0), coalesce(bk.cancelled_tickets, 0),
       coalesce(rf.refunds, 0), coalesce(rf.refunded_cents, 0), coalesce(hd.holds, 0),
       coalesce(pm.checkouts, 0), coalesce(f.seatmap_views, 0),
       coalesce(f.queue_admissions, 0), now()
FROM ids
JOIN shows s ON s.id = ids.show_id
JOIN screens sc ON sc.id = s.screen_id
JOIN theaters t ON t.id = sc.theater_id
LEFT JOIN bk ON bk.show_id = s.id
LEFT JOIN hd ON hd.show_id = s.id
LEFT JOIN pm ON pm.show_id = s.id
LEFT JOIN rf ON rf.show_id = s.id
LEFT JOIN bl ON bl.show_id = s.id
LEFT JOIN show_funnel f ON f.show_id = s.id
ON CONFLICT (show_id) DO UPDATE SET
    theater_id = excluded.theater_id, city_id = excluded.city_id,
    movie_id = excluded.movie_id, local_date = excluded.local_date,
    starts_at = excluded.starts_at, status = excluded.status, capacity = excluded.capacity,
    currency = excluded.currency, tickets = excluded.tickets, bookings = excluded.bookings,
    revenue_cents = excluded.revenue_cents, cancellations = excluded.cancellations,
    cancelled_tickets = excluded.cancelled_tickets, refunds = excluded.refunds,
    refunded_cents = excluded.refunded_cents, holds = excluded.holds,
    checkouts = excluded.checkouts, seatmap_views = excluded.seatmap_views,
    queue_admissions = excluded.queue_admissions, updated_at = excluded.updated_at
"""

# Takes up to $1 log rows nobody else is taking, deletes them and names their shows.
_TAKE = """
WITH picked AS (SELECT ctid FROM show_stats_dirty LIMIT $1 FOR UPDATE SKIP LOCKED),
gone AS (DELETE FROM show_stats_dirty d USING picked WHERE d.ctid = picked.ctid
         RETURNING d.show_id)
SELECT coalesce(array_agg(DISTINCT show_id), '{}') FROM gone
"""


@dataclass(frozen=True)
class FigureRow:
    """The summed rollup of one group in one currency."""

    key: int | dt.date
    currency: str
    shows: int
    capacity: int
    tickets: int
    bookings: int
    revenue_cents: int
    cancellations: int
    cancelled_tickets: int
    refunds: int
    refunded_cents: int
    holds: int
    checkouts: int
    seatmap_views: int
    queue_admissions: int


async def refresh_chunk(conn: Any, *, limit: int = 2000) -> int:
    """Recompute the rollup of up to ``limit`` logged changes' shows in one transaction; the
    number of shows recomputed (0: nothing was pending). Runs one at a time per schema (an
    advisory lock), so that an older computation never overwrites a newer one."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.show_stats'))"
        )
        shows: list[int] = await conn.fetchval(_TAKE, limit)
        if shows:
            await conn.execute(_REFRESH, shows)
    return len(shows)


async def pending(conn: Any) -> int:
    """Changes logged and not yet rolled up (a show may count more than once)."""
    count: int = await conn.fetchval("SELECT count(*) FROM show_stats_dirty")
    return count


async def add_funnel(conn: Any, counts: Mapping[int, tuple[int, int]]) -> None:
    """Add ``{show_id: (seat-map views, waiting-room admissions)}`` to the funnel counts;
    unknown shows are skipped."""
    if not counts:
        return
    ids = sorted(counts)  # one order for every gateway: concurrent flushes do not deadlock
    await conn.execute(
        """
        INSERT INTO show_funnel (show_id, seatmap_views, queue_admissions)
        SELECT v.show_id, v.views, v.admissions
        FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(show_id, views, admissions)
        JOIN shows s ON s.id = v.show_id
        ORDER BY v.show_id
        ON CONFLICT (show_id) DO UPDATE SET
            seatmap_views = show_funnel.seatmap_views + excluded.seatmap_views,
            queue_admissions = show_funnel.queue_admissions + excluded.queue_admissions
        """,
        ids,
        [counts[i][0] for i in ids],
        [counts[i][1] for i in ids],
    )


async def figures(
    conn: Any,
    *,
    by: str,
    first: dt.date,
    last: dt.date,
    theater_ids: Sequence[int] | None,
    city_id: int | None = None,
    movie_id: int | None = None,
) -> list[FigureRow]:
    """Rollup sums per group (``by``: theater, city, movie or day, the theater's local day)
    and currency, for shows on local days ``first``..``last``; ``theater_ids`` None: all."""
    if by not in _KEY:
        raise ValueError(f"unknown grouping {by!r}")
    where = ["local_date BETWEEN $1 AND $2"]
    args: list[Any] = [first, last]
    if theater_ids is not None:
        args.append(list(theater_ids))
        where.append(f"theater_id = ANY(${len(args)}::bigint[])")
    for column, value in (("city_id", city_id), ("movie_id", movie_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    key = _KEY[by]
    rows = await conn.fetch(
        f"""
        SELECT {key} AS key, currency, count(*) AS shows,
               sum(capacity) FILTER (WHERE status <> 'cancelled') AS capacity,
               sum(tickets) AS tickets, sum(bookings) AS bookings,
               sum(revenue_cents) AS revenue_cents, sum(cancellations) AS cancellations,
               sum(cancelled_tickets) AS cancelled_tickets, sum(refunds) AS refunds,
               sum(refunded_cents) AS refunded_cents, sum(holds) AS holds,
               sum(checkouts) AS checkouts, sum(seatmap_views) AS seatmap_views,
               sum(queue_admissions) AS queue_admissions
        FROM show_stats WHERE {" AND ".join(where)}
        GROUP BY {key}, currency ORDER BY {key}, currency
        """,
        *args,
    )
    return [
        FigureRow(
            key=r["key"],
            currency=r["currency"],
            **{name: int(r[name] or 0) for name in _SUMS},
        )
        for r in rows
    ]


_SUMS = (
    "shows",
    "capacity",
    "tickets",
    "bookings",
    "revenue_cents",
    "cancellations",
    "cancelled_tickets",
    "refunds",
    "refunded_cents",
    "holds",
    "checkouts",
    "seatmap_views",
    "queue_admissions",
)


async def labels(conn: Any, by: str, keys: Sequence[int]) -> dict[int, str]:
    """Display names of the groups' ids (theater "name, city", city, movie title)."""
    if by == "theater":
        sql = (
            "SELECT t.id, t.name || ', ' || c.name AS label FROM theaters t "
            "JOIN cities c ON c.id = t.city_id WHERE t.id = ANY($1::bigint[])"
        )
    elif by == "city":
        sql = "SELECT id, name AS label FROM cities WHERE id = ANY($1::bigint[])"
    elif by == "movie":
        sql = "SELECT id, title AS label FROM movies WHERE id = ANY($1::bigint[])"
    else:
        return {}
    return {r["id"]: r["label"] for r in await conn.fetch(sql, list(keys))}


@dataclass(frozen=True)
class TheaterChoice:
    id: int
    name: str
    city_id: int
    city: str


async def theater_choices(
    conn: Any, theater_ids: Sequence[int] | None, *, limit: int = 5000
) -> list[TheaterChoice]:
    """The theaters a caller may pick (``theater_ids`` None: every one), by city and name."""
    rows = await conn.fetch(
        """
        SELECT t.id, t.name, t.city_id, c.name AS city FROM theaters t
        JOIN cities c ON c.id = t.city_id
        WHERE $1::bigint[] IS NULL OR t.id = ANY($1::bigint[])
        ORDER BY c.name, t.name LIMIT $2
        """,
        None if theater_ids is None else list(theater_ids),
        limit,
    )
    return [TheaterChoice(**dict(r)) for r in rows]
