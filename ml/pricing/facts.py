"""What the pricing model knows about a show: its time, movie, screen, city and price table.

``load_show_facts`` reads them for a handful of shows in two queries; the gateway caches the
result. Training reads the same columns for the whole history (``demand.load_history``) through
the same SQL fragments, so a show looks the same to both.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import holidays
import numpy as np

POPULARITY_DAYS = 7  # popularity: bookings of the movie (and in the city) made in the days before
HOLIDAY_HORIZON = 60  # days; a show further than this from any public holiday says 60

# Seats per category of each screen, from its layout (seats out of service are not for sale).
SEAT_CATEGORIES_SQL = """
    SELECT sc.id AS screen_id, seat->>'label' AS label, seat->>'category' AS category
    FROM screens sc,
         jsonb_array_elements(sc.layout->'rows') AS r(row),
         jsonb_array_elements(r.row->'seats') AS s(seat)
    WHERE NOT coalesce((seat->>'out_of_service')::boolean, false)
"""

# One row per seat ever booked: its show, its category, when it was bought and when cancelled
# (epoch seconds; NULL: never). Add a WHERE on ``b`` (bookings) or ``sh`` (shows).
SOLD_SEATS_SQL = f"""
    WITH seat_cat AS ({SEAT_CATEGORIES_SQL})
    SELECT b.show_id, sc.category, extract(epoch FROM b.confirmed_at)::float8 AS bought,
           extract(epoch FROM b.cancelled_at)::float8 AS cancelled
    FROM bookings b CROSS JOIN LATERAL unnest(b.seats) AS u(label)
    JOIN shows sh ON sh.id = b.show_id
    JOIN seat_cat sc ON sc.screen_id = sh.screen_id AND sc.label = u.label
"""

# One row per show: what does not change while it is on sale.
SHOW_SQL = """
    SELECT sh.id AS show_id, sh.starts_at, sh.movie_id, sh.screen_id, sh.prices, sh.currency,
           sc.seat_count, t.city_id, c.country, t.time_zone,
           (sh.starts_at AT TIME ZONE t.time_zone)::date - m.release_date AS movie_age_days,
           extract(isodow FROM sh.starts_at AT TIME ZONE t.time_zone)::int - 1 AS weekday,
           extract(hour FROM sh.starts_at AT TIME ZONE t.time_zone)::int AS hour,
           (sh.starts_at AT TIME ZONE t.time_zone)::date AS local_date
    FROM shows sh
    JOIN screens sc ON sc.id = sh.screen_id
    JOIN theaters t ON t.id = sc.theater_id
    JOIN cities c ON c.id = t.city_id
    JOIN movies m ON m.id = sh.movie_id
