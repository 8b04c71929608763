"""Reading journeys (locust process only): the baseline's health check, and a customer who
browses from a city to a show's seat map or searches in plain words.

    cities → movies in a city on a day → shows of a movie → a show → its seat map
    GET /search?q=family movies this weekend under $20

``browse`` and ``search`` are steps the mixed day takes too.
"""

from __future__ import annotations

import random
import urllib.parse
from typing import Any

import locust

from loadtest.locust import recorder
from loadtest.locust.customer import PLAN, Customer

BOOKABLE = frozenset({"on_sale", "flash_sale"})


def _has(key: str) -> Any:
    def check(js: Any) -> None:
        assert key in js, f"no {key!r} in the answer,"

    return check


def _check_seatmap(js: Any) -> None:
    assert isinstance(js.get("version"), int), "a seat map without a version,"
    assert js.get("seats"), "a seat map without seats,"
    assert js.get("layout", {}).get("rows"), "a seat map without rows,"


def browse(user: Customer) -> bool:
    """From the city list to a show's seat map, as the pages go; True when it got there (a day
    without movies or shows ends the walk early, as it would a customer's)."""
    cities = user.call("GET", "/cities", "/cities", check=_has("cities"))
    if cities is None or not cities.js["cities"]:
        return False
    city = random.choice(cities.js["cities"])["id"]
    day = random.choice(PLAN["days"])
    movies = user.call(
        "GET", f"/cities/{city}/movies?date={day}", "/cities/{id}/movies", check=_has("movies")
    )
    if movies is None or not movies.js["movies"]:
        return False
    movie = random.choice(movies.js["movies"])["id"]
    shows = user.call(
        "GET",
        f"/cities/{city}/movies/{movie}/shows?date={day}",
        "/cities/{id}/movies/{id}/shows",
        check=_has("theaters"),
    )
    if shows is None:
        return False
    ids = [
        s["show_id"] for t in shows.js["theaters"] for s in t["shows"] if s["status"] in BOOKABLE
    ]
    if not ids:
        return False
    show = random.choice(ids)
    if user.call("GET", f"/shows/{show}", "/shows/{id}", check=_has("prices")) is None:
        return False
    return seatmap(user, show)


def seatmap(user: Customer, show: int) -> bool:
    """One show's live seat map, as its page loads it."""
    got = user.call("GET", f"/shows/{show}/seatmap", "/shows/{id}/seatmap", check=_check_seatmap)
    return got is not None


def search(user: Customer) -> bool:
    """One of the plan's queries, the way the search box sends it."""
    query = urllib.parse.urlencode({"q": random.choice(PLAN["queries"]), "limit": 10})
    return user.call("GET", f"/search?{query}", "/search", check=_has("results")) is not None


class HealthCheck(Customer):
    """The baseline: the cheapest answer the gateway gives, through the same client."""

    @locust.task
    def health(self) -> None:
        self.call("GET", "/health", "/health", check=_has("status"))


class BrowseAndSearch(Customer):
    """A customer looking for something to see: mostly browsing, sometimes searching."""

    @locust.task(3)
    def walk(self) -> None:
        if browse(self):
            recorder.count("browsed")

    @locust.task(1)
    def ask(self) -> None:
        if search(self):
            recorder.count("searched")
