"""What a locust run keeps beyond locust's own statistics (locust process only): every request's
time, name and latency, the journeys' counters, when spawning ended, and a progress line every
few seconds on stdout ("progress …", which the driver relays), and "spawned" once every user
has started.

    from loadtest.locust import recorder
    recorder.count("bookings_funnel")
    recorder.fire("WS", "delta", latency_ms)                 # a request event of our own

At exit it writes ``$SEATSERVER_LOCUST_OUT_samples.csv`` (t, method, name, ms, ok) and
``$SEATSERVER_LOCUST_OUT_summary.json`` (counters, marks, locust's errors); the driver reads
both (``loadtest.locust.analysis``).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import events

from loadtest.locust.customer import PLAN
from loadtest.locust.scenarios import OUT_ENV, group_of

COUNTS: Counter[str] = Counter()
SAMPLES: list[tuple[float, str, str, float, bool]] = []
MARKS: dict[str, float] = {}
ENVIRONMENT: list[Any] = []  # locust's Environment, once it is made


def count(name: str, n: int = 1) -> None:
    COUNTS[name] += n


def fire(
    method: str, name: str, response_time_ms: float, exception: Exception | None = None
) -> None:
    """A request event of our own (websocket messages, whole journeys): it shows in locust's
    statistics and CSVs beside the HTTP requests."""
    environment = ENVIRONMENT[0]
    environment.events.request.fire(
        request_type=method,
        name=name,
        response_time=response_time_ms,
        response_length=0,
        exception=exception,
        context={},
    )


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    ENVIRONMENT.append(environment)
    MARKS["init"] = time.time()


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    MARKS["started"] = time.time()
    gevent.spawn(_progress, environment)


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    if "spawned" not in MARKS:
        MARKS["spawned"] = time.time()
        print("spawned", flush=True)  # the driver reads the gateway's metrics from here on
    MARKS["users"] = user_count


@events.request.add_listener
def _request(
    request_type: str, name: str, response_time: float, exception: Any = None, **_: Any
) -> None:
    SAMPLES.append(
        (time.time(), request_type, name, float(response_time or 0.0), exception is None)
    )


def _progress(environment: Any) -> None:
    """Every ``progress_s``: requests a second, failures and p99 by group since the last line,
    and the counters so far."""
    every = float(PLAN.get("progress_s", 5.0))
    seen = 0
    while True:
        gevent.sleep(every)
        fresh, seen = SAMPLES[seen:], len(SAMPLES)
        by_group: dict[str, list[float]] = {}
        failed = 0
        for _, method, name, ms, ok in fresh:
            by_group.setdefault(group_of(method, name), []).append(ms)
            failed += not ok
        p99 = ", ".join(
            f"{group} {sorted(v)[min(len(v) - 1, int(len(v) * 0.99))]:.0f}"
            for group, v in sorted(by_group.items())
        )
        users = environment.runner.user_count if environment.runner else 0
        counters = ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
        print(
            f"progress users {users}, {len(fresh) / every:.0f} req/s, {failed} failed; "
            f"p99 ms: {p99 or '-'}; {counters or 'no journeys yet'}",
            flush=True,
        )


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    prefix = os.environ.get(OUT_ENV)
    if not prefix:
        return
    MARKS["ended"] = time.time()
    with Path(prefix + "_samples.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("t", "method", "name", "ms", "ok"))
        writer.writerows((f"{t:.4f}", m, n, f"{ms:.2f}", int(ok)) for t, m, n, ms, ok in SAMPLES)
    errors = {
        f"{e.method} {e.name}: {e.error}": e.occurrences for e in environment.stats.errors.values()
    }
    summary = {"counters": dict(COUNTS), "marks": MARKS, "errors": errors}
    Path(prefix + "_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
