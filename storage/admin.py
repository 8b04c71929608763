"""Admin changes to the catalog: cities, theaters, screens, movies and shows.

Every change that breaks a catalog rule is refused with a ``CatalogError`` (storage/errors.py)
and leaves the database as it was. A show occupies its screen over ``[starts_at, busy_until)``,
``busy_until`` being start + runtime + cleaning gap; shows of one screen never overlap unless
cancelled. Times come in as aware datetimes: an ambiguous local time (the night clocks go back)
means what its ``fold`` says, 0 the first occurrence, 1 the second, and a local time the clocks
skip is refused.

Race safety: a change to a screen's shows locks the screen row first, so two admins cannot both
fill the same slot. Locks are always taken movie first, then screens in id order, then shows, so
concurrent changes wait for each other instead of deadlocking.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from storage.errors import (
    AlreadyExists,
    InvalidCatalogData,
    InvalidTimeZone,
    MissingPrice,
    NotFound,
    ShowInPast,
    ShowOverlap,
)
from storage.layouts import validate_layout
from storage.models import SHOW_STATUSES
from storage.partitions import ensure_partitions

MAX_CLEANING_GAP = dt.timedelta(hours=2)
_LONGEST_SHOW = dt.timedelta(minutes=600) + MAX_CLEANING_GAP  # runtime_min <= 600 (0001)
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


async def _stretch_shows(conn: Any, movie_id: int, minutes: int) -> None:
    """Move busy_until of the movie's shows that are not over by ``minutes``."""
    await conn.execute(
        """SELECT 1 FROM screens WHERE id IN (
               SELECT screen_id FROM shows WHERE movie_id = $1 AND status <> 'cancelled'
               AND busy_until > now())
           ORDER BY id FOR UPDATE""",
        movie_id,
    )
    shows = await conn.fetch(
        """UPDATE shows SET busy_until = busy_until + make_interval(mins => $2)
           WHERE movie_id = $1 AND status <> 'cancelled' AND busy_until > now()
           RETURNING id, screen_id, starts_at, busy_until""",
        movie_id,
        minutes,
    )
    if minutes > 0:
        for show in shows:
            await _check_no_overlap(
                conn, show["screen_id"], show["starts_at"], show["busy_until"], show["id"]
            )


