"""Seat-map watchers on websockets, and the customers whose holds they watch (locust process
only).

A ``SeatMapWatcher`` is a browser on a show's page: it opens ``/ws/shows/{id}``, takes the
snapshot, then applies deltas in version order for ``watch_s`` seconds (a gap asks for a
resync and waits for the next snapshot, as the page does), then closes and opens another.
A ``SeatChanger`` holds one seat of a watched show and releases it, again and again, noting
when it sent each change; a watcher that receives the change fires a ``WS delta`` event with
the time from that moment: the latency from a customer's click to every watcher's screen.

Events: ``WS connect`` (the time to the first snapshot), ``WS delta`` (per watcher and seat
change); counters ``ws_messages``, ``ws_deltas``, ``ws_heartbeats``, ``ws_snapshots``,
``ws_gaps`` (a version skipped), ``ws_resyncs`` (the server's), ``ws_errors``.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import gevent
import locust
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

from loadtest.locust import recorder
from loadtest.locust.customer import PLAN, Customer, next_account

OPEN_TIMEOUT_S = 10.0
HOLD_FOR_S = 0.2  # a changer's seat stays held this long before it releases it
SEAT_TAKEN = ((409, "seat_unavailable"),)
# (show, seat, new state) → when a changer sent the request that makes that change.
SENT: dict[tuple[int, str, str], float] = {}
_changers = itertools.count()


def ws_url(host: str, show: int) -> str:
    """``http://127.0.0.1:8080`` → ``ws://127.0.0.1:8080/ws/shows/7``."""
    return "ws" + host.removeprefix("http").rstrip("/") + f"/ws/shows/{show}"


class SeatMapWatcher(locust.User):
    """A browser on a watched show's page, for ``watch_s`` seconds at a time."""

    def wait_time(self) -> float:
        return 0.0

    @locust.task
    def watch(self) -> None:
        show = random.choice(PLAN["watched_shows"])
        began = time.perf_counter()
        try:
            ws = connect(ws_url(str(self.host), show), open_timeout=OPEN_TIMEOUT_S, close_timeout=2)
        except (OSError, TimeoutError, WebSocketException) as exc:
            recorder.fire("WS", "connect", (time.perf_counter() - began) * 1000, exc)
            gevent.sleep(1.0)
            return
        with ws:
            Watch(show, ws, began).run(float(PLAN["watch_s"]))


class Watch:
    """One websocket session of a watcher: the show's version as the page knows it."""

    def __init__(self, show: int, ws: Any, began: float) -> None:
        self.show, self.ws, self.began = show, ws, began
        self.version: int | None = None  # None: waiting for a snapshot
        self.connected = False  # the first snapshot came

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = self.ws.recv(timeout=min(left, 1.0))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                recorder.count("ws_errors")
                recorder.fire("WS", "closed by the server", 0.0, exc)
                return
            recorder.count("ws_messages")
            self.on_message(json.loads(raw), time.time())

    def on_message(self, msg: dict[str, Any], now: float) -> None:
        kind = msg.get("type")
        if kind == "snapshot":
            if not self.connected:
                self.connected = True
                recorder.fire("WS", "connect", (time.perf_counter() - self.began) * 1000)
            recorder.count("ws_snapshots")
            self.version = int(msg["version"])
        elif kind == "delta":
            self.on_delta(msg, now)
        elif kind == "heartbeat":
            recorder.count("ws_heartbeats")
        elif kind == "resync":
            recorder.count("ws_resyncs")
            self.version = None
        elif kind == "error":
            recorder.count("ws_errors")
            recorder.fire("WS", "error", 0.0, RuntimeError(str(msg.get("error"))[:200]))

    def on_delta(self, msg: dict[str, Any], now: float) -> None:
        recorder.count("ws_deltas")
        version = int(msg["version"])
        if self.version is None or version <= self.version:
            return  # before the next snapshot, or already in it
        if version != self.version + 1:  # a gap: ask for a fresh snapshot, as the page does
            recorder.count("ws_gaps")
            self.version = None
            self.ws.send(json.dumps({"type": "resync"}))
            return
        self.version = version
        for seat, state in msg.get("changes", ()):
            sent = SENT.get((self.show, seat, state))
            if sent is not None:
                recorder.fire("WS", "delta", max(0.0, now - sent) * 1000)


class SeatChanger(Customer):
    """Holds one seat of a watched show, then releases it: deltas for the watchers. Each
    changer has seats of its own (every n-th standard seat), so changers never collide."""

    def on_start(self) -> None:
        index = next(_changers)
        shows = PLAN["watched_shows"]
        self.show = shows[index % len(shows)]
        resp = self.call("GET", f"/shows/{self.show}/seatmap", "/shows/{id}/seatmap")
        rows = [] if resp is None else resp.js["layout"]["rows"]
        standard = [s["label"] for r in rows for s in r["seats"] if s["category"] == "standard"]
        per_show = -(-max(1, int(PLAN.get("changers", 1))) // len(shows))  # rounded up
        mine = standard[index // len(shows) :: per_show]
        self.seats = [s for s in mine if resp.js["seats"].get(s) == "available"]

    @locust.task
    def change(self) -> None:
        if not self.seats:
            gevent.sleep(1.0)
            return
        seat, token = random.choice(self.seats), next_account()["token"]
        SENT[(self.show, seat, "held")] = time.time()
        hold = self.call(
            "POST", f"/shows/{self.show}/holds", "/shows/{id}/holds", token=token, ok=201,
            body={"seats": [seat]}, also=SEAT_TAKEN,
        )  # fmt: skip
        if hold is None or hold.status_code != 201:
            return
        recorder.count("seat_changes")
        gevent.sleep(HOLD_FOR_S)
        SENT[(self.show, seat, "available")] = time.time()
        path = f"/shows/{self.show}/holds/{hold.js['hold_id']}"
        if self.call("DELETE", path, "/shows/{id}/holds/{id}", token=token) is not None:
            recorder.count("seat_changes")
