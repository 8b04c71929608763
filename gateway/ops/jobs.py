"""Periodic jobs in the gateway: each runs every ``interval_s`` in whichever gateway takes its
lease first (``storage.jobs``), so many gateways run it once per interval between them.

A job is ``async def run(app) -> None``; what it raises is logged and kept on the job's row
(``jobs.last_error``), and it runs again at the next interval. Jobs run only where
``GatewayConfig.jobs_enabled`` is set (``seatserver up`` and ``seatserver gateway`` set it;
tests run a job by calling it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway import keys
from storage import jobs as job_leases

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[web.Application], Awaitable[None]]
    # False: every gateway runs it, without a lease (flushing what this process counted).
    leased: bool = True


async def run_once(app: web.Application, job: Job) -> bool:
    """Run ``job`` now if this gateway gets its lease; True if it ran (even if it failed)."""
    if not job.leased:
        await job.run(app)
        return True
    async with app[keys.POOL].acquire() as conn:
        if not await job_leases.claim(conn, job.name, interval_s=job.interval_s * 0.9):
            return False
    error: str | None = None
    try:
        await job.run(app)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a failing job must not stop the others
        log.exception("job %s failed", job.name)
        error = f"{type(exc).__name__}: {exc}"
    async with app[keys.POOL].acquire() as conn:
        await job_leases.finished(conn, job.name, error=error)
    return True


async def _loop(app: web.Application, job: Job) -> None:
    await asyncio.sleep(random.uniform(0, min(job.interval_s, 2.0)))  # gateways apart
    while True:
        try:
            await run_once(app, job)
        except asyncio.CancelledError:
            raise
        except Exception:  # Postgres away: try again next interval
            log.warning("job %s could not run", job.name, exc_info=True)
        await asyncio.sleep(job.interval_s)


def jobs_ctx(jobs: tuple[Job, ...]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = []
        if app[keys.CONFIG].jobs_enabled:
            tasks = [asyncio.create_task(_loop(app, job), name=job.name) for job in jobs]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if app[keys.CONFIG].jobs_enabled:  # what this process counted since the last flush
            for job in jobs:
                if not job.leased:
                    with contextlib.suppress(Exception):
                        await job.run(app)

    return ctx