"""


class FactsError(ValueError):
    """Show facts that cannot be loaded or are inconsistent."""


@dataclass(frozen=True)
class ShowFacts:
    """A show as the pricing model sees it. Prices are in minor units (cents)."""

    show_id: int
    starts_at: dt.datetime  # aware, UTC
    weekday: int  # local to the theater, Monday = 0
    hour: int  # local start hour, 0..23
    movie_id: int
    movie_popularity: int  # bookings of the movie made in the POPULARITY_DAYS before as_of
    movie_age_days: int  # days from the movie's release to the show's local date
    screen_id: int
    screen_seats: int  # the screen's seat count
    seats: Mapping[str, int]  # sellable seats per category, from the screen layout
    city_id: int
    country: str
    holiday_days: int  # days to the nearest public holiday of the country, 0 on one
    city_bookings: int  # bookings made in the city in the POPULARITY_DAYS before as_of
    base_prices: Mapping[str, int]  # the show's price table per category
    currency: str

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None:
            raise FactsError("starts_at must be timezone-aware")
        missing = sorted(set(self.seats) - set(self.base_prices))
        if missing:
            raise FactsError(f"show {self.show_id} has no price for seat categories {missing}")


@functools.lru_cache(maxsize=64)
def _holiday_ordinals(country: str, year: int) -> np.ndarray:
    try:
        days = holidays.country_holidays(country, years=range(year - 1, year + 2))
    except NotImplementedError:  # a country the package does not know: no holidays
        return np.empty(0, dtype=np.int64)
    return np.array(sorted(d.toordinal() for d in days), dtype=np.int64)


def holiday_distance(country: str, dates: Sequence[dt.date]) -> np.ndarray:
    """Days from each date to the nearest public holiday of ``country`` (0 on a holiday),
    capped at HOLIDAY_HORIZON."""
    out = np.full(len(dates), HOLIDAY_HORIZON, dtype=np.int64)
    if not country or not len(dates):
        return out
    ordinals = np.array([d.toordinal() for d in dates], dtype=np.int64)
    years = {d.year for d in dates}
    known = np.unique(np.concatenate([_holiday_ordinals(country.upper(), y) for y in years]))
    if not len(known):
        return out
    at = np.clip(np.searchsorted(known, ordinals), 1, len(known) - 1)
    if len(known) == 1:
        nearest = np.abs(ordinals - known[0])
    else:
        nearest = np.minimum(np.abs(ordinals - known[at - 1]), np.abs(known[at] - ordinals))
    return np.asarray(np.minimum(nearest, HOLIDAY_HORIZON))


async def load_show_facts(
    conn: Any, show_ids: Sequence[int], as_of: dt.datetime
) -> dict[int, ShowFacts]:
    """Facts of the given shows as of ``as_of`` (aware), keyed by show id; unknown ids are
    left out.

    >>> facts = await load_show_facts(conn, [101, 102], dt.datetime.now(dt.UTC))
    """
    if as_of.tzinfo is None:
        raise FactsError("as_of must be timezone-aware")
    ids = sorted({int(i) for i in show_ids})
    if not ids:
        return {}
    rows = await conn.fetch(
        f"""
        WITH picked AS ({SHOW_SQL} WHERE sh.id = ANY($1::bigint[])),
        seats AS (
            SELECT screen_id, category, count(*)::int AS n FROM ({SEAT_CATEGORIES_SQL}) s
            WHERE screen_id IN (SELECT screen_id FROM picked) GROUP BY 1, 2
        )
        SELECT p.*, (SELECT jsonb_object_agg(category, n) FROM seats
                     WHERE seats.screen_id = p.screen_id) AS seats
        FROM picked p
        """,
        ids,
    )
    movies, cities = await recent_bookings(
        conn, {r["movie_id"] for r in rows}, {r["city_id"] for r in rows}, as_of
    )
    return {
        r["show_id"]: _facts(r, movies.get(r["movie_id"], 0), cities.get(r["city_id"], 0))
        for r in rows
    }


async def recent_bookings(
    conn: Any, movie_ids: set[int], city_ids: set[int], as_of: dt.datetime
) -> tuple[dict[int, int], dict[int, int]]:
    """Bookings made per movie and per city in the POPULARITY_DAYS before ``as_of``."""
    if not movie_ids and not city_ids:
        return {}, {}
    since = as_of - dt.timedelta(days=POPULARITY_DAYS)
    rows = await conn.fetch(
        """
        SELECT s.movie_id, t.city_id, count(*)::int AS n
        FROM bookings b
        JOIN shows s ON s.id = b.show_id
        JOIN screens sc ON sc.id = s.screen_id
        JOIN theaters t ON t.id = sc.theater_id
        WHERE (s.movie_id = ANY($1::bigint[]) OR t.city_id = ANY($2::bigint[]))
          AND b.confirmed_at >= $3 AND b.confirmed_at < $4
          AND b.show_date >= ($3::timestamptz AT TIME ZONE 'UTC')::date - 1
        GROUP BY GROUPING SETS ((s.movie_id), (t.city_id))
        """,
        sorted(movie_ids),
        sorted(city_ids),
        since,
        as_of,
    )
    movies = {r["movie_id"]: r["n"] for r in rows if r["movie_id"] is not None}
    cities = {r["city_id"]: r["n"] for r in rows if r["city_id"] is not None}
    return movies, cities


def _facts(row: Mapping[str, Any], popularity: int, city_bookings: int) -> ShowFacts:
    prices = {str(k): int(v) for k, v in row["prices"].items()}
    # A category the layout has but the price table lacks is not for sale.
    seats = {str(k): int(v) for k, v in (row["seats"] or {}).items() if str(k) in prices}
    country = str(row["country"] or "")
    return ShowFacts(
        show_id=int(row["show_id"]),
        starts_at=row["starts_at"].astimezone(dt.UTC),
        weekday=int(row["weekday"]),
        hour=int(row["hour"]),
        movie_id=int(row["movie_id"]),
        movie_popularity=int(popularity),
        movie_age_days=int(row["movie_age_days"]),
        screen_id=int(row["screen_id"]),
        screen_seats=int(row["seat_count"]),
        seats=seats,
        city_id=int(row["city_id"]),
        country=country,
        holiday_days=int(holiday_distance(country, [row["local_date"]])[0]),
        city_bookings=int(city_bookings),
        base_prices=prices,
        currency=str(row["currency"]),
    )
