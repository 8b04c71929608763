"""The HTTP API on real Postgres, Redis and Ray: accounts, browsing, holds, bookings,
idempotency keys and the error envelope."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import actors
from gateway.app import create_app
from tests.gateway_support import PASSWORD, Account, make_account, new_key, tomorrow
from tests.integration.shows import Engine, make_show


@pytest.fixture
async def client(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    yield await aiohttp_client(create_app(config, engine=engine.client))
    keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def show(pool: Any) -> int:
    return await make_show(pool)


@pytest.fixture
async def alice(pool: Any, config: Any) -> Account:
    return await make_account(pool, config)


@pytest.fixture
async def bob(pool: Any, config: Any) -> Account:
    return await make_account(pool, config)


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


def _error(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "details"}


# -- accounts ----------------------------------------------------------------------------------


async def test_register_login_refresh_and_logout(client: Any) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    body = await _json(
        await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 201
    )
    assert body["user"]["role"] == "customer" and body["token_type"] == "Bearer"
    again = await client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD}
    )
    _error(await _json(again, 409), "already_exists")

    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "nope-nope"})
    _error(await _json(wrong, 401), "invalid_credentials")
    login = await _json(
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}), 200
    )
    auth = {"Authorization": f"Bearer {login['access_token']}"}
    me = await _json(await client.get("/api/v1/me", headers=auth), 200)
    assert me["email"] == email and me["theaters"] == []

    rotated = await _json(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}),
        200,
    )
    assert rotated["refresh_token"] != login["refresh_token"]
    # The replaced token presented again (a stolen copy) revokes the whole family.
    reused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )
    _error(await _json(reused, 401), "token_reused")
    dead = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    _error(await _json(dead, 401), "token_reused")

    fresh = await _json(
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}), 200
    )
    auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    out = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": fresh["refresh_token"]}, headers=auth
    )
    assert out.status == 204
    _error(await _json(await client.get("/api/v1/me", headers=auth), 401), "token_revoked")
    gone = await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert gone.status == 401


async def test_bad_tokens_are_refused(client: Any, config: Any, alice: Account) -> None:
    import jwt

    _error(await _json(await client.get("/api/v1/me"), 401), "unauthorized")
    for header in ("Bearer", "Basic abc", "Bearer not.a.jwt"):
        resp = await client.get("/api/v1/me", headers={"Authorization": header})
        assert resp.status == 401
    forged = jwt.encode(
        {
            "sub": str(alice.user_id),
            "role": "admin",
            "jti": "x",
            "exp": 2**31,
            "iss": "seatserver",
            "typ": "access",
        },
        "another-secret-of-at-least-32-bytes!!",
        algorithm="HS256",
    )
    _error(
        await _json(
            await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401
        ),
        "invalid_token",
    )
    expired = jwt.encode(
        {
            "sub": str(alice.user_id),
            "role": "customer",
            "jti": "y",
            "exp": 1000,
            "iss": "seatserver",
            "typ": "access",
        },
        config.jwt_secret,
        algorithm="HS256",
    )
    _error(
        await _json(
            await client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"}), 401
        ),
        "token_expired",
    )


# -- browsing ----------------------------------------------------------------------------------


async def test_browse_to_a_show_and_its_seatmap(client: Any, pool: Any, show: int) -> None:
    cities = (await _json(await client.get("/api/v1/cities"), 200))["cities"]
    assert cities
    details = await _json(await client.get(f"/api/v1/shows/{show}"), 200)
    assert details["prices"]["standard"] == 1200 and details["currency"] == "USD"
    day = details["starts_at"][:10]
    city = await pool.fetchval(
        "SELECT t.city_id FROM theaters t WHERE t.id = $1", details["theater_id"]
    )
    movies = await _json(await client.get(f"/api/v1/cities/{city}/movies?date={day}"), 200)
    assert [m["id"] for m in movies["movies"]] == [details["movie_id"]]
    shows = await _json(
        await client.get(f"/api/v1/cities/{city}/movies/{details['movie_id']}/shows?date={day}"),
        200,
    )
    assert shows["theaters"][0]["shows"][0]["show_id"] == show
    day_list = await _json(
        await client.get(f"/api/v1/theaters/{details['theater_id']}/shows?date={day}"), 200
    )
    assert [s["show_id"] for s in day_list["shows"]] == [show]
    seatmap = await _json(await client.get(f"/api/v1/shows/{show}/seatmap"), 200)
    assert seatmap["version"] == 0 and len(seatmap["seats"]) == 60
    assert set(seatmap["seats"].values()) == {"available"}
    assert seatmap["layout"]["rows"][0]["seats"][0]["category"] == "wheelchair"


async def test_browsing_refuses_bad_input(client: Any) -> None:
    _error(await _json(await client.get("/api/v1/shows/999999"), 404), "not_found")
    _error(await _json(await client.get("/api/v1/shows/abc"), 422), "validation_failed")
    _error(await _json(await client.get("/api/v1/shows/0/seatmap"), 422), "validation_failed")
    _error(await _json(await client.get("/api/v1/cities/1/movies"), 422), "validation_failed")
    _error(
        await _json(await client.get("/api/v1/cities/1/movies?date=tomorrow"), 422),
        "validation_failed",
    )
    _error(
        await _json(await client.get(f"/api/v1/cities/999999/movies?date={tomorrow()}"), 404),
        "not_found",
    )
    _error(await _json(await client.get("/api/v1/nothing-here"), 404), "not_found")
    _error(await _json(await client.delete("/api/v1/cities"), 405), "method_not_allowed")


# -- holds -------------------------------------------------------------------------------------


async def test_hold_extend_release(client: Any, show: int, alice: Account, bob: Account) -> None:
    url = f"/api/v1/shows/{show}/holds"
    hold = await _json(
        await client.post(
            url, json={"seats": ["C3", "C4"]}, headers={**alice.headers, **new_key()}
        ),
        201,
    )
    assert (
        hold["seats"] == ["C3", "C4"] and hold["price_cents"] == 2400 and hold["currency"] == "USD"
    )
    taken = await client.post(
        url, json={"seats": ["C4", "C5"]}, headers={**bob.headers, **new_key()}
    )
    body = await _json(taken, 409)
    _error(body, "seat_unavailable")
    best = await _json(
        await client.post(url, json={"count": 2}, headers={**bob.headers, **new_key()}), 201
    )
    assert len(best["seats"]) == 2 and not set(best["seats"]) & {"C3", "C4"}

    mine = f"{url}/{hold['hold_id']}"
    assert (await _json(await client.get(mine, headers=alice.headers), 200))["seats"] == [
        "C3",
        "C4",
    ]
    _error(await _json(await client.get(mine, headers=bob.headers), 403), "hold_not_yours")
    _error(await _json(await client.delete(mine, headers=bob.headers), 403), "hold_not_yours")
    extended = await client.post(f"{mine}/extend", headers=alice.headers)
    assert extended.status in (200, 409)  # the cap may already be reached at creation
    released = await _json(await client.delete(mine, headers=alice.headers), 200)
    assert released["hold_id"] == hold["hold_id"]
    _error(await _json(await client.delete(mine, headers=alice.headers), 404), "hold_not_found")
    _error(await _json(await client.post(url, json={"seats": ["C3"]}), 401), "unauthorized")


async def test_hold_requests_are_validated(client: Any, show: int, alice: Account) -> None:
    url = f"/api/v1/shows/{show}/holds"
    h = alice.headers
    for body in (
        {},
        {"seats": []},
        {"seats": ["A1"], "count": 1},
        {"count": 0},
        {"count": 11},
        {"seats": ["A1", "A1"]},
        {"count": 2, "category": "balcony"},
        {"seats": "A1"},
        {"seats": ["A1"], "extra": 1},
        [],
        "x",
    ):
        _error(await _json(await client.post(url, json=body, headers=h), 422), "validation_failed")
    _error(
        await _json(
            await client.post(
                url, data=b"{not json", headers={**h, "Content-Type": "application/json"}
            ),
            422,
        ),
        "validation_failed",
    )
    _error(
        await _json(
            await client.post(
                url,
                data=b"seats=A1",
                headers={**h, "Content-Type": "application/x-www-form-urlencoded"},
            ),
            415,
        ),
        "unsupported_media_type",
    )
    _error(
        await _json(
            await client.post(
                url, data=b"[" * 300_000, headers={**h, "Content-Type": "application/json"}
            ),
            413,
        ),
        "body_too_large",
    )
    _error(
        await _json(await client.post(url, json={"seats": ["Z99"]}, headers=h), 422), "unknown_seat"
    )
    _error(
        await _json(await client.post(url, json={"seats": ["A2"]}, headers=h), 422),
        "companion_without_wheelchair",
    )
    _error(
        await _json(
            await client.post(url, json={"seats": ["A3"]}, headers={**h, "Idempotency-Key": ""}),
            400,
        ),
        "invalid_idempotency_key",
    )
    _error(
        await _json(
            await client.post("/api/v1/shows/999999/holds", json={"seats": ["A3"]}, headers=h), 404
        ),
        "show_not_found",
    )
    # Nothing of all that changed the seat map.
    seatmap = await _json(await client.get(f"/api/v1/shows/{show}/seatmap"), 200)
    assert set(seatmap["seats"].values()) == {"available"}


async def test_a_body_that_arrives_in_pieces_is_read_whole(
    client: Any, show: int, alice: Account
) -> None:
    """A body sent in several writes (chunked, a pause between) is read to its end, not as far
    as the first piece; past the limit it is 413 however it comes."""

    async def pieces(*parts: bytes) -> Any:
        for part in parts:
            yield part
            await asyncio.sleep(0.2)

    url = f"/api/v1/shows/{show}/holds"
    headers = {**alice.headers, "Content-Type": "application/json"}
    resp = await client.post(url, data=pieces(b'{"count": ', b"1}"), headers=headers)
    assert len((await _json(resp, 201))["seats"]) == 1
    big = b" " * (256 * 1024)
    resp = await client.post(url, data=pieces(b'{"count": 1', big, big, b"}"), headers=headers)
    _error(await _json(resp, 413), "body_too_large")


async def test_idempotency_key_replays_the_first_answer(
    client: Any, show: int, alice: Account, bob: Account
) -> None:
    url = f"/api/v1/shows/{show}/holds"
    key = new_key()
    first = await client.post(url, json={"count": 2}, headers={**alice.headers, **key})
    first_body = await _json(first, 201)
    again = await client.post(url, json={"count": 2}, headers={**alice.headers, **key})
    assert await _json(again, 201) == first_body
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await client.post(url, json={"count": 3}, headers={**alice.headers, **key})
    _error(await _json(other, 422), "idempotency_key_reused")
    # The same key from another user is another request.
    bobs = await _json(
        await client.post(url, json={"count": 2}, headers={**bob.headers, **key}), 201
    )
    assert bobs["hold_id"] != first_body["hold_id"]
    # A burst of retries with one key makes one hold.
    burst_key = new_key()
    answers = await asyncio.gather(
        *[
            client.post(url, json={"seats": ["E1", "E2"]}, headers={**alice.headers, **burst_key})
            for _ in range(8)
        ]
    )
    statuses = sorted(a.status for a in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    seatmap = await _json(await client.get(f"/api/v1/shows/{show}/seatmap"), 200)
    held = sorted(label for label, state in seatmap["seats"].items() if state == "held")
    assert len(held) == 6  # alice 2, bob 2, the burst 2: never a second burst hold
    assert {"E1", "E2"} <= set(held)


async def test_lost_idempotency_record_still_makes_one_hold(
    client: Any, config: Any, redis: Any, show: int, alice: Account
) -> None:
    url = f"/api/v1/shows/{show}/holds"
    key = new_key()
    first = await _json(
        await client.post(url, json={"seats": ["D1", "D2"]}, headers={**alice.headers, **key}), 201
    )
    stored = [k async for k in redis.scan_iter(match=config.redis_prefix + "idem:*")]
    assert stored
    await redis.delete(*stored)  # Redis lost the record
    again = await _json(
        await client.post(url, json={"seats": ["D1", "D2"]}, headers={**alice.headers, **key}), 201
    )
    assert again["hold_id"] == first["hold_id"]


# -- bookings ----------------------------------------------------------------------------------


async def test_my_bookings_and_one_booking(
    client: Any, engine: Engine, show: int, alice: Account, bob: Account
) -> None:
    hold = await _json(
        await client.post(
            f"/api/v1/shows/{show}/holds",
            json={"seats": ["B5", "B6"]},
            headers={**alice.headers, **new_key()},
        ),
        201,
    )
    booking_id = str(uuid.uuid4())
    await engine.client.execute(
        show, actors.Confirm(hold["hold_id"], str(alice.user_id), booking_id)
    )
    mine = await _json(await client.get("/api/v1/me/bookings", headers=alice.headers), 200)
    assert [b["booking_id"] for b in mine["bookings"]] == [booking_id]
    assert mine["bookings"][0]["seats"] == ["B5", "B6"]
    one = await _json(
        await client.get(f"/api/v1/bookings/{booking_id}", headers=alice.headers), 200
    )
    assert one["status"] == "confirmed" and one["hold_id"] == hold["hold_id"]
    _error(
        await _json(await client.get(f"/api/v1/bookings/{booking_id}", headers=bob.headers), 404),
        "not_found",
    )
    assert (await _json(await client.get("/api/v1/me/bookings", headers=bob.headers), 200))[
        "bookings"
    ] == []
    _error(
        await _json(await client.get("/api/v1/me/bookings?limit=0", headers=alice.headers), 422),
        "validation_failed",
    )
    seatmap = await _json(await client.get(f"/api/v1/shows/{show}/seatmap"), 200)
    assert seatmap["seats"]["B5"] == "booked"


async def test_health_and_readiness(client: Any) -> None:
    assert (await _json(await client.get("/api/v1/health"), 200))["status"] == "ok"
    ready = await _json(await client.get("/api/v1/ready"), 200)
    assert ready["checks"] == {"postgres": "ok", "redis": "ok"}
    assert (await client.get("/api/v1/openapi.json")).status == 200


async def test_logout_reaches_every_gateway_process(
    aiohttp_client: Any, client: Any, config: Any, engine: Engine, alice: Account
) -> None:
    """Each process keeps the deny list in memory: a logout on one is refused on another."""
    other = await aiohttp_client(create_app(config, engine=engine.client))
    assert (await other.get("/api/v1/me", headers=alice.headers)).status == 200  # remembered
    out = await client.post("/api/v1/auth/logout", json={}, headers=alice.headers)
    assert out.status == 204
    for _ in range(100):
        resp = await other.get("/api/v1/me", headers=alice.headers)
        if resp.status == 401:
            break
        await asyncio.sleep(0.02)
    _error(await _json(resp, 401), "token_revoked")
    # A process started after the logout loads the deny list.
    late = await aiohttp_client(create_app(config, engine=engine.client))
    _error(await _json(await late.get("/api/v1/me", headers=alice.headers), 401), "token_revoked")


async def test_shutdown_drains_websockets(
    aiohttp_client: Any, config: Any, engine: Engine, show: int
) -> None:
    """On shutdown readiness turns off and open seat maps are closed with 1001 (going away),
    so browsers reconnect to another gateway process."""
    from aiohttp import WSMsgType

    from gateway import keys

    app = create_app(config, engine=engine.client)
    client = await aiohttp_client(app)
    ws = await client.ws_connect(f"/ws/shows/{show}")
    first = await asyncio.wait_for(ws.receive_json(), 10)
    assert first["type"] == "snapshot" and first["show_id"] == show
    closing = asyncio.ensure_future(client.server.close())  # the server side only
    message = await asyncio.wait_for(ws.receive(), 10)
    while message.type == WSMsgType.TEXT:  # a heartbeat or delta may come first
        message = await asyncio.wait_for(ws.receive(), 10)
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 1001
    await asyncio.wait_for(closing, 30)
    assert app[keys.READY]["ready"] is False
