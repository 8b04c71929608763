"""The home page on the demo history with the pricing model trained and on Ray Serve: every
show on the page is priced "from" by the model in one batch, within the rules' bounds of its
price table. (The recommender's part of the home is tested with a deployment of its own in
tests/integration/test_home.py; here it is absent and its rule answers, explained by a movie
the customer booked.)"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import storage
from gateway import home_rank, keys
from gateway.app import create_app
from gateway.auth import Auth
from gateway.models import ModelsConfig
from serve.deployments import Scaling, deploy, undeploy
from tests.conftest import TEST_KEYRING
from tests.gateway_support import gateway_config
from tests.integration.test_home import NoShows
from tests.ml.conftest import DemoHistory

pytestmark = pytest.mark.slow
KINDS = ("pricing",)


@pytest.fixture(scope="module")
def deployed(ray_session: None, models_dir: Path) -> Any:
    versions = deploy(models_dir, Scaling(min_replicas=1, max_replicas=1), kinds=KINDS)
    yield versions
    undeploy(KINDS)


@pytest.fixture
async def client(
    deployed: Any, demo_history: DemoHistory, redis_url: str, aiohttp_client: Any
) -> AsyncIterator[tuple[Any, Any]]:
    config = gateway_config(demo_history.database_url, demo_history.schema, redis_url)
    config = dataclasses.replace(
        config, models=ModelsConfig(enabled=True, fraud_check=False, pricing_dynamic_share=1.0)
    )
    app = create_app(config, engine=NoShows())
    client = await aiohttp_client(app)
    assert await app[keys.MODELS].pricing.ready(30)
    yield client, app
    redis = await storage.create_redis(redis_url)
    try:
        found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if found:
            await redis.delete(*found)
    finally:
        await redis.aclose()


async def test_the_home_is_priced_by_the_model(client: tuple[Any, Any], deployed: Any) -> None:
    http, app = client
    async with app[keys.POOL].acquire() as conn:
        user_id = await conn.fetchval(
            """SELECT u.id FROM users u JOIN bookings b ON b.user_id = u.id
               WHERE u.role = 'customer' AND u.home_city_id IS NOT NULL
               GROUP BY u.id HAVING count(*) BETWEEN 3 AND 20 ORDER BY u.id LIMIT 1"""
        )
        user = await storage.get_user(conn, user_id, keyring=TEST_KEYRING)
    token = Auth(app[keys.CONFIG], app[keys.POOL], None).access_token(user)
    for _ in range(20):  # a replica's first answers may miss the budget
        resp = await http.get("/api/v1/home", headers={"Authorization": f"Bearer {token}"})
        body = await resp.json()
        assert resp.status == 200, body
        if body["pricing"]["source"] == "model":
            break
        await asyncio.sleep(0.5)
    assert body["pricing"] == {"source": "model", "model_version": deployed["pricing"]}, body
    assert body["source"] == "fallback"  # no recommender: the rule, and shared genres
    [mine, *_] = body["sections"]
    assert mine["kind"] == "recommended" and mine["movies"]
    booked = {b["movie_id"] for b in await _bookings(app, user_id)}
    explained = [m["because"] for m in mine["movies"] if m["because"]]
    assert all(b["movie_id"] in booked for b in explained)
    shows = [s for section in body["sections"] for m in section["movies"] for s in m["next_shows"]]
    async with app[keys.POOL].acquire() as conn:
        tables = {
            r["id"]: r["prices"]
            for r in await conn.fetch(
                "SELECT id, prices FROM shows WHERE id = ANY($1::bigint[])",
                [s["show_id"] for s in shows],
            )
        }
    for show in shows:
        base = home_rank.price_from(tables[show["show_id"]])
        assert base is not None and 0.7 * base <= show["price_from_cents"] <= 2 * base, show


async def _bookings(app: Any, user_id: int) -> list[Any]:
    async with app[keys.POOL].acquire() as conn:
        return list(
            await conn.fetch(
                """SELECT DISTINCT s.movie_id FROM bookings b JOIN shows s ON s.id = b.show_id
                   WHERE b.user_id = $1""",
                user_id,
            )
        )
