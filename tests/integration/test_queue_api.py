"""The waiting room through the gateway on real Postgres, Redis and Ray: joining, polling and
the websocket until admitted, holds that need the admission token, the admin side, and rate
limits answering 429 with Retry-After."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.app import create_app
from gateway.rates import Rate, RateLimits
from tests.gateway_support import PASSWORD, Account, make_account, new_key
from tests.integration.shows import Engine, grid_layout, make_show


@pytest.fixture
def fast_config(config: Any) -> Any:
    # Ticks and pushes often, so the test does not wait for them.
    return dataclasses.replace(config, queue_tick_s=0.05, queue_push_s=0.2)


@pytest.fixture
async def client(
    aiohttp_client: Any, fast_config: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    client = await aiohttp_client(create_app(fast_config, engine=engine.client))
    yield client
    await client.close()  # the app's ticks stop before the show hosts and the schema go
    keys = [k async for k in redis.scan_iter(match=fast_config.redis_prefix + "*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def ops(pool: Any, fast_config: Any) -> Account:
    return await make_account(pool, fast_config, "admin")


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


def _terms(sale_in_s: float, rate: int, ttl_s: int = 120) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "queue_opens_at": (now - dt.timedelta(minutes=1)).isoformat(),
        "sale_opens_at": (now + dt.timedelta(seconds=sale_in_s)).isoformat(),
        "admission_per_min": rate,
        "token_ttl_s": ttl_s,
    }


async def _flash_sale(client: Any, pool: Any, ops: Account, **terms: Any) -> int:
    show = await make_show(pool, status="flash_sale")
    await _json(
        await client.put(
            f"/api/v1/admin/shows/{show}/flash-sale", json=_terms(**terms), headers=ops.headers
        ),
        200,
    )
    return show


async def _until_admitted(client: Any, show: int, who: Account, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await _json(
            await client.get(f"/api/v1/shows/{show}/queue", headers=who.headers), 200
        )
        if body["state"] == "admitted":
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"not admitted within {timeout} s: {body}")


async def test_join_wait_get_admitted_and_hold(
    client: Any, pool: Any, fast_config: Any, ops: Account
) -> None:
    show = await _flash_sale(client, pool, ops, sale_in_s=1.5, rate=120)
    alice = await make_account(pool, fast_config)
    bob = await make_account(pool, fast_config)
    hold = {"count": 2, "category": "standard"}
    refused = await client.post(
        f"/api/v1/shows/{show}/holds", json=hold, headers={**alice.headers, **new_key()}
    )
    assert (await _json(refused, 403))["error"]["code"] == "admission_required"

    first = await _json(
        await client.post(f"/api/v1/shows/{show}/queue", headers=alice.headers), 200
    )
    assert first["state"] == "waiting" and first["phase"] == "pre_sale"
    assert first["position"] is None and first["admission_token"] is None  # drawn at the start
    again = await _json(
        await client.post(f"/api/v1/shows/{show}/queue", headers=alice.headers), 200
    )
    assert again["waiting"] == 1  # the same place, not a second one
    await _json(await client.post(f"/api/v1/shows/{show}/queue", headers=bob.headers), 200)

    admitted = await _until_admitted(client, show, alice)
    token = admitted["admission_token"]
    assert admitted["token_expires_at"] is not None
    made = await client.post(
        f"/api/v1/shows/{show}/holds",
        json=hold,
        headers={**alice.headers, **new_key(), "Admission-Token": token},
    )
    assert len((await _json(made, 201))["seats"]) == 2
    # Someone else's token, or a garbled one, is refused.
    for header, code in ((token, "admission_invalid"), (token[:-3] + "xyz", "admission_invalid")):
        stolen = await client.post(
            f"/api/v1/shows/{show}/holds",
            json=hold,
            headers={**bob.headers, **new_key(), "Admission-Token": header},
        )
        assert (await _json(stolen, 403))["error"]["code"] == code
    bob_in = await _until_admitted(client, show, bob)
    assert bob_in["admission_token"] != token

    stats = await _json(
        await client.get(f"/api/v1/admin/shows/{show}/queue", headers=ops.headers), 200
    )
    assert stats["admitted"] == 2 and stats["joined"] == 2 and stats["early"] == 2
    # Leaving gives the admission up.
    assert (await client.delete(f"/api/v1/shows/{show}/queue", headers=bob.headers)).status == 204
    gone = await _json(await client.get(f"/api/v1/shows/{show}/queue", headers=bob.headers), 200)
    assert gone["state"] == "not_in_queue"


async def test_the_queue_websocket_pushes_until_admitted(
    client: Any, pool: Any, fast_config: Any, ops: Account
) -> None:
    show = await _flash_sale(client, pool, ops, sale_in_s=0.5, rate=60)
    people = [await make_account(pool, fast_config) for _ in range(3)]
    for who in people:
        await _json(await client.post(f"/api/v1/shows/{show}/queue", headers=who.headers), 200)
    last = people[-1]
    ws = await client.ws_connect(f"/ws/shows/{show}/queue")
    await ws.send_json({"type": "auth", "access_token": last.token})
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while True:
            message = await ws.receive_json()
            assert message["type"] == "queue", message
            seen.append(message)
            if message["state"] == "admitted":
                break
    await ws.close()
    positions = [m["position"] for m in seen if m["state"] == "waiting" and m["position"]]
    assert positions and positions == sorted(positions, reverse=True)  # only ever moves up
    assert seen[-1]["admission_token"]
    # A socket that does not say who it is, or watches a show on normal sale, is closed.
    ws = await client.ws_connect(f"/ws/shows/{show}/queue")
    await ws.send_json({"type": "auth", "access_token": "nope"})
    assert (await ws.receive_json())["error"]["code"] == "invalid_token"
    await ws.receive()
    assert ws.close_code == 4401
    plain = await make_show(pool, name="plain")
    ws = await client.ws_connect(f"/ws/shows/{plain}/queue")
    await ws.send_json({"type": "auth", "access_token": last.token})
    assert (await ws.receive_json())["error"]["code"] == "not_a_flash_sale"
    await ws.receive()
    assert ws.close_code == 4409


async def test_terms_are_checked_and_only_ops_change_a_sale_under_way(
    client: Any, pool: Any, fast_config: Any, ops: Account
) -> None:
    show = await _flash_sale(client, pool, ops, sale_in_s=30, rate=600)
    async with pool.acquire() as conn:
        theater = await conn.fetchval(
            "SELECT sc.theater_id FROM shows s JOIN screens sc ON sc.id = s.screen_id "
            "WHERE s.id = $1",
            show,
        )
    admin = await make_account(pool, fast_config, "theater_admin", (theater,))
    under_way = await client.put(
        f"/api/v1/admin/shows/{show}/flash-sale", json=_terms(30, 900), headers=admin.headers
    )
    assert (await _json(under_way, 409))["error"]["code"] == "flash_sale_under_way"
    rate = await client.put(
        f"/api/v1/admin/shows/{show}/flash-sale/rate",
        json={"admission_per_min": 900},
        headers=admin.headers,
    )
    assert rate.status == 403
    changed = await _json(
        await client.put(
            f"/api/v1/admin/shows/{show}/flash-sale/rate",
            json={"admission_per_min": 900},
            headers=ops.headers,
        ),
        200,
    )
    assert changed["admission_per_min"] == 900
    visitor = await make_account(pool, fast_config)
    joined = await _json(
        await client.post(f"/api/v1/shows/{show}/queue", headers=visitor.headers), 200
    )
    assert joined["admission_per_min"] == 900  # every gateway reads the new rate from Redis
    # Bad terms: 422 with the field.
    now = dt.datetime.now(dt.UTC)
    bad = {
        **_terms(30, 600),
        "queue_opens_at": (now + dt.timedelta(hours=1)).isoformat(),
    }
    wrong = await client.put(
        f"/api/v1/admin/shows/{show}/flash-sale", json=bad, headers=ops.headers
    )
    body = await _json(wrong, 422)
    assert body["error"]["code"] == "invalid_flash_sale"
    assert body["error"]["details"]["field"] == "queue_opens_at"
    naive = {**_terms(30, 600), "sale_opens_at": "2030-01-01T10:00:00"}
    assert (
        await client.put(f"/api/v1/admin/shows/{show}/flash-sale", json=naive, headers=ops.headers)
    ).status == 422
    # Not a flash sale: joining is refused, holds need no token.
    plain = await make_show(pool, name="plain")
    refused = await client.post(f"/api/v1/shows/{plain}/queue", headers=visitor.headers)
    assert (await _json(refused, 409))["error"]["code"] == "not_a_flash_sale"
    # A queue that does not open yet.
    later = await make_show(pool, status="flash_sale", name="later")
    await _json(
        await client.put(
            f"/api/v1/admin/shows/{later}/flash-sale",
            json={
                **_terms(7200, 600),
                "queue_opens_at": (now + dt.timedelta(hours=1)).isoformat(),
            },
            headers=ops.headers,
        ),
        200,
    )
    early = await client.post(f"/api/v1/shows/{later}/queue", headers=visitor.headers)
    body = await _json(early, 409)
    assert body["error"]["code"] == "queue_not_open" and body["error"]["details"]["queue_opens_at"]


@pytest.fixture
async def limited(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> AsyncIterator[tuple[Any, Any]]:
    limits = RateLimits(
        login_account=Rate(1 / 60, 2),
        join_user=Rate(1 / 60, 2),
        hold_user=Rate(100, 100),
        hold_ip=Rate(1 / 60, 3),
        poll_user=Rate(1 / 60, 2),
    )
    limited_config = dataclasses.replace(config, rate_limits=limits, forwarded_hops=1)
    client = await aiohttp_client(create_app(limited_config, engine=engine.client))
    yield client, limited_config
    await client.close()  # the app's ticks stop before the show hosts and the schema go
    keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if keys:
        await redis.delete(*keys)


async def test_rate_limits_answer_429_with_retry_after(
    limited: tuple[Any, Any], pool: Any, engine: Engine
) -> None:
    client, config = limited
    who = await make_account(pool, config)
    login = {"email": who.email, "password": PASSWORD}
    for _ in range(2):
        assert (await client.post("/api/v1/auth/login", json=login)).status == 200
    too_many = await client.post("/api/v1/auth/login", json=login)
    body = await _json(too_many, 429)
    assert body["error"]["code"] == "rate_limited" and body["error"]["details"]["action"] == "login"
    assert 1 <= int(too_many.headers["Retry-After"]) <= 60
    # The limit is the account's: the same address logs into another account.
    other = await make_account(pool, config)
    ok = await client.post("/api/v1/auth/login", json={"email": other.email, "password": PASSWORD})
    assert ok.status == 200

    # Holds: three an address; behind the trusted proxy, each client address has its own.
    show = await make_show(pool)
    for n in range(3):
        made = await client.post(
            f"/api/v1/shows/{show}/holds",
            json={"seats": [f"B{n + 1}"]},
            headers={**who.headers, **new_key(), "X-Forwarded-For": "198.51.100.7"},
        )
        assert made.status == 201, await made.json()
    blocked = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["B9"]},
        headers={**who.headers, **new_key(), "X-Forwarded-For": "198.51.100.7"},
    )
    assert (await _json(blocked, 429))["error"]["details"]["action"] == "hold"
    elsewhere = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["B9"]},
        headers={**who.headers, **new_key(), "X-Forwarded-For": "10.0.0.1, 198.51.100.8"},
    )
    # The proxy saw another client; and the refused hold had taken nothing (B9 was free).
    assert elsewhere.status == 201
    # Queue polls: two a user here (the limit is paid before the show is even looked at).
    polls = [
        (await client.get(f"/api/v1/shows/{show}/queue", headers=who.headers)).status
        for _ in range(3)
    ]
    assert polls == [409, 409, 429]  # not a flash sale, twice; then slow down


async def test_the_line_pauses_while_every_seat_is_held_and_ends_with_the_sale(
    client: Any, pool: Any, fast_config: Any, ops: Account, engine: Engine
) -> None:
    import actors

    show = await make_show(pool, status="flash_sale", layout=grid_layout(2, 6), name="small")
    await _json(
        await client.put(
            f"/api/v1/admin/shows/{show}/flash-sale", json=_terms(0.2, 600), headers=ops.headers
        ),
        200,
    )
    seatmap = await _json(await client.get(f"/api/v1/shows/{show}/seatmap"), 200)
    others = tuple(label for label in sorted(seatmap["seats"]) if label not in ("B3", "B4"))
    stats = f"/api/v1/admin/shows/{show}/queue"
    await engine.client.execute(show, actors.Block(others))  # two seats left to sell
    alice, bob = await make_account(pool, fast_config), await make_account(pool, fast_config)
    await _json(await client.post(f"/api/v1/shows/{show}/queue", headers=alice.headers), 200)
    token = (await _until_admitted(client, show, alice))["admission_token"]
    made = await _json(
        await client.post(
            f"/api/v1/shows/{show}/holds",
            json={"seats": ["B3", "B4"]},
            headers={**alice.headers, **new_key(), "Admission-Token": token},
        ),
        201,
    )
    async with asyncio.timeout(10):  # every gateway counts the seats left once a second
        while (await _json(await client.get(stats, headers=ops.headers), 200))["supply"] == "open":
            await asyncio.sleep(0.1)
    await _json(await client.post(f"/api/v1/shows/{show}/queue", headers=bob.headers), 200)
    paused = await _until_phase(client, show, bob, "paused")
    assert paused["state"] == "waiting" and paused["position"] == 1
    await asyncio.sleep(1.0)  # at 10 a second, bob would long be in
    still = await _json(await client.get(f"/api/v1/shows/{show}/queue", headers=bob.headers), 200)
    assert still["state"] == "waiting"
    released = await client.delete(
        f"/api/v1/shows/{show}/holds/{made['hold_id']}", headers={**alice.headers, **new_key()}
    )
    assert released.status == 200
    assert (await _until_admitted(client, show, bob))["admission_token"]

    # Someone holds the two seats again, so carol waits (paused) until the sale ends, rather
    # than being let in within a tick of joining (a race with the status change below).
    again = actors.HoldSeats(str(uuid.uuid4()), str(bob.user_id), ("B3", "B4"), True)
    kept = await engine.client.execute(show, again)
    async with asyncio.timeout(10):
        while (await _json(await client.get(stats, headers=ops.headers), 200))["supply"] == "open":
            await asyncio.sleep(0.1)
    carol = await make_account(pool, fast_config)
    await _json(await client.post(f"/api/v1/shows/{show}/queue", headers=carol.headers), 200)
    ws = await client.ws_connect(f"/ws/shows/{show}/queue")
    await ws.send_json({"type": "auth", "access_token": carol.token})
    assert (await ws.receive_json())["type"] == "queue"
    await _json(
        await client.put(
            f"/api/v1/admin/shows/{show}/status", json={"status": "on_sale"}, headers=ops.headers
        ),
        200,
    )
    # The status is written behind, then read by each gateway's show cache: a bound, not a
    # speed (the machine may be busy with other tests).
    async with asyncio.timeout(30):
        while (message := await ws.receive_json())["phase"] != "ended":
            pass
    assert message["state"] == "waiting"  # the page goes on to the seat map: no token needed
    await ws.close()
    await engine.client.execute(show, actors.Release(kept.hold_id, str(bob.user_id)))
    direct = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["B3"]},
        headers={**carol.headers, **new_key()},
    )
    assert direct.status == 201


async def _until_phase(client: Any, show: int, who: Account, phase: str) -> Any:
    async with asyncio.timeout(10):
        while True:
            body = await _json(
                await client.get(f"/api/v1/shows/{show}/queue", headers=who.headers), 200
            )
            if body["phase"] == phase:
                return body
            await asyncio.sleep(0.1)


async def test_a_gateway_with_a_stale_status_still_needs_the_token(
    client: Any, pool: Any, fast_config: Any, ops: Account, engine: Engine
) -> None:
    import actors

    show = await make_show(pool, name="switched")
    alice = await make_account(pool, fast_config)
    first = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["C1"]},
        headers={**alice.headers, **new_key()},
    )
    assert first.status == 201  # on sale: this process now remembers the show as such
    # Another gateway puts the show into a flash sale: this process's cache still says on sale.
    await engine.client.execute(show, actors.SetStatus("flash_sale"))
    refused = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["C2"]},
        headers={**alice.headers, **new_key()},
    )
    assert (await _json(refused, 403))["error"]["code"] == "admission_required"
    await _json(
        await client.put(
            f"/api/v1/admin/shows/{show}/flash-sale", json=_terms(0.1, 600), headers=ops.headers
        ),
        200,
    )
    await _json(await client.post(f"/api/v1/shows/{show}/queue", headers=alice.headers), 200)
    token = (await _until_admitted(client, show, alice))["admission_token"]
    made = await client.post(
        f"/api/v1/shows/{show}/holds",
        json={"seats": ["C2"]},
        headers={**alice.headers, **new_key(), "Admission-Token": token},
    )
    assert made.status == 201, await made.json()
