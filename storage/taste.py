"""What the recommendations read: a customer's taste and what plays near them.

``movie_history`` is every movie the user booked (oldest first), the model's input for folding
the user in; ``playing_near`` lists what plays in a city over the coming days with how much of
it is on and how well it sold there lately, the candidates and the cold-start ranking.

The home page reads three more, each one query for the whole page: ``past_bookings`` (where,
what and at what local hour the user booked: their favourite theaters and usual time of day),
``upcoming_shows`` (the next shows of some movies in a city, a few per theater and part of the
day) and ``seats_now`` (per show and seat category: seats, seats taken, the price in force).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import InvalidCatalogData, NotFound

POPULARITY_DAYS = 30
HISTORY_LIMIT = 500
PAST_BOOKINGS_LIMIT = 200  # the latest bookings the home's habits are read from


@dataclass(frozen=True, slots=True)
class Playing:
    movie_id: int
    title: str
    genres: tuple[str, ...]
    show_count: int  # shows in the window
    first_start: dt.datetime  # the first of them (UTC)
    recent_bookings: int  # bookings of the movie in the city in the last POPULARITY_DAYS


@dataclass(frozen=True, slots=True)
class Taste:
    user_id: int
    home_city_id: int | None
    favourite_genres: tuple[str, ...]
    created_at: dt.datetime


async def get_taste(conn: Any, user_id: int) -> Taste:
    row = await conn.fetchrow(
        "SELECT home_city_id, favourite_genres, created_at FROM users WHERE id = $1", user_id
    )
    if row is None:
        raise NotFound(f"no user {user_id}", {"user_id": user_id})
    return Taste(user_id, row["home_city_id"], tuple(row["favourite_genres"]), row["created_at"])


async def set_favourite_genres(conn: Any, user_id: int, genres: list[str]) -> tuple[str, ...]:
    """Replace the user's picked genres with ``genres`` (each a genre some movie has)."""
    known = {
        r["genre"] for r in await conn.fetch("SELECT DISTINCT unnest(genres) AS genre FROM movies")
    }
    unknown = sorted(set(genres) - known)
    if unknown:
        raise InvalidCatalogData("unknown genres", {"unknown": unknown, "known": sorted(known)})
    picked = list(dict.fromkeys(genres))
    done = await conn.execute(
        "UPDATE users SET favourite_genres = $2 WHERE id = $1", user_id, picked
    )
    if done == "UPDATE 0":
        raise NotFound(f"no user {user_id}", {"user_id": user_id})
    return tuple(picked)


async def movie_history(conn: Any, user_id: int) -> list[int]:
    """The movies the user booked (also those cancelled since: they showed interest), each
    once, oldest booking first; at most the latest ``HISTORY_LIMIT``."""
    rows = await conn.fetch(
        """SELECT movie_id FROM (
               SELECT s.movie_id, max(b.confirmed_at) AS last_at
               FROM bookings b JOIN shows s ON s.id = b.show_id
               WHERE b.user_id = $1
               GROUP BY s.movie_id
               ORDER BY last_at DESC LIMIT $2) recent
           ORDER BY last_at, movie_id""",
        user_id,
        HISTORY_LIMIT,
    )
    return [r["movie_id"] for r in rows]


