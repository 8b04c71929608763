"""The home page: for a customer, movies recommended for them with why ("because you booked
…") and their next shows, favourite theaters and usual time of day first; for a visitor, what
sells in the chosen city lately.

The recommendations come from the recommender deployment through the call ``/recommendations``
makes (``keys.MODELS.recommender``), asked also for the booked movie nearest to each one; when
it is slow, failing or absent, or knows none of the customer's movies, the cold-start rule
answers and the explanations come from shared genres. Prices come from the pricing deployment
(``gateway.home_prices``). A page costs a handful of queries (the customer's taste, history
and bookings, the city, the seats of the shows on it); what plays in the city and each movie's
shows there are cached for every customer (``gateway.home_state``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import storage
from gateway import home_rank, keys
from gateway.endpoint import Call
from gateway.errors import ValidationFailed
from gateway.home_prices import prices_from
from gateway.home_rank import Explanation, Habits, Ranked
from gateway.home_state import home_state
from gateway.views import recommend
from gateway.views.recommend import COLD_START, popular_first
from serve.client import Answer
from storage import taste

DAYS = 7  # what plays over the coming week is a candidate (as for /recommendations)
EXTRA_MOVIES = 4  # asked beyond the limit, in case some have no open show left
POPULAR_FOR_CUSTOMERS = 4  # movies in a customer's "popular in the city", below their own
SPARE_SHOWS = 2  # shows looked at beyond those shown, in case some are sold out


@dataclass
class Section:
    kind: str  # "recommended" or "popular"
    title: str
    limit: int
    picks: list[tuple[int, float | None, Explanation]]  # (movie, score, why), best first
    shown: list[tuple[int, float | None, Explanation, list[Ranked]]] = field(default_factory=list)


async def home(call: Call) -> dict[str, Any]:
    q = call.query
    if (q.lat is None) != (q.lon is None):
        raise ValidationFailed("send lat and lon together", {"fields": ["lat", "lon"]})
    near = (q.lat, q.lon) if q.lat is not None else None
    user_id = call.principal.user_id if call.principal is not None else None
    now = dt.datetime.now(dt.UTC)
    profile, history, bookings, city = await _read(call, user_id, q.city_id)
    hour = now.replace(minute=0, second=0, microsecond=0)
    playing = await call.app[keys.RECOMMEND_PLAYING]((city["id"], DAYS, hour))
    habits = home_rank.habits_of(bookings)
    popular = f"Popular in {city['name']}"
    if profile is not None:
        answer, mine = await _recommended(call, profile, history, habits, playing, q.limit)
        seen = set(history) | {movie for movie, _, _ in mine}
        sections = [
            Section("recommended", "Recommended for you", q.limit, mine),
            Section("popular", popular, POPULAR_FOR_CUSTOMERS, _popular(playing, seen)),
        ]
    else:
        answer = Answer(None, "fallback", None, COLD_START)
        sections = [Section("popular", popular, q.limit, _popular(playing, set(), q.limit))]
    state = home_state(call.app)
    where = (city["id"], near)
    shows, seats = await _next_shows(call, where, sections, habits, q.shows_per_movie, now)
    on_page = [shows[r.slot.show_id] for s in sections for *_, rs in s.shown for r in rs]
    lowest, pricing = await prices_from(call.app, state, on_page, seats, user_id, now)
    recommend.monitor_shown(
        call, user_id, history, answer, [movie for movie, *_ in sections[0].shown]
    )
    page = _Page({p.movie_id: p for p in playing}, shows, lowest, profile is not None)
    body: dict[str, Any] = {
        "personalized": profile is not None,
        **answer.describe(),
        "city": city,
        "sections": [page.section(s) for s in sections if s.shown],
        "pricing": pricing,
    }
    if profile is not None:
        body["favourite_theaters"] = [vars(t) for t in habits.favourite_theaters]
        body["usual_time_of_day"] = habits.usual_time
    return body


async def _next_shows(
    call: Call,
    where: tuple[int, tuple[float, float] | None],
    sections: list[Section],
    habits: Habits,
    per_movie: int,
    now: dt.datetime,
) -> tuple[dict[int, taste.UpcomingShow], dict[int, dict[str, taste.CategoryNow]]]:
    """Fill each section with its movies that have an open show in the city (up to its
    limit), each with its best ``per_movie`` shows (``where``: the city, and where the
    customer is if they said); the shows looked at by id, and their seats now."""
    city_id, near = where
    movies = [movie for section in sections for movie, _, _ in section.picks]
    upcoming = await home_state(call.app).shows(city_id, movies, now)
    ranked = {
        movie: home_rank.rank_shows(
            (_slot(s) for s in upcoming[movie]),
            favourites=habits.favourite_ids,
            usual_time=habits.usual_time,
            near=near,
        )
        for movie in movies
    }
    look_at = [r.slot.show_id for rs in ranked.values() for r in rs[: per_movie + SPARE_SHOWS]]
    async with call.app[keys.POOL].acquire() as conn:
        seats = await taste.seats_now(conn, look_at, now)
    sold_out = [show for show, categories in seats.items() if _full(categories)]
    for section in sections:
        for movie, score, why in section.picks:
            best = home_rank.first_open(ranked[movie], per_movie, sold_out)
            if best and len(section.shown) < section.limit:
                section.shown.append((movie, score, why, best))
    return {s.show_id: s for movie in movies for s in upcoming[movie]}, seats


async def _read(
    call: Call, user_id: int | None, city_id: int | None
) -> tuple[taste.Taste | None, list[int], list[taste.PastBooking], dict[str, Any]]:
    """The customer's taste, booked movies and bookings (none for a visitor), and the city."""
    async with call.app[keys.POOL].acquire() as conn:
        profile, history, bookings = None, [], []
        if user_id is not None:
            profile = await taste.get_taste(conn, user_id)
            history = await taste.movie_history(conn, user_id)
            bookings = await taste.past_bookings(conn, user_id)
        city_id = city_id or (profile.home_city_id if profile else None)
        if city_id is None:
            raise ValidationFailed(
                "give city_id: there is no home city to show",
                {"field": "city_id"},
                code="city_required",
            )
        row = await conn.fetchrow("SELECT id, name, country FROM cities WHERE id = $1", city_id)
    if row is None:
        raise storage.NotFound(f"no city {city_id}", {"city_id": city_id})
    return profile, history, bookings, dict(row)


