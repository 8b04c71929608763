"""Admin changes to the catalog's places and films: cities, theaters, screens and movies.

Every change that breaks a catalog rule is refused with a ``CatalogError`` (storage/errors.py)
and leaves the database as it was. Shows are scheduled in ``storage/scheduling.py``; a change
here that moves shows (a new runtime, a new layout) goes through its checks.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from storage.checks import _constraints, _instant, _lock_movie, _not_found, _text
from storage.errors import (
    InvalidCatalogData,
    InvalidTimeZone,
    MissingPrice,
)
from storage.layouts import validate_layout
from storage.scheduling import _check_prices, _lock_screen, _stretch_shows

_MOVIE_COLUMNS = (
    "title",
    "genres",
    "runtime_min",
    "certificate",
    "language",
    "release_date",
    "cast_members",
    "synopsis",
)


async def create_city(conn: Any, name: str, country: str) -> int:
    """Add a city; returns its id. ``InvalidCatalogData`` if (country, name) exists."""
    with _constraints():
        city_id: int = await conn.fetchval(
            "INSERT INTO cities (name, country) VALUES ($1, $2) RETURNING id",
            _text(name, "name"),
            _text(country, "country", blank=True),
        )
    return city_id


async def create_theater(
    conn: Any,
    city_id: int,
    name: str,
    time_zone: str,
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
) -> int:
    """Add a theater to a city; ``time_zone`` is an IANA name such as ``"America/New_York"``."""
    await _check_time_zone(conn, time_zone)
    _check_position(latitude, longitude)
    with _constraints(parent=("city", city_id)):
        theater_id: int = await conn.fetchval(
            """INSERT INTO theaters (city_id, name, address, time_zone, latitude, longitude)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            city_id,
            _text(name, "name"),
            _text(address, "address", blank=True),
            time_zone,
            latitude,
            longitude,
        )
    return theater_id


async def update_theater(
    conn: Any,
    theater_id: int,
    *,
    name: str | None = None,
    address: str | None = None,
    time_zone: str | None = None,
) -> None:
    """Change what is given. A new time zone keeps the shows' instants, so their local times
    move: it is for correcting a mistake."""
    if time_zone is not None:
        await _check_time_zone(conn, time_zone)
    with _constraints():
        found = await conn.fetchval(
            """UPDATE theaters SET name = coalesce($2, name), address = coalesce($3, address),
                      time_zone = coalesce($4, time_zone)
               WHERE id = $1 RETURNING id""",
            theater_id,
            None if name is None else _text(name, "name"),
            None if address is None else _text(address, "address", blank=True),
            time_zone,
        )
    if found is None:
        raise _not_found("theater", theater_id)


