"""Read queries over the catalog: what plays where and when.

Times in answers are aware datetimes in the theater's time zone, and "on a day" means the
theater's local date. Each day query first narrows ``starts_at`` to a UTC window wide enough
for every time zone (the day before to the day after), so Postgres can use the
``(screen_id, starts_at)`` and ``(movie_id, starts_at)`` indexes, then keeps the rows whose local
date is the day. Cancelled shows are left out of the day queries; ``get_show`` returns any show.
Unknown ids give empty lists, except in ``get_show`` and ``get_theater`` (``NotFound``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

from storage.errors import NotFound
from storage.models import (
    City,
    MoviePlaying,
    ScheduleEntry,
    ShowDetails,
    Showtime,
    Theater,
    TheaterShows,
)

# Shows on the local day $4, given $2 and $3 from _window($4); t is the show's theater.
_ON_DAY = """s.starts_at >= $2 AND s.starts_at < $3
      AND (s.starts_at AT TIME ZONE t.time_zone)::date = $4
      AND s.status <> 'cancelled'"""


def _window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants bounding every local day ``day`` on Earth (offsets run -12 h … +14 h)."""
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    return midnight - dt.timedelta(days=1), midnight + dt.timedelta(days=2)


def _local(instant: dt.datetime, time_zone: str) -> dt.datetime:
    return instant.astimezone(ZoneInfo(time_zone))


def _local_end(starts_at: dt.datetime, runtime_min: int, time_zone: str) -> dt.datetime:
    """When the movie ends (without the cleaning gap): UTC arithmetic, so right across DST."""
    return _local(starts_at + dt.timedelta(minutes=runtime_min), time_zone)


async def movies_playing(conn: Any, city_id: int, day: dt.date) -> list[MoviePlaying]:
    """Movies with at least one show on ``day`` in the city, most shows first, then by title.

    >>> [m.title for m in await movies_playing(conn, city_id, dt.date(2026, 12, 5))]
    """
    rows = await conn.fetch(
        f"""SELECT m.id, m.title, m.genres, m.runtime_min, m.certificate, m.language,
                   count(*) AS show_count,
                   min(s.starts_at) AS first_start,
                   (array_agg(t.time_zone ORDER BY s.starts_at))[1] AS first_time_zone
            FROM theaters t
            JOIN screens sc ON sc.theater_id = t.id
            JOIN shows s ON s.screen_id = sc.id
            JOIN movies m ON m.id = s.movie_id
            WHERE t.city_id = $1 AND {_ON_DAY}
            GROUP BY m.id
            ORDER BY show_count DESC, m.title, m.id""",
        city_id,
        *_window(day),
        day,
    )
    return [
        MoviePlaying(
            id=r["id"],
            title=r["title"],
            genres=tuple(r["genres"]),
            runtime_min=r["runtime_min"],
            certificate=r["certificate"],
            language=r["language"],
            show_count=r["show_count"],
            first_start=_local(r["first_start"], r["first_time_zone"]),
        )
        for r in rows
    ]


async def shows_of_movie(
    conn: Any, movie_id: int, city_id: int, day: dt.date
) -> list[TheaterShows]:
    """The movie's shows on ``day`` in the city, grouped by theater (by name), each by start."""
    rows = await conn.fetch(
        f"""SELECT t.id AS theater_id, t.name AS theater_name, t.time_zone,
                   s.id, s.screen_id, sc.name AS screen_name, s.starts_at, s.status, s.prices
            FROM shows s
            JOIN screens sc ON sc.id = s.screen_id
            JOIN theaters t ON t.id = sc.theater_id
            WHERE s.movie_id = $1 AND t.city_id = $5 AND {_ON_DAY}
            ORDER BY t.name, t.id, s.starts_at, sc.name""",
        movie_id,
        *_window(day),
        day,
        city_id,
    )
    grouped = []
    for theater_id, group in itertools.groupby(rows, key=lambda r: r["theater_id"]):
        shows = list(group)
        grouped.append(
            TheaterShows(
                theater_id=theater_id,
                theater_name=shows[0]["theater_name"],
                time_zone=shows[0]["time_zone"],
                shows=tuple(_showtime(r) for r in shows),
            )
        )
    return grouped