async def _recommended(
    call: Call,
    profile: taste.Taste,
    history: list[int],
    habits: Habits,
    playing: list[taste.Playing],
    limit: int,
) -> tuple[Answer[Any], list[tuple[int, float | None, Explanation]]]:
    """The recommender's movies for the customer (or the cold-start rule's), each with why."""
    genres, k = profile.favourite_genres, limit + EXTRA_MOVIES

    def rule() -> list[Any]:
        return [[movie, score] for movie, score in popular_first(playing, genres, set(history), k)]

    answer: Answer[Any]
    if history and playing:
        most = max(p.show_count for p in playing)
        candidates = {p.movie_id: p.show_count / most for p in playing}
        answer = await call.app[keys.MODELS].recommender(
            history, candidates, k, True, fallback=rule
        )
        if answer.source == "model" and not answer.value:  # none of their movies is known
            answer = Answer(rule(), "fallback", None, COLD_START)
    else:
        answer = Answer(rule(), "fallback", None, COLD_START)
    by_id = {p.movie_id: p for p in playing}
    picks: list[tuple[int, float | None, Explanation]] = []
    for item in answer.value:
        movie = by_id.get(int(item[0]))
        if movie is None:
            continue
        why = None
        if answer.source == "model" and len(item) >= 4:
            why = home_rank.explain_by_model(movie.genres, item[2], item[3], habits.booked)
        why = why or home_rank.explain_by_genres(movie.genres, habits.booked, genres)
        picks.append((movie.movie_id, float(item[1]), why))
    return answer, picks


def _popular(
    playing: list[taste.Playing], seen: set[int], limit: int = POPULAR_FOR_CUSTOMERS
) -> list[tuple[int, float | None, Explanation]]:
    """What sells in the city lately (the cold-start rule without genres), unseen first."""
    why = Explanation(home_rank.POPULAR)
    return [(m, s, why) for m, s in popular_first(playing, (), seen, limit + EXTRA_MOVIES)]


def _slot(show: taste.UpcomingShow) -> home_rank.Slot:
    hour = show.starts_at.astimezone(ZoneInfo(show.time_zone)).hour
    return home_rank.Slot(
        show.show_id, show.theater_id, show.starts_at, hour, show.latitude, show.longitude
    )


def _full(categories: dict[str, taste.CategoryNow]) -> bool:
    return sum(c.taken for c in categories.values()) >= sum(c.seats for c in categories.values())


@dataclass(frozen=True)
class _Page:
    """What the answer's movies and shows are written from."""

    movies: dict[int, taste.Playing]
    shows: dict[int, taste.UpcomingShow]
    lowest: dict[int, int | None]
    personal: bool

    def section(self, section: Section) -> dict[str, Any]:
        return {
            "kind": section.kind,
            "title": section.title,
            "movies": [self.movie(*shown) for shown in section.shown],
        }

    def movie(
        self, movie_id: int, score: float | None, why: Explanation, ranked: list[Ranked]
    ) -> dict[str, Any]:
        playing = self.movies[movie_id]
        first = self.shows[ranked[0].slot.show_id]
        return {
            "movie_id": movie_id,
            "title": playing.title,
            "genres": list(playing.genres),
            "runtime_min": first.runtime_min,
            "certificate": first.certificate,
            "language": first.language,
            "score": None if score is None else round(score, 4),
            "reason": why.reason,
            "because": why.public() if self.personal else None,
            "next_shows": [self.show(r) for r in ranked],
        }

    def show(self, ranked: Ranked) -> dict[str, Any]:
        show = self.shows[ranked.slot.show_id]
        local = show.starts_at.astimezone(ZoneInfo(show.time_zone))
        out: dict[str, Any] = {
            "show_id": show.show_id,
            "theater_id": show.theater_id,
            "theater_name": show.theater_name,
            "screen_name": show.screen_name,
            "starts_at": show.starts_at.astimezone(dt.UTC).isoformat(),
            "local_time": local.isoformat(),
            "time_of_day": home_rank.part_of_day(local.hour),
            "status": show.status,
            "price_from_cents": self.lowest.get(show.show_id),
            "currency": show.currency,
        }
        if ranked.distance_km is not None:
            out["distance_km"] = round(ranked.distance_km, 2)
        if self.personal:
            out["favourite_theater"] = ranked.favourite
            out["at_usual_time"] = ranked.at_usual_time
        return out