async def create_screen(conn: Any, theater_id: int, name: str, layout: object) -> int:
    """Add a screen with its seat layout (see storage/layouts.py); returns its id."""
    summary = validate_layout(layout)
    with _constraints(parent=("theater", theater_id)):
        screen_id: int = await conn.fetchval(
            """INSERT INTO screens (theater_id, name, layout, seat_count, categories)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            theater_id,
            _text(name, "name"),
            layout,
            summary.seat_count,
            list(summary.categories),
        )
    return screen_id


async def update_screen_layout(
    conn: Any,
    screen_id: int,
    layout: object,
    *,
    new_prices: Mapping[str, int] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Replace a screen's layout. The shows not over yet (at ``now``, default the database
    clock) keep their prices for the categories that stay and take ``new_prices`` for the
    categories the layout adds; ``MissingPrice`` if one would be left without a price."""
    summary = validate_layout(layout)
    if new_prices is not None:
        _check_prices(new_prices, summary.categories, partial=True)
    async with conn.transaction():
        await _lock_screen(conn, screen_id)
        rows = await conn.fetch(
            """SELECT id, prices FROM shows WHERE screen_id = $1 AND status <> 'cancelled'
               AND busy_until > coalesce($2, now()) ORDER BY starts_at""",
            screen_id,
            None if now is None else _instant(now, "now"),
        )
        repriced = []
        for r in rows:
            offered = {**(new_prices or {}), **r["prices"]}
            repriced.append((r["id"], {c: offered[c] for c in summary.categories if c in offered}))
        unpriced = [show_id for show_id, p in repriced if len(p) < len(summary.categories)]
        if unpriced:
            missing = sorted({c for _, p in repriced for c in summary.categories if c not in p})
            raise MissingPrice(
                f"shows not over yet need a price for {', '.join(missing)}: pass new_prices",
                {"missing": missing, "show_ids": unpriced},
            )
        await conn.executemany("UPDATE shows SET prices = $2 WHERE id = $1", repriced)
        await conn.execute(
            "UPDATE screens SET layout = $2, seat_count = $3, categories = $4 WHERE id = $1",
            screen_id,
            layout,
            summary.seat_count,
            list(summary.categories),
        )


async def create_movie(
    conn: Any,
    *,
    title: str,
    genres: Sequence[str],
    runtime_min: int,
    certificate: str,
    language: str,
    release_date: dt.date,
    cast_members: Sequence[str],
    synopsis: str,
) -> int:
    """Add a movie; returns its id."""
    given = (
        title,
        genres,
        runtime_min,
        certificate,
        language,
        release_date,
        cast_members,
        synopsis,
    )
    values = [_movie_value(c, v) for c, v in zip(_MOVIE_COLUMNS, given, strict=True)]
    with _constraints():
        movie_id: int = await conn.fetchval(
            f"""INSERT INTO movies ({", ".join(_MOVIE_COLUMNS)})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
            *values,
        )
    return movie_id


async def update_movie(conn: Any, movie_id: int, **fields: object) -> None:
    """Change the given columns of a movie, e.g. ``update_movie(conn, 7, runtime_min=128)``.

    A new runtime moves the end of the movie's shows that are not over yet (database clock),
    refused with ``ShowOverlap`` if one would then run into the next show on its screen.
    """
    unknown = sorted(fields.keys() - set(_MOVIE_COLUMNS))
    if unknown:
        raise InvalidCatalogData(
            f"movies have no field {', '.join(unknown)}",
            {"unknown": unknown, "fields": list(_MOVIE_COLUMNS)},
        )
    values = {column: _movie_value(column, value) for column, value in fields.items()}
    async with conn.transaction():
        runtime = await _lock_movie(conn, movie_id, "FOR UPDATE")
        new_runtime = values.get("runtime_min", runtime)
        if new_runtime != runtime:
            assert isinstance(new_runtime, int)
            await _stretch_shows(conn, movie_id, new_runtime - runtime)
        if values:
            assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
            with _constraints():
                await conn.execute(
                    f"UPDATE movies SET {assignments} WHERE id = $1", movie_id, *values.values()
                )


async def _check_time_zone(conn: Any, time_zone: object) -> None:
    """An IANA name that both Python and Postgres know."""
    try:
        if not isinstance(time_zone, str):
            raise ValueError(time_zone)
        ZoneInfo(time_zone)
        await conn.fetchval("SELECT now() AT TIME ZONE $1", time_zone)
    except (ValueError, ZoneInfoNotFoundError, asyncpg.InvalidParameterValueError) as exc:
        raise InvalidTimeZone(
            f"{time_zone!r} is not an IANA time zone name", {"time_zone": str(time_zone)}
        ) from exc


def _check_position(latitude: float | None, longitude: float | None) -> None:
    for value, field, limit in ((latitude, "latitude", 90), (longitude, "longitude", 180)):
        if value is not None and not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and -limit <= value <= limit
        ):
            raise InvalidCatalogData(
                f"{field} must lie between -{limit} and {limit}", {"field": field}
            )


def _movie_value(column: str, value: object) -> object:
    """Check one movie column's value; returns what to store."""
    if column in ("genres", "cast_members"):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise InvalidCatalogData(f"{column} must be a list of strings", {"field": column})
        return [_text(item, column) for item in value]
    if column == "runtime_min":
        if type(value) is not int or not 1 <= value <= 600:
            raise InvalidCatalogData(
                "runtime_min must be whole minutes from 1 to 600", {"field": column}
            )
        return value
    if column == "release_date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise InvalidCatalogData("release_date must be a date", {"field": column})
        return value
    return _text(value, column, blank=column == "synopsis")
