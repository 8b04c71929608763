"""The demo data run: catalog, people, then a year of shows and bookings day by day, loaded with
COPY in one transaction."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from storage.accounts import sealed_email
from storage.crypto import Keyring
from storage.demo import loader
from storage.demo.catalog import City, Movie, Theater, make_cities, make_movies, make_theaters
from storage.demo.catalog import sizes as catalog_sizes
from storage.demo.history import BookingMaker, plan_visits
from storage.demo.people import Customer, demo_password_hash, make_customers, make_staff
from storage.demo.progress import Progress
from storage.demo.schedule import Chart, Clock, Show, shows_for_day
from storage.errors import InvalidCatalogData
from storage.partitions import ensure_partitions

PAST_DAYS = 365  # the history covers the year before ``today``
FUTURE_DAYS = 7  # shows on sale from ``today`` on
USERS_PER_SCALE = 50_000

Row = tuple[Any, ...]


@dataclass(frozen=True)
class DemoReport:
    """What a run wrote: rows per table, and seconds per phase and in all."""

    scale: float
    seed: int
    today: dt.date
    first_day: dt.date  # the first day of the past year's shows (local dates)
    last_day: dt.date  # the last day of the coming week's shows
    counts: dict[str, int]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)


def _rng(seed: int, *parts: object) -> random.Random:
    """An independent stream per job and day, the same for the same seed on any machine."""
    return random.Random("/".join(map(str, (seed, *parts))))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


async def generate_demo_data(
    conn: Any,
    *,
    scale: float = 1.0,
    seed: int = 42,
    today: dt.date,
    keyring: Keyring,
    progress: bool = True,
    replace: bool = False,
) -> DemoReport:
    """Fill the (migrated, empty) schema of ``conn`` with a deterministic demo world.

    At scale 1: 10 cities, 60 theaters of 8 screens, 200 movies, six shows a screen a day for
    the 7 days from ``today`` (local dates), 50,000 customers with hidden habits, and a year of
    past shows (three a screen a day) with about 270,000 bookings that follow those habits.
    Emails are sealed under ``keyring``'s current key, as every account's are.
    The same ``seed`` and ``today`` give the same rows. A schema holding data is refused with
    InvalidCatalogData unless ``replace`` is set, which empties it first. All or nothing: it
    runs in one transaction.

    >>> report = await generate_demo_data(conn, scale=0.05, today=date(2026, 11, 24), keyring=ring)
    >>> report.counts["bookings"]
    """
    if not 0 < scale <= 1000:
        raise InvalidCatalogData("scale must be above 0 and at most 1000", {"scale": scale})
    started = time.perf_counter()
    bar = Progress(PAST_DAYS + FUTURE_DAYS + 3, enabled=progress)
    writer = loader.Writer(conn)
    try:
        async with conn.transaction():
            await loader.prepare_schema(conn, replace=replace)
            try:
                world, phases = await _write(conn, writer, bar, seed, scale, today, keyring)
            except BaseException:
                await writer.abort()  # the connection must be idle before the rollback
                raise
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    return DemoReport(
        scale, seed, today, world.days[0], world.days[-1], dict(writer.counts), seconds, phases
    )


async def _write(
    conn: Any,
    writer: loader.Writer,
    bar: Progress,
    seed: int,
    scale: float,
    today: dt.date,
    keyring: Keyring,
) -> tuple[_World, dict[str, float]]:
    mark = time.perf_counter()
    world = await asyncio.to_thread(_World, seed, scale, today)
    phases = {"plan": time.perf_counter() - mark}
    # show_date is a UTC date: a local day can start the day before or end the day after.
    await ensure_partitions(
        conn, world.days[0] - dt.timedelta(days=1), world.days[-1] + dt.timedelta(days=1)
    )
    # From here on the writer owns the connection until it is closed.
    mark = time.perf_counter()
    for table, rows in world.catalog_rows().items():
        await writer.add(table, rows)
    bar.step("catalog")
    await writer.add("users", await asyncio.to_thread(world.user_rows, keyring))
    await writer.add("theater_admins", world.theater_admin_rows())
    bar.step("users")
    phases["catalog_and_users"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for day in world.days:
        # Built in a thread, so the event loop can stream the previous batch meanwhile.
        for table, rows in (await asyncio.to_thread(world.day_rows, day)).items():
            await writer.add(table, rows)
        bar.step(str(day), shows=world.made["shows"], bookings=world.made["bookings"])
    await writer.close()
    phases["shows_and_bookings"] = time.perf_counter() - mark
    mark = time.perf_counter()
    await loader.finish(conn)
    bar.step("sequences and statistics")
    phases["finish"] = time.perf_counter() - mark
    return world, phases


class _World:
    """Everything generated, as rows ready for COPY. The catalog and people are built up
    front; shows and bookings one day at a time, in order (ids follow the days)."""

    def __init__(self, seed: int, scale: float, today: dt.date) -> None:
        self.seed, self.scale, self.today = seed, scale, today
        first = today - dt.timedelta(days=PAST_DAYS)
        self.days = [first + dt.timedelta(days=n) for n in range(PAST_DAYS + FUTURE_DAYS)]
        n_cities, n_theaters, n_movies = catalog_sizes(scale)
        rng = _rng(seed, "catalog")
        self.cities: list[City] = make_cities(rng, n_cities)
        self.theaters: list[Theater] = make_theaters(rng, self.cities, n_theaters)
        self.movies: list[Movie] = make_movies(rng, n_movies, today)
        self.customers: list[Customer] = make_customers(
            _rng(seed, "people"), max(50, round(USERS_PER_SCALE * scale)), self.theaters, first
        )
        self.visits = plan_visits(_rng(seed, "visits"), self.customers, first, self.days[-1], today)
        self.booker = BookingMaker(self.customers, self.theaters, today)
        self.clock = Clock()
        self.next_show_id = 1
        self.made = {"shows": 0, "bookings": 0}
        self._prices_json: dict[tuple[tuple[str, int], ...], str] = {}

    def catalog_rows(self) -> dict[str, list[Row]]:
        created = _midnight(self.days[0]) - dt.timedelta(days=400)
        return {
            "cities": [(c.id, c.name, c.country) for c in self.cities],
            "theaters": [
                (
                    t.id,
                    t.city.id,
                    t.name,
                    t.address,
                    t.city.time_zone,
                    t.latitude,
                    t.longitude,
                    created - dt.timedelta(days=t.id % 300),
                )
                for t in self.theaters
            ],
            "screens": [
                (s.id, s.theater_id, s.name, s.layout, s.seat_count, s.categories)
                for t in self.theaters
                for s in t.screens
            ],
            "movies": [
                (
                    m.id,
                    m.title,
                    m.genres,
                    m.runtime_min,
                    m.certificate,
                    m.language,
                    m.release_date,
                    m.cast_members,
                    m.synopsis,
                )
                for m in self.movies
            ],
        }

    def user_rows(self, keyring: Keyring) -> list[Row]:
        password = demo_password_hash(self.seed)
        rows: list[Row] = [
            (
                c.id,
                *sealed_email(keyring, c.email),
                password,
                "customer",
                c.display_name,
                c.city_id,
                _midnight(c.joined - dt.timedelta(days=15)) + dt.timedelta(minutes=c.id % 1440),
            )
            for c in self.customers
        ]
        since = _midnight(self.days[0]) - dt.timedelta(days=400)
        staff = make_staff(len(self.customers) + 1, self.theaters)
        rows += [
            (
                s.id,
                *sealed_email(keyring, s.email),
                password,
                s.role,
                s.display_name,
                s.city_id,
                since,
            )
            for s in staff
        ]
        return rows

    def theater_admin_rows(self) -> list[Row]:
        staff = make_staff(len(self.customers) + 1, self.theaters)
        return [(s.id, s.theater_id) for s in staff if s.theater_id is not None]

    def day_rows(self, day: dt.date) -> dict[str, list[Row]]:
        """The shows of ``day`` and the bookings for them."""
        chart = Chart.for_day(self.movies, day)
        shows = shows_for_day(
            _rng(self.seed, "shows", day),
            day,
            self.today,
            self.theaters,
            chart,
            self.clock,
            self.next_show_id,
        )
        self.next_show_id += len(shows)
        bookings, seats = self.booker.book_day(
            _rng(self.seed, "bookings", day), shows, self.visits.pop(day, [])
        )
        self.made["shows"] += len(shows)
        self.made["bookings"] += len(bookings)
        return {
            "shows": [self._show_row(s) for s in shows],
            "bookings": bookings,
            "booking_seats": seats,
        }

    def _show_row(self, show: Show) -> Row:
        key = tuple(show.prices.items())
        prices = self._prices_json.get(key)  # few distinct price lists: encode each once
        if prices is None:
            prices = self._prices_json[key] = json.dumps(show.prices, separators=(",", ":"))
        created = _midnight(show.show_date) - dt.timedelta(days=14)
        return (
            show.id,
            show.screen.id,
            show.movie.id,
            show.starts_at,
            show.busy_until,
            prices,
            "USD",
            show.status,
            show.sale_opens_at,
            0,
            created,
        )
