"""The three models on Ray Serve, called by the gateway within their budgets: each deployment
answers through Serve; recommendations come from the model and move with a new booking; a hold
is charged the model's quote; killing a replica during requests makes the gateway fall back
without an error to anyone, and the model answers again once Serve has replaced it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve

import storage
from gateway import keys
from gateway.app import create_app
from gateway.auth import Auth
from gateway.models import ModelsConfig
from ml.artifacts import KINDS
from serve.deployments import Scaling, deploy, undeploy
from storage import taste
from tests.conftest import TEST_KEYRING
from tests.gateway_support import Account, gateway_config, new_key
from tests.integration.shows import start_engine, stop_engine
from tests.ml.conftest import DemoHistory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(ray_session: None, models_dir: Path) -> Any:
    versions = deploy(models_dir, Scaling(min_replicas=1, max_replicas=1), reload_s=1.0)
    assert all(versions.values()), versions
    yield versions
    undeploy()


@dataclasses.dataclass
class Site:
    client: Any
    app: Any
    pool: Any


@pytest.fixture(scope="module")
async def site(
    deployed: Any, demo_history: DemoHistory, redis_url: str, aiohttp_client_module: Any
) -> AsyncIterator[Site]:
    config = gateway_config(demo_history.database_url, demo_history.schema, redis_url)
    config = dataclasses.replace(
        config, models=ModelsConfig(enabled=True, pricing_dynamic_share=1.0)
    )
    engine = await start_engine(
        demo_history.database_url,
        demo_history.schema,
        redis_url,
        channel_prefix=config.redis_prefix,
    )
    app = create_app(config, engine=engine.client)
    client = await aiohttp_client_module(app)
    for call in app[keys.MODELS].calls():
        assert await call.ready(30), call.deployment
    pool = await storage.create_pool(demo_history.database_url, schema=demo_history.schema)
    try:
        yield Site(client, app, pool)
    finally:
        await client.close()
        await pool.close()
        await stop_engine(engine)
        redis = await storage.create_redis(redis_url)
        try:
            found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
            if found:
                await redis.delete(*found)
        finally:
            await redis.aclose()


@pytest.fixture(scope="module")
async def aiohttp_client_module() -> AsyncIterator[Any]:
    """aiohttp's test client, for a module-wide gateway."""
    from aiohttp.test_utils import TestClient, TestServer

    made: list[TestClient] = []

    async def make(app: Any) -> TestClient:
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def _customer(site: Site) -> Account:
    """A demo customer with a few bookings and a home city where movies play this week."""
    async with site.pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT u.id FROM users u JOIN bookings b ON b.user_id = u.id
               WHERE u.role = 'customer' AND u.home_city_id IS NOT NULL
               GROUP BY u.id HAVING count(*) BETWEEN 3 AND 20
               ORDER BY u.id LIMIT 1"""
        )
        user = await storage.get_user(conn, row["id"], keyring=TEST_KEYRING)
    token = Auth(site.app[keys.CONFIG], site.pool, None).access_token(user)
    return Account(user.id, user.email, user.role, token)


async def _model_answer(site: Site, path: str, account: Account, **params: Any) -> Any:
    """The answer, once the model gives it (a replica's first call may miss its budget)."""
    for _ in range(20):
        resp = await site.client.get(path, params=params, headers=account.headers)
        body = await resp.json()
        assert resp.status == 200, body
        if body["source"] == "model":
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"the model never answered {path}: {body}")


async def test_each_deployment_answers_through_serve(deployed: dict[str, str]) -> None:
    from ml.fraud.features import CheckoutFeatures

    ordinary = CheckoutFeatures(1, 1, 0, 1, 1, 0, 0, 1, 1, 5.0, 0, 60.0, 2, 400.0)
    farm = dataclasses.replace(ordinary, accounts_device_24h=9, holds_device_1h=12)
    fraud = serve.get_deployment_handle("fraud", app_name="fraud")
    scores = await asyncio.gather(*(fraud.score.remote([(f,)]) for f in (ordinary, farm)))
    assert [s["version"] for s in scores] == [deployed["fraud"]] * 2
    [calm], [doubtful] = (s["verdict"] for s in scores)
    assert calm.score < doubtful.score and doubtful.source == "model"
    both = await fraud.score.remote([(ordinary,), (farm,)])  # one request, two checkouts
    assert [v.score for v in both["verdict"]] == [calm.score, doubtful.score]
    for kind in KINDS:
        status = serve.status().applications[kind]
        assert status.status == "RUNNING", (kind, status)


