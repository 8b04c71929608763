"""Experiments through the real gateway and show actors: quotes and holds expose users to the
pricing arms (written by the flush job, not by the request), bookings convert them, the results
job counts visitors, conversions and revenue per arm; stopping moves every new quote to the
chosen arm, in this gateway at once and in another within its cache time; only ops may."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import actors
import storage
from gateway import keys
from gateway.app import create_app
from gateway.ops import experiments as ops_experiments
from gateway.ops.config import OpsConfig
from gateway.ops.experiments_registry import assign, pricing_arms
from gateway.ops.jobs import run_once
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, make_show

NAME = "pricing-1"
CACHE_S = 0.3
FLUSH, RESULTS = ops_experiments.JOBS
URL = f"/api/v1/admin/experiments/{NAME}"


@pytest.fixture
def xconfig(config: Any) -> Any:
    return dataclasses.replace(config, ops=OpsConfig(experiments_cache_s=CACHE_S))


@pytest.fixture
async def client(
    aiohttp_client: Any, xconfig: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    yield await aiohttp_client(create_app(xconfig, engine=engine.client))
    found = [k async for k in redis.scan_iter(match=xconfig.redis_prefix + "*")]
    if found:
        await redis.delete(*found)


@pytest.fixture
async def show(pool: Any) -> int:
    return await make_show(pool)


@pytest.fixture
async def ops(pool: Any, config: Any) -> Account:
    return await make_account(pool, config, "admin")


def arm_of(user: Account) -> str:
    return assign(NAME, user.user_id, pricing_arms(0.5))


async def customers(pool: Any, config: Any, per_arm: int) -> dict[str, list[Account]]:
    """At least ``per_arm`` customers in each pricing arm (the hash decides; we keep making)."""
    arms: dict[str, list[Account]] = {"control": [], "dynamic": []}
    while min(len(a) for a in arms.values()) < per_arm:
        user = await make_account(pool, config)
        arms[arm_of(user)].append(user)
    return {arm: users[:per_arm] for arm, users in arms.items()}


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def quote(client: Any, show: int, user: Account) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/shows/{show}/quote", headers=user.headers)
    return dict(await _json(resp, 200))


async def book(
    client: Any, engine: Engine, show: int, user: Account, seats: list[str], token: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"seats": seats}
    if token is not None:
        body["quote_token"] = token
    resp = await client.post(
        f"/api/v1/shows/{show}/holds", json=body, headers={**user.headers, **new_key()}
    )
    hold = await _json(resp, 201)
    await engine.client.execute(
        show, actors.Confirm(hold["hold_id"], str(user.user_id), str(uuid.uuid4()))
    )
    return dict(hold)


async def exposures(pool: Any) -> dict[int, tuple[str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT user_id, arm, currency FROM experiment_exposures WHERE experiment = $1", NAME
        )
    return {r["user_id"]: (r["arm"], r["currency"]) for r in rows}


async def test_results_count_visitors_conversions_and_revenue_per_arm(
    client: Any, engine: Engine, pool: Any, config: Any, show: int, ops: Account
) -> None:
    users = await customers(pool, config, 3)
    (c1, c2, c3), (d1, d2, d3) = users["control"], users["dynamic"]
    quotes = {u.user_id: await quote(client, show, u) for u in (c1, c2, d1, d2, d3)}
    assert {q["arm"] for u, q in quotes.items() if u in (c1.user_id, c2.user_id)} == {"control"}
    assert {q["arm"] for u, q in quotes.items() if u in (d1.user_id, d2.user_id)} == {"dynamic"}
    await book(client, engine, show, c1, ["A1", "A2"], quotes[c1.user_id]["quote_token"])
    await book(client, engine, show, c1, ["E1"], None)  # a second booking of the same visitor
    await book(client, engine, show, d1, ["B1", "B2", "B3"], quotes[d1.user_id]["quote_token"])
    await book(client, engine, show, c3, ["C1"], None)  # exposed by the hold, no quote
    assert await exposures(pool) == {}  # nothing written on the request path
    app = client.server.app
    assert app[keys.EXPERIMENTS].pending() == 6
    assert await run_once(app, FLUSH)
    currency = quotes[c1.user_id]["currency"]
    exposed = {u.user_id: (arm_of(u), currency) for u in (c1, c2, c3, d1, d2, d3)}
    assert await exposures(pool) == exposed
    assert await run_once(app, RESULTS)  # takes the job's lease
    detail = await _json(await client.get(URL, headers=ops.headers), 200)
    assert detail["status"] == "running" and detail["computed_at"] is not None
    (block,) = detail["results"]
    assert block["currency"] == currency and block["control"] == "control"
    assert block["verdict"] == "too_small" and "too small to conclude" in block["note"]
    arms = {a["arm"]: a for a in block["arms"]}
    price = quotes[c1.user_id]["prices"]["standard"]
    control, dynamic = arms["control"], arms["dynamic"]
    assert (control["visitors"], control["converted"], control["bookings"]) == (3, 2, 3)
    assert control["revenue"] == 4 * price
    assert control["revenue_per_visitor"] == pytest.approx(4 * price / 3)
    assert control["conversion"] == pytest.approx(2 / 3)
    assert control["conversion_test"] is None and control["conversion_lift"] is None
    assert (dynamic["visitors"], dynamic["converted"], dynamic["bookings"]) == (3, 1, 1)
    assert dynamic["revenue"] == 3 * price
    assert dynamic["conversion_lift"]["absolute"] == pytest.approx(1 / 3 - 2 / 3)
    assert 0 < dynamic["conversion_test"]["p_value"] <= 1
    assert dynamic["revenue_test"]["df"] is not None
    listed = await _json(await client.get("/api/v1/admin/experiments", headers=ops.headers), 200)
    assert NAME in {e["name"] for e in listed["experiments"]}


async def test_stopping_moves_new_quotes_to_the_chosen_arm_in_every_gateway(
    aiohttp_client: Any,
    client: Any,
    xconfig: Any,
    engine: Engine,
    pool: Any,
    config: Any,
    show: int,
    ops: Account,
) -> None:
    other = await aiohttp_client(create_app(xconfig, engine=engine.client))
    users = await customers(pool, config, 2)
    (d1, d2), (c1,) = users["dynamic"], users["control"][:1]
    before = await quote(client, show, d1)
    assert before["arm"] == "dynamic"
    assert (await quote(other, show, d2))["arm"] == "dynamic"  # the other gateway caches it
    stop = {"arm": "control"}
    headers = {**ops.headers, **new_key()}
    stopped = await _json(await client.post(URL + "/stop", json=stop, headers=headers), 200)
    assert stopped["status"] == "stopped" and stopped["final_arm"] == "control"
    assert stopped["stopped_by"] == ops.user_id
    assert (await quote(client, show, d1))["arm"] == "control"  # this gateway at once
    for _ in range(100):  # the other within its cache time
        if (await quote(other, show, d2))["arm"] == "control":
            break
        await asyncio.sleep(CACHE_S / 10)
    else:
        pytest.fail("the other gateway still quotes the dynamic arm")
    # A hold on a quote given before the stop keeps its arm and price.
    hold = await book(client, engine, show, d1, ["D1"], before["quote_token"])
    assert hold["price_arm"] == "dynamic" and hold["price_cents"] == before["prices"]["standard"]
    # After the stop nobody new is exposed.
    newcomer = await make_account(pool, config)
    assert (await quote(client, show, newcomer))["arm"] == "control"
    await run_once(client.server.app, FLUSH)
    assert newcomer.user_id not in await exposures(pool)
    assert c1.user_id not in await exposures(pool)
    # Stopping again answers the same; with another arm it conflicts.
    again = await _json(
        await client.post(URL + "/stop", json=stop, headers={**ops.headers, **new_key()}), 200
    )
    assert again == stopped
    resp = await client.post(
        URL + "/stop", json={"arm": "dynamic"}, headers={**ops.headers, **new_key()}
    )
    assert (await _json(resp, 409))["error"]["code"] == "conflict"


async def test_only_ops_stop_and_bad_input_is_refused(
    client: Any, pool: Any, config: Any, show: int, ops: Account
) -> None:
    async with pool.acquire() as conn:
        theater = await storage.theater_of(conn, show_id=show)
    staff = await make_account(pool, config, "theater_admin", (theater,))
    customer = await make_account(pool, config)
    stop = URL + "/stop"
    for who, status in ((None, 401), (staff, 403), (customer, 403)):
        headers = {**new_key(), **(who.headers if who else {})}
        await _json(await client.post(stop, json={"arm": "control"}, headers=headers), status)
        await _json(await client.get(URL, headers=headers), status)
    post = {**ops.headers, **new_key()}
    cases = [
        (stop, {"arm": "blue"}, 422),  # not an arm of the experiment
        (stop, {"arm": "Not An Arm!"}, 422),
        (stop, {"arm": "control", "extra": 1}, 422),
        (stop, {}, 422),
        ("/api/v1/admin/experiments/no-such/stop", {"arm": "control"}, 404),
        ("/api/v1/admin/experiments/bad%20name/stop", {"arm": "control"}, 422),
    ]
    for url, body, status in cases:
        resp = await client.post(url, json=body, headers={**post, **new_key()})
        assert "error" in await _json(resp, status)
    await _json(await client.get("/api/v1/admin/experiments/no-such", headers=ops.headers), 404)
    detail = await _json(await client.get(URL, headers=ops.headers), 200)
    assert detail["status"] == "running" and detail["results"] == []


async def test_a_second_experiment_is_a_row(
    client: Any, pool: Any, config: Any, ops: Account
) -> None:
    url = "/api/v1/admin/experiments"
    body = {
        "name": "menu-1",
        "arms": [{"arm": "plain", "share": 0.5}, {"arm": "posters", "share": 0.5}],
        "description": "the home page's layout",
    }
    created = await _json(
        await client.post(url, json=body, headers={**ops.headers, **new_key()}), 201
    )
    assert created["kind"] == "generic" and created["status"] == "running"
    await _json(await client.post(url, json=body, headers={**ops.headers, **new_key()}), 409)
    bad = [
        {
            **body,
            "name": "menu-2",
            "arms": [{"arm": "a", "share": 0.5}, {"arm": "b", "share": 0.4}],
        },
        {
            **body,
            "name": "menu-3",
            "arms": [{"arm": "a", "share": 0.5}, {"arm": "a", "share": 0.5}],
        },
        {**body, "name": "menu-4", "kind": "pricing"},  # pricing arms are control and dynamic
        {**body, "name": NAME, "kind": "pricing", "arms": [{"arm": "control", "share": 1.0}]},
    ]
    for sent in bad:
        await _json(await client.post(url, json=sent, headers={**ops.headers, **new_key()}), 422)
    registry = client.server.app[keys.EXPERIMENTS]
    user = await make_account(pool, config)
    arm = await registry.arm("menu-1", user.user_id)
    assert arm == assign("menu-1", user.user_id, [("plain", 0.5), ("posters", 0.5)])
    assert await registry.arm("no-such", user.user_id) is None
    await registry.flush()
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT arm FROM experiment_exposures WHERE experiment = 'menu-1' AND user_id = $1",
            user.user_id,
        )
    assert row["arm"] == arm
    listed = await _json(await client.get(url, headers=ops.headers), 200)
    assert {"menu-1", NAME} <= {e["name"] for e in listed["experiments"]}
