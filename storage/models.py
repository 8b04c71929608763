"""What the catalog queries answer: small frozen dataclasses, picklable for Ray.

Every datetime here is aware and in the theater's own time zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

SHOW_STATUSES = ("scheduled", "on_sale", "flash_sale", "cancelled")


@dataclass(frozen=True)
class City:
    id: int
    name: str
    country: str


@dataclass(frozen=True)
class Theater:
    id: int
    city_id: int
    name: str
    address: str
    time_zone: str  # IANA name
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class MoviePlaying:
    """A movie with shows in a city on a day."""

    id: int
    title: str
    genres: tuple[str, ...]
    runtime_min: int
    certificate: str
    language: str
    show_count: int
    first_start: dt.datetime  # the earliest show that day, in its theater's time zone


@dataclass(frozen=True)
class Showtime:
    """One show of a movie, as listed under its theater."""

    show_id: int
    screen_id: int
    screen_name: str
    starts_at: dt.datetime
    status: str
    prices: dict[str, int]  # minor units by seat category


@dataclass(frozen=True)
class TheaterShows:
    """A theater and its shows of one movie on one day, by start."""

    theater_id: int
    theater_name: str
    time_zone: str
    shows: tuple[Showtime, ...]


@dataclass(frozen=True)
class ScheduleEntry:
    """One show in a theater's day."""

    show_id: int
    movie_id: int
    movie_title: str
    screen_id: int
    screen_name: str
    starts_at: dt.datetime
    ends_at: dt.datetime  # start + runtime, without the cleaning gap
    status: str


@dataclass(frozen=True)
class ShowDetails:
    """Everything a show actor or a seat-map page needs about one show."""

    show_id: int
    theater_id: int
    theater_name: str
    time_zone: str
    screen_id: int
    screen_name: str
    layout: dict[str, Any]  # see storage/layouts.py
    movie_id: int
    movie_title: str
    runtime_min: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    prices: dict[str, int]
    currency: str
    sale_opens_at: dt.datetime | None
