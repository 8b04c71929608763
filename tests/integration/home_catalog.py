"""A small city for the home page's tests: three theaters, past bookings of one customer and
a week of shows of seven movies in two clear tastes (action, romance) and a comedy.

The customer booked at "Fav Cinema" three times in the evening and at "Second Screen" once in
the morning: their favourite theaters are those two (in that order) and their usual time of
day the evening. "Laugh Track" sold best in the city lately, then "Love Letters".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import storage
from storage import taste
from tests.integration.shows import grid_layout

ZONE = "America/New_York"
PRICES = {"standard": 1200, "wheelchair": 1000, "companion": 1000}
MOVIES = {  # title -> genres
    "Old Action": ["action", "thriller"],
    "Old Romance": ["drama", "romance"],
    "Night Chase": ["action", "thriller"],
    "Blast Point": ["action"],
    "Space Saga": ["action", "sci-fi"],
    "Quiet Heart": ["drama", "romance"],
    "Love Letters": ["romance"],
    "Laugh Track": ["comedy"],
}
ACTION = ("Old Action", "Night Chase", "Blast Point", "Space Saga")
ROMANCE = ("Old Romance", "Quiet Heart", "Love Letters")
THEATERS = {  # name -> (latitude, longitude)
    "Fav Cinema": (40.750, -73.990),
    "Second Screen": (40.700, -74.010),
    "Far Hall": (40.900, -73.800),
}
# The customer's bookings: (movie, theater, days ago, local start)
PAST = (
    ("Old Action", "Fav Cinema", 20, dt.time(19, 0)),
    ("Old Romance", "Fav Cinema", 10, dt.time(20, 0)),
    ("Old Action", "Fav Cinema", 5, dt.time(19, 30)),
    ("Old Romance", "Second Screen", 3, dt.time(10, 0)),
)
# The coming shows: (movie, theater, days from today, local start)
COMING = (
    ("Night Chase", "Far Hall", 1, dt.time(9, 0)),
    ("Night Chase", "Far Hall", 1, dt.time(19, 30)),
    ("Night Chase", "Fav Cinema", 2, dt.time(19, 0)),
    ("Blast Point", "Far Hall", 1, dt.time(10, 0)),
    ("Blast Point", "Far Hall", 1, dt.time(14, 0)),
    ("Blast Point", "Far Hall", 1, dt.time(19, 0)),
    ("Space Saga", "Fav Cinema", 1, dt.time(18, 0)),  # sold out
    ("Space Saga", "Far Hall", 1, dt.time(18, 30)),
    ("Quiet Heart", "Second Screen", 1, dt.time(15, 0)),
    ("Quiet Heart", "Fav Cinema", 2, dt.time(11, 0)),
    ("Love Letters", "Far Hall", 1, dt.time(20, 0)),
    ("Laugh Track", "Second Screen", 1, dt.time(13, 0)),
)
SOLD_OUT = ("Space Saga", "Fav Cinema")
SALES = {"Laugh Track": 5, "Love Letters": 2}  # other customers' bookings this week


@dataclass
class Catalog:
    city: int
    other_city: int
    movies: dict[str, int]
    theaters: dict[str, int]
    shows: dict[tuple[str, str, int, dt.time], int] = field(default_factory=dict)

    def title(self, movie_id: int) -> str:
        return next(t for t, i in self.movies.items() if i == movie_id)

    def theater(self, theater_id: int) -> str:
        return next(t for t, i in self.theaters.items() if i == theater_id)


def local(days: int, at: dt.time, now: dt.datetime) -> dt.datetime:
    """``at`` on the theaters' local day ``days`` from today."""
    day = now.astimezone(ZoneInfo(ZONE)).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, at, ZoneInfo(ZONE))


async def build(conn: Any, customer: int, now: dt.datetime) -> Catalog:
    """The city, its shows, the customer's past bookings (and home city, and a picked genre),
    and other customers' bookings of this week's comedy and romance."""
    city = await storage.create_city(conn, "Hometown", "US")
    other = await storage.create_city(conn, "Elsewhere", "US")
    theaters = {
        name: await storage.create_theater(conn, city, name, ZONE, latitude=lat, longitude=lon)
        for name, (lat, lon) in THEATERS.items()
    }
    movies = {
        title: await storage.create_movie(
            conn,
            title=title,
            genres=genres,
            runtime_min=100,
            certificate="PG-13",
            language="en",
            release_date=dt.date(2025, 1, 1),
            cast_members=[],
            synopsis="",
        )
        for title, genres in MOVIES.items()
    }
    catalog = Catalog(city, other, movies, theaters)
    screens: dict[tuple[str, str], int] = {}  # a screen per theater and movie: no overlaps
    await storage.ensure_partitions(conn, (now - dt.timedelta(days=40)).date(), now.date())
    for when, rows in (("past", PAST), ("coming", COMING)):
        for movie, theater, days, at in rows:
            if (theater, movie) not in screens:
                screens[(theater, movie)] = await storage.create_screen(
                    conn, theaters[theater], movie, grid_layout()
                )
            starts = local(-days if when == "past" else days, at, now)
            show = await storage.create_show(
                conn,
                screen_id=screens[(theater, movie)],
                movie_id=movies[movie],
                starts_at=starts,
                prices=PRICES,
                now=starts - dt.timedelta(days=60),
                status="on_sale",
            )
            catalog.shows[(movie, theater, -days if when == "past" else days, at)] = show
            if when == "past":
                await book(conn, show, customer, starts - dt.timedelta(days=2))
    for movie, count in SALES.items():
        show = next(s for (m, _, d, _), s in catalog.shows.items() if m == movie and d > 0)
        for n in range(count):
            await book(conn, show, 10_000_000 + n, now - dt.timedelta(hours=n + 1))
    sold_out = next(s for (m, t, d, _), s in catalog.shows.items() if (m, t) == SOLD_OUT)
    await conn.executemany(
        "INSERT INTO show_blocked_seats (show_id, seat) VALUES ($1, $2)",
        [(sold_out, s["label"]) for row in grid_layout()["rows"] for s in row["seats"]],
    )
    await conn.execute("UPDATE users SET home_city_id = $2 WHERE id = $1", customer, city)
    await taste.set_favourite_genres(conn, customer, ["comedy"])
    return catalog


async def book(conn: Any, show: int, user_id: int, at: dt.datetime) -> None:
    """A confirmed booking of one seat, straight in Postgres."""
    await conn.execute(
        """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats, price_cents,
                                 status, confirmed_at)
           SELECT gen_random_uuid(), (starts_at AT TIME ZONE 'UTC')::date, id, $2, '{C5}', 1200,
                  'confirmed', $3
           FROM shows WHERE id = $1""",
        show,
        user_id,
        at,
    )
