"""What the recommendations read: a customer's taste and what plays near them.

``movie_history`` is every movie the user booked (oldest first), the model's input for folding
the user in; ``playing_near`` lists what plays in a city over the coming days with how much of
it is on and how well it sold there lately, the candidates and the cold-start ranking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from storage.errors import InvalidCatalogData, NotFound

POPULARITY_DAYS = 30
HISTORY_LIMIT = 500


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
