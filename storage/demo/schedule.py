"""Show times and prices: each screen's day, packed between 10:00 and a last start at 23:30
local time with a 20-minute cleaning gap after every show, movies chosen by popularity and
recency, prices by city, theater, seat category, time of day and weekday."""

from __future__ import annotations

import datetime as dt
import math
import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from zoneinfo import ZoneInfo

from storage.demo.catalog import Movie, Screen, Theater

CLEANING_MIN = 20
FIRST_START, LAST_START = 10 * 60, 23 * 60 + 30  # minutes after local midnight
FUTURE_SHOWS_PER_SCREEN_DAY = 6
PAST_SHOWS_PER_SCREEN_DAY = 3  # the past year is kept lighter so a default run stays quick
_SHORT_RUNTIME = 115
# Standard price by start time (matinees cheap, evenings dear) and weekday (cheap Tuesdays).
_TIME_FACTOR = ((16 * 60, 0.78), (18 * 60, 0.92), (21 * 60 + 30, 1.1), (24 * 60, 1.0))
_DAY_FACTOR = (0.95, 0.75, 0.95, 1.0, 1.1, 1.12, 1.05)  # Monday … Sunday
_UTC = dt.UTC


@dataclass(slots=True)
class Show:
    id: int
    theater: Theater
    screen: Screen
    movie: Movie
    starts_at: dt.datetime
    busy_until: dt.datetime
    slot: int  # index into people.SLOTS
    prices: dict[str, int]
    status: str
    sale_opens_at: dt.datetime | None
    price_pull: tuple[float, float, float]  # appeal of its price to CHEAP, MIDDLE, LAVISH

    @property
    def show_date(self) -> dt.date:
        return self.starts_at.date()


