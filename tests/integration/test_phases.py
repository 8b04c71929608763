"""A hold's time by phase (``gateway.phases``), on real Postgres, Redis and Ray: every phase a
hold goes through is observed, its wait in the show host's lane apart from the Ray call, and the
phases add up to the request's time; the seat map is timed too, and other views are not."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway import phases
from gateway.app import create_app
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, make_show

HOLD_ROUTE = {"route": "/api/v1/shows/{show_id}/holds", "method": "POST"}
HOLD_PHASES = {
    "auth", "input", "rate_limit", "idempotency", "show_info", "pricing", "host_lane",
    "host_call", "fraud", "view", "respond", "rest",
}  # fmt: skip


@pytest.fixture
async def client(aiohttp_client: Any, config: Any, engine: Engine) -> AsyncIterator[Any]:
    yield await aiohttp_client(create_app(config, engine=engine.client))


@pytest.fixture
async def alice(pool: Any, config: Any) -> Account:
    return await make_account(pool, config)


def _phases(view: str, suffix: str) -> dict[str, float]:
    """``seatserver_request_phase_seconds<suffix>`` of ``view`` by phase, now."""
    name = "seatserver_request_phase_seconds" + suffix
    return {
        sample.labels["phase"]: sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and sample.labels.get("view") == view
    }


def _request_seconds() -> float:
    value = REGISTRY.get_sample_value("seatserver_http_request_duration_seconds_sum", HOLD_ROUTE)
    return value or 0.0


def _grown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v > before.get(k, 0.0)}


async def test_a_holds_phases_are_observed_and_add_up_to_its_time(
    client: Any, pool: Any, alice: Account
) -> None:
    show = await make_show(pool)
    holds = f"/api/v1/shows/{show}/holds"
    await client.get(f"/api/v1/shows/{show}/seatmap")  # the show is warm: its host is known
    counts, sums = _phases("create_hold", "_count"), _phases("create_hold", "_sum")
    took = _request_seconds()

    for seats in (["C5", "C6"], ["D5"], ["C6"]):  # the last is refused (409): timed all the same
        resp = await client.post(holds, json={"seats": seats}, headers=alice.headers | new_key())
        assert resp.status in (201, 409), await resp.text()

    observed = _grown(counts, _phases("create_hold", "_count"))
    assert HOLD_PHASES - {"rest"} <= set(observed), observed
    assert observed["host_call"] == observed["auth"] == 3
    spent = _grown(sums, _phases("create_hold", "_sum"))
    request = _request_seconds() - took
    assert sum(spent.values()) == pytest.approx(request, rel=0.1, abs=0.002), (spent, request)
    assert spent["host_call"] > 0 and spent["host_lane"] >= 0


async def test_the_seat_map_is_timed_and_other_views_are_not(client: Any, pool: Any) -> None:
    show = await make_show(pool)
    seen = _phases("seatmap", "_count")
    assert (await client.get(f"/api/v1/shows/{show}/seatmap")).status == 200
    assert _grown(seen, _phases("seatmap", "_count")).keys() >= {"auth", "view", "respond"}
    assert (await client.get("/api/v1/health")).status == 200
    assert _phases("health", "_count") == {}


def test_laps_split_the_time_and_never_run_backwards() -> None:
    watch = phases.Stopwatch()
    began = watch.last
    time.sleep(0.002)
    watch.lap("host_lane", at=began + 0.001)
    watch.lap("host_call")
    watch.lap("host_lane", at=began)  # before the last lap: nothing
    assert watch.spent["host_lane"] == pytest.approx(0.001)
    assert watch.spent["host_call"] >= 0.001
    assert sum(watch.spent.values()) == pytest.approx(watch.last - began)
    phases.lap("auth")  # outside a timed request: nothing to time, no error
