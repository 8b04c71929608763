"""Forecasts of upcoming shows: what the forecast job reads (shows due, seats sold per category,
prices in force, last week's occupancy) and writes (the latest forecast per show, a snapshot at
each horizon), the settling of snapshots once shows start, and the two reports.

A show's *final* seats are the seats of its bookings confirmed before the start and not
cancelled by then; its occupancy divides them by the screen's seat count.

>>> due = await due_shows(conn, now, days=7, stale_s=3600, limit=500)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

# Snapshots: the first forecast made within each of these hours before the start.
HORIZONS_H: tuple[int, ...] = (72, 24, 3)
# MAPE counts only shows whose actual occupancy is above this (small denominators explode).
MAPE_MIN_OCCUPANCY = 0.05

_FINAL_SEATS = """
    (SELECT coalesce(sum(cardinality(b.seats)), 0)::int FROM bookings b
     WHERE b.show_id = {show}.id
       AND b.show_date = ({show}.starts_at AT TIME ZONE 'UTC')::date
       AND b.confirmed_at < {show}.starts_at
       AND (b.cancelled_at IS NULL OR b.cancelled_at >= {show}.starts_at))
"""


def horizon_of(hours_before: float) -> int | None:
    """The smallest snapshot horizon ``hours_before`` falls within; None beyond the largest."""
    inside = [h for h in HORIZONS_H if hours_before <= h]
    return min(inside) if inside else None


@dataclass(frozen=True, slots=True)
class DueShow:
    show_id: int
    seat_version: int
    starts_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredForecast:
    """One forecast as the job stores it (seats, not shares)."""

    show_id: int
    made_at: dt.datetime
    seat_version: int
    starts_at: dt.datetime
    capacity: int
    sold: int
    seats: float
    seats_lo: float
    seats_hi: float
    naive_seats: float
    revenue_cents: int
    revenue_lo_cents: int
    revenue_hi_cents: int
    currency: str
    flag: str | None
    source: str
    model_version: str | None

    @property
    def horizon_h(self) -> int | None:
        return horizon_of((self.starts_at - self.made_at).total_seconds() / 3600.0)


async def due_shows(
    conn: Any,
    now: dt.datetime,
    *,
    days: float,
    stale_s: float,
    limit: int,
    redo_fallback_s: float | None = None,
) -> list[DueShow]:
    """Shows starting in the next ``days`` (not cancelled) with no forecast yet, or one made
    at another seat version, in an earlier horizon, or ``stale_s`` ago (``redo_fallback_s`` ago
    for one the fallback made, when given: the model answers again); unforecast shows first,
    then by start."""
    rows = await conn.fetch(
        """
        SELECT sh.id, sh.seat_version, sh.starts_at
        FROM shows sh LEFT JOIN show_forecasts f ON f.show_id = sh.id
        WHERE sh.starts_at > $1 AND sh.starts_at <= $1 + make_interval(secs => $2)
          AND sh.status <> 'cancelled'
          AND (f.show_id IS NULL OR f.seat_version <> sh.seat_version
               OR f.made_at < $1 - make_interval(secs => $3)
               OR (f.source = 'fallback' AND f.made_at < $1 - make_interval(secs => $6))
               OR f.horizon_h IS DISTINCT FROM (
                   SELECT min(h) FROM unnest($5::int[]) AS h
                   WHERE sh.starts_at - $1 <= make_interval(hours => h)))
        ORDER BY f.show_id IS NOT NULL, sh.starts_at, sh.id
        LIMIT $4
        """,
        now,
        days * 86400.0,
        stale_s,
        limit,
        list(HORIZONS_H),
        redo_fallback_s,
    )
    return [DueShow(r["id"], r["seat_version"], r["starts_at"]) for r in rows]


async def sold_by_category(conn: Any, show_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Seats of live bookings per show and seat category (from the screen's layout)."""
    rows = await conn.fetch(
        """
        WITH s AS (SELECT id, screen_id, (starts_at AT TIME ZONE 'UTC')::date AS day
                   FROM shows WHERE id = ANY($1::bigint[])),
        cat AS (
            SELECT sc.id AS screen_id, seat->>'label' AS label, seat->>'category' AS category
            FROM screens sc, jsonb_array_elements(sc.layout->'rows') AS r(row),
                 jsonb_array_elements(r.row->'seats') AS seat
            WHERE sc.id IN (SELECT screen_id FROM s)
        )
        SELECT bs.show_id, cat.category, count(*)::int AS n
        FROM booking_seats bs JOIN s ON s.id = bs.show_id AND s.day = bs.show_date
        JOIN cat ON cat.screen_id = s.screen_id AND cat.label = bs.seat
        WHERE bs.live AND bs.show_id = ANY($1::bigint[])
        GROUP BY 1, 2
        """,
        sorted(set(show_ids)),
    )
    out: dict[int, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["show_id"], {})[r["category"]] = r["n"]
    return out


