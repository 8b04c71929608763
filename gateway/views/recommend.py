"""Recommendations: what to see next among the movies playing near the customer.

The model (through Serve, within its budget) folds the customer in from every movie they
booked, so a booking made a minute ago already moves the list. A customer the model cannot
place (no bookings, or none it knows) gets the cold-start rule: what sells in their city,
first the genres they picked. The same rule answers when the model is slow, failing or absent.
Every answer says which of the two it came from.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import storage
from gateway import keys
from gateway.endpoint import Call
from gateway.errors import ValidationFailed
from gateway.showinfo import TtlCache
from serve.client import Answer
from storage import taste

PLAYING_TTL_S = 60.0
COLD_START = "cold_start"


def playing_cache(pool: Any) -> TtlCache[list[taste.Playing]]:
    """What plays in a city over the coming days, by (city, days, hour), for a minute."""

    async def load(key: tuple[int, int, dt.datetime]) -> list[taste.Playing]:
        city_id, days, hour = key
        async with pool.acquire() as conn:
            return await taste.playing_near(conn, city_id, hour, days)

    return TtlCache(load, PLAYING_TTL_S)


def popular_first(
    playing: list[taste.Playing], genres: tuple[str, ...], seen: set[int], limit: int
) -> list[tuple[int, float]]:
    """The cold-start rule: bookings in the city lately (dampened), how much of it is on, and
    a lift for each picked genre the movie has; movies already booked are left out."""
    picked = set(genres)
    scored = []
    for p in playing:
        if p.movie_id in seen:
            continue
        score = math.log1p(p.recent_bookings) + 0.5 * math.log1p(p.show_count)
        score *= 1.0 + 0.5 * len(picked.intersection(p.genres))
        scored.append((p.movie_id, round(score, 4)))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:limit]


async def recommendations(call: Call) -> dict[str, Any]:
    q = call.query
    user_id = call.principal.user_id if call.principal is not None else None
    async with call.app[keys.POOL].acquire() as conn:
        profile = await taste.get_taste(conn, user_id) if user_id is not None else None
        history = await taste.movie_history(conn, user_id) if user_id is not None else []
        city_id = q.city_id or (profile.home_city_id if profile else None)
        if city_id is None:
            raise ValidationFailed(
                "give city_id: there is no home city to recommend for",
                {"field": "city_id"},
                code="city_required",
            )
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM cities WHERE id = $1)", city_id):
            raise storage.NotFound(f"no city {city_id}", {"city_id": city_id})
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    playing = await call.app[keys.RECOMMEND_PLAYING]((city_id, q.days, hour))
    genres = tuple(q.genres) if q.genres else (profile.favourite_genres if profile else ())
    seen = set(history)

    def rule() -> list[tuple[int, float]]:
        return popular_first(playing, genres, seen, q.limit)

    answer: Answer[Any]
    if history and playing:
        most = max(p.show_count for p in playing)
        candidates = {p.movie_id: p.show_count / most for p in playing}
        answer = await call.app[keys.MODELS].recommender(
            history, candidates, q.limit, fallback=rule
        )
        if answer.source == "model" and not answer.value:  # none of their movies is known
            answer = Answer(rule(), "fallback", None, COLD_START)
    else:
        answer = Answer(rule(), "fallback", None, COLD_START)
    by_id = {p.movie_id: p for p in playing}
    items = [
        _item(by_id[int(movie_id)], float(score))
        for movie_id, score in answer.value
        if int(movie_id) in by_id
    ]
    monitor_shown(call, user_id, history, answer, [item["movie_id"] for item in items])
    return {"city_id": city_id, "days": q.days, "items": items, **answer.describe()}


def monitor_shown(
    call: Call, user_id: int | None, history: list[int], answer: Answer[Any], shown: list[int]
) -> None:
    """Count a recommender answer for model monitoring: its input, its size, the movies shown
    (here and on the home page)."""
    monitor = call.app[keys.MODELS].monitor
    monitor.count("recommender", "requests")
    if answer.reason == COLD_START:
        monitor.count("recommender", "cold_start")
    if history:
        monitor.inputs("recommender", {"movies_booked": len(set(history))})
    monitor.prediction("recommender", len(shown))
    monitor.recommended(user_id, shown, answer.source, dt.datetime.now(dt.UTC))


def _item(p: taste.Playing, score: float) -> dict[str, Any]:
    return {
        "movie_id": p.movie_id,
        "title": p.title,
        "genres": list(p.genres),
        "score": score,
        "show_count": p.show_count,
        "first_start": p.first_start.isoformat(),
    }


async def set_genres(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        picked = await taste.set_favourite_genres(conn, call.user.user_id, call.body.genres)
    return {"favourite_genres": list(picked)}


async def get_genres(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        profile = await taste.get_taste(conn, call.user.user_id)
    return {"favourite_genres": list(profile.favourite_genres)}
