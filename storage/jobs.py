"""Leases of periodic jobs: with any number of gateways, each job runs once per interval.

    if await claim(conn, "analytics.rollup", interval_s=10):
        ...  # run it
        await finished(conn, "analytics.rollup", error=None)

A claim takes the job's lease for ``interval_s`` when the last lease has lapsed; a process that
dies mid-run leaves the lease to lapse, and another one runs the job next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobState:
    name: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str | None
    runs: int
    failures: int


async def claim(conn: Any, name: str, *, interval_s: float) -> bool:
    """Take ``name``'s lease for ``interval_s`` seconds if nobody holds it; True if taken."""
    await conn.execute("INSERT INTO jobs (name) VALUES ($1) ON CONFLICT DO NOTHING", name)
    taken = await conn.fetchval(
        """
        UPDATE jobs SET lease_until = now() + make_interval(secs => $2),
                        last_started_at = now()
        WHERE name = $1 AND lease_until <= now()
        RETURNING true
        """,
        name,
        float(interval_s),
    )
    return bool(taken)


async def finished(conn: Any, name: str, *, error: str | None) -> None:
    """Record the end of a run (``error``: why it failed, None when it succeeded)."""
    await conn.execute(
        """
        UPDATE jobs SET last_finished_at = now(), last_error = $2::text, runs = runs + 1,
                        failures = failures + ($2::text IS NOT NULL)::int
        WHERE name = $1
        """,
        name,
        error[:2000] if error else None,
    )


async def job_states(conn: Any) -> list[JobState]:
    rows = await conn.fetch(
        "SELECT name, last_started_at, last_finished_at, last_error, runs, failures "
        "FROM jobs ORDER BY name"
    )
    return [JobState(**dict(r)) for r in rows]