async def prices_in_force(conn: Any, show_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """The latest dynamic price per show and category (categories never changed are absent)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (show_id, category) show_id, category, price_cents
           FROM price_changes WHERE show_id = ANY($1::bigint[])
           ORDER BY show_id, category, changed_at DESC""",
        sorted(set(show_ids)),
    )
    out: dict[int, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["show_id"], {})[r["category"]] = r["price_cents"]
    return out


async def last_week_occupancy(conn: Any, show_ids: Sequence[int]) -> dict[int, float | None]:
    """The naive forecast's occupancy per show: the final occupancy of the same screen's show
    7 days earlier nearest the same start (within 2 hours), else the mean final occupancy of
    the theater's shows on that local date, else None."""
    rows = await conn.fetch(
        f"""
        WITH target AS (
            SELECT sh.id, sh.screen_id, sh.starts_at, sc.theater_id, t.time_zone
            FROM shows sh JOIN screens sc ON sc.id = sh.screen_id
            JOIN theaters t ON t.id = sc.theater_id
            WHERE sh.id = ANY($1::bigint[])
        )
        SELECT tg.id,
            (SELECT {_FINAL_SEATS.format(show="p")}::float8 / sc.seat_count
             FROM shows p JOIN screens sc ON sc.id = p.screen_id
             WHERE p.screen_id = tg.screen_id AND p.status <> 'cancelled'
               AND p.starts_at BETWEEN tg.starts_at - interval '7 days 2 hours'
                                   AND tg.starts_at - interval '6 days 22 hours'
             ORDER BY abs(extract(epoch FROM p.starts_at - (tg.starts_at - interval '7 days')))
             LIMIT 1) AS same_screen,
            (SELECT avg({_FINAL_SEATS.format(show="p")}::float8 / sc.seat_count)
             FROM shows p JOIN screens sc ON sc.id = p.screen_id
             WHERE sc.theater_id = tg.theater_id AND p.status <> 'cancelled'
               AND p.starts_at BETWEEN tg.starts_at - interval '8 days'
                                   AND tg.starts_at - interval '6 days'
               AND (p.starts_at AT TIME ZONE tg.time_zone)::date
                   = (tg.starts_at AT TIME ZONE tg.time_zone)::date - 7) AS theater_day
        FROM target tg
        """,
        sorted(set(show_ids)),
    )
    return {
        r["id"]: r["same_screen"] if r["same_screen"] is not None else r["theater_day"]
        for r in rows
    }


_COLUMNS = [f.name for f in fields(StoredForecast) if f.name != "starts_at"]


async def save_forecasts(conn: Any, forecasts: Sequence[StoredForecast]) -> None:
    """Store each show's latest forecast and, when it is the first within a horizon, its
    snapshot for that horizon."""
    if not forecasts:
        return
    columns = ", ".join([*_COLUMNS, "horizon_h"])
    marks = ", ".join(f"${i + 1}" for i in range(len(_COLUMNS) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*_COLUMNS[1:], "horizon_h"])
    rows = []
    for f in forecasts:
        values = dict(zip([x.name for x in fields(StoredForecast)], astuple(f), strict=True))
        rows.append([*(values[c] for c in _COLUMNS), f.horizon_h])
    async with conn.transaction():
        await conn.executemany(
            f"INSERT INTO show_forecasts ({columns}) VALUES ({marks})"
            f" ON CONFLICT (show_id) DO UPDATE SET {updates}",
            rows,
        )
        await conn.executemany(
            """INSERT INTO forecast_snapshots (show_id, horizon_h, made_at, starts_at, capacity,
                   seats, seats_lo, seats_hi, naive_seats, source, model_version)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (show_id, horizon_h) DO NOTHING""",
            [
                (f.show_id, f.horizon_h, f.made_at, f.starts_at, f.capacity, f.seats, f.seats_lo,
                 f.seats_hi, f.naive_seats, f.source, f.model_version)
                for f in forecasts
                if f.horizon_h is not None
            ],
        )  # fmt: skip


async def settle(conn: Any, now: dt.datetime, *, limit: int) -> int:
    """Record the actual final seats of snapshots whose show has started; how many. Snapshots
    of cancelled shows are dropped (nothing to be accurate about)."""
    await conn.execute(
        """DELETE FROM forecast_snapshots fs USING shows sh
           WHERE sh.id = fs.show_id AND sh.status = 'cancelled' AND fs.actual_seats IS NULL"""
    )
    settled: int = await conn.fetchval(
        f"""
        WITH due AS (
            SELECT DISTINCT show_id FROM forecast_snapshots
            WHERE actual_seats IS NULL AND starts_at <= $1
            ORDER BY show_id LIMIT $2
        ), actual AS (
            SELECT p.id, {_FINAL_SEATS.format(show="p")} AS seats
            FROM shows p WHERE p.id IN (SELECT show_id FROM due)
        ), done AS (
            UPDATE forecast_snapshots fs SET actual_seats = a.seats, settled_at = $1
            FROM actual a WHERE fs.show_id = a.id AND fs.actual_seats IS NULL
            RETURNING 1
        )
        SELECT count(*)::int FROM done
        """,
        now,
        limit,
    )
    return settled


