"""The home page's pure rules: parts of the day, habits, explanations and the order of shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import home_rank
from gateway.home_rank import BookedMovie, Slot

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Booking:  # the fields of storage.taste.PastBooking the rules read
    movie_id: int
    title: str
    genres: tuple[str, ...]
    theater_id: int
    theater_name: str
    local_hour: int
    booked_at: dt.datetime


def _booking(
    movie: int, theater: int, hour: int, days_ago: int, genres: tuple[str, ...] = ()
) -> Booking:
    return Booking(
        movie, f"M{movie}", genres, theater, f"T{theater}", hour, T0 - dt.timedelta(days=days_ago)
    )


def test_parts_of_the_day() -> None:
    parts = [home_rank.part_of_day(h) for h in range(24)]
    assert (
        parts == ["late"] * 5 + ["morning"] * 7 + ["afternoon"] * 5 + ["evening"] * 4 + ["late"] * 3
    )
    with pytest.raises(ValueError):
        home_rank.part_of_day(24)


def test_habits_count_bookings_and_break_ties_by_the_latest() -> None:
    habits = home_rank.habits_of(
        [
            _booking(1, 10, 19, days_ago=30),
            _booking(2, 10, 20, days_ago=20),
            _booking(3, 11, 10, days_ago=2),  # 11 ties with 12 at two; 11 was booked later
            _booking(1, 11, 9, days_ago=9),
            _booking(4, 12, 14, days_ago=3),
            _booking(5, 12, 15, days_ago=4),
            _booking(6, 13, 13, days_ago=1),
        ]
    )
    assert habits.favourite_ids == [11, 12, 10]  # three of them, 13 left out
    assert [t.bookings for t in habits.favourite_theaters] == [2, 2, 2]
    # afternoon (3 bookings) beats evening and morning (2 each)
    assert habits.usual_time == "afternoon"
    assert [m.movie_id for m in habits.booked] == [6, 3, 4, 5, 1, 2]  # each once, latest first
    tie = home_rank.habits_of([_booking(1, 1, 9, 5), _booking(2, 1, 20, 1)])
    assert tie.usual_time == "evening"  # one each: the latest
    assert home_rank.habits_of([]) == home_rank.NO_HABITS


def _movie(movie: int, genres: tuple[str, ...], days_ago: int) -> BookedMovie:
    return BookedMovie(movie, f"M{movie}", genres, T0 - dt.timedelta(days=days_ago))


def test_explained_by_the_booked_movie_with_most_genres_in_common() -> None:
    booked = [  # latest first, as habits give them
        _movie(1, ("action",), 1),
        _movie(2, ("action", "thriller"), 5),
        _movie(3, ("action", "thriller"), 9),
        _movie(4, ("drama",), 12),
    ]
    why = home_rank.explain_by_genres(("thriller", "action", "crime"), booked)
    assert why.reason == "because_you_booked" and why.because == booked[1]  # 2 in common, latest
    assert why.shared_genres == ("thriller", "action")
    assert home_rank.explain_by_genres(("action",), booked).because == booked[0]
    assert home_rank.explain_by_genres(("comedy",), booked, ("comedy",)).reason == "your_genres"
    popular = home_rank.explain_by_genres(("comedy",), booked, ("drama",))
    assert popular.reason == "popular_in_city" and popular.public() is None
    assert home_rank.explain_by_genres(("drama",), [], ()).reason == "popular_in_city"


GENRES = st.sampled_from(["action", "comedy", "drama", "horror", "romance", "sci-fi"])


@given(
    genres=st.lists(GENRES, max_size=3, unique=True),
    booked=st.lists(st.lists(GENRES, max_size=3, unique=True), max_size=6),
)
def test_the_explanation_shares_the_most_genres(genres: list[str], booked: list[list[str]]) -> None:
    movies = [_movie(n, tuple(g), days_ago=n) for n, g in enumerate(booked)]
    why = home_rank.explain_by_genres(tuple(genres), movies)
    overlaps = [len(set(genres) & set(g)) for g in booked]
    if not any(overlaps):
        assert why.because is None
        return
    assert why.because is not None
    best = max(overlaps)
    assert len(set(why.shared_genres)) == best == overlaps[why.because.movie_id]
    assert why.because.movie_id == overlaps.index(best)  # the latest booked of the best


def test_the_models_explanation_needs_a_booked_movie_alike() -> None:
    booked = [_movie(7, ("action", "thriller"), 1)]
    why = home_rank.explain_by_model(("action",), 7, 0.42, booked)
    assert why is not None and why.because == booked[0] and why.shared_genres == ("action",)
    assert why.public() == {
        "movie_id": 7,
        "title": "M7",
        "shared_genres": ["action"],
        "similarity": 0.42,
    }
    assert home_rank.explain_by_model(("action",), 7, 0.0, booked) is None  # not alike
    assert home_rank.explain_by_model(("action",), 8, 0.9, booked) is None  # not theirs
    assert home_rank.explain_by_model(("action",), None, None, booked) is None


def _slot(
    show: int,
    theater: int,
    hours_ahead: int,
    local_hour: int,
    place: tuple[float, float] | None = None,
) -> Slot:
    lat, lon = place if place else (None, None)
    return Slot(show, theater, T0 + dt.timedelta(hours=hours_ahead), local_hour, lat, lon)


def test_favourite_theaters_then_the_usual_time_then_nearest_then_soonest() -> None:
    slots = [
        _slot(1, theater=5, hours_ahead=1, local_hour=10, place=(40.0, -74.0)),  # here
        _slot(2, theater=6, hours_ahead=2, local_hour=19, place=(41.0, -74.0)),  # 111 km
        _slot(3, theater=7, hours_ahead=30, local_hour=20, place=(40.5, -74.0)),  # favourite
        _slot(4, theater=8, hours_ahead=3, local_hour=19),  # nowhere known
        _slot(5, theater=5, hours_ahead=5, local_hour=18, place=(40.0, -74.0)),
        _slot(6, theater=9, hours_ahead=4, local_hour=9, place=(40.2, -74.0)),  # 2nd favourite
    ]
    ranked = home_rank.rank_shows(
        slots, favourites=[7, 9], usual_time="evening", near=(40.0, -74.0)
    )
    assert [r.slot.show_id for r in ranked] == [3, 6, 5, 2, 4, 1]
    assert [r.favourite for r in ranked] == [True, True, False, False, False, False]
    assert [r.at_usual_time for r in ranked] == [True, False, True, True, True, False]
    assert ranked[2].distance_km == 0.0 and ranked[4].distance_km is None
    assert round(ranked[3].distance_km or 0) == 111
    plain = home_rank.rank_shows(slots)  # a visitor who did not say where: the soonest
    assert [r.slot.show_id for r in plain] == [1, 2, 4, 6, 5, 3]
    assert all(r.distance_km is None and not r.favourite for r in plain)


SLOTS = st.lists(
    st.builds(
        _slot,
        show=st.integers(1, 10**6),
        theater=st.integers(1, 6),
        hours_ahead=st.integers(0, 24 * 7),
        local_hour=st.integers(0, 23),
        place=st.one_of(st.none(), st.tuples(st.floats(39.0, 41.0), st.floats(-75.0, -73.0))),
    ),
    max_size=30,
    unique_by=lambda s: s.show_id,
)


@given(
    slots=SLOTS,
    favourites=st.lists(st.integers(1, 6), max_size=3, unique=True),
    usual=st.sampled_from([None, "morning", "afternoon", "evening", "late"]),
    near=st.one_of(st.none(), st.tuples(st.floats(39.0, 41.0), st.floats(-75.0, -73.0))),
)
def test_the_order_holds_for_any_shows(
    slots: list[Slot],
    favourites: list[int],
    usual: str | None,
    near: tuple[float, float] | None,
) -> None:
    ranked = home_rank.rank_shows(slots, favourites=favourites, usual_time=usual, near=near)
    assert sorted(r.slot.show_id for r in ranked) == sorted(s.show_id for s in slots)
    for earlier, later in zip(ranked, ranked[1:], strict=False):
        assert earlier.favourite >= later.favourite
        if earlier.favourite == later.favourite:
            assert earlier.at_usual_time >= later.at_usual_time
        same_group = (earlier.favourite, earlier.at_usual_time) == (
            later.favourite,
            later.at_usual_time,
        )
        if same_group and not earlier.favourite:
            if near is None:
                assert earlier.slot.starts_at <= later.slot.starts_at
            elif earlier.distance_km is not None and later.distance_km is not None:
                assert earlier.distance_km <= later.distance_km
            else:
                assert later.distance_km is None  # unknown places last
    for r in ranked:
        assert r.favourite == (r.slot.theater_id in favourites)
        assert r.at_usual_time == (
            usual is not None and home_rank.part_of_day(r.slot.local_hour) == usual
        )


def test_first_open_skips_the_sold_out() -> None:
    ranked = home_rank.rank_shows([_slot(n, 1, n, 19) for n in range(1, 6)])
    assert [r.slot.show_id for r in home_rank.first_open(ranked, 3, sold_out=[2])] == [1, 3, 4]
    assert home_rank.first_open(ranked, 2, sold_out=range(1, 6)) == []


def test_the_price_from_is_what_anyone_may_buy() -> None:
    assert home_rank.price_from({"standard": 1200, "premium": 1800, "wheelchair": 900}) == 1200
    assert home_rank.price_from({"wheelchair": 900, "companion": 950}) == 900
    assert home_rank.price_from({}) is None
