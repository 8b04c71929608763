"""The flash sale's visitors: a locust user whose one task is a visitor's whole journey, run
headless in a process of its own (locust's library API) by ``loadtest.flash_sale``.

    python -m loadtest.flash_visitors PLAN.json RESULT.json    # prints "ready", waits for "go"

A visitor joins the show's queue, polls it about every ``poll_s`` (a heartbeat) until
admitted, holds the best 2 seats with the admission token, checks out and pays, then stops; a
full house (409 ``no_seats_available`` on the hold, or the line's own word: phase
"sold_out", or 409 ``sold_out`` at the door) sends them away, out of the line. A lost connection,
a 429 or a 5xx is tried again, as a careful client would (``Customer.send``). Every visitor's
story (when they joined, when the waiting room admitted them, what they got, what went wrong)
is written to RESULT.json with locust's request statistics, once every visitor has stopped or
``seconds`` after "go", whichever comes first.

Locust patches the standard library (gevent) as it loads: this module runs in a process of its
own and is never imported by the driver or the test suite.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
import locust  # gevent patches the standard library here (none of the above binds to it)
from locust.env import Environment
from locust.exception import StopUser

API = "/api/v1"
SEATS_PER_VISITOR = 2
FULL_HOUSE = ((409, "no_seats_available"),)  # an expected answer: the house is full
SOLD_OUT_AT_JOIN = ((409, "sold_out"),)  # so is this, at the line's door
OVER = frozenset({"sold_out", "ended", "closed"})  # phases that end a wait
RETRY_STATUSES = frozenset({0, 429, 500, 502, 503, 504})  # 0: no answer (connection lost)
IN_PROGRESS = "idempotency_request_in_progress"  # the first try with this key still runs
TRIES = 6
# Split when no 2 adjacent seats are left: pairs alone would strand single seats (the orphan
# rule of best available), and the house would never sell out.
ALLOW_SPLIT = True
PLAN: dict[str, Any] = {}  # url, show_id, tokens, poll_s, seconds, payment_method, token_ttl_s
VISITS: list[dict[str, Any]] = []  # one per visitor, appended as they start
PHASES: list[tuple[float, str]] = []  # (when, phase) as the visitors' answers told it
_next = itertools.count()  # greenlets share one thread: no lock needed


def _saw(phase: str) -> None:
    """Keep the line's phase as the visitors see it, each change once, with its time."""
    if not PHASES or PHASES[-1][1] != phase:
        PHASES.append((time.time(), phase))


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
    """A logged-in customer: one account (Bearer token) of the plan's each, and requests the
    way a careful client sends them: a lost connection, a 429 or a 5xx is tried again after
    a jittered, growing pause (``Retry-After`` when given), with the same ``Idempotency-Key``.
    Requests are grouped in locust's statistics by ``step``; every answer that was not the
    expected one is kept in ``errors`` as "step:status:code"."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0
    concurrency = 1  # one journey, one request at a time
    step = ""

    def on_start(self) -> None:
        self.index = next(_next)
        self.auth = {"Authorization": f"Bearer {PLAN['tokens'][self.index]}"}
        self.errors: list[str] = []

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: int,
        also: tuple[tuple[int, str], ...] = (),
        headers: dict[str, str] | None = None,
        keyed: bool = True,
    ) -> Any:
        """The answer with status ``ok`` (or a (status, code) of ``also``), after retries;
        None when it never came. ``keyed``: a POST carries an ``Idempotency-Key``."""
        headers = {**self.auth, **(headers or {})}
        if method == "POST" and keyed:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        if method == "POST":
            body = body or {}
        extra = {} if body is None else {"json": body}
        for attempt in range(TRIES):
            with self.rest(method, API + path, headers=headers, name=self.step, **extra) as resp:
                good = resp.status_code == ok and (ok == 204 or isinstance(resp.js, dict))
                good = good or (resp.status_code, _code(resp)) in also
                if good:
                    resp.success()
                else:
                    resp.failure(f"{self.step} answered {resp.status_code} {_code(resp)}")
            if good:
                return resp
            self.errors.append(f"{self.step}:{resp.status_code}:{_code(resp)}")
            again = resp.status_code in RETRY_STATUSES or _code(resp) == IN_PROGRESS
            if not again or attempt == TRIES - 1:
                return None
            gevent.sleep(_pause(attempt, resp))
        return None


def _pause(attempt: int, resp: Any) -> float:
    """Seconds before try ``attempt + 2``: ``Retry-After``, or 0.5 s doubling, jittered."""
    after = (resp.headers or {}).get("Retry-After")
    base = float(after) if after else 0.5 * 2**attempt
    return base * random.uniform(0.5, 1.5)


class FlashSaleVisitor(Customer):
    """Join, wait until admitted, hold 2 best available, check out, pay; then stop. A full
    house sends the visitor away; so does a step that keeps failing."""

    def on_start(self) -> None:
        super().on_start()
        self.visit: dict[str, Any] = {"visitor": self.index, "outcome": "waiting"}
        self.visit["errors"] = self.errors
        VISITS.append(self.visit)

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
        path = f"/shows/{show}/queue"
        resp = self.send("POST", path, ok=200, also=SOLD_OUT_AT_JOIN, keyed=False)  # idempotent
        if resp is None:
            self.give_up("join_failed")
        if resp.status_code != 200:
            self.give_up("sold_out")  # the line told them at the door: every seat is booked
        visit["phase_at_join"], standing = resp.js["phase"], resp.js
        _saw(standing["phase"])
        self.step, visit["polls"] = "poll", 0
        while standing["state"] == "waiting" and standing["phase"] not in OVER:
            gevent.sleep(PLAN["poll_s"])
            resp = self.send("GET", path, ok=200)
            if resp is not None:  # else the next poll will do
                standing = resp.js
                _saw(standing["phase"])
            visit["polls"] += 1
        if standing["state"] == "waiting":  # sold out, or the sale is over: leave the line
            self.step = "leave"
            self.send("DELETE", path, ok=204)
            self.give_up("sold_out")
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
        path, admission = f"/shows/{show}/holds", {"Admission-Token": token}
        resp = self.send("POST", path, body, ok=201, also=FULL_HOUSE, headers=admission)
        if resp is None:
            self.give_up("hold_failed")
        if resp.status_code != 201:
            self.step = "leave"
            self.send("DELETE", f"/shows/{show}/queue", ok=204)
            self.give_up("house_full")
        return dict(resp.js)

    def checkout(self, show: int, hold: dict[str, Any]) -> dict[str, Any]:
        self.step, self.visit["seats"] = "checkout", hold["seats"]
        resp = self.send("POST", f"/shows/{show}/holds/{hold['hold_id']}/checkout", ok=201)
        if resp is None:
            self.give_up("checkout_failed")
        return dict(resp.js)

    def pay(self, payment: dict[str, Any]) -> None:
        self.step = "confirm"
        body = {"payment_method": PLAN["payment_method"]}
        resp = self.send("POST", f"/payments/{payment['payment_id']}/confirm", body, ok=200)
        if resp is None or resp.js.get("status") != "booked":
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
        "phases": PHASES,
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