@dataclass(frozen=True, slots=True)
class Chart:
    """The movies playing on one day, with their weights for programming a screen."""

    movies: list[Movie]
    cumulative: list[float]
    short: list[Movie]

    @classmethod
    def for_day(cls, movies: list[Movie], day: dt.date) -> Chart:
        weighted = []
        for movie in movies:
            age = (day - movie.release_date).days
            if 0 <= age <= movie.run_days:
                opening = 1.5 if age < 7 else 1.0
                weighted.append((movie, movie.popularity * opening * math.exp(-age / 30)))
        if len(weighted) < 3:  # a thin week: bring back the latest releases
            released = sorted(
                (m for m in movies if m.release_date <= day), key=lambda m: m.release_date
            )[-3:]
            seen = {m.id for m, _ in weighted}
            weighted += [(m, 0.2 * m.popularity) for m in released if m.id not in seen]
        chosen = [m for m, _ in weighted]
        cumulative = list(accumulate(w for _, w in weighted))
        return cls(chosen, cumulative, [m for m in chosen if m.runtime_min <= _SHORT_RUNTIME])

    def pick(self, rng: random.Random) -> Movie:
        return self.movies[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _slot_minutes(movie: Movie) -> int:
    return math.ceil((movie.runtime_min + CLEANING_MIN) / 5) * 5


def program_screen(
    rng: random.Random, chart: Chart, count: int, main: Movie | None = None
) -> list[tuple[int, Movie]]:
    """(start minute, movie) for one screen's day: ``count`` shows that fit, none overlapping."""
    main = main or chart.pick(rng)
    second = chart.pick(rng) if rng.random() < 0.35 else main
    lineup = [main if i < count // 2 else second for i in range(count)]
    window = LAST_START - FIRST_START
    while sum(_slot_minutes(m) for m in lineup[:-1]) > window:
        longest = max(range(len(lineup) - 1), key=lambda i: lineup[i].runtime_min)
        shorter = chart.short or [min(chart.movies, key=lambda m: m.runtime_min)]
        swap = rng.choice(shorter)
        if swap.runtime_min < lineup[longest].runtime_min:
            lineup[longest] = swap
        else:  # nothing shorter is playing: one show fewer
            lineup.pop()
    slack = window - sum(_slot_minutes(m) for m in lineup[:-1])
    shares = [rng.random() for _ in range(len(lineup) + 1)]
    gaps = [int(slack * s / sum(shares)) // 5 * 5 for s in shares]
    starts: list[tuple[int, Movie]] = []
    minute = FIRST_START + gaps[0]
    for index, movie in enumerate(lineup):
        starts.append((minute, movie))
        minute += _slot_minutes(movie) + gaps[index + 1]
    return starts


def slot_of(minute: int) -> int:
    return 0 if minute < 13 * 60 else 1 if minute < 17 * 60 else 2 if minute < 21 * 60 else 3


def price_list(
    theater: Theater, screen: Screen, day: dt.date, minute: int
) -> tuple[dict[str, int], float]:
    """Prices per seat category of the screen, and the standard price against the theater's
    usual evening price (below 1 is a bargain)."""
    time_factor = next(factor for until, factor in _TIME_FACTOR if minute < until)
    usual = theater.city.base_price * theater.price_factor
    standard = usual * time_factor * _DAY_FACTOR[day.weekday()]
    by_category = {
        "standard": standard,
        "premium": standard * theater.premium_uplift,
        "recliner": standard * 1.8,
        "wheelchair": standard,
        "companion": standard,
    }
    prices = {c: int(round(by_category[c] / 25) * 25) for c in screen.categories}
    return prices, standard / usual


class Clock:
    """Local wall-clock minutes to UTC instants, one offset per zone and day (shows start
    between 10:00 and 23:30, never across a daylight-saving change, which happens at night)."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, dt.date], dt.timedelta] = {}

    def to_utc(self, zone: str, day: dt.date, minute: int) -> dt.datetime:
        offset = self._offsets.get((zone, day))
        if offset is None:
            noon = dt.datetime.combine(day, dt.time(12), tzinfo=ZoneInfo(zone))
            offset = self._offsets[(zone, day)] = noon.utcoffset() or dt.timedelta()
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=_UTC)
        return midnight + dt.timedelta(minutes=minute) - offset


BLOCKBUSTER = 6.0  # popularity from which a movie's opening nights go on flash sale


def shows_for_day(
    rng: random.Random,
    day: dt.date,
    today: dt.date,
    theaters: list[Theater],
    chart: Chart,
    clock: Clock,
    first_id: int,
) -> list[Show]:
    """Every screen's shows on ``day`` (local dates), ids from ``first_id`` on."""
    future = day >= today
    count = FUTURE_SHOWS_PER_SCREEN_DAY if future else PAST_SHOWS_PER_SCREEN_DAY
    opening = [m for m in chart.movies if m.release_date == day and m.popularity >= BLOCKBUSTER]
    shows: list[Show] = []
    for theater in theaters:
        zone = theater.city.time_zone
        for number, screen in enumerate(theater.screens):
            main = opening[0] if future and opening and number == 0 else None
            for minute, movie in program_screen(rng, chart, count, main):
                starts = clock.to_utc(zone, day, minute)
                prices, relative = price_list(theater, screen, day, minute)
                status, opens = "on_sale", None
                if main is not None and movie is main and 17 * 60 <= minute < 21 * 60 + 30:
                    status = "flash_sale"
                    opens = min(
                        starts - dt.timedelta(hours=1),
                        max(starts - dt.timedelta(days=2), clock.to_utc(zone, today, 12 * 60)),
                    )
                elif future and (day - today).days >= 4 and rng.random() < 0.5:
                    status = "scheduled"
                shows.append(
                    Show(
                        first_id + len(shows),
                        theater,
                        screen,
                        movie,
                        starts,
                        starts + dt.timedelta(minutes=movie.runtime_min + CLEANING_MIN),
                        slot_of(minute),
                        prices,
                        status,
                        opens,
                        (relative**-3.0, relative**-1.0, relative**-0.2),
                    )
                )
    return shows