async def list_forecasts(
    conn: Any,
    *,
    theater_ids: Sequence[int] | None,
    city_id: int | None,
    flag: str | None,
    starts_from: dt.datetime,
    starts_to: dt.datetime,
    limit: int,
    after: tuple[dt.datetime, int] | None = None,
) -> list[dict[str, Any]]:
    """Latest forecasts of shows starting in [from, to), by start and id, from after ``after``
    (the start and id of the last row of the previous page); ``theater_ids`` None: all."""
    rows = await conn.fetch(
        """
        SELECT f.*, sh.starts_at, m.title AS movie_title, t.name AS theater_name
        FROM show_forecasts f JOIN shows sh ON sh.id = f.show_id
        JOIN movies m ON m.id = sh.movie_id JOIN screens sc ON sc.id = sh.screen_id
        JOIN theaters t ON t.id = sc.theater_id
        WHERE sh.starts_at >= $1 AND sh.starts_at < $2 AND sh.status <> 'cancelled'
          AND ($3::bigint[] IS NULL OR t.id = ANY($3::bigint[]))
          AND ($4::bigint IS NULL OR t.city_id = $4)
          AND ($5::text IS NULL OR f.flag = $5)
          AND ($7::timestamptz IS NULL OR (sh.starts_at, sh.id) > ($7, $8::bigint))
        ORDER BY sh.starts_at, sh.id
        LIMIT $6
        """,
        starts_from,
        starts_to,
        None if theater_ids is None else list(theater_ids),
        city_id,
        flag,
        limit,
        None if after is None else after[0],
        None if after is None else after[1],
    )
    return [dict(r) for r in rows]


async def accuracy(
    conn: Any,
    *,
    theater_ids: Sequence[int] | None,
    starts_from: dt.datetime,
    starts_to: dt.datetime,
) -> list[dict[str, Any]]:
    """Settled snapshots per ISO week of the start and horizon: counts, MAPE (over shows whose
    actual occupancy is above MAPE_MIN_OCCUPANCY), WAPE and MAE of occupancy, model and naive,
    and the share of actuals inside the interval."""
    rows = await conn.fetch(
        """
        SELECT to_char(fs.starts_at AT TIME ZONE 'UTC', 'IYYY-"W"IW') AS week, fs.horizon_h,
               count(*)::int AS shows,
               count(*) FILTER (WHERE fs.actual_seats > $4 * fs.capacity)::int AS mape_shows,
               count(*) FILTER (WHERE fs.source = 'model')::int AS model_shows,
               avg(abs(fs.seats - fs.actual_seats) / fs.actual_seats)
                   FILTER (WHERE fs.actual_seats > $4 * fs.capacity) AS mape,
               avg(abs(fs.naive_seats - fs.actual_seats) / fs.actual_seats)
                   FILTER (WHERE fs.actual_seats > $4 * fs.capacity) AS naive_mape,
               sum(abs(fs.seats - fs.actual_seats)) / nullif(sum(fs.actual_seats), 0) AS wape,
               sum(abs(fs.naive_seats - fs.actual_seats)) / nullif(sum(fs.actual_seats), 0)
                   AS naive_wape,
               avg(abs(fs.seats - fs.actual_seats) / nullif(fs.capacity, 0)) AS mae,
               avg(abs(fs.naive_seats - fs.actual_seats) / nullif(fs.capacity, 0)) AS naive_mae,
               avg((fs.actual_seats BETWEEN fs.seats_lo - 0.5 AND fs.seats_hi + 0.5)::int)
                   AS coverage
        FROM forecast_snapshots fs JOIN shows sh ON sh.id = fs.show_id
        JOIN screens sc ON sc.id = sh.screen_id
        WHERE fs.actual_seats IS NOT NULL AND fs.starts_at >= $1 AND fs.starts_at < $2
          AND ($3::bigint[] IS NULL OR sc.theater_id = ANY($3::bigint[]))
        GROUP BY 1, 2 ORDER BY 1, 2 DESC
        """,
        starts_from,
        starts_to,
        None if theater_ids is None else list(theater_ids),
        MAPE_MIN_OCCUPANCY,
    )
    return [dict(r) for r in rows]
