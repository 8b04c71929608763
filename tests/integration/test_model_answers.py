"""The gateway's model-backed answers when no model serves: recommendations, price quotes and
the quote a hold is charged at. Every answer says it came from the rules, and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway import keys
from gateway.app import create_app
from gateway.models import ModelsConfig
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, make_show


def _with_models(config: Any, **models: Any) -> Any:
    return dataclasses.replace(config, models=ModelsConfig(**{"enabled": True, **models}))


@pytest.fixture
async def client(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    # Models on, but none deployed: every call finds no application and falls back.
    app = create_app(_with_models(config, pricing_dynamic_share=1.0), engine=engine.client)
    yield await aiohttp_client(app)
    found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if found:
        await redis.delete(*found)


@pytest.fixture
async def show(pool: Any) -> int:
    return await make_show(pool)


@pytest.fixture
async def alice(pool: Any, config: Any) -> Account:
    return await make_account(pool, config)


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def _city_of(pool: Any, show: int) -> int:
    async with pool.acquire() as conn:
        city: int = await conn.fetchval(
            """SELECT t.city_id FROM shows s JOIN screens sc ON sc.id = s.screen_id
               JOIN theaters t ON t.id = sc.theater_id WHERE s.id = $1""",
            show,
        )
    return city


# -- recommendations ----------------------------------------------------------------------------


async def test_recommendations_fall_back_to_what_sells_near_the_user(
    client: Any, pool: Any, show: int, alice: Account
) -> None:
    city = await _city_of(pool, show)
    resp = await client.get("/api/v1/recommendations", params={"city_id": city})
    body = await _json(resp, 200)  # anonymous: the cold-start rule
    assert body["source"] == "fallback" and body["fallback_reason"] == "cold_start"
    assert [item["title"] for item in body["items"]] == ["The Test"]
    assert body["items"][0]["show_count"] == 1

    # A customer who booked it: the model is asked (and is absent), and what they saw is left out.
    async with pool.acquire() as conn:
        day = await conn.fetchval("SELECT starts_at::date FROM shows WHERE id = $1", show)
        await conn.execute(
            """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats, price_cents,
                                     status, confirmed_at)
               VALUES ($1, $2, $3, $4, '{C5}', 1200, 'confirmed', now())""",
            uuid.uuid4(),
            day,
            show,
            alice.user_id,
        )
    resp = await client.get(
        "/api/v1/recommendations", params={"city_id": city}, headers=alice.headers
    )
    body = await _json(resp, 200)
    assert body["source"] == "fallback" and body["fallback_reason"] == "absent"
    assert body["items"] == []


async def test_recommendations_refuse_bad_input(client: Any, pool: Any, alice: Account) -> None:
    for params, status, code in (
        ({}, 422, "city_required"),  # anonymous and no city
        ({"city_id": "0"}, 422, "validation_failed"),
        ({"city_id": "999999"}, 404, "not_found"),
        ({"city_id": "1", "days": "30"}, 422, "validation_failed"),
        ({"city_id": "1", "limit": "0"}, 422, "validation_failed"),
    ):
        resp = await client.get("/api/v1/recommendations", params=params)
        body = await _json(resp, status)
        assert body["error"]["code"] == code, (params, body)
    resp = await client.put(
        "/api/v1/me/genres", json={"genres": ["no such genre"]}, headers=alice.headers
    )
    assert (await _json(resp, 422))["error"]["details"]["unknown"] == ["no such genre"]


async def test_picked_genres_are_kept(client: Any, show: int, alice: Account) -> None:
    resp = await client.put("/api/v1/me/genres", json={"genres": ["drama"]}, headers=alice.headers)
    assert (await _json(resp, 200))["favourite_genres"] == ["drama"]
    resp = await client.get("/api/v1/me/genres", headers=alice.headers)
    assert (await _json(resp, 200))["favourite_genres"] == ["drama"]


# -- quotes and holds ---------------------------------------------------------------------------


async def test_a_hold_is_charged_the_quote_the_customer_saw(
    client: Any, pool: Any, config: Any, show: int, alice: Account
) -> None:
    resp = await client.get(f"/api/v1/shows/{show}/quote", headers=alice.headers)
    quote = await _json(resp, 200)
    assert quote["arm"] == "dynamic"  # dynamic_share 1.0, but no model: the price table
    assert quote["source"] == "fallback" and quote["fallback_reason"] == "absent"
    assert quote["prices"]["standard"] == 1200

    # The show's prices go up after the quote: the quote still stands for its hold.
    ops = await make_account(pool, config, role="admin")
    prices = {"standard": 1500, "wheelchair": 1500, "companion": 1500}
    resp = await client.patch(
        f"/api/v1/admin/shows/{show}", json={"prices": prices}, headers=ops.headers
    )
    assert resp.status in (200, 204), await resp.text()
    body = {"seats": ["C5", "C6"], "quote_token": quote["quote_token"]}
    resp = await client.post(
        f"/api/v1/shows/{show}/holds", json=body, headers={**alice.headers, **new_key()}
    )
    hold = await _json(resp, 201)
    assert hold["price_cents"] == 2 * 1200 and hold["price_arm"] == "dynamic"

    # Without a quote, the hold gets a fresh one: the new price table.
    resp = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["D5"]},
        headers={**alice.headers, **new_key()},
    )
    assert (await _json(resp, 201))["price_cents"] == 1500


async def test_a_quote_is_bound_to_its_show_and_user_and_cannot_be_altered(
    client: Any, pool: Any, config: Any, show: int, alice: Account
) -> None:
    other_show = await make_show(pool, name="2")
    bob = await make_account(pool, config)
    resp = await client.get(f"/api/v1/shows/{show}/quote", headers=alice.headers)
    token = (await _json(resp, 200))["quote_token"]
    head, claims, signature = token.split(".")
    altered = ".".join((head, claims[:-2] + ("AA" if claims[-2:] != "AA" else "BB"), signature))
    for who, where, sent, code in (
        (bob, show, token, "quote_invalid"),  # someone else's quote
        (alice, other_show, token, "quote_invalid"),  # another show's
        (alice, show, altered, "quote_invalid"),
    ):
        resp = await client.post(
            f"/api/v1/shows/{where}/holds",
            json={"seats": ["C5"], "quote_token": sent},
            headers={**who.headers, **new_key()},
        )
        assert (await _json(resp, 409))["error"]["code"] == code
    expired = client.app[keys.PRICING]._signed.issue(
        {"sub": str(alice.user_id), "show": show, "prices": {"standard": 1}, "arm": "control"},
        ttl_s=1,
        now=dt.datetime.now(dt.UTC).timestamp() - 60,
    )
    resp = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["C5"], "quote_token": expired},
        headers={**alice.headers, **new_key()},
    )
    assert (await _json(resp, 409))["error"]["code"] == "quote_expired"


async def test_the_control_arm_pays_the_price_table(
    aiohttp_client: Any, config: Any, engine: Engine, show: int, alice: Account
) -> None:
    app = create_app(_with_models(config, pricing_dynamic_share=0.0), engine=engine.client)
    client = await aiohttp_client(app)
    resp = await client.get(f"/api/v1/shows/{show}/quote", headers=alice.headers)
    quote = await _json(resp, 200)
    assert quote["arm"] == "control" and quote["fallback_reason"] == "control_arm"
    await client.close()


async def test_fallbacks_are_counted(client: Any, show: int, alice: Account) -> None:
    from serve.client import ANSWERS

    counted = ANSWERS.labels("pricing", "fallback", "absent")
    before = counted._value.get()
    resp = await client.get(f"/api/v1/shows/{show}/quote", headers=alice.headers)
    await _json(resp, 200)
    assert counted._value.get() == before + 1
    text = await (await client.get("/metrics")).text()
    assert (
        'seatserver_model_answers_total{model="pricing",reason="absent",source="fallback"}' in text
    )
