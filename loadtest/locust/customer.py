"""The customers' base class and the plan they follow (locust process only).

    class BrowseAndSearch(Customer):
        @locust.task
        def browse(self) -> None:
            cities = self.call("GET", "/cities", "/cities")
            ...

The plan is the JSON file ``SEATSERVER_LOCUST_PLAN`` names, written by the driver: the shows
to book and watch, the flash sale's show, the accounts with their access tokens, the search
queries, the pause between tasks. Accounts are handed out in turn, one per journey: a locust
user plays many customers one after the other, as a site sees them, and no customer goes past
the per-user rate limits of a deployment.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import locust

from loadtest.locust.scenarios import API, PLAN_ENV

RETRY_STATUSES = frozenset({0, 429, 500, 502, 503, 504})  # 0: no answer (connection lost)
IN_PROGRESS = "idempotency_request_in_progress"  # the first try with this key still runs
TRIES = 4


def load_plan() -> dict[str, Any]:
    path = os.environ.get(PLAN_ENV)
    if not path:
        raise SystemExit(
            f"set {PLAN_ENV} to a plan's JSON file: `python -m loadtest` writes one (and can "
            "target a running server with --host)"
        )
    return dict(json.loads(Path(path).read_text()))


PLAN: dict[str, Any] = load_plan()
_accounts = itertools.count()
_flash_accounts = itertools.count()


def next_account() -> dict[str, str]:
    """The next customer, in turn (email, password, access token)."""
    accounts = PLAN["accounts"]
    return dict(accounts[next(_accounts) % len(accounts)])


def next_flash_account() -> dict[str, str] | None:
    """A customer who has never been in the flash sale's line; None when none is left (a
    visitor keeps one place in a line, so these are never reused)."""
    i = next(_flash_accounts)
    accounts = PLAN["flash_accounts"]
    return dict(accounts[i]) if i < len(accounts) else None


def think() -> float:
    low, high = PLAN["think_s"]
    return random.uniform(low, high)


def error_code(resp: Any) -> str:
    """The error envelope's code, or "-"."""
    body = resp.js if isinstance(getattr(resp, "js", None), dict) else {}
    error = body.get("error")
    return str(error.get("code")) if isinstance(error, dict) else "-"


def pause(attempt: int, resp: Any) -> float:
    """Seconds before try ``attempt + 2``: ``Retry-After`` when given, else 0.2 s doubling,
    jittered."""
    after = (resp.headers or {}).get("Retry-After")
    try:
        base = float(after) if after else 0.2 * 2**attempt
    except ValueError:
        base = 0.2 * 2**attempt
    return min(base, 5.0) * random.uniform(0.5, 1.5)


class Customer(locust.FastHttpUser):
    """A customer's browser: JSON requests to the API, a careful client's retries."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0

    def wait_time(self) -> float:
        return think()

    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: Any = None,
        token: str | None = None,
        ok: int = 200,
        also: tuple[tuple[int, str], ...] = (),
        headers: dict[str, str] | None = None,
        keyed: bool = True,
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """The answer with status ``ok`` (or a (status, code) of ``also``, an answer the
        journey expects, e.g. a sold-out show), else None. ``check`` asserts on the answer's
        JSON inside the request's ``with`` block: a failed assertion fails the request. A lost
        connection, a 429 or a 5xx is tried again after a pause with the same
        ``Idempotency-Key`` (sent with every POST when ``keyed``), so a retry never makes a
        second hold, booking or charge; at most ``TRIES`` times. ``name`` groups the request in
        locust's statistics."""
        sent = {**(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if method == "POST" and keyed:
            sent["Idempotency-Key"] = uuid.uuid4().hex
        extra = {} if body is None else {"json": body}
        for attempt in range(TRIES):
            outcome = "failed"
            with self.rest(method, API + path, name=name, headers=sent, **extra) as resp:
                if (resp.status_code, error_code(resp)) in also:
                    outcome = "expected"
                    resp.success()
                elif resp.status_code == ok and (ok == 204 or isinstance(resp.js, dict)):
                    outcome = "wrong"  # until ``check`` passes
                    if check is not None:
                        check(resp.js)
                    outcome = "ok"
                    resp.success()
                else:
                    resp.failure(f"{method} {name} answered {resp.status_code} {error_code(resp)}")
            if outcome in ("ok", "expected"):
                return resp
            if outcome == "wrong":
                return None
            again = resp.status_code in RETRY_STATUSES or error_code(resp) == IN_PROGRESS
            if not again or attempt == TRIES - 1:
                return None
            gevent.sleep(pause(attempt, resp))
        return None
