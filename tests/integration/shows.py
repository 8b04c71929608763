"""Build a real show in a test schema through the admin operations, and a show engine
(directory, hosts and client) on the session's Ray."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ray

import actors
import storage
from actors import ShowClient
from tests.conftest import random_ref


def grid_layout(rows: int = 5, per_row: int = 12, aisle_after: int | None = 6) -> dict[str, Any]:
    """Straight rows of standard seats, an aisle in each row, a wheelchair+companion pair."""
    layout_rows = []
    for r in range(rows):
        label = chr(ord("A") + r)
        seats = []
        for n in range(1, per_row + 1):
            category = "standard"
            if r == 0 and n == 1:
                category = "wheelchair"
            elif r == 0 and n == 2:
                category = "companion"
            seats.append(
                {
                    "label": f"{label}{n}",
                    "category": category,
                    "x": float(n),
                    "y": float(r),
                    "aisle_after": n == aisle_after,
                }
            )
        layout_rows.append({"label": label, "seats": seats})
    return {"rows": layout_rows}


async def make_show(
    pool: Any,
    *,
    status: str = "on_sale",
    layout: dict[str, Any] | None = None,
    starts_in: dt.timedelta = dt.timedelta(days=2),
    name: str = "1",
) -> int:
    """A city, theater, screen, movie and one show on sale; returns the show id."""
    async with pool.acquire() as conn:
        return await _make_show(conn, status, layout or grid_layout(), starts_in, name)


async def _make_show(
    conn: Any, status: str, layout: dict[str, Any], starts_in: dt.timedelta, name: str
) -> int:
    now = dt.datetime.now(dt.UTC)
    city = await storage.create_city(conn, f"Testville {name}", "US")
    theater = await storage.create_theater(conn, city, "Main Street", "America/New_York")
    screen = await storage.create_screen(conn, theater, "1", layout)
    movie = await storage.create_movie(
        conn,
        title="The Test",
        genres=["drama"],
        runtime_min=100,
        certificate="PG",
        language="en",
        release_date=dt.date(2026, 1, 1),
        cast_members=[],
        synopsis="",
    )
    prices = {"standard": 1200, "wheelchair": 1200, "companion": 1200}
    return await storage.create_show(
        conn,
        screen_id=screen,
        movie_id=movie,
        starts_at=now + starts_in,
        prices=prices,
        now=now,
        status=status,
    )


@dataclass
class Engine:
    client: ShowClient
    directory: Any
    config: actors.HostConfig
    namespace: str = ""


async def start_engine(
    database_url: str,
    schema: str,
    redis_url: str | None,
    *,
    max_dedicated_hosts: int = 16,
    **config: Any,
) -> Engine:
    """A directory with two shared hosts in a namespace of its own, and a client."""
    host_config = actors.HostConfig(
        database_url=database_url, schema=schema, redis_url=redis_url, **config
    )
    namespace = random_ref("ns")
    directory = actors.start_directory(
        host_config,
        shared_hosts=2,
        namespace=namespace,
        max_dedicated_hosts=max_dedicated_hosts,
    )
    return Engine(ShowClient(directory), directory, host_config, namespace)


async def stop_engine(engine: Engine) -> None:
    """Flush and end every host, then the directory."""
    await engine.directory.shutdown.remote()
    ray.kill(engine.directory, no_restart=True)
