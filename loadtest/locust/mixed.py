"""A mixed day (locust process only): logged-in customers who mostly read (browse, search,
look at a popular show's seat map again) and now and then book, in the shares the plan's
``mixed_weights`` give: by default 100 read requests for each write (the design's ratio; see
``loadtest.locust.scenarios.mixed_weights``). A pause of ``think_s`` between tasks.
"""

from __future__ import annotations

import random
import time

import locust

from loadtest.locust import recorder
from loadtest.locust.browse import browse, search, seatmap
from loadtest.locust.customer import PLAN, Customer, next_account
from loadtest.locust.funnel import book


class MixedDay(Customer):
    """A day's customers: each task is one customer's visit."""

    @locust.task
    def visit(self) -> None:
        weights = PLAN["mixed_weights"]
        kind = random.choices(list(weights), weights=list(weights.values()))[0]
        recorder.count("mixed_tasks")
        if kind == "browse":
            browse(self)
        elif kind == "search":
            search(self)
        elif kind == "seatmap":  # a customer back on a show's page: the busiest shows
            seatmap(self, random.choice(PLAN["bookable_shows"][:20]))
        else:
            book(self, next_account()["token"], "mixed", time.time())
