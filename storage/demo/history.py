"""A year of past bookings (and a few for the coming week) that follow each customer's habits.

Visits are planned per customer first (how many, which days: their weekend habit), then
played day by day: the city (mostly home), the theater (often their favourite), the show (taste
for genres, preferred time of day, price sensitivity), the party size, the seat category (cheap
customers take standard seats, others premium or recliners) and adjacent free seats.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from bisect import bisect, bisect_left
from collections import Counter, defaultdict
from itertools import accumulate
from typing import Any

from storage.demo.catalog import Movie, Theater
from storage.demo.people import CHEAP, LAVISH, Customer, party_size
from storage.demo.schedule import Show

CANCELLED_SHARE = 0.03
HOME_SHARE = 0.9
STAY_IN_SHARE = 0.75  # of the planned visits on days when nothing to their taste plays
FAVOURITE_THEATER_PULL = 4.0  # a show at their favourite theater is this much likelier

BookingRow = tuple[Any, ...]
SeatRow = tuple[uuid.UUID, dt.date, int, str, bool]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def plan_visits(
    rng: random.Random,
    customers: list[Customer],
    first_day: dt.date,
    last_day: dt.date,
    today: dt.date,
) -> dict[dt.date, list[int]]:
    """Which customers (by index) book on which day. Days from ``today`` on are thinned: only
    some of the coming week's tickets are already sold."""
    days = [first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    weekend = [d for d in days if d.weekday() >= 4]
    weekday = [d for d in days if d.weekday() < 4]
    visits: dict[dt.date, list[int]] = defaultdict(list)
    for index, customer in enumerate(customers):
        start = max(customer.joined, first_day)
        active = (last_day - start).days + 1
        for _ in range(_poisson(rng, customer.yearly_bookings * active / 365)):
            pool = weekend if rng.random() < customer.weekend_share else weekday
            low = bisect_left(pool, start)
            if low == len(pool):
                continue
            day = pool[rng.randrange(low, len(pool))]
            ahead = (day - today).days
            if ahead >= 0 and rng.random() > 0.5 * math.exp(-ahead / 2):
                continue
            visits[day].append(index)
    return visits


class BookingMaker:
    """Turns one day's visits into bookings and booked seats: a customer picks a city (mostly
    home), a movie playing there (by taste and popularity), then one of its shows (by time of
    day, price, and their favourite theater), then seats."""

    def __init__(self, customers: list[Customer], theaters: list[Theater], today: dt.date) -> None:
        self.customers = customers
        cities = Counter(t.city.id for t in theaters)
        self.city_ids = list(cities)
        self.city_weights = list(accumulate(cities.values()))
        self.cutoff = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)

    def book_day(
        self, rng: random.Random, shows: list[Show], visitors: list[int]
    ) -> tuple[list[BookingRow], list[SeatRow]]:
        playing: dict[int, dict[Movie, list[Show]]] = defaultdict(dict)
        for show in shows:
            if show.status == "on_sale":
                playing[show.theater.city.id].setdefault(show.movie, []).append(show)
        taken: dict[int, set[str]] = defaultdict(set)
        bookings: list[BookingRow] = []
        seats: list[SeatRow] = []
        for index in visitors:
            customer = self.customers[index]
            movies = playing.get(self._city(rng, customer))
            if not movies:
                continue
            picked = self._show(rng, customer, movies)
            if picked is None:
                continue
            chosen = self._seats(rng, customer, picked, taken[picked.id])
            if chosen is None:
                continue
            taken[picked.id].update(label for label, _ in chosen)
            self._record(rng, customer, picked, chosen, bookings, seats)
        return bookings, seats

    def _city(self, rng: random.Random, customer: Customer) -> int:
        if len(self.city_ids) > 1 and rng.random() > HOME_SHARE:
            return self.city_ids[bisect(self.city_weights, rng.random() * self.city_weights[-1])]
        return customer.city_id

    def _show(
        self, rng: random.Random, customer: Customer, movies: dict[Movie, list[Show]]
    ) -> Show | None:
        """The show they go to, or None when nothing to their taste plays and they stay in."""
        tastes = dict(customer.tastes)
        liking = []
        best = 0.0
        for movie in movies:
            fit = 0.1 + tastes.get(movie.genres[0], 0.0)
            fit += 0.5 * sum(tastes.get(g, 0.0) for g in movie.genres[1:])
            best = max(best, fit)
            liking.append(math.sqrt(movie.popularity) * fit**3)
        if best < 0.3 and rng.random() < STAY_IN_SHARE:
            return None
        shows = movies[rng.choices(list(movies), liking)[0]]
        slots, thrift = customer.slot_weights, customer.thrift
        favourite = customer.favourite_theater_id
        weights = [
            slots[s.slot]
            * s.price_pull[thrift]
            * (FAVOURITE_THEATER_PULL if s.theater.id == favourite else 1.0)
            for s in shows
        ]
        return rng.choices(shows, weights)[0]

    def _seats(
        self, rng: random.Random, customer: Customer, show: Show, taken: set[str]
    ) -> list[tuple[str, str]] | None:
        """(label, category) of the seats to book, or None when the show has no room."""
        seating = show.screen.seating
        if customer.wheelchair:
            accessible = seating.pick_accessible(rng, taken, party_size(rng, customer) > 1)
            if accessible is None:
                return None
            return list(zip(accessible, ("wheelchair", "companion"), strict=False))
        count = party_size(rng, customer)
        for category in _categories(rng, customer, show):
            labels = seating.pick(rng, taken, category, count)
            if labels is not None:
                return [(label, category) for label in labels]
        return None

    def _record(
        self,
        rng: random.Random,
        customer: Customer,
        show: Show,
        chosen: list[tuple[str, str]],
        bookings: list[BookingRow],
        seats: list[SeatRow],
    ) -> None:
        booking_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        roll = rng.random()
        hours = (
            rng.uniform(0.3, 8)
            if roll < 0.35
            else rng.uniform(8, 72)
            if roll < 0.75
            else rng.uniform(72, 336)
        )
        confirmed = show.starts_at - dt.timedelta(hours=hours)
        latest = min(show.starts_at, self.cutoff)
        if confirmed >= latest:  # a show of the coming week: sold before today
            confirmed = latest - dt.timedelta(hours=rng.uniform(0.5, 72))
        cancelled = None
        if rng.random() < CANCELLED_SHARE:
            cancelled = confirmed + (latest - confirmed) * rng.uniform(0.05, 0.95)
        price = sum(show.prices[category] for _, category in chosen)
        labels = [label for label, _ in chosen]
        bookings.append(
            (
                booking_id,
                show.show_date,
                show.id,
                customer.id,
                None,
                labels,
                price,
                "USD",
                "confirmed" if cancelled is None else "cancelled",
                confirmed,
                cancelled,
            )
        )
        live = cancelled is None
        seats.extend((booking_id, show.show_date, show.id, label, live) for label in labels)


def _categories(rng: random.Random, customer: Customer, show: Show) -> list[str]:
    """Seat categories to try, in order, for this customer at this show."""
    has = show.screen.categories
    if customer.thrift == CHEAP:
        wanted = ["premium"] if rng.random() < 0.05 else []
    elif customer.thrift == LAVISH:
        wanted = ["recliner", "premium"] if rng.random() < 0.85 else ["premium"]
    else:
        roll = rng.random()
        wanted = ["premium"] if roll < 0.3 else ["recliner"] if roll < 0.35 else []
    order = dict.fromkeys([*wanted, "standard", "premium", "recliner"])
    return [c for c in order if c in has]
