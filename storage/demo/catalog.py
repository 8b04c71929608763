"""The demo catalog: cities, theaters with their screens, and movies."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from storage.demo import words
from storage.demo.layouts import build_layout, layout_summary
from storage.demo.places import places
from storage.demo.seating import Seating

SCREENS_PER_THEATER = 8


@dataclass(frozen=True, slots=True)
class City:
    id: int
    name: str
    country: str
    time_zone: str
    latitude: float
    longitude: float
    base_price: int  # a standard evening seat, minor units


@dataclass(frozen=True, slots=True)
class Screen:
    id: int
    theater_id: int
    name: str
    layout: dict[str, Any]
    seat_count: int
    categories: list[str]
    seating: Seating


@dataclass(slots=True)
class Theater:
    id: int
    city: City
    name: str
    address: str
    latitude: float
    longitude: float
    price_factor: float  # this theater against its city's prices
    premium_uplift: float  # premium seats cost this much more than standard ones
    screens: list[Screen] = field(default_factory=list)


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity
class Movie:
    id: int
    title: str
    genres: list[str]
    runtime_min: int
    certificate: str
    language: str
    release_date: dt.date
    cast_members: list[str]
    synopsis: str
    popularity: float  # relative demand; a few blockbusters far above the rest
    run_days: int  # how long theaters keep it after release


def sizes(scale: float) -> tuple[int, int, int]:
    """(cities, theaters, movies) for a scale: 10, 60 and 200 at scale 1."""
    theaters = max(2, round(60 * scale))
    cities = max(1, round(theaters / 6), min(theaters // 2, 10))
    movies = max(20, round(200 * math.sqrt(scale)))
    return cities, theaters, movies


def make_cities(rng: random.Random, count: int) -> list[City]:
    return [
        City(
            i,
            p.name,
            p.country,
            p.time_zone,
            p.latitude,
            p.longitude,
            rng.randrange(1000, 1601, 25),
        )
        for i, p in enumerate(places(count), start=1)
    ]


def _spread(rng: random.Random, total: int, bins: int) -> list[int]:
    """``total`` items over ``bins`` (each at least one), unevenly: the first bins get more."""
    counts = [1] * bins
    weights = [1.0 / (i + 1) ** 0.8 * rng.uniform(0.7, 1.3) for i in range(bins)]
    for _ in range(total - bins):
        counts[rng.choices(range(bins), weights)[0]] += 1
    return counts


def make_theaters(rng: random.Random, cities: list[City], count: int) -> list[Theater]:
    theaters: list[Theater] = []
    screen_id = 0
    for city, n in zip(cities, _spread(rng, count, len(cities)), strict=True):
        names: set[str] = set()
        while len(names) < n:
            name = f"{rng.choice(words.THEATER_WORDS)} {rng.choice(words.DISTRICTS)}"
            names.add(name if name not in names else f"{name} {len(names) + 1}")
        for name in sorted(names):
            theater = Theater(
                id=len(theaters) + 1,
                city=city,
                name=name,
                address=f"{rng.randrange(10, 9990)} {rng.choice(words.STREETS)} "
                f"{rng.choice(words.STREET_KINDS)}",
                latitude=round(city.latitude + rng.uniform(-0.12, 0.12), 5),
                longitude=round(city.longitude + rng.uniform(-0.12, 0.12), 5),
                price_factor=rng.uniform(0.9, 1.12),
                premium_uplift=rng.uniform(1.3, 1.6),
            )
            for number, size in enumerate(_screen_sizes(rng), start=1):
                screen_id += 1
                layout = build_layout(rng, size)
                seat_count, categories = layout_summary(layout)
                theater.screens.append(
                    Screen(
                        screen_id,
                        theater.id,
                        f"Screen {number}",
                        layout,
                        seat_count,
                        categories,
                        Seating.from_layout(layout),
                    )
                )
            theaters.append(theater)
    return theaters


def _screen_sizes(rng: random.Random) -> list[int]:
    rest = sorted((rng.randint(80, 260) for _ in range(SCREENS_PER_THEATER - 1)), reverse=True)
    return [rng.randint(220, 400), *rest]


def make_movies(rng: random.Random, count: int, today: dt.date) -> list[Movie]:
    titles: set[str] = set()
    movies: list[Movie] = []
    for index in range(count):
        popularity = rng.lognormvariate(0.0, 0.9) * (5.0 if rng.random() < 0.04 else 1.0)
        age = rng.randint(500, 730) if rng.random() < 0.15 else rng.randint(-28, 500)
        movies.append(_movie(rng, index + 1, popularity, today - dt.timedelta(days=age), titles))
    # A few fixed points so every run has the same story to tell: the top blockbuster opens in
    # two days (its opening nights go on flash sale), another is the hit of the moment, and an
    # old title guarantees something to show on the first day of the past year.
    ranked = sorted(movies, key=lambda m: -m.popularity)
    pins = {
        ranked[0].id: (today + dt.timedelta(days=2), 12.0),
        ranked[1].id: (today - dt.timedelta(days=9), 8.0),
        ranked[-1].id: (today - dt.timedelta(days=420), None),
    }
    for i, movie in enumerate(movies):
        if movie.id in pins:
            release, pinned = pins[movie.id]
            popularity = pinned or movie.popularity
            movies[i] = replace(
                movie,
                release_date=release,
                popularity=popularity,
                run_days=_run_days(popularity, movie.run_days % 21),
            )
    return movies


def _run_days(popularity: float, jitter: int) -> int:
    return round(28 + 70 * min(1.0, popularity / 4.0)) + jitter


def _movie(
    rng: random.Random, movie_id: int, popularity: float, release: dt.date, titles: set[str]
) -> Movie:
    primary = rng.choice(words.GENRES)
    extra = rng.sample(
        words.COMPANION_GENRES[primary],
        min(rng.choice((0, 1, 1, 2)), len(words.COMPANION_GENRES[primary])),
    )
    genres = [primary, *extra]
    low, high = (80, 110) if primary in ("Animation", "Family", "Documentary") else (90, 180)
    runtime = min(high, low + round(rng.expovariate(1 / 30)))
    language = rng.choices([lang for lang, _ in words.LANGUAGES], [w for _, w in words.LANGUAGES])[
        0
    ]
    cast = [
        f"{rng.choice(words.FIRST_NAMES)} {rng.choice(words.LAST_NAMES)}"
        for _ in range(rng.randint(3, 6))
    ]
    return Movie(
        movie_id,
        _title(rng, titles, popularity),
        genres,
        runtime,
        rng.choice(words.CERTIFICATES[primary]),
        language,
        release,
        cast,
        _synopsis(rng, primary, cast[0]),
        popularity,
        _run_days(popularity, rng.randint(0, 20)),
    )


def _title(rng: random.Random, taken: set[str], popularity: float) -> str:
    while True:
        template = rng.choice(words.TITLE_TEMPLATES)
        title = template.format(
            adj=rng.choice(words.ADJECTIVES),
            noun=rng.choice(words.NOUNS),
            place=rng.choice(words.PLACES),
            first=rng.choice(words.FIRST_NAMES),
        )
        if title.startswith("A ") and title[2] in "AEIOU":
            title = "An " + title[2:]
        if popularity > 4.0 and rng.random() < 0.5:
            title += f" {rng.choice(('2', '3', 'II', 'Part Two', 'Reborn'))}"
        if title not in taken:
            taken.add(title)
            return title


def _synopsis(rng: random.Random, genre: str, lead: str) -> str:
    role = rng.choice(words.ROLES[genre])
    goal = rng.choice(words.GOALS[genre])
    place = rng.choice(words.PLACES)
    first = f"{role[0].upper()}{role[1:]} from {place} must {goal}."
    if role.startswith(("a ", "an ")) and rng.random() < 0.5:
        first = f"{lead} plays {role} from {place} who must {goal}."
    return f"{first} {rng.choice(words.TWISTS)}"
