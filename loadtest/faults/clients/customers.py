"""Customers: each loops over journeys on the plan's shows until ``stop``: hold 1-3 best seats,
then release the hold, abandon it (it expires), or check out and pay; once booked, read the
booking and sometimes cancel it."""

from __future__ import annotations

import asyncio

from loadtest.faults.clients.calls import GaveUp
from loadtest.faults.clients.purchase import Buyer


class Customer(Buyer):
    """A loop of journeys on the plan's shows until ``stop``."""

    async def live(self) -> None:
        while not self.run.stop.is_set():
            self.run.counts["journeys"] += 1
            try:
                await self.journey()
            except GaveUp as exc:
                self.run.counts["gave_up"] += 1
                self.run.history.notes.append(f"{self.name} gave up a journey at {exc}")
            await self.think()

    async def journey(self) -> None:
        show = self.rng.choice(self.run.plan.shows)
        want = {"count": self.rng.randint(*self.t.seats), "category": "standard"}
        url = self.run.api(f"/shows/{show}/holds")
        hold = await self.step(
            "hold", "POST", url, show_id=show, json={**want, "allow_split": True}
        )
        hold_id = hold.get("hold_id")
        if not isinstance(hold_id, str):  # sold out (409) or refused: another show next time,
            await asyncio.sleep(self.rng.uniform(*self.t.refused_s))  # after a longer pause
            return
        roll = self.rng.random()
        await self.think()
        if roll < self.t.release_share:
            path = f"/shows/{show}/holds/{hold_id}"
            ids = {"hold_id": hold_id}
            await self.step("release", "DELETE", self.run.api(path), show_id=show, ids=ids)
        elif roll >= self.t.release_share + self.t.abandon_share:
            at_provider = self.rng.random() < self.t.provider_share
            payment = await self.buy(show, hold_id, at_provider=at_provider)
            booking_id = (payment or {}).get("booking_id")
            if isinstance(booking_id, str) and payment and payment.get("status") == "booked":
                await self.after_booking(show, booking_id)

    async def after_booking(self, show: int, booking_id: str) -> None:
        ids = {"booking_id": booking_id}
        url = self.run.api(f"/bookings/{booking_id}")
        await self.step("booking", "GET", url, keyed=False, show_id=show, ids=ids)
        if self.rng.random() < self.t.cancel_share:
            await self.think()
            cancel = self.run.api(f"/bookings/{booking_id}/cancel")
            await self.step("cancel", "POST", cancel, show_id=show, ids=ids)
