"""The flash sale (locust process only): join the show's waiting room, poll it (the heartbeat
that keeps the place) until admitted, hold the best 2 seats with the admission token, then
give the seats and the place back so that the sale runs as long as the scenario does.

    POST queue → GET queue every poll_s … "admitted" → POST holds (Admission-Token)
              → DELETE hold → DELETE queue

Each visit is a customer who has never been in this line (``next_flash_account``); a wait
longer than ``admission_wait_s`` gives up and leaves. An admission fires a ``JOURNEY`` event
with the wait from joining, and counts ``flash_admissions``; the hold counts ``flash_holds``.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import locust
from locust.exception import StopUser

from loadtest.locust import recorder
from loadtest.locust.customer import PLAN, Customer, next_flash_account
from loadtest.locust.funnel import SEATS

SOLD_OUT = ((409, "sold_out"),)
NO_SEATS = ((409, "no_seats_available"),)
OVER = frozenset({"sold_out", "ended", "closed"})


def _check_standing(js: Any) -> None:
    assert js.get("state") in ("waiting", "admitted", "not_in_queue"), "no state in the answer,"
    if js["state"] == "admitted":
        assert js.get("admission_token"), "admitted without a token,"


class FlashSaleCustomer(Customer):
    """Visitors of a flash sale, one after the other."""

    @locust.task
    def visit(self) -> None:
        account = next_flash_account()
        if account is None:
            recorder.count("flash_accounts_exhausted")
            raise StopUser
        token, show = account["token"], PLAN["flash_show"]
        joined = time.time()
        admission = self.wait_for_admission(show, token)
        if admission is None:
            return
        recorder.count("flash_admissions")
        recorder.fire("JOURNEY", "flash admission (wait)", (time.time() - joined) * 1000)
        hold = self.call(
            "POST", f"/shows/{show}/holds", "/shows/{id}/holds", token=token, ok=201,
            body={"count": SEATS, "category": "standard", "allow_split": True},
            headers={"Admission-Token": admission}, also=NO_SEATS,
        )  # fmt: skip
        if hold is not None and hold.status_code == 201:
            recorder.count("flash_holds")
            path = f"/shows/{show}/holds/{hold.js['hold_id']}"
            self.call("DELETE", path, "/shows/{id}/holds/{id}", token=token)
        self.call("DELETE", f"/shows/{show}/queue", "/shows/{id}/queue", token=token, ok=204)

    def wait_for_admission(self, show: int, token: str) -> str | None:
        """The admission token, once the line lets this visitor in; None on giving up."""
        path = f"/shows/{show}/queue"
        resp = self.call(
            "POST", path, "/shows/{id}/queue", token=token, keyed=False, also=SOLD_OUT,
            check=_check_standing,
        )  # fmt: skip
        if resp is None or resp.status_code != 200:
            return None
        standing = resp.js
        deadline = time.monotonic() + float(PLAN["admission_wait_s"])
        while standing["state"] == "waiting" and standing["phase"] not in OVER:
            if time.monotonic() > deadline:
                recorder.count("flash_gave_up")
                self.call("DELETE", path, "/shows/{id}/queue", token=token, ok=204)
                return None
            gevent.sleep(float(PLAN["poll_s"]))
            resp = self.call("GET", path, "/shows/{id}/queue", token=token, check=_check_standing)
            if resp is not None:
                standing = resp.js
        if standing["state"] != "admitted":
            recorder.count(f"flash_{standing['phase']}")
            return None
        return str(standing["admission_token"])
