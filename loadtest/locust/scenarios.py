"""The standard set of scenarios and how their requests are grouped: plain data, shared by the
driver (``python -m loadtest``) and the locust process (``locustfile``); it imports no locust.

    SCENARIOS["funnel"].classes          # ("BookingFunnel",)
    group_of("POST", "/shows/{id}/holds")  # "hold"
    mixed_weights(100)                   # task shares that make 100 reads for each write

Request names are the API's paths with ``{id}`` for ids, so that locust's statistics and CSVs
group them by route. Two pseudo-methods carry what is not one HTTP request: ``WS`` (websocket
events: time to the first snapshot, a seat change's delta reaching a watcher) and ``JOURNEY``
(a whole booking, a wait in the flash sale's line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

API = "/api/v1"
PLAN_ENV = "SEATSERVER_LOCUST_PLAN"  # the plan's JSON file, written by the driver
OUT_ENV = "SEATSERVER_LOCUST_OUT"  # where the locust process writes its samples and summary

READ, HOLD, WRITE, WS, JOURNEY = "read", "hold", "write", "ws", "journey"
GROUPS = (READ, HOLD, WRITE, WS, JOURNEY)
PAYMENT_METHOD = "pm_card_visa"  # a test card localstripe (and Stripe in test mode) accepts

# Goals for the mixed day, from the issue: p99 of reads and of holds, in milliseconds.
READ_P99_GOAL_MS = 200.0
HOLD_P99_GOAL_MS = 50.0
MAX_FAILURE_SHARE = 0.01  # a step with more failed requests than this does not count

# Requests of one task of the mixed day: a browse is cities, movies, shows, the show and its
# seat map; a booking is a quote (read) then hold, checkout and pay (writes).
BROWSE_READS = 5
BOOK_READS, BOOK_WRITES = 1, 3
READ_MIX = {"browse": 0.2, "search": 0.2, "seatmap": 0.6}  # shares of the reading tasks


def group_of(method: str, name: str) -> str:
    """The group a request is counted in: ``read`` (GET), ``hold`` (POST …/holds), ``write``
    (any other change), ``ws`` or ``journey``.

    >>> group_of("GET", "/shows/{id}/seatmap"), group_of("POST", "/shows/{id}/holds")
    ('read', 'hold')
    """
    if method in ("WS", "JOURNEY"):
        return method.lower()
    if method == "GET":
        return READ
    if method == "POST" and name.endswith("/holds"):
        return HOLD
    return WRITE


def mixed_weights(reads_per_write: float) -> dict[str, float]:
    """Task shares of the mixed day that make ``reads_per_write`` read requests for each write
    request (a booking is ``BOOK_WRITES`` writes and one read; see ``READ_MIX``).

    >>> round(mixed_weights(100)["book"], 5)
    0.00598
    """
    reads_per_task = sum(
        share * (BROWSE_READS if name == "browse" else 1) for name, share in READ_MIX.items()
    )
    # Solve ((1 - b) * reads_per_task + b * BOOK_READS) / (b * BOOK_WRITES) = reads_per_write.
    book = reads_per_task / (reads_per_write * BOOK_WRITES + reads_per_task - BOOK_READS)
    weights = {name: share * (1 - book) for name, share in READ_MIX.items()}
    weights["book"] = book
    return weights


@dataclass(frozen=True)
class Scenario:
    """One journey's run: its locust user classes, how many users by default, and each user's
    pause between tasks (0: back to back, the most a user can ask)."""

    name: str  # file names and the report's headings
    title: str
    classes: tuple[str, ...]
    users: int
    think_s: tuple[float, float] = (0.0, 0.0)
    # Users of a class whatever the total (locust's ``fixed_count``).
    fixed: Mapping[str, int] = field(default_factory=dict)
    # What shows that the journey ran: counters of the locust process.
    counters: tuple[str, ...] = ()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("baseline", "GET /health (the baseline)", ("HealthCheck",), users=16),
        Scenario(
            "browse",
            "browse and search",
            ("BrowseAndSearch",),
            users=16,
            counters=("browsed", "searched"),
        ),
        Scenario(
            "watchers",
            "seat-map watchers on websockets",
            ("SeatMapWatcher", "SeatChanger"),
            users=53,
            think_s=(0.3, 0.7),  # between a changer's seat changes; watchers reconnect at once
            fixed={"SeatChanger": 3},
            counters=("ws_messages", "ws_deltas"),
        ),
        Scenario(
            "funnel",
            "the booking funnel",
            ("BookingFunnel",),
            users=8,
            counters=("bookings_funnel",),
        ),
        Scenario(
            "flash",
            "the flash sale",
            ("FlashSaleCustomer",),
            users=20,
            counters=("flash_admissions", "flash_holds"),
        ),
        Scenario(
            "mixed",
            "a mixed day (100 reads : 1 write)",
            ("MixedDay",),
            users=25,  # the first step; the driver steps it up
            think_s=(0.5, 1.5),
            counters=("mixed_tasks",),
        ),
    )
}
STANDARD = tuple(SCENARIOS)  # the order ``python -m loadtest`` runs them in
ALL_CLASSES = tuple(dict.fromkeys(c for s in SCENARIOS.values() for c in s.classes))