async def create_show(
    conn: Any,
    *,
    screen_id: int,
    movie_id: int,
    starts_at: dt.datetime,
    prices: Mapping[str, int],
    now: dt.datetime,
    status: str = "scheduled",
    sale_opens_at: dt.datetime | None = None,
    currency: str = "USD",
    cleaning_gap: dt.timedelta = dt.timedelta(minutes=20),
) -> int:
    """Schedule a movie on a screen; returns the show id.

    ``prices`` maps every seat category of the screen to a price in minor units (cents).

    >>> await create_show(conn, screen_id=3, movie_id=7, now=now, prices={"standard": 1250},
    ...                   starts_at=dt.datetime(2026, 12, 5, 19, tzinfo=ZoneInfo("Europe/Paris")))
    """
    start = _instant(starts_at, "starts_at")
    _check_future(start, _instant(now, "now"))
    _check_status(status)
    _check_sale_terms(start, sale_opens_at, currency, cleaning_gap)
    await ensure_partitions(conn, start.date(), start.date())  # bookings go by UTC date
    async with conn.transaction():
        runtime = await _lock_movie(conn, movie_id, "FOR SHARE")
        checked = _check_prices(prices, await _lock_screen(conn, screen_id))
        busy_until = start + dt.timedelta(minutes=runtime) + cleaning_gap
        if status != "cancelled":
            await _check_no_overlap(conn, screen_id, start, busy_until)
        show_id: int = await conn.fetchval(
            """INSERT INTO shows (screen_id, movie_id, starts_at, busy_until, prices, currency,
                                  status, sale_opens_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
            screen_id,
            movie_id,
            start,
            busy_until,
            checked,
            currency,
            status,
            sale_opens_at,
        )
    return show_id


async def update_show(
    conn: Any,
    show_id: int,
    *,
    now: dt.datetime,
    starts_at: dt.datetime | None = None,
    prices: Mapping[str, int] | None = None,
    status: str | None = None,
    movie_id: int | None = None,
) -> None:
    """Change what is given. A new start or movie, or bringing back a cancelled show, is
    checked again against ``now`` and the screen's other shows; the cleaning gap is kept.
    A show with bookings cannot move to another UTC date, the key its bookings are filed by."""
    now = _instant(now, "now")
    new_start = None if starts_at is None else _instant(starts_at, "starts_at")
    if status is not None:
        _check_status(status)
    async with conn.transaction():
        new_runtime = None if movie_id is None else await _lock_movie(conn, movie_id, "FOR SHARE")
        screen_id = await conn.fetchval("SELECT screen_id FROM shows WHERE id = $1", show_id)
        if screen_id is None:
            raise _not_found("show", show_id)
        categories = await _lock_screen(conn, screen_id)
        old = await conn.fetchrow(
            """SELECT s.starts_at, s.busy_until, s.status, s.movie_id, m.runtime_min
               FROM shows s JOIN movies m ON m.id = s.movie_id WHERE s.id = $1 FOR UPDATE OF s""",
            show_id,
        )
        start = new_start or old["starts_at"]
        gap = old["busy_until"] - old["starts_at"] - dt.timedelta(minutes=old["runtime_min"])
        busy_until = start + dt.timedelta(minutes=new_runtime or old["runtime_min"]) + gap
        new_status = status or old["status"]
        moved = start != old["starts_at"] or movie_id not in (None, old["movie_id"])
        if new_status != "cancelled" and (moved or old["status"] == "cancelled"):
            _check_future(start, now)
            await _check_no_overlap(conn, screen_id, start, busy_until, show_id)
        if start.date() != old["starts_at"].date():
            await _check_no_bookings(conn, show_id)
            await ensure_partitions(conn, start.date(), start.date())
        await conn.execute(
            """UPDATE shows SET starts_at = $2, busy_until = $3, movie_id = coalesce($4, movie_id),
                      status = $5, prices = coalesce($6, prices)
               WHERE id = $1""",
            show_id,
            start,
            busy_until,
            movie_id,
            new_status,
            None if prices is None else _check_prices(prices, categories),
        )


async def _lock_movie(conn: Any, movie_id: int, mode: str) -> int:
    runtime: int | None = await conn.fetchval(
        f"SELECT runtime_min FROM movies WHERE id = $1 {mode}", movie_id
    )
    if runtime is None:
        raise _not_found("movie", movie_id)
    return runtime


async def _lock_screen(conn: Any, screen_id: int) -> list[str]:
    """Lock the screen row for this transaction; returns its seat categories."""
    categories: list[str] | None = await conn.fetchval(
        "SELECT categories FROM screens WHERE id = $1 FOR UPDATE", screen_id
    )
    if categories is None:
        raise _not_found("screen", screen_id)
    return categories


async def _check_no_overlap(
    conn: Any,
    screen_id: int,
    starts_at: dt.datetime,
    busy_until: dt.datetime,
    show_id: int | None = None,
) -> None:
    """Refuse when another live show of the screen shares part of [starts_at, busy_until).

    No show lasts longer than ``_LONGEST_SHOW``, which bounds the scan of the screen's index.
    """
    other = await conn.fetchrow(
        """SELECT id, starts_at, busy_until FROM shows
           WHERE screen_id = $1 AND starts_at > $5 AND starts_at < $3 AND busy_until > $2
             AND status <> 'cancelled' AND id IS DISTINCT FROM $4
           ORDER BY starts_at LIMIT 1""",
        screen_id,
        starts_at,
        busy_until,
        show_id,
        starts_at - _LONGEST_SHOW,
    )
    if other is not None:
        raise ShowOverlap(
            f"screen {screen_id} is busy with show {other['id']} from "
            f"{other['starts_at'].isoformat()} until {other['busy_until'].isoformat()}",
            {"other_show_id": other["id"], "screen_id": screen_id},
        )


async def _check_no_bookings(conn: Any, show_id: int) -> None:
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM bookings WHERE show_id = $1)", show_id):
        raise InvalidCatalogData(
            f"show {show_id} has bookings, so it cannot move to another date",
            {"show_id": show_id, "field": "starts_at"},
        )


def _check_future(starts_at: dt.datetime, now: dt.datetime) -> None:
    if starts_at <= now:
        raise ShowInPast(
            f"a show must start after now ({now.isoformat()}), not at {starts_at.isoformat()}",
            {"starts_at": starts_at.isoformat(), "now": now.isoformat()},
        )


def _check_status(status: object) -> None:
    if status not in SHOW_STATUSES:
        raise InvalidCatalogData(
            f"unknown show status {status!r}", {"field": "status", "allowed": list(SHOW_STATUSES)}
        )


def _check_sale_terms(
    starts_at: dt.datetime, sale_opens_at: object, currency: object, cleaning_gap: object
) -> None:
    if sale_opens_at is not None and _instant(sale_opens_at, "sale_opens_at") >= starts_at:
        raise InvalidCatalogData(
            "the sale must open before the show starts", {"field": "sale_opens_at"}
        )
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidCatalogData(
            "currency must be an ISO 4217 code such as USD", {"field": "currency"}
        )
    if not isinstance(cleaning_gap, dt.timedelta) or not (
        dt.timedelta(0) <= cleaning_gap <= MAX_CLEANING_GAP
    ):
        raise InvalidCatalogData(
            f"the cleaning gap must lie between 0 and {MAX_CLEANING_GAP}", {"field": "cleaning_gap"}
        )


def _check_prices(
    prices: object, categories: Sequence[str], *, partial: bool = False
) -> dict[str, int]:
    """Prices for exactly the screen's seat categories (some of them if ``partial``), in
    positive whole minor units."""
    if not isinstance(prices, Mapping):
        raise InvalidCatalogData("prices must map seat categories to amounts", {"field": "prices"})
    unknown = sorted(str(c) for c in prices.keys() - set(categories))
    if unknown:
        raise InvalidCatalogData(
            f"the screen has no seats of category {', '.join(unknown)}",
            {"field": "prices", "unknown": unknown, "categories": list(categories)},
        )
    bad = sorted(c for c, v in prices.items() if type(v) is not int or v <= 0)
    if bad:
        raise InvalidCatalogData(
            f"prices must be positive whole minor units: {', '.join(bad)}",
            {"field": "prices", "invalid": bad},
        )
    missing = sorted(set(categories) - prices.keys())
    if missing and not partial:
        raise MissingPrice(f"no price for seat category {', '.join(missing)}", {"missing": missing})
    return dict(prices)


def _instant(value: object, field: str) -> dt.datetime:
    """An aware datetime whose wall time exists (not skipped by a clock change), in UTC.

    UTC because Python adds and compares datetimes sharing a tzinfo by wall time: 00:30 plus
    three hours on the night New York falls back would otherwise be an hour too late.
    """
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidCatalogData(f"{field} must be a datetime with a time zone", {"field": field})
    wall = value.replace(tzinfo=None)
    if value.astimezone(dt.UTC).astimezone(value.tzinfo).replace(tzinfo=None) != wall:
        raise InvalidCatalogData(
            f"{field} {wall.isoformat()} does not exist in {value.tzinfo}: the clocks skip it",
            {"field": field},
        )
    return value.astimezone(dt.UTC)


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


def _text(value: object, field: str, *, blank: bool = False) -> str:
    if not isinstance(value, str) or not (blank or value.strip()):
        raise InvalidCatalogData(
            f"{field} must be a {'' if blank else 'non-empty '}string", {"field": field}
        )
    return value


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


def _not_found(entity: str, entity_id: int) -> NotFound:
    return NotFound(f"no {entity} {entity_id}", {"entity": entity, "id": entity_id})


@contextlib.contextmanager
def _constraints(parent: tuple[str, int] | None = None) -> Iterator[None]:
    """Translate constraint violations into catalog errors; ``parent`` names the row a
    foreign key points at (the city of a new theater, …)."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(
            f"already exists: {exc.detail}", {"constraint": exc.constraint_name}
        ) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        entity, entity_id = parent or ("row", 0)
        raise _not_found(entity, entity_id) from exc
    except asyncpg.CheckViolationError as exc:
        raise InvalidCatalogData(
            f"refused by the rule {exc.constraint_name}", {"constraint": exc.constraint_name}
        ) from exc