def _showtime(r: Any) -> Showtime:
    return Showtime(
        show_id=r["id"],
        screen_id=r["screen_id"],
        screen_name=r["screen_name"],
        starts_at=_local(r["starts_at"], r["time_zone"]),
        status=r["status"],
        prices=r["prices"],
    )


async def theater_shows(conn: Any, theater_id: int, day: dt.date) -> list[ScheduleEntry]:
    """Every show of the theater on its local ``day``, by start (then screen name)."""
    rows = await conn.fetch(
        f"""SELECT s.id, s.movie_id, m.title, s.screen_id, sc.name AS screen_name,
                   s.starts_at, m.runtime_min, s.status, t.time_zone
            FROM theaters t
            JOIN screens sc ON sc.theater_id = t.id
            JOIN shows s ON s.screen_id = sc.id
            JOIN movies m ON m.id = s.movie_id
            WHERE t.id = $1 AND {_ON_DAY}
            ORDER BY s.starts_at, sc.name""",
        theater_id,
        *_window(day),
        day,
    )
    return [
        ScheduleEntry(
            show_id=r["id"],
            movie_id=r["movie_id"],
            movie_title=r["title"],
            screen_id=r["screen_id"],
            screen_name=r["screen_name"],
            starts_at=_local(r["starts_at"], r["time_zone"]),
            ends_at=_local_end(r["starts_at"], r["runtime_min"], r["time_zone"]),
            status=r["status"],
        )
        for r in rows
    ]


async def get_show(conn: Any, show_id: int) -> ShowDetails:
    """One show with its screen layout, prices and status; ``NotFound`` if there is none."""
    r = await conn.fetchrow(
        """SELECT s.id, s.screen_id, s.movie_id, s.starts_at, s.status, s.prices, s.currency,
                  s.sale_opens_at, t.id AS theater_id, t.name AS theater_name, t.time_zone,
                  sc.name AS screen_name, sc.layout, m.title, m.runtime_min
           FROM shows s
           JOIN screens sc ON sc.id = s.screen_id
           JOIN theaters t ON t.id = sc.theater_id
           JOIN movies m ON m.id = s.movie_id
           WHERE s.id = $1""",
        show_id,
    )
    if r is None:
        raise NotFound(f"no show {show_id}", {"entity": "show", "id": show_id})
    tz = r["time_zone"]
    return ShowDetails(
        show_id=r["id"],
        theater_id=r["theater_id"],
        theater_name=r["theater_name"],
        time_zone=tz,
        screen_id=r["screen_id"],
        screen_name=r["screen_name"],
        layout=r["layout"],
        movie_id=r["movie_id"],
        movie_title=r["title"],
        runtime_min=r["runtime_min"],
        starts_at=_local(r["starts_at"], tz),
        ends_at=_local_end(r["starts_at"], r["runtime_min"], tz),
        status=r["status"],
        prices=r["prices"],
        currency=r["currency"],
        sale_opens_at=None if r["sale_opens_at"] is None else _local(r["sale_opens_at"], tz),
    )


async def get_theater(conn: Any, theater_id: int) -> Theater:
    """One theater; ``NotFound`` if there is none."""
    r = await conn.fetchrow(
        """SELECT id, city_id, name, address, time_zone, latitude, longitude
           FROM theaters WHERE id = $1""",
        theater_id,
    )
    if r is None:
        raise NotFound(f"no theater {theater_id}", {"entity": "theater", "id": theater_id})
    return Theater(**dict(r))


async def list_cities(conn: Any) -> list[City]:
    """Every city, by country then name."""
    rows = await conn.fetch("SELECT id, name, country FROM cities ORDER BY country, name, id")
    return [City(**dict(r)) for r in rows]
