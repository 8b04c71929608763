"""``seatserver status`` against the test session's Ray: the nodes, the hosts (a shared one
running an activated show, a dedicated one for a flash sale), the busiest shows, the hot show
and its waiting-room line; as text, as JSON, and refreshed."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import actors
from gateway.waitingroom import WaitingRoom
from seatserver import status
from seatserver.settings import Settings
from storage import flash_sales
from tests.gateway_support import make_account
from tests.integration.shows import Engine, make_show


async def _flash_sale(pool: Any) -> int:
    show = await make_show(pool, status="flash_sale", name="hot")
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn:
        await flash_sales.set_flash_sale(
            conn,
            show,
            queue_opens_at=now - dt.timedelta(minutes=1),
            sale_opens_at=now + dt.timedelta(minutes=30),
            admission_per_min=120,
            token_ttl_s=300,
            by=None,
            now=now,
        )
    return show


@pytest.fixture
async def running(engine: Engine, pool: Any, config: Any, redis: Any) -> dict[str, Any]:
    """A show with a live hold on a shared host, and a flash sale on a host of its own with
    one visitor in its line."""
    customer = await make_account(pool, config)
    show = await make_show(pool)
    hold = actors.HoldSeats(str(uuid.uuid4()), str(customer.user_id), ("C5", "C6"))
    await engine.client.execute(show, hold)
    hot = await _flash_sale(pool)
    await engine.directory.prepare_flash_sale.remote(hot)
    room = WaitingRoom(redis, pool, prefix=config.redis_prefix, secret="status-test")
    await room.join(hot, customer.user_id)
    return {"show": show, "hot": hot}


async def test_status_shows_nodes_hosts_shows_and_lines(
    running: dict[str, Any],
    engine: Engine,
    database_url: str,
    schema: str,
    redis_url: str,
    config: Any,
) -> None:
    found = await status.gather_status(
        engine.namespace,
        database_url=database_url,
        schema=schema,
        redis_url=redis_url,
        redis_prefix=config.redis_prefix,
        top=5,
    )
    assert found["problems"] == []
    alive = [n for n in found["nodes"] if n["alive"]]
    assert alive and alive[0]["cpus"] > 0 and alive[0]["address"]
    hosts = {h["name"]: h for h in found["hosts"]}
    hot_host = f"seatserver-show-{running['hot']}"
    assert set(hosts) == {"seatserver-host-0", "seatserver-host-1", hot_host}
    assert hosts[hot_host]["kind"] == "dedicated" and hosts[hot_host]["active_shows"] == 1
    assert all(h["up"] and h["node"] in {n["node"] for n in alive} for h in hosts.values())
    assert sum(n["hosts"] for n in found["nodes"]) == 3
    shows = {s["show_id"]: s for s in found["shows"]}
    assert shows[running["show"]]["holds"] == 1 and shows[running["show"]]["per_s"] > 0
    assert shows[running["hot"]]["hot"]
    assert found["hot_shows"] == [
        {"show_id": running["hot"], "host": hot_host, "node": hosts[hot_host]["node"]}
    ]
    (line,) = found["queues"]
    assert line["show_id"] == running["hot"] and line["waiting"] == 1
    assert line["admission_per_min"] == 120

    text = status.render(found)
    for expected in ("nodes: ", alive[0]["node"], "seatserver-host-0", hot_host, "busiest"):
        assert expected in text
    # The show's row: its first column is the show id (a node's row may start with its digits).
    row = next(r for r in text.splitlines() if r.split()[:1] == [str(running["show"])])
    assert "seatserver-host-" in row and "on_sale" in row


def _args(**given: Any) -> argparse.Namespace:
    values = {"json": False, "watch": None, "top": 10, "count": None}
    return argparse.Namespace(**(values | given))


async def test_the_command_prints_json_and_refreshes(
    running: dict[str, Any],
    engine: Engine,
    database_url: str,
    schema: str,
    redis_url: str,
    config: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        database_schema=schema,
        redis_url=redis_url,
        redis_prefix=config.redis_prefix,
        ray_namespace=engine.namespace,
    )
    assert await asyncio.to_thread(status.run, settings, _args(json=True)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {h["name"] for h in printed["hosts"]} >= {"seatserver-host-0", "seatserver-host-1"}
    assert running["show"] in {s["show_id"] for s in printed["shows"]}

    assert await asyncio.to_thread(status.run, settings, _args(watch=0.1, count=2)) == 0
    out = capsys.readouterr().out
    assert out.count("seatserver status · namespace") == 2


def test_a_missing_directory_is_a_problem_not_a_crash(ray_session: None) -> None:
    found = asyncio.run(status.gather_status("ns_nobody_here", top=3))
    assert found["hosts"] == [] and found["nodes"]
    assert "no show directory" in found["problems"][0]
