"""Waiting-room visitors: one place each in the flash show's line, polled until admitted, then a
hold with the admission token, checked out and paid."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from loadtest.faults.clients.calls import Answer, GaveUp, digest
from loadtest.faults.clients.purchase import Buyer

LINE_OVER = frozenset({"sold_out", "ended", "closed"})  # phases of a line that admit no one
ADMISSION_HEADER = "Admission-Token"


class Visitor(Buyer):
    """One visit to the flash sale: a place in its line, then a purchase once admitted."""

    async def live(self) -> None:
        arrival = self.rng.uniform(0.0, self.t.visitor_spread_s)
        with contextlib.suppress(TimeoutError):  # the load may stop before this visitor comes
            await asyncio.wait_for(self.run.stop.wait(), arrival)
        if self.run.stop.is_set():
            return
        try:
            await self.visit(self.run.plan.flash_show)
        except GaveUp as exc:
            self.run.counts["gave_up"] += 1
            self.run.history.notes.append(f"{self.name} gave up its visit at {exc}")

    async def visit(self, show: int) -> None:
        url = self.run.api(f"/shows/{show}/queue")
        joined = await self.step("queue_join", "POST", url, show_id=show)
        token = await self.wait_admitted(show, url, joined)
        if token is None:
            return
        self.run.counts["admissions"] += 1
        ids = {"admission": digest(token)}
        want = {"count": self.rng.randint(*self.t.seats), "category": "standard"}
        hold = await self.step(
            "queue_hold", "POST", self.run.api(f"/shows/{show}/holds"), show_id=show, ids=ids,
            headers={ADMISSION_HEADER: token}, json={**want, "allow_split": True},
        )  # fmt: skip
        hold_id = hold.get("hold_id")
        if isinstance(hold_id, str):
            await self.think()
            await self.buy(show, hold_id, at_provider=False)

    async def wait_admitted(self, show: int, url: str, answer: Answer) -> str | None:
        """The admission token once the line lets this visitor in; None when it will not (the
        sale is over, the place was lost) or the visitor gives up (``stop``, or waiting past
        ``Tuning.admission_wait_s``)."""
        deadline = time.monotonic() + self.t.admission_wait_s
        standing = answer.body if answer.done else None
        while True:
            if isinstance(standing, dict):
                if standing.get("state") == "admitted":
                    token = standing.get("admission_token")
                    return token if isinstance(token, str) else None
                if standing.get("state") != "waiting" or standing.get("phase") in LINE_OVER:
                    return None
            elif not answer.again:
                return None  # refused outright
            if self.run.stop.is_set() or time.monotonic() > deadline:
                return None
            await asyncio.sleep(self.poll_pause(standing))
            answer = await self.step("queue_poll", "GET", url, keyed=False, show_id=show)
            standing = answer.body if answer.done else None

    def poll_pause(self, standing: Any) -> float:
        """The answer gives no polling interval: a quarter of the estimated wait, bounded."""
        low, high = self.t.line_poll_s
        eta = standing.get("eta_s") if isinstance(standing, dict) else None
        wanted = eta / 4 if isinstance(eta, int | float) else high
        return min(high, max(low, wanted)) * self.rng.uniform(0.8, 1.2)
