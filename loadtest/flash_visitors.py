"""The flash sale's visitors: a locust user whose one task is a visitor's whole journey, run
headless in a process of its own (locust's library API) by ``loadtest.flash_sale``.

    python -m loadtest.flash_visitors PLAN.json RESULT.json    # prints "ready", waits for "go"

A visitor joins the show's queue, polls it about every ``poll_s`` (a heartbeat) until
admitted, holds the best 2 seats with the admission token, checks out and pays, then stops; a
full house (409 ``no_seats_available``) sends them away, out of the line. Every visitor's
story (when they joined, when the waiting room admitted them, what they got, what went wrong)
is written to RESULT.json with locust's request statistics, once every visitor has stopped or
``seconds`` after "go", whichever comes first.

Locust imports gevent, which patches the standard library as it loads: this module imports
locust before anything else and is never imported by the driver or the test suite.
"""

from __future__ import annotations

import locust  # first: gevent patches the standard library as locust loads

import base64  # noqa: E402
import datetime as dt  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.exception import StopUser  # noqa: E402

API = "/api/v1"
SEATS_PER_VISITOR = 2
FULL_HOUSE = "no_seats_available"
# Split when no 2 adjacent seats are left: pairs alone would strand single seats (the orphan
# rule of best available), and the house would never sell out.
ALLOW_SPLIT = True
PLAN: dict[str, Any] = {}  # url, show_id, tokens, poll_s, seconds, payment_method, token_ttl_s
VISITS: list[dict[str, Any]] = []  # one per visitor, appended as they start
_next = itertools.count()  # greenlets share one thread: no lock needed


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def _claims(token: str) -> dict[str, Any]:
    """The admission token's claims, unverified (the gateway verifies them)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _code(resp: Any) -> str:
    body = resp.js if isinstance(resp.js, dict) else {}
    error = body.get("error")
    return str(error.get("code")) if isinstance(error, dict) else "-"


class Customer(locust.FastHttpUser):
    """A logged-in customer: one account (Bearer token) of the plan's each. Requests are
    grouped in locust's statistics by ``step``."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0
    concurrency = 1  # one journey, one request at a time
    step = ""

    def on_start(self) -> None:
        self.index = next(_next)
        self.auth = {"Authorization": f"Bearer {PLAN['tokens'][self.index]}"}

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex, **headers}
        return self.rest("POST", API + path, json=body or {}, headers=headers, name=self.step)

    def call(self, method: str, path: str) -> Any:
        return self.rest(method, API + path, headers=self.auth, name=self.step)


