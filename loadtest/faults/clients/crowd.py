"""The crowd of one run: its customers, visitors and watchers made (each with a random stream of
its own) and run on one HTTP session; ``drained`` once every journey ended after ``stop``, done
once the watchers caught up after ``finish``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from loadtest.faults import model
from loadtest.faults.clients.calls import Run
from loadtest.faults.clients.customers import Customer
from loadtest.faults.clients.tuning import Tuning
from loadtest.faults.clients.visitors import Visitor
from loadtest.faults.clients.watchers import Watcher

Say = Callable[[str], None]


class Clients:
    """Customers, visitors and watchers of one run (see the package's docstring).
    ``drained`` is set once every customer and visitor is done (after ``stop``)."""

    def __init__(
        self,
        plan: model.Plan,
        history: model.History,
        *,
        seed: int,
        stop: asyncio.Event,
        finish: asyncio.Event,
        customers: int,
        watchers: int,
        visitors: int,
        say: Say,
        tuning: Tuning | None = None,
    ) -> None:
        _check_counts(plan, customers=customers, watchers=watchers, visitors=visitors)
        self.plan, self.history, self.seed = plan, history, seed
        self.stop, self.finish, self.say = stop, finish, say
        self.sizes = (customers, visitors, watchers)
        self.tuning = tuning or Tuning()
        self.drained = asyncio.Event()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        # No session-wide total timeout: it would cut the websockets; each request sets its own.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            run = Run(
                self.plan, self.history, session, self.tuning, self.seed, self.stop, self.finish
            )
            await self._run(run)

    async def _run(self, run: Run) -> None:
        customers, visitors, watchers = self._clients(run)
        self.say(
            f"clients: {len(customers)} customers, {len(visitors)} visitors and "
            f"{len(watchers)} watchers on {self.plan.url}"
        )
        load = [asyncio.create_task(c.live()) for c in (*customers, *visitors)]
        watching = [asyncio.create_task(w.live()) for w in watchers]
        stopping = asyncio.create_task(self._stopping(run))
        try:
            await asyncio.gather(*load)
            self.drained.set()
            counts = run.counts
            self.say(
                f"clients: {counts['journeys']} journeys, {counts['bookings']} bookings, "
                f"{counts['admissions']} admissions, {counts['gave_up']} given up, "
                f"{len(self.history.calls)} calls"
            )
            await asyncio.gather(*watching)
            caught = sum(w.caught_up for w in watchers)
            self.say(f"clients: {caught} of {len(watchers)} watchers caught up")
        finally:
            for task in (*load, *watching, stopping):
                task.cancel()
            await asyncio.gather(*load, *watching, stopping, return_exceptions=True)

    def _clients(self, run: Run) -> tuple[list[Customer], list[Visitor], list[Watcher]]:
        """Each client's random stream is ``seed + index``, numbered across all of them."""
        n_customers, n_visitors, n_watchers = self.sizes
        accounts = self.plan.customers
        customers = [
            Customer(run, f"customer-{i}", i, accounts[i % len(accounts)])
            for i in range(n_customers)
        ]
        visitors = [
            Visitor(run, f"visitor-{i}", n_customers + i, self.plan.visitors[i])
            for i in range(n_visitors)
        ]
        shows = [*self.plan.shows, self.plan.flash_show]
        first = n_customers + n_visitors
        watchers = [
            Watcher(run, f"watcher-{i}", first + i, shows[i % len(shows)])
            for i in range(n_watchers)
        ]
        return customers, visitors, watchers

    async def _stopping(self, run: Run) -> None:
        await self.stop.wait()
        run.stopped_at = time.monotonic()
        self.say(f"clients: stopping; journeys in flight get {self.tuning.drain_s:g} s to end")


def _check_counts(plan: model.Plan, *, customers: int, watchers: int, visitors: int) -> None:
    """Refuse counts the plan cannot serve, with a message that says why."""
    for name, value in (("customers", customers), ("watchers", watchers), ("visitors", visitors)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number, 0 or more (got {value!r})")
    if customers and not (plan.customers and plan.shows):
        raise ValueError("customers need the plan's customer accounts and shows (none given)")
    if visitors > len(plan.visitors):
        raise ValueError(
            f"{visitors} visitors asked for, but the plan has {len(plan.visitors)} visitor "
            "accounts (one place in the line each)"
        )
