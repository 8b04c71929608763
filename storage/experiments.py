"""Experiments in Postgres: their arms and status, who was exposed to which arm, and their
results per arm (migration 0011).

    experiment = await ensure(conn, "pricing-1", kind="pricing",
                              arms=(("dynamic", 0.5), ("control", 0.5)))
    await record_exposures(conn, [Exposure("pricing-1", 42, "dynamic", "USD", now)])
    await materialize_results(conn, "pricing-1")
    rows = await results(conn, "pricing-1")

A visitor converts when they confirm a booking after their first exposure (and before the
experiment stopped); for a pricing experiment only bookings quoted in the visitor's arm count.
Revenue is that of confirmed (not cancelled) bookings in the currency of the visitor's first
exposure, in minor units; bookings in another currency count as conversions only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.errors import AlreadyExists, NotFound

Arms = tuple[tuple[str, float], ...]

_COLUMNS = "name, kind, arms, status, description, started_at, stopped_at, stopped_by, final_arm"


@dataclass(frozen=True)
class Experiment:
    name: str
    kind: str  # "pricing" or "generic"
    arms: Arms  # (arm, share) in the order the hash walks them
    status: str  # "running" or "stopped"
    description: str
    started_at: datetime
    stopped_at: datetime | None
    stopped_by: int | None
    final_arm: str | None  # the arm everyone gets once stopped

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(arm for arm, _ in self.arms)

    @property
    def control(self) -> str:
        """The arm the others are compared with: "control" if there is one, else the first."""
        return "control" if "control" in self.arm_names else self.arms[0][0]


@dataclass(frozen=True)
class Exposure:
    experiment: str
    user_id: int
    arm: str
    currency: str
    at: datetime


@dataclass(frozen=True)
class ArmResult:
    arm: str
    currency: str  # "" when the exposures had none
    visitors: int
    converted: int
    bookings: int
    revenue: int  # minor units
    revenue_sq: float  # sum over visitors of their revenue squared
    computed_at: datetime


def _experiment(row: Any) -> Experiment:
    arms = json.loads(row["arms"]) if isinstance(row["arms"], str) else row["arms"]
    return Experiment(
        name=row["name"],
        kind=row["kind"],
        arms=tuple((str(a["arm"]), float(a["share"])) for a in arms),
        status=row["status"],
        description=row["description"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        stopped_by=row["stopped_by"],
        final_arm=row["final_arm"],
    )


def _arms_json(arms: Arms) -> str:
    return json.dumps([{"arm": arm, "share": share} for arm, share in arms])


async def ensure(
    conn: Any, name: str, *, kind: str, arms: Arms, description: str = ""
) -> Experiment:
    """The experiment ``name``, created with these arms if it does not exist yet."""
    await conn.execute(
        "INSERT INTO experiments (name, kind, arms, description) VALUES ($1, $2, $3::jsonb, $4) "
        "ON CONFLICT (name) DO NOTHING",
        name,
        kind,
        _arms_json(arms),
        description,
    )
    return await get(conn, name)


async def create(
    conn: Any, name: str, *, kind: str, arms: Arms, description: str = ""
) -> Experiment:
    """A new running experiment; ``AlreadyExists`` if the name is taken."""
    row = await conn.fetchrow(
        "INSERT INTO experiments (name, kind, arms, description) VALUES ($1, $2, $3::jsonb, $4) "
        f"ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}",
        name,
        kind,
        _arms_json(arms),
        description,
    )
    if row is None:
        raise AlreadyExists("an experiment of this name exists", {"name": name})
    return _experiment(row)


async def find(conn: Any, name: str) -> Experiment | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM experiments WHERE name = $1", name)
    return None if row is None else _experiment(row)


async def get(conn: Any, name: str) -> Experiment:
    """The experiment ``name``; ``NotFound`` if there is none."""
    found = await find(conn, name)
    if found is None:
        raise NotFound("no such experiment", {"name": name})
    return found


async def list_experiments(conn: Any) -> list[Experiment]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM experiments ORDER BY started_at DESC, name")
    return [_experiment(r) for r in rows]


async def stop(conn: Any, name: str, *, arm: str, by: int | None) -> Experiment:
    """Stop ``name`` with everyone in ``arm`` from now on; an experiment already stopped is
    answered as it is (its first stop stands). The caller checks that ``arm`` is one of its
    arms."""
    await conn.execute(
        "UPDATE experiments SET status = 'stopped', stopped_at = now(), stopped_by = $3, "
        "final_arm = $2 WHERE name = $1 AND status = 'running'",
        name,
        arm,
        by,
    )
    return await get(conn, name)


async def record_exposures(conn: Any, exposures: Sequence[Exposure]) -> int:
    """Insert first exposures, keeping the earliest already there; how many were new."""
    if not exposures:
        return 0
    result: str = await conn.execute(
        """
        INSERT INTO experiment_exposures (experiment, user_id, arm, currency, first_exposed_at)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[],
                             $5::timestamptz[])
        ON CONFLICT (experiment, user_id) DO NOTHING
        """,
        [e.experiment for e in exposures],
        [e.user_id for e in exposures],
        [e.arm for e in exposures],
        [e.currency for e in exposures],
        [e.at for e in exposures],
    )
    return int(result.rsplit(" ", 1)[-1])


_RESULTS = """
WITH x AS (
    SELECT name, kind, stopped_at FROM experiments WHERE name = $1
), per_visitor AS (
    SELECT e.arm, e.currency, e.user_id,
           count(b.booking_id) AS bookings,
           coalesce(sum(b.price_cents) FILTER (WHERE b.currency = e.currency), 0) AS revenue
    FROM experiment_exposures e
    CROSS JOIN x
    LEFT JOIN bookings b
      ON b.user_id = e.user_id
     AND b.status = 'confirmed'
     AND b.confirmed_at >= e.first_exposed_at
     AND (x.stopped_at IS NULL OR b.confirmed_at < x.stopped_at)
     AND (x.kind <> 'pricing' OR b.price_arm = e.arm)
    WHERE e.experiment = x.name
    GROUP BY e.arm, e.currency, e.user_id
)
INSERT INTO experiment_results
    (experiment, arm, currency, visitors, converted, bookings, revenue, revenue_sq, computed_at)
SELECT $1, arm, currency, count(*), count(*) FILTER (WHERE bookings > 0),
       coalesce(sum(bookings), 0), coalesce(sum(revenue), 0),
       coalesce(sum(revenue::numeric * revenue), 0), now()
FROM per_visitor
GROUP BY arm, currency
"""


async def materialize_results(conn: Any, name: str) -> None:
    """Recompute ``name``'s results per arm and currency (one statement over its exposures
    and their users' bookings) and store them in place of the last ones."""
    async with conn.transaction():
        await conn.execute("DELETE FROM experiment_results WHERE experiment = $1", name)
        await conn.execute(_RESULTS, name)


async def results(conn: Any, name: str) -> list[ArmResult]:
    """The last materialized results of ``name``, per arm and currency."""
    rows = await conn.fetch(
        "SELECT arm, currency, visitors, converted, bookings, revenue, revenue_sq, computed_at "
        "FROM experiment_results WHERE experiment = $1 ORDER BY currency, arm",
        name,
    )
    return [
        ArmResult(
            arm=r["arm"],
            currency=r["currency"],
            visitors=int(r["visitors"]),
            converted=int(r["converted"]),
            bookings=int(r["bookings"]),
            revenue=int(r["revenue"]),
            revenue_sq=float(r["revenue_sq"]),
            computed_at=r["computed_at"],
        )
        for r in rows
    ]
