"""A labelled checkout data set: the demo history's bookings replayed as normal checkout
traffic, with known fraud patterns injected, every row counted by ``MemorySignals`` (the same
windows the gateway keeps in Redis).

Normal traffic, per booking: the customer's stable device and IP address (some households
share them; a few checkouts come from a phone or a carrier's shared address), a card from the
home city (mostly), a hold paid for after tens of seconds to minutes, now and then a hold let go
before, now and then a declined card first. Fraud, in campaigns spread over the year:

- ``bot_hoarding``: a device and a few accounts holding many seats an hour, rarely buying, and
  paying within a second when they do;
- ``card_testing``: bursts of declined payments on one device, card after card, some accounts
  taken over, then a success now and then;
- ``account_farm``: many brand-new accounts on a few devices and addresses, cards from far away.

    history = await load_history(conn)
    data = build_dataset(history, seed=0)   # data.X, data.y, data.pattern, data.at
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.fraud.dataset import NORMAL, Dataset
from ml.fraud.features import FEATURES, LatLon
from ml.fraud.signals import MemorySignals

PATTERNS = ("bot_hoarding", "card_testing", "account_farm")
HOLD_TTL_S = 600.0  # an unpaid hold expires after this long
BOOKINGS_PER_CAMPAIGN = 800  # one campaign of each pattern per this many bookings (at least 6)
CAREFUL = 0.4  # share of campaigns that keep each signal low, to slip under the rules
US_BOX = ((26.0, 48.0), (-123.0, -70.0))  # where stolen cards come from


@dataclass(frozen=True)
class Booking:
    user_id: int
    at: float  # confirmed_at, epoch seconds
    seats: int
    theater_city: int


@dataclass(frozen=True)
class History:
    """What the replay needs of the database: bookings in time order, customers (account
    creation time, home city) and the cities' coordinates (mean of their theaters')."""

    bookings: list[Booking]
    accounts: dict[int, tuple[float, int | None]]
    cities: dict[int, LatLon]


async def load_history(conn: Any) -> History:
    """The bookings, customers and city coordinates of the connection's schema."""
    cities = {
        r["city_id"]: (r["lat"], r["lon"])
        for r in await conn.fetch(
            "SELECT city_id, avg(latitude) AS lat, avg(longitude) AS lon FROM theaters"
            " WHERE latitude IS NOT NULL AND longitude IS NOT NULL GROUP BY city_id"
        )
    }
    accounts = {
        r["id"]: (r["created_at"].timestamp(), r["home_city_id"])
        for r in await conn.fetch(
            "SELECT id, created_at, home_city_id FROM users WHERE role = 'customer'"
        )
    }
    rows = await conn.fetch(
        "SELECT b.user_id, b.confirmed_at, cardinality(b.seats) AS seats, t.city_id"
        " FROM bookings b JOIN shows s ON s.id = b.show_id"
        " JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id"
        " ORDER BY b.confirmed_at, b.booking_id"
    )
    bookings = [
        Booking(r["user_id"], r["confirmed_at"].timestamp(), r["seats"], r["city_id"])
        for r in rows
        if r["user_id"] in accounts
    ]
    return History(bookings, accounts, cities)


@dataclass(frozen=True)
class _Check:
    """A payment attempt to score: everything ``features()`` is called with, and its label."""

    user_id: int
    device: str
    ip: str
    hold_at: float
    seats: int
    created_at: float
    card: LatLon | None
    theater: LatLon | None
    pattern: str


