"""Reads for the natural-language search: the catalog it parses against, and the shows that
pass a query's filters, the first few per movie.

    >>> catalog = await load_catalog(conn)
    >>> rows = await matching_shows(conn, ShowFilter(starts_after=a, starts_before=b))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogRows:
    """What the search parses and ranks against, as the database has it."""

    movies: list[dict[str, Any]]  # id, title, genres, certificate, language, synopsis, cast
    cities: list[dict[str, Any]]  # id, name
    theaters: list[dict[str, Any]]  # id, name, city_id, time_zone, latitude, longitude
    seat_categories: list[str]
    version: str  # changes when any movie's text or the set of places changes


@dataclass(frozen=True)
class ShowFilter:
    """Filters on shows; None (or empty ``movie_ids``/``theater_ids`` left None) means any."""

    starts_after: dt.datetime
    starts_before: dt.datetime
    movie_ids: list[int] | None = None
    theater_ids: list[int] | None = None
    max_price_cents: int | None = None
    seat_category: str | None = None
    # Local time of day the show starts at, give or take ``at_slack_min`` minutes.
    at_time: dt.time | None = None
    at_slack_min: int = 30
    per_movie: int = 5


async def load_catalog(conn: Any) -> CatalogRows:
    movies = await conn.fetch(
        """SELECT id, title, genres, certificate, language, synopsis, cast_members
           FROM movies ORDER BY id"""
    )
    cities = await conn.fetch("SELECT id, name FROM cities ORDER BY id")
    theaters = await conn.fetch(
        """SELECT id, name, city_id, time_zone, latitude, longitude FROM theaters ORDER BY id"""
    )
    categories = await conn.fetch(
        "SELECT DISTINCT unnest(categories) AS category FROM screens ORDER BY 1"
    )
    version = await conn.fetchval(
        """SELECT md5(coalesce(string_agg(id || title || synopsis || array_to_string(genres, ','),
                                          '|' ORDER BY id), '')
                      || (SELECT count(*) FROM theaters)::text
                      || (SELECT count(*) FROM cities)::text)
           FROM movies"""
    )
    return CatalogRows(
        movies=[dict(r) for r in movies],
        cities=[dict(r) for r in cities],
        theaters=[dict(r) for r in theaters],
        seat_categories=[r["category"] for r in categories],
        version=str(version),
    )


async def matching_shows(conn: Any, f: ShowFilter) -> list[dict[str, Any]]:
    """The first ``f.per_movie`` shows per movie that pass ``f`` (not cancelled, by start),
    each with ``movie_show_count``: how many shows of the movie passed."""
    rows = await conn.fetch(
        """WITH passing AS (
             SELECT s.id AS show_id, s.movie_id, s.starts_at, s.prices, s.currency,
                    t.id AS theater_id, t.name AS theater_name, t.city_id, t.time_zone,
                    row_number() OVER (PARTITION BY s.movie_id ORDER BY s.starts_at, s.id) AS rn,
                    count(*) OVER (PARTITION BY s.movie_id) AS movie_show_count
             FROM shows s
             JOIN screens sc ON sc.id = s.screen_id
             JOIN theaters t ON t.id = sc.theater_id
             WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.status <> 'cancelled'
               AND ($3::bigint[] IS NULL OR s.movie_id = ANY($3))
               AND ($4::bigint[] IS NULL OR t.id = ANY($4))
               AND ($6::text IS NULL OR $6 = ANY(sc.categories))
               AND ($5::int IS NULL OR EXISTS (
                     SELECT 1 FROM jsonb_each_text(s.prices) p
                     WHERE ($6::text IS NULL OR p.key = $6) AND p.value::numeric <= $5))
               AND ($7::time IS NULL OR abs(extract(epoch FROM
                     ((s.starts_at AT TIME ZONE t.time_zone)::time - $7::time))) <= $8 * 60)
           )
           SELECT * FROM passing WHERE rn <= $9 ORDER BY movie_id, rn""",
        f.starts_after,
        f.starts_before,
        f.movie_ids,
        f.theater_ids,
        f.max_price_cents,
        f.seat_category,
        f.at_time,
        f.at_slack_min,
        f.per_movie,
    )
    return [dict(r) for r in rows]
