"""The home page's rules, pure: a customer's habits, why a movie is on their home, and the
order of its next shows.

    habits = habits_of(bookings)                  # storage.taste.PastBooking, newest first
    habits.usual_time                             # "evening"
    why = explain_by_genres(("drama",), habits.booked, favourite_genres=("comedy",))
    ranked = rank_shows(slots, favourites=[7], usual_time="evening", near=(40.7, -74.0))

Shows are ordered: at a favourite theater first (the theaters booked at most), then at the
customer's usual time of day (the part of the day most of their bookings started in), then the
nearest (when the customer said where they are), then the soonest. No I/O, no clock.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.search.catalog import distance_km

# The local day cut into parts at these hours: late night until 5, morning until noon,
# afternoon until 17, evening until 21, late night again after.
DAY_EDGES = (5, 12, 17, 21)
PARTS = ("late", "morning", "afternoon", "evening", "late")
FAVOURITES = 3  # theaters that count as favourites, the most booked first

BECAUSE_YOU_BOOKED, YOUR_GENRES, POPULAR = "because_you_booked", "your_genres", "popular_in_city"


def part_of_day(hour: int) -> str:
    """The part of the day a local start hour (0..23) falls in.

    >>> part_of_day(19), part_of_day(23), part_of_day(3)
    ('evening', 'late', 'late')
    """
    if not 0 <= hour <= 23:
        raise ValueError(f"an hour lies in 0..23, not {hour}")
    return PARTS[bisect.bisect_right(DAY_EDGES, hour)]


@dataclass(frozen=True)
class FavouriteTheater:
    theater_id: int
    name: str
    bookings: int


@dataclass(frozen=True)
class BookedMovie:
    movie_id: int
    title: str
    genres: tuple[str, ...]
    last_booked_at: dt.datetime


@dataclass(frozen=True)
class Habits:
    favourite_theaters: tuple[FavouriteTheater, ...]  # the most booked first
    usual_time: str | None  # a part of the day; None without bookings
    booked: tuple[BookedMovie, ...]  # each movie once, the latest booked first

    @property
    def favourite_ids(self) -> list[int]:
        return [t.theater_id for t in self.favourite_theaters]


NO_HABITS = Habits((), None, ())


def habits_of(bookings: Iterable[Any], favourites: int = FAVOURITES) -> Habits:
    """Habits from bookings (``storage.taste.PastBooking``: movie_id, title, genres,
    theater_id, theater_name, local_hour, booked_at). Ties go to the more recent booking."""
    rows = sorted(bookings, key=lambda b: b.booked_at, reverse=True)
    if not rows:
        return NO_HABITS
    at_theater = Counter(b.theater_id for b in rows)
    latest: dict[int, int] = {}  # theater -> position of its latest booking (0: newest)
    names: dict[int, str] = {}
    for n, b in enumerate(rows):
        latest.setdefault(b.theater_id, n)
        names.setdefault(b.theater_id, b.theater_name)
    theaters = sorted(at_theater, key=lambda t: (-at_theater[t], latest[t], t))[:favourites]
    part = [part_of_day(b.local_hour) for b in rows]
    parts = Counter(part)
    usual = next(p for p in part if parts[p] == max(parts.values()))  # the latest on a tie
    booked: dict[int, BookedMovie] = {}
    for b in rows:
        if b.movie_id not in booked:
            booked[b.movie_id] = BookedMovie(b.movie_id, b.title, tuple(b.genres), b.booked_at)
    return Habits(
        tuple(FavouriteTheater(t, names[t], at_theater[t]) for t in theaters),
        usual,
        tuple(booked.values()),
    )


@dataclass(frozen=True)
class Explanation:
    """Why a movie is on the home: ``reason`` one of because_you_booked, your_genres,
    popular_in_city; for the first, the booked movie it is most like."""

    reason: str
    because: BookedMovie | None = None
    similarity: float | None = None  # the model's, between the two movies' item vectors
    shared_genres: tuple[str, ...] = ()

    def public(self) -> dict[str, Any] | None:
        """The answer's ``because`` object (None unless a booked movie explains it)."""
        if self.because is None:
            return None
        return {
            "movie_id": self.because.movie_id,
            "title": self.because.title,
            "shared_genres": list(self.shared_genres),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
        }