class _Timeline:
    """Events of every session, played in time order through ``MemorySignals``."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int, str, tuple[Any, ...]]] = []

    def add(self, at: float, kind: str, *args: Any) -> None:
        self.events.append((at, len(self.events), kind, args))

    def play(self) -> Dataset:
        signals, rows, labels, at = MemorySignals(), [], [], []
        for t, _, kind, args in sorted(self.events, key=lambda e: (e[0], e[1])):
            if kind == "check":
                c: _Check = args[0]
                row = signals.features(
                    c.user_id,
                    c.device,
                    c.ip,
                    hold_created_at=c.hold_at,
                    seats=c.seats,
                    account_created_at=c.created_at,
                    card_city=c.card,
                    theater_city=c.theater,
                    now=t,
                )
                rows.append(row.as_vector())
                labels.append(c.pattern)
                at.append(t)
            else:
                getattr(signals, f"record_{kind}")(*args, at=t)
        pattern = np.array(labels, dtype=object)
        return Dataset(
            np.array(rows, dtype=np.float64).reshape(-1, len(FEATURES)),
            pattern != NORMAL,
            pattern,
            np.array(at, dtype=np.float64),
        )


def build_dataset(history: History, *, seed: int = 0) -> Dataset:
    """Normal traffic from ``history`` plus injected fraud, in time order; same seed, same
    rows."""
    if not history.bookings:
        raise ValueError("the history has no bookings to replay")
    rng = random.Random(seed)
    timeline = _Timeline()
    _Normal(rng, history, timeline).replay()
    _Fraud(rng, history, timeline).inject()
    return timeline.play()


def _random_place(rng: random.Random) -> LatLon:
    (lat_lo, lat_hi), (lon_lo, lon_hi) = US_BOX
    return (round(rng.uniform(lat_lo, lat_hi), 2), round(rng.uniform(lon_lo, lon_hi), 2))


class _Normal:
    """Each booking of the history as the checkout a person made."""

    def __init__(self, rng: random.Random, history: History, timeline: _Timeline) -> None:
        self.rng, self.history, self.timeline = rng, history, timeline
        self.city_ids = sorted(history.cities)
        self.home = {u: u for u in sorted(history.accounts)}  # device and IP of the household
        users = sorted(history.accounts)
        rng.shuffle(users)
        for n in range(0, int(len(users) * 0.15) - 2, 3):  # 15% live in households of 2-3
            for other in users[n + 1 : n + 1 + rng.choice((1, 2))]:
                self.home[other] = users[n]

    def replay(self) -> None:
        for n, booking in enumerate(self.history.bookings):
            self._checkout(n, booking)

    def _checkout(self, n: int, b: Booking) -> None:
        rng, add = self.rng, self.timeline.add
        created_at, home_city = self.history.accounts[b.user_id]
        household = self.home[b.user_id]
        device = f"dev-{b.user_id}-phone" if rng.random() < 0.2 else f"dev-{household}"
        ip = f"carrier-{rng.randrange(20)}" if rng.random() < 0.1 else f"ip-{household}"
        if rng.random() < 0.2:  # a hold let go first, minutes to days before
            start = b.at - rng.uniform(600, 3 * 86400)
            seats = max(1, b.seats + rng.choice((-1, 0, 0, 1)))
            add(start, "hold", b.user_id, device, ip, f"a{n}", seats)
            add(start + HOLD_TTL_S, "release", b.user_id, f"a{n}", seats)
        card = self._card_city(home_city)
        declines = 0 if rng.random() < 0.95 else rng.choice((1, 1, 1, 2))
        pays = [b.at - 45.0 * k for k in range(declines, -1, -1)]  # attempts, the last succeeds
        hold_at = pays[0] - min(900.0, max(12.0, rng.lognormvariate(math.log(75), 0.6)))
        add(hold_at, "hold", b.user_id, device, ip, f"b{n}", b.seats)
        theater = self.history.cities.get(b.theater_city)
        check = _Check(b.user_id, device, ip, hold_at, b.seats, created_at, card, theater, NORMAL)
        for t in pays[:-1]:
            add(t, "check", check)
            add(t + 2.0, "payment_failure", b.user_id, device)
        add(b.at, "check", check)
        add(b.at + 1.0, "booking", b.user_id, f"b{n}")

    def _card_city(self, home_city: int | None) -> LatLon | None:
        roll = self.rng.random()
        if roll < 0.02 or (home_city not in self.history.cities and roll < 0.5):
            return None  # a card whose city is not known
        if roll < 0.07 or home_city not in self.history.cities:
            return self.history.cities[self.rng.choice(self.city_ids)]  # family's card, travel
        return self.history.cities[home_city]


class _Fraud:
    """Fraud campaigns at random times over the history's span."""

    def __init__(self, rng: random.Random, history: History, timeline: _Timeline) -> None:
        self.rng, self.history, self.timeline = rng, history, timeline
        self.start, self.end = history.bookings[0].at, history.bookings[-1].at
        self.next_user = max(history.accounts) + 1
        self.old_users = sorted(history.accounts)
        self.city_ids = sorted(history.cities)
        self.serial = 0

    def inject(self) -> None:
        campaigns = max(6, round(len(self.history.bookings) / BOOKINGS_PER_CAMPAIGN))
        for pattern in PATTERNS:
            for _ in range(campaigns):
                at, careful = self.rng.uniform(self.start, self.end), self.rng.random() < CAREFUL
                getattr(self, f"_{pattern}")(at, careful)

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _new_account(self, at: float) -> tuple[int, float]:
        self.next_user += 1
        return self.next_user, at - self.rng.uniform(60, 30 * 86400 * self.rng.random() ** 3)

    def _theater(self) -> LatLon | None:
        return self.history.cities.get(self.rng.choice(self.city_ids)) if self.city_ids else None

    def _bot_hoarding(self, t0: float, careful: bool) -> None:
        """Careful bots spread fewer, smaller holds over more accounts and pause before
        paying; bold ones do not."""
        rng, add = self.rng, self.timeline.add
        device, ip = self._id("bot-dev-"), self._id("dc-ip-")
        accounts = [self._new_account(t0) for _ in range(rng.randint(2, 4) if careful else 1)]
        theater = self._theater()
        span = rng.uniform(3600, 3 * 3600) if careful else rng.uniform(1800, 5400)
        holds, seats_max = (rng.randint(5, 12), 6) if careful else (rng.randint(12, 40), 10)
        for _ in range(holds):
            user, created = rng.choice(accounts)
            at, seats, hold = t0 + rng.uniform(0, span), rng.randint(3, seats_max), self._id("b")
            add(at, "hold", user, device, ip, hold, seats)
            if rng.random() < (0.4 if careful else 0.3):
                pay = at + (rng.uniform(3, 10) if careful else rng.uniform(0.2, 0.95))
                card = theater if rng.random() < 0.7 else _random_place(rng)
                check = _Check(user, device, ip, at, seats, created, card, theater, "bot_hoarding")
                add(pay, "check", check)
                add(pay + 0.5, "booking", user, hold)
            else:
                add(at + HOLD_TTL_S, "release", user, hold, seats)

    def _card_testing(self, t0: float, careful: bool) -> None:
        """Careful testers try two or three cards per account, on more accounts and devices."""
        rng, add = self.rng, self.timeline.add
        devices = [self._id("tester-dev-") for _ in range(rng.randint(2, 3) if careful else 1)]
        ip, theater, t = self._id("proxy-ip-"), self._theater(), t0
        for _ in range(rng.randint(3, 6) if careful else rng.randint(1, 4)):
            if rng.random() < 0.5:  # a taken-over customer's account
                user = rng.choice(self.old_users)
                created = self.history.accounts[user][0]
            else:
                user, created = self._new_account(t)
            device, seats, hold, held = rng.choice(devices), rng.randint(1, 2), self._id("c"), t
            add(held, "hold", user, device, ip, hold, seats)
            t += rng.uniform(10, 40) if careful else rng.uniform(4, 20)
            attempts = rng.randint(2, 3) if careful else rng.randint(3, 10)
            for n in range(attempts):
                card = _random_place(rng)
                check = _Check(
                    user, device, ip, held, seats, created, card, theater, "card_testing"
                )
                add(t, "check", check)
                if n == attempts - 1 and rng.random() < 0.6:
                    add(t + 1.0, "booking", user, hold)
                else:
                    add(t + 1.0, "payment_failure", user, device)
                t += rng.uniform(5, 40)
            t += rng.uniform(300, 3600) if careful else rng.uniform(30, 600)

    def _account_farm(self, t0: float, careful: bool) -> None:
        """Careful farms age their accounts a little and spread them over more devices."""
        rng, add = self.rng, self.timeline.add
        devices = [self._id("farm-dev-") for _ in range(rng.randint(3, 5) if careful else 2)]
        ips = [self._id("farm-ip-") for _ in range(rng.randint(2, 3) if careful else 1)]
        span = rng.uniform(6, 12) * 3600 if careful else rng.uniform(1, 6) * 3600
        for _ in range(rng.randint(6, 12) if careful else rng.randint(8, 30)):
            at = t0 + rng.uniform(0, span)
            self.next_user += 1
            user = self.next_user
            created = at - (rng.uniform(1, 6) * 86400 if careful else rng.uniform(60, 3 * 3600))
            device, ip, hold = rng.choice(devices), rng.choice(ips), self._id("f")
            seats, theater = rng.randint(1, 4), self._theater()
            add(at, "hold", user, device, ip, hold, seats)
            pay = at + rng.uniform(15, 90)
            check = _Check(
                user, device, ip, at, seats, created, _random_place(rng), theater, "account_farm"
            )
            add(pay, "check", check)
            add(pay + 1.0, "booking", user, hold)
