"""Scheduling shows: a show occupies its screen over ``[starts_at, busy_until)``,
``busy_until`` being start + runtime + cleaning gap; shows of one screen never overlap unless
cancelled.

Times come in as aware datetimes: an ambiguous local time (the night clocks go back) means what
its ``fold`` says, 0 the first occurrence, 1 the second, and a local time the clocks skip is
refused. Race safety: a change to a screen's shows locks the screen row first, so two admins
cannot both fill the same slot. Locks are always taken movie first, then screens in id order,
then shows, so concurrent changes wait for each other instead of deadlocking.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from storage.checks import _instant, _lock_movie, _not_found
from storage.errors import (
    InvalidCatalogData,
    MissingPrice,
    ShowInPast,
    ShowOverlap,
)
from storage.models import SHOW_STATUSES
from storage.partitions import ensure_partitions

MAX_CLEANING_GAP = dt.timedelta(hours=2)

_LONGEST_SHOW = dt.timedelta(minutes=600) + MAX_CLEANING_GAP  # runtime_min <= 600 (0001)


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
        # A cancelled show is not stretched when its movie's runtime changes, so its gap can be
        # off: keep it within what create_show allows.
        gap = min(max(gap, dt.timedelta(0)), MAX_CLEANING_GAP)
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