async def playing_near(conn: Any, city_id: int, start: dt.datetime, days: int) -> list[Playing]:
    """Movies with a show on sale in the city between ``start`` and ``days`` later, most shows
    first; with their bookings there in the last ``POPULARITY_DAYS``."""
    end = start + dt.timedelta(days=days)
    since = start - dt.timedelta(days=POPULARITY_DAYS)
    rows = await conn.fetch(
        """WITH playing AS (
               SELECT s.movie_id, count(*) AS show_count, min(s.starts_at) AS first_start
               FROM theaters t
               JOIN screens sc ON sc.theater_id = t.id
               JOIN shows s ON s.screen_id = sc.id
               WHERE t.city_id = $1 AND s.starts_at >= $2 AND s.starts_at < $3
                 AND s.status IN ('on_sale', 'flash_sale')
               GROUP BY s.movie_id),
           sold AS (
               SELECT s.movie_id, count(*) AS bookings
               FROM bookings b
               JOIN shows s ON s.id = b.show_id
               JOIN screens sc ON sc.id = s.screen_id
               JOIN theaters t ON t.id = sc.theater_id
               WHERE t.city_id = $1 AND b.show_date >= $5 AND b.show_date <= $6
                 AND b.confirmed_at >= $4 AND b.status = 'confirmed'
                 AND s.movie_id IN (SELECT movie_id FROM playing)
               GROUP BY s.movie_id)
           SELECT m.id, m.title, m.genres, p.show_count, p.first_start,
                  coalesce(sold.bookings, 0) AS recent_bookings
           FROM playing p JOIN movies m ON m.id = p.movie_id
           LEFT JOIN sold ON sold.movie_id = p.movie_id
           ORDER BY p.show_count DESC, m.id""",
        city_id,
        start,
        end,
        since,
        since.astimezone(dt.UTC).date(),
        end.astimezone(dt.UTC).date(),
    )
    return [
        Playing(
            movie_id=r["id"],
            title=r["title"],
            genres=tuple(r["genres"]),
            show_count=r["show_count"],
            first_start=r["first_start"],
            recent_bookings=r["recent_bookings"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class PastBooking:
    """One booking of the user (confirmed or cancelled since), as the home reads habits."""

    movie_id: int
    title: str
    genres: tuple[str, ...]
    theater_id: int
    theater_name: str
    local_hour: int  # the show's start hour at its theater, 0..23
    booked_at: dt.datetime


async def past_bookings(
    conn: Any, user_id: int, limit: int = PAST_BOOKINGS_LIMIT
) -> list[PastBooking]:
    """The user's latest ``limit`` bookings, newest first, with their movie and theater."""
    rows = await conn.fetch(
        """SELECT s.movie_id, m.title, m.genres, t.id AS theater_id, t.name AS theater_name,
                  extract(hour FROM s.starts_at AT TIME ZONE t.time_zone)::int AS local_hour,
                  b.confirmed_at
           FROM bookings b
           JOIN shows s ON s.id = b.show_id
           JOIN movies m ON m.id = s.movie_id
           JOIN screens sc ON sc.id = s.screen_id
           JOIN theaters t ON t.id = sc.theater_id
           WHERE b.user_id = $1
           ORDER BY b.confirmed_at DESC, b.booking_id
           LIMIT $2""",
        user_id,
        limit,
    )
    return [
        PastBooking(
            movie_id=r["movie_id"],
            title=r["title"],
            genres=tuple(r["genres"]),
            theater_id=r["theater_id"],
            theater_name=r["theater_name"],
            local_hour=r["local_hour"],
            booked_at=r["confirmed_at"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class UpcomingShow:
    show_id: int
    movie_id: int
    runtime_min: int
    certificate: str
    language: str
    theater_id: int
    theater_name: str
    time_zone: str
    latitude: float | None
    longitude: float | None
    screen_name: str
    starts_at: dt.datetime  # UTC
    status: str  # on_sale or flash_sale
    prices: dict[str, int]  # the price table, per seat category (minor units)
    currency: str


async def upcoming_shows(
    conn: Any,
    city_id: int,
    movie_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    per_slot: int,
    day_edges: Sequence[int],
) -> list[UpcomingShow]:
    """Shows on sale of ``movie_ids`` in the city starting after ``start`` and before ``end``:
    at each theater, the first ``per_slot`` of each part of the day (the local day cut at the
    hours ``day_edges``, ascending), soonest first. Enough to pick any customer's best few
    (their theaters, their time of day, the nearest, the soonest) without every show."""
    rows = await conn.fetch(
        """SELECT * FROM (
               SELECT s.id, s.movie_id, m.runtime_min, m.certificate, m.language,
                      t.id AS theater_id, t.name AS theater_name, t.time_zone, t.latitude,
                      t.longitude, sc.name AS screen_name, s.starts_at, s.status, s.prices,
                      s.currency,
                      row_number() OVER (
                          PARTITION BY s.movie_id, t.id,
                              width_bucket(extract(hour FROM s.starts_at
                                                   AT TIME ZONE t.time_zone)::int, $6::int[])
                          ORDER BY s.starts_at, s.id) AS nth
               FROM theaters t
               JOIN screens sc ON sc.theater_id = t.id
               JOIN shows s ON s.screen_id = sc.id
               JOIN movies m ON m.id = s.movie_id
               WHERE t.city_id = $1 AND s.movie_id = ANY($2::bigint[])
                 AND s.starts_at > $3 AND s.starts_at < $4
                 AND s.status IN ('on_sale', 'flash_sale')) pool
           WHERE nth <= $5
           ORDER BY movie_id, starts_at, id""",
        city_id,
        sorted(set(movie_ids)),
        start,
        end,
        per_slot,
        sorted(day_edges),
    )
    return [
        UpcomingShow(
            show_id=r["id"],
            movie_id=r["movie_id"],
            runtime_min=r["runtime_min"],
            certificate=r["certificate"],
            language=r["language"],
            theater_id=r["theater_id"],
            theater_name=r["theater_name"],
            time_zone=r["time_zone"],
            latitude=r["latitude"],
            longitude=r["longitude"],
            screen_name=r["screen_name"],
            starts_at=r["starts_at"],
            status=r["status"],
            prices={str(c): int(p) for c, p in r["prices"].items()},
            currency=r["currency"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class CategoryNow:
    """One seat category of a show now: its sellable seats, those taken (booked, held or
    blocked), those held, and the price in force if a dynamic price changed it (else None)."""

    seats: int
    taken: int
    held: int
    price_in_force: int | None
    changed_at: dt.datetime | None


async def seats_now(
    conn: Any, show_ids: Sequence[int], now: dt.datetime
) -> dict[int, dict[str, CategoryNow]]:
    """Per show and seat category: seats (out of service ones not counted), seats taken (live
    bookings, live holds not expired at ``now``, blocked seats) and held, and the price in
    force. Holds are written behind, so the newest may be missing: good for "sold out" and a
    price, never for selling a seat."""
    rows = await conn.fetch(
        """WITH picked AS (SELECT id, screen_id FROM shows WHERE id = ANY($1::bigint[])),
           taken AS (
               SELECT show_id, seat, false AS held FROM booking_seats
               WHERE show_id = ANY($1::bigint[]) AND live
               UNION ALL
               SELECT h.show_id, u.seat, true FROM holds h, unnest(h.seats) AS u(seat)
               WHERE h.show_id = ANY($1::bigint[]) AND h.status = 'live' AND h.expires_at > $2
               UNION ALL
               SELECT show_id, seat, false FROM show_blocked_seats
               WHERE show_id = ANY($1::bigint[])),
           seats AS (
               SELECT p.id AS show_id, seat->>'label' AS label, seat->>'category' AS category
               FROM picked p JOIN screens sc ON sc.id = p.screen_id,
                    jsonb_array_elements(sc.layout->'rows') AS r(row),
                    jsonb_array_elements(r.row->'seats') AS s(seat)
               WHERE NOT coalesce((seat->>'out_of_service')::boolean, false)),
           counted AS (
               SELECT s.show_id, s.category, count(DISTINCT s.label)::int AS seats,
                      count(DISTINCT t.seat)::int AS taken,
                      count(DISTINCT t.seat) FILTER (WHERE t.held)::int AS held
               FROM seats s LEFT JOIN taken t ON t.show_id = s.show_id AND t.seat = s.label
               GROUP BY 1, 2),
           in_force AS (
               SELECT DISTINCT ON (show_id, category) show_id, category, price_cents, changed_at
               FROM price_changes WHERE show_id = ANY($1::bigint[])
               ORDER BY show_id, category, changed_at DESC)
           SELECT c.show_id, c.category, c.seats, c.taken, c.held, f.price_cents, f.changed_at
           FROM counted c
           LEFT JOIN in_force f ON f.show_id = c.show_id AND f.category = c.category""",
        sorted(set(show_ids)),
        now,
    )
    out: dict[int, dict[str, CategoryNow]] = {}
    for r in rows:
        out.setdefault(r["show_id"], {})[r["category"]] = CategoryNow(
            r["seats"], r["taken"], r["held"], r["price_cents"], r["changed_at"]
        )
    return out