def explain_by_genres(
    genres: Sequence[str], booked: Sequence[BookedMovie], favourite_genres: Sequence[str] = ()
) -> Explanation:
    """Without the model: the booked movie sharing the most genres (the latest booked on a
    tie); else "your genres" when the movie has a genre the customer picked; else popular."""
    own = set(genres)
    best: tuple[int, BookedMovie] | None = None
    for movie in booked:  # latest first: a later one wins only with more genres in common
        overlap = len(own.intersection(movie.genres))
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, movie)
    if best is not None:
        shared = tuple(g for g in genres if g in best[1].genres)
        return Explanation(BECAUSE_YOU_BOOKED, best[1], None, shared)
    picked = tuple(g for g in genres if g in set(favourite_genres))
    if picked:
        return Explanation(YOUR_GENRES, None, None, picked)
    return Explanation(POPULAR)


def explain_by_model(
    genres: Sequence[str],
    because_id: int | None,
    similarity: float | None,
    booked: Sequence[BookedMovie],
) -> Explanation | None:
    """The model's nearest booked movie as an explanation; None when it named none, one the
    customer's bookings do not show, or one no more alike than unrelated movies (similarity
    not above 0)."""
    if because_id is None or similarity is None or not similarity > 0:
        return None
    movie = next((m for m in booked if m.movie_id == because_id), None)
    if movie is None:
        return None
    shared = tuple(g for g in genres if g in movie.genres)
    return Explanation(BECAUSE_YOU_BOOKED, movie, float(similarity), shared)


@dataclass(frozen=True)
class Slot:
    """A show as the ranking sees it."""

    show_id: int
    theater_id: int
    starts_at: dt.datetime  # aware
    local_hour: int  # at the theater
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Ranked:
    slot: Slot
    favourite: bool
    at_usual_time: bool
    distance_km: float | None


def rank_shows(
    slots: Iterable[Slot],
    *,
    favourites: Sequence[int] = (),
    usual_time: str | None = None,
    near: tuple[float, float] | None = None,
) -> list[Ranked]:
    """``slots`` best first: favourite theaters, then the usual time of day, then the more
    favourite theater, then the nearest (theaters of unknown place last), then the soonest."""
    rank_of = {theater: n for n, theater in enumerate(favourites)}
    ranked = []
    for slot in slots:
        distance = None
        if near is not None and slot.latitude is not None and slot.longitude is not None:
            distance = distance_km(near, (slot.latitude, slot.longitude))
        usual = usual_time is not None and part_of_day(slot.local_hour) == usual_time
        ranked.append(Ranked(slot, slot.theater_id in rank_of, usual, distance))

    def key(r: Ranked) -> tuple[Any, ...]:
        far = r.distance_km if r.distance_km is not None else float("inf")
        nearness = far if near is not None else 0.0
        favourite_rank = rank_of.get(r.slot.theater_id, len(rank_of))
        return (
            not r.favourite,
            not r.at_usual_time,
            favourite_rank,
            nearness,
            r.slot.starts_at,
            r.slot.show_id,
        )

    return sorted(ranked, key=key)


def first_open(ranked: Sequence[Ranked], n: int, sold_out: Iterable[int] = ()) -> list[Ranked]:
    """The first ``n`` of ``ranked`` that are not sold out."""
    gone = set(sold_out)
    return [r for r in ranked if r.slot.show_id not in gone][:n]


ACCESSIBLE = frozenset({"wheelchair", "companion"})


def price_from(prices: Mapping[str, int]) -> int | None:
    """The lowest price of the seat categories anyone may buy (wheelchair spaces and their
    companion seats only when a show has nothing else); None without prices.

    >>> price_from({"standard": 1200, "premium": 1800, "wheelchair": 900})
    1200
    """
    open_to_all = [p for c, p in prices.items() if c not in ACCESSIBLE]
    chosen = open_to_all or list(prices.values())
    return min(chosen) if chosen else None