async def test_recommendations_come_from_the_model_and_move_with_a_booking(site: Site) -> None:
    customer = await _customer(site)
    first = await _model_answer(site, "/api/v1/recommendations", customer, limit=5)
    assert first["items"], first
    async with site.pool.acquire() as conn:
        playing = {
            p.movie_id
            for p in await taste.playing_near(conn, first["city_id"], _hour(), first["days"])
        }
        history = set(await taste.movie_history(conn, customer.user_id))
    shown = [item["movie_id"] for item in first["items"]]
    assert set(shown) <= playing - history  # what plays near them, never what they saw

    # They book the movie at the top: their next list moves without a retrain.
    async with site.pool.acquire() as conn:
        show = await conn.fetchrow(
            """SELECT id, starts_at::date AS day FROM shows
               WHERE movie_id = $1 ORDER BY starts_at LIMIT 1""",
            shown[0],
        )
        await conn.execute(
            """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats, price_cents,
                                     status, confirmed_at)
               VALUES (gen_random_uuid(), $1, $2, $3, '{Z99}', 1000, 'confirmed', now())""",
            show["day"],
            show["id"],
            customer.user_id,
        )
    second = await _model_answer(site, "/api/v1/recommendations", customer, limit=5)
    moved = {item["movie_id"]: item["score"] for item in second["items"]}
    assert shown[0] not in moved
    before = {item["movie_id"]: item["score"] for item in first["items"]}
    assert any(moved[m] != before[m] for m in set(moved) & set(before)), (before, moved)


async def test_a_hold_is_charged_the_models_quote(site: Site) -> None:
    customer = await _customer(site)
    async with site.pool.acquire() as conn:
        show = await conn.fetchval(
            """SELECT s.id FROM shows s WHERE s.status = 'on_sale' AND s.starts_at > now()
                 + interval '2 hours' ORDER BY s.starts_at LIMIT 1"""
        )
        table = await conn.fetchval("SELECT prices FROM shows WHERE id = $1", show)
    quote = await _model_answer(site, f"/api/v1/shows/{show}/quote", customer)
    assert quote["arm"] == "dynamic" and quote["model_version"]
    for category, cents in quote["prices"].items():
        assert 0.7 * table[category] <= cents <= 2 * table[category], (category, quote)
    seatmap = await (await site.client.get(f"/api/v1/shows/{show}/seatmap")).json()
    free = [label for label, state in seatmap["seats"].items() if state == "available"]
    category = {
        s["label"]: s["category"] for row in seatmap["layout"]["rows"] for s in row["seats"]
    }
    seat = next(label for label in free if category[label] == "standard")
    resp = await site.client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": [seat], "quote_token": quote["quote_token"]},
        headers={**customer.headers, **new_key()},
    )
    hold = await resp.json()
    assert resp.status == 201, hold
    assert hold["price_cents"] == quote["prices"]["standard"] and hold["price_arm"] == "dynamic"
    await site.client.delete(
        f"/api/v1/shows/{show}/holds/{hold['hold_id']}", headers=customer.headers
    )


async def test_a_killed_replica_means_fallbacks_not_errors(site: Site) -> None:
    customer = await _customer(site)
    await _model_answer(site, "/api/v1/recommendations", customer)
    [replica] = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("SERVE_REPLICA::recommender#")
    ]
    sources: list[str] = []
    stop = asyncio.Event()

    async def ask() -> None:
        while not stop.is_set():
            resp = await site.client.get(
                "/api/v1/recommendations", params={"limit": 5}, headers=customer.headers
            )
            body = await resp.json()
            assert resp.status == 200, body  # never an error to the customer
            sources.append(body["source"] if body["source"] == "model" else body["fallback_reason"])
            await asyncio.sleep(0.02)

    async def until(seen: Callable[[list[str]], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not seen(sources):
            assert time.monotonic() < deadline, f"{what}: {sources[-20:]}"
            await asyncio.sleep(0.05)

    asking = asyncio.gather(*(ask() for _ in range(4)))
    try:
        # The model answers under this load first (a busy machine may time a few out and
        # open the breaker for a while), then its only replica is killed mid-traffic.
        await until(lambda s: "model" in s, "the model never answered under load")
        killed_at = len(sources)
        ray.kill(ray.get_actor(replica, namespace="serve"), no_restart=True)
        await until(lambda s: any(x != "model" for x in s[killed_at:]), "no fallback after")
    finally:
        stop.set()
        await asking
    # Serve replaces the replica; the model answers again.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        resp = await site.client.get(
            "/api/v1/recommendations", params={"limit": 5}, headers=customer.headers
        )
        if (await resp.json())["source"] == "model":
            break
        await asyncio.sleep(1)
    else:
        raise AssertionError("the recommender never came back")


def _hour() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
