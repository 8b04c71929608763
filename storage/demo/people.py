"""Demo users and the hidden habits their bookings follow.

Every customer has a latent taste the models can learn back from the bookings: favourite
genres, a preferred time of day, a weekend-or-weekday habit, a home city (and a favourite
theater there), a price sensitivity and a usual party size. The habits are not stored in the
database; the same seed always gives the same people, so ``make_customers`` is the ground truth.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.low_level import hash_secret

from storage.demo import words
from storage.demo.catalog import Theater

# Demo only: every demo account shares this password and one argon2 hash of it, made once per
# run (argon2 costs ~50 ms a hash, 50,000 of them would take minutes). Never use it for real
# accounts.
DEMO_PASSWORD = "demo-password"
ADMIN_EMAIL = "admin@seatserver.local"

SLOTS = ("morning", "afternoon", "evening", "late")  # starts before 13:00, 17:00, 21:00, after
_SLOT_POPULARITY = (0.4, 1.0, 2.0, 0.8)
_GENRE_POPULARITY = {
    "Action": 3.0,
    "Comedy": 2.5,
    "Drama": 2.5,
    "Animation": 1.5,
    "Adventure": 1.5,
    "Thriller": 1.5,
    "Horror": 1.2,
    "Science Fiction": 1.2,
}
_PARTY = ((1, 2, 3, 4, 5, 6), (0.2, 0.45, 0.1, 0.15, 0.06, 0.04))
CHEAP, MIDDLE, LAVISH = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    email: str
    display_name: str
    city_id: int
    favourite_theater_id: int
    joined: dt.date
    tastes: tuple[tuple[str, float], ...]  # favourite genres, strongest first
    slot_weights: tuple[float, ...]  # how much they like each of SLOTS
    weekend_share: float  # share of their visits on Friday, Saturday or Sunday
    thrift: int  # CHEAP (standard seats, matinees), MIDDLE, LAVISH (premium, recliners)
    party: int  # usual group size
    yearly_bookings: float
    wheelchair: bool  # books a wheelchair space (and its companion seat when not alone)


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    email: str
    display_name: str
    role: str
    city_id: int
    theater_id: int | None = None  # the theater a theater admin runs


def demo_password_hash(seed: int) -> str:
    """One argon2id hash of DEMO_PASSWORD with the library's default costs and a salt drawn
    from the seed, so the same seed writes the same rows; ``PasswordHasher().verify`` accepts it.
    """
    hasher = PasswordHasher()
    salt = hashlib.sha256(f"seatserver-demo-{seed}".encode()).digest()[:16]
    encoded = hash_secret(
        DEMO_PASSWORD.encode(),
        salt,
        time_cost=hasher.time_cost,
        memory_cost=hasher.memory_cost,
        parallelism=hasher.parallelism,
        hash_len=hasher.hash_len,
        type=hasher.type,
    )
    return encoded.decode()


def make_customers(
    rng: random.Random, count: int, theaters: list[Theater], first_day: dt.date
) -> list[Customer]:
    """``count`` customers, ids 1…count, living where the theaters are."""
    by_city: dict[int, list[Theater]] = {}
    for theater in theaters:
        by_city.setdefault(theater.city.id, []).append(theater)
    city_ids = list(by_city)
    city_weights = [len(by_city[c]) for c in city_ids]
    genres = list(words.GENRES)
    genre_weights = [_GENRE_POPULARITY.get(g, 0.8) for g in genres]
    customers = []
    for n in range(1, count + 1):
        city_id = rng.choices(city_ids, city_weights)[0]
        favourites: list[str] = []
        while len(favourites) < rng.choice((1, 2, 2, 3)):
            genre = rng.choices(genres, genre_weights)[0]
            if genre not in favourites:
                favourites.append(genre)
        preferred = rng.choices(range(4), _SLOT_POPULARITY)[0]
        joined = first_day - dt.timedelta(days=rng.randint(1, 1000))
        if rng.random() < 0.2:
            joined = first_day + dt.timedelta(days=rng.randint(0, 360))
        customers.append(
            Customer(
                id=n,
                email=f"user{n}@example.com",
                display_name=f"{rng.choice(words.FIRST_NAMES)} {rng.choice(words.LAST_NAMES)}",
                city_id=city_id,
                favourite_theater_id=rng.choice(by_city[city_id]).id,
                joined=joined,
                tastes=tuple(zip(favourites, (1.0, 0.5, 0.3), strict=False)),
                slot_weights=tuple(
                    p + (4.0 if i == preferred else 0.0) for i, p in enumerate(_SLOT_POPULARITY)
                ),
                weekend_share=rng.choice((0.2, 0.45, 0.8, 0.8)),
                thrift=rng.choices((CHEAP, MIDDLE, LAVISH), (0.4, 0.4, 0.2))[0],
                party=rng.choices(*_PARTY)[0],
                yearly_bookings=rng.lognormvariate(math.log(4.0), 0.9),
                wheelchair=rng.random() < 0.01,
            )
        )
    return customers


def party_size(rng: random.Random, customer: Customer) -> int:
    """Their usual party most of the time, anything from 1 to 6 otherwise."""
    return customer.party if rng.random() < 0.6 else rng.choices(*_PARTY)[0]


def make_staff(first_id: int, theaters: list[Theater]) -> list[Staff]:
    """One admin and a theater admin for every twelfth theater (at least one)."""
    staff = [Staff(first_id, ADMIN_EMAIL, "Demo Admin", "admin", theaters[0].city.id)]
    for n, theater in enumerate(theaters[::12], start=1):
        staff.append(
            Staff(
                first_id + n,
                f"theater-admin{n}@seatserver.local",
                f"Admin, {theater.name}",
                "theater_admin",
                theater.city.id,
                theater.id,
            )
        )
    return staff