class FlashSaleVisitor(Customer):
    """Join, wait until admitted, hold 2 best available, check out, pay; then stop.

    Each answer is judged inside its ``with`` block (locust's ``rest`` marks the failures);
    a visitor stops after the block, since ``rest`` would swallow the ``StopUser``."""

    def on_start(self) -> None:
        super().on_start()
        self.visit: dict[str, Any] = {"visitor": self.index, "outcome": "waiting", "errors": []}
        VISITS.append(self.visit)

    def expect(self, resp: Any, status: int) -> bool:
        """Whether ``resp`` has ``status``; when not, a failure and an error of this visit."""
        if resp.status_code == status and isinstance(resp.js, dict):
            return True
        resp.failure(f"{self.step} answered {resp.status_code}")
        self.visit["errors"].append(f"{self.step}:{resp.status_code}:{_code(resp)}")
        return False

    def give_up(self, outcome: str) -> None:
        self.visit["outcome"] = outcome
        raise StopUser

    @locust.task
    def journey(self) -> None:
        show = PLAN["show_id"]
        token = self.wait_for_admission(show)
        hold = self.hold(show, token)
        self.pay(self.checkout(show, hold))
        raise StopUser

    def wait_for_admission(self, show: int) -> str:
        self.step, visit = "join", self.visit
        visit["joined_at"] = time.time()
        with self.post(f"/shows/{show}/queue") as resp:
            joined = self.expect(resp, 200)
        if not joined:
            self.give_up("join_failed")
        visit["phase_at_join"], standing = resp.js["phase"], resp.js
        self.step, visit["polls"] = "poll", 0
        while standing["state"] == "waiting":
            gevent.sleep(PLAN["poll_s"])
            with self.call("GET", f"/shows/{show}/queue") as resp:
                if self.expect(resp, 200):  # else a lost poll: the next one will do
                    standing = resp.js
            visit["polls"] += 1
        if standing["state"] != "admitted":
            self.give_up("dropped_out")  # no heartbeat for too long: out of the line
        visit["seen_admitted_at"] = time.time()
        expires = _epoch(standing["token_expires_at"])
        visit["admitted_at"] = expires - PLAN["token_ttl_s"]  # the waiting room's own instant
        visit["number"] = _claims(standing["admission_token"])["num"]
        return str(standing["admission_token"])

    def hold(self, show: int, token: str) -> dict[str, Any]:
        self.step = "hold"
        body = {"count": SEATS_PER_VISITOR, "category": "standard", "allow_split": ALLOW_SPLIT}
        with self.post(f"/shows/{show}/holds", body, **{"Admission-Token": token}) as resp:
            full = resp.status_code == 409 and _code(resp) == FULL_HOUSE
            if full:
                resp.success()  # an expected answer: the house is full
            held = full or self.expect(resp, 201)
        if full:
            self.leave(show)
        if not held:
            self.give_up("hold_failed")
        return dict(resp.js)

    def leave(self, show: int) -> None:
        self.step = "leave"
        with self.call("DELETE", f"/shows/{show}/queue") as resp:
            self.expect(resp, 200)
        self.give_up("house_full")

    def checkout(self, show: int, hold: dict[str, Any]) -> dict[str, Any]:
        self.step, self.visit["seats"] = "checkout", hold["seats"]
        with self.post(f"/shows/{show}/holds/{hold['hold_id']}/checkout") as resp:
            started = self.expect(resp, 201)
        if not started:
            self.give_up("checkout_failed")
        return dict(resp.js)

    def pay(self, payment: dict[str, Any]) -> None:
        self.step = "confirm"
        body = {"payment_method": PLAN["payment_method"]}
        with self.post(f"/payments/{payment['payment_id']}/confirm", body) as resp:
            paid = self.expect(resp, 200) and resp.js.get("status") == "booked"
        if not paid:
            self.give_up("payment_failed")
        self.visit["booking_id"] = resp.js["booking_id"]
        self.visit["booked_at"] = time.time()
        self.visit["outcome"] = "booked"


def request_stats(env: Environment) -> dict[str, Any]:
    """Locust's numbers per step: requests, failures, response-time percentiles (ms)."""
    out: dict[str, Any] = {}
    for (name, method), entry in sorted(env.stats.entries.items()):
        if not entry.num_requests:
            continue
        out[f"{method} {name}"] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time, 1),
        }
    return out


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Spawn every visitor in one burst once the driver says "go"; their stories."""
    PLAN.update(plan)
    count = len(plan["tokens"])
    env = Environment(user_classes=[FlashSaleVisitor], host=plan["url"])
    runner = env.create_local_runner()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the driver did not say go")
    began = time.time()
    deadline = time.monotonic() + plan["seconds"]
    runner.start(count, spawn_rate=plan.get("spawn_rate") or count)
    while time.monotonic() < deadline:
        gevent.sleep(0.2)
        if len(VISITS) == count and runner.user_count == 0:
            break
    timed_out = runner.user_count > 0
    runner.quit()
    return {
        "started_at": began,
        "ended_at": time.time(),
        "timed_out": timed_out,
        "visits": VISITS,
        "requests": request_stats(env),
        "locust_errors": {str(k): v.occurrences for k, v in env.stats.errors.items()},
    }


def main(argv: list[str]) -> int:
    plan_path, result_path = Path(argv[0]), Path(argv[1])
    result = run(json.loads(plan_path.read_text()))
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
