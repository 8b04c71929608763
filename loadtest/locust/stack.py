"""What the load runs against (the driver's side): its options, the handle on it, and the part
of every locust plan the target gives (accounts, shows, queries, days); the flash sale is set
through the admin API, on a stack of our own and on a running server alike.

    target = await local.open_local(StackOptions(database_url=..., redis_url=...), say)
    target = await remote.open_remote("http://127.0.0.1:8080", StackOptions(...), say)
    plan = target.plan          # accounts, flash_accounts, bookable_shows, watched_shows, ...
    pids = await target.process_groups()    # {"gateway": [...], "show hosts": [...], ...}
    await target.close()        # every closer, last first
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.locust.scenarios import API
from loadtest.search import QUERIES

Say = Callable[[str], None]
CONCURRENCY = 8  # accounts made at once
DURABLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class StackOptions:
    database_url: str
    redis_url: str
    scale: float = 0.02  # the demo data's scale
    accounts: int = 600  # customers of the funnel, the mixed day and the seat changers
    flash_accounts: int = 600  # visitors of the flash sale: one place each, never reused
    gateways: int = 1
    admission_per_min: int = 600
    watched_shows: int = 2
    warm_up: bool = True  # activate every show on sale before the runs (local stack)
    admin_email: str = ""  # --host: an admin's login, to put a show in a flash sale
    admin_password: str = ""
    run: str = field(default_factory=lambda: f"locust_{uuid.uuid4().hex[:8]}")


@dataclass
class Target:
    """A server under load and how to reach, describe and close it."""

    url: str
    plan: dict[str, Any]
    description: str
    closers: list[Callable[[], Any]] = field(default_factory=list)  # run last to first
    metrics_url: str | None = None  # where one gateway process answers ``/metrics``
    groups: Callable[[], Awaitable[dict[str, list[int]]]] | None = None

    async def process_groups(self) -> dict[str, list[int]]:
        """The server's processes by group, as they are now (show hosts come and go)."""
        return {} if self.groups is None else await self.groups()

    async def close(self) -> None:
        """Every closer, last first; each is tried even when one fails (the first failure is
        raised at the end)."""
        failures: list[BaseException] = []
        for closer in reversed(self.closers):
            try:
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                failures.append(exc)
        self.closers.clear()
        if failures:
            raise failures[0]


def base_plan(days: list[str]) -> dict[str, Any]:
    return {"days": days, "queries": list(QUERIES), "admission_wait_s": 20.0, "poll_s": 1.0}


async def bulk(jobs: list[Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Awaitable[Any]) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


# -- the flash sale, through the admin API (local and --host alike) ----------------------------


async def open_flash_sale(url: str, plan: dict[str, Any], options: StackOptions) -> None:
    """Put ``plan["flash_show"]`` in a flash sale that is open now, admitting
    ``options.admission_per_min`` a minute; wait until Postgres has its status."""
    import aiohttp

    show, now = plan["flash_show"], time.time()
    terms = {
        "queue_opens_at": _iso(now - 120),
        "sale_opens_at": _iso(now - 60),
        "admission_per_min": options.admission_per_min,
        "token_ttl_s": 600,
    }
    headers = {"Authorization": f"Bearer {plan['admin_token']}"}
    async with aiohttp.ClientSession(url, headers=headers) as session:
        admin = f"{API}/admin/shows/{show}"
        await send(session, "PUT", f"{admin}/flash-sale", terms)
        await send(session, "PUT", f"{admin}/status", {"status": "flash_sale"})
        deadline = time.monotonic() + DURABLE_TIMEOUT_S
        while (await send(session, "GET", f"{admin}/flash-sale"))["status"] != "flash_sale":
            if time.monotonic() > deadline:
                raise RuntimeError(f"show {show}'s flash-sale status not in Postgres in time")
            await asyncio.sleep(0.05)


async def send(session: Any, method: str, path: str, body: Any = None) -> Any:
    async with session.request(method, path, json=body) as resp:
        answer = await resp.json()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path} answered {resp.status}: {answer}")
    return answer


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat()


async def end_flash_sale(url: str, plan: dict[str, Any]) -> None:
    """Put the flash sale's show back on sale."""
    import aiohttp

    headers = {"Authorization": f"Bearer {plan['admin_token']}"}
    async with aiohttp.ClientSession(url, headers=headers) as session:
        path = f"{API}/admin/shows/{plan['flash_show']}/status"
        await send(session, "PUT", path, {"status": "on_sale"})
