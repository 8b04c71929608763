"""Browsing: cities, what plays where and when, one show, its live seat map."""

from __future__ import annotations

from typing import Any

from aiohttp import web

import storage
from gateway import keys, serialize
from gateway.endpoint import Call
from gateway.ops.analytics_funnel import count_view


async def list_cities(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        cities = await storage.list_cities(conn)
    return {"cities": [serialize.city(c) for c in cities]}


async def movies_in_city(call: Call) -> dict[str, Any]:
    city_id, day = call.path.city_id, call.query.date
    async with call.app[keys.POOL].acquire() as conn:
        await _check_city(conn, city_id)
        movies = await storage.movies_playing(conn, city_id, day)
    return {
        "city_id": city_id,
        "date": day.isoformat(),
        "movies": [serialize.movie_playing(m) for m in movies],
    }


async def shows_of_movie(call: Call) -> dict[str, Any]:
    city_id, movie_id, day = call.path.city_id, call.path.movie_id, call.query.date
    async with call.app[keys.POOL].acquire() as conn:
        await _check_city(conn, city_id)
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM movies WHERE id = $1)", movie_id):
            raise storage.NotFound(f"no movie {movie_id}", {"movie_id": movie_id})
        theaters = await storage.shows_of_movie(conn, movie_id, city_id, day)
    return {
        "city_id": city_id,
        "movie_id": movie_id,
        "date": day.isoformat(),
        "theaters": [serialize.theater_shows(t) for t in theaters],
    }


async def _check_city(conn: Any, city_id: int) -> None:
    if not await conn.fetchval("SELECT EXISTS (SELECT FROM cities WHERE id = $1)", city_id):
        raise storage.NotFound(f"no city {city_id}", {"city_id": city_id})


async def get_theater(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        return serialize.theater(await storage.get_theater(conn, call.path.theater_id))


async def theater_day(call: Call) -> dict[str, Any]:
    theater_id, day = call.path.theater_id, call.query.date
    async with call.app[keys.POOL].acquire() as conn:
        theater = await storage.get_theater(conn, theater_id)
        entries = await storage.theater_shows(conn, theater_id, day)
    return {
        "theater": serialize.theater(theater),
        "date": day.isoformat(),
        "shows": [serialize.schedule_entry(e) for e in entries],
    }


async def get_show(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        return serialize.show(await storage.get_show(conn, call.path.show_id))


async def seatmap(call: Call) -> web.Response:
    """From the process's live mirror of the show (kept current by its Redis deltas)."""
    version, body = await call.app[keys.FANOUT].seatmap(call.path.show_id)
    count_view(call.app, call.path.show_id)
    response = web.Response(body=body, content_type="application/json")
    response.headers["ETag"] = f'"{call.path.show_id}-{version}"'
    response.headers["Cache-Control"] = "no-cache"
    return response
