"""Every admin route refuses the wrong role and another theater's admin, and lets the right
one through. A new admin route without a row here fails ``test_every_admin_route_is_covered``."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import actors
import storage
from gateway.app import create_app
from gateway.routes import ENDPOINTS
from storage import assistant as chat_rows
from storage import monitoring as alert_rows
from storage import risk
from tests.conftest import random_ref
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, grid_layout, make_show

Request = tuple[str, str, dict[str, Any] | None]


class World:
    """Two theaters, each with a screen, a movie and a show; an admin for each; an ops admin."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)

    async def build(self, pool: Any, config: Any) -> None:
        self.show = await make_show(pool, name="A")
        self.other_show = await make_show(pool, name="B")
        async with pool.acquire() as conn:
            self.theater = await storage.theater_of(conn, show_id=self.show)
            self.other_theater = await storage.theater_of(conn, show_id=self.other_show)
            row = await conn.fetchrow(
                "SELECT screen_id, movie_id FROM shows WHERE id = $1", self.show
            )
            self.city = await conn.fetchval(
                "SELECT city_id FROM theaters WHERE id = $1", self.theater
            )
        self.screen, self.movie = row["screen_id"], row["movie_id"]
        self.ops = await make_account(pool, config, "admin")
        self.admin = await make_account(pool, config, "theater_admin", (self.theater,))
        self.other_admin = await make_account(pool, config, "theater_admin", (self.other_theater,))
        self.customer = await make_account(pool, config)
        self.grantee = await make_account(pool, config)
        async with pool.acquire() as conn:  # a fraud check for analysts to label
            self.decision = await risk.record_decision(
                conn,
                user_id=self.customer.user_id,
                show_id=self.show,
                hold_id=str(uuid.uuid4()),
                features={"holds_account_1h": 1.0},
                score=0.6,
                decision="verify",
                source="fallback",
                model_version=None,
                reasons=["bot_speed: paid 0.1 s after hold"],
            )
        async with pool.acquire() as conn:  # an alert for ops to acknowledge
            self.alert = await alert_rows.open_alert(conn, "latency", "fraud", {"p99_ms": 300})
        async with pool.acquire() as conn:  # a conversation handed to a person
            conversation = "c_" + uuid.uuid4().hex
            handoff = await chat_rows.open_handoff(
                conn, conversation, self.customer.user_id, "requested", []
            )
        self.handoff = handoff.id

    def n(self) -> int:
        return next(self.counter)


def _show_body(w: World) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=10 + w.n())
    return {
        "screen_id": w.screen,
        "movie_id": w.movie,
        "starts_at": start.isoformat(),
        "prices": {"standard": 1000, "wheelchair": 1000, "companion": 1000},
    }


def _seat(w: World) -> str:
    n = w.n()
    return f"{'BCD'[n // 12 % 3]}{n % 12 + 1}"


# endpoint name → (who may: "ops" or "staff", a function building a fresh request)
ROUTES: dict[str, tuple[str, Callable[[World], Request]]] = {
    "create_city": (
        "ops",
        lambda w: ("POST", "/api/v1/admin/cities", {"name": random_ref("City")}),
    ),
    "create_theater": (
        "ops",
        lambda w: (
            "POST",
            "/api/v1/admin/theaters",
            {"city_id": w.city, "name": random_ref("Cinema"), "time_zone": "Europe/Paris"},
        ),
    ),
    "update_theater": (
        "staff",
        lambda w: (
            "PATCH",
            f"/api/v1/admin/theaters/{w.theater}",
            {"address": f"{w.n()} Main Street"},
        ),
    ),
    "grant_theater_admin": (
        "ops",
        lambda w: (
            "POST",
            f"/api/v1/admin/theaters/{w.theater}/admins",
            {"user_id": w.grantee.user_id},
        ),
    ),
    "create_screen": (
        "staff",
        lambda w: (
            "POST",
            f"/api/v1/admin/theaters/{w.theater}/screens",
            {"name": random_ref("S"), "layout": grid_layout(2, 4)},
        ),
    ),
    "update_layout": (
        "staff",
        lambda w: ("PUT", f"/api/v1/admin/screens/{w.screen}/layout", {"layout": grid_layout()}),
    ),
    "create_movie": (
        "ops",
        lambda w: (
            "POST",
            "/api/v1/admin/movies",
            {
                "title": random_ref("Film"),
                "runtime_min": 95,
                "certificate": "PG",
                "language": "en",
                "release_date": "2026-06-01",
            },
        ),
    ),
    "update_movie": (
        "ops",
        lambda w: ("PATCH", f"/api/v1/admin/movies/{w.movie}", {"synopsis": f"take {w.n()}"}),
    ),
    "create_show": ("staff", lambda w: ("POST", "/api/v1/admin/shows", _show_body(w))),
    "update_show": (
        "staff",
        lambda w: (
            "PATCH",
            f"/api/v1/admin/shows/{w.show}",
            {"prices": {"standard": 1100 + w.n(), "wheelchair": 1000, "companion": 1000}},
        ),
    ),
    "block_seats": (
        "staff",
        lambda w: ("POST", f"/api/v1/admin/shows/{w.show}/blocks", {"seats": [_seat(w)]}),
    ),
    "unblock_seats": (
        "staff",
        lambda w: ("POST", f"/api/v1/admin/shows/{w.show}/unblocks", {"seats": ["E11"]}),
    ),
    "set_status": (
        "staff",
        lambda w: ("PUT", f"/api/v1/admin/shows/{w.show}/status", {"status": "on_sale"}),
    ),
    "get_flash_sale": (
        "staff",
        lambda w: ("GET", f"/api/v1/admin/shows/{w.show}/flash-sale", None),
    ),
    "set_flash_sale": (
        "staff",
        lambda w: ("PUT", f"/api/v1/admin/shows/{w.show}/flash-sale", _flash_sale_body(w)),
    ),
    "set_admission_rate": (
        "ops",
        lambda w: (
            "PUT",
            f"/api/v1/admin/shows/{w.show}/flash-sale/rate",
            {"admission_per_min": 100 + w.n()},
        ),
    ),
    "queue_stats": (
        "staff",
        lambda w: ("GET", f"/api/v1/admin/shows/{w.show}/queue", None),
    ),
    "list_models": ("ops", lambda w: ("GET", "/api/v1/admin/models", None)),
    "model_monitoring": ("ops", lambda w: ("GET", "/api/v1/admin/models/monitoring", None)),
    "list_alerts": ("ops", lambda w: ("GET", "/api/v1/admin/alerts?state=all", None)),
    "ack_alert": ("ops", lambda w: ("POST", f"/api/v1/admin/alerts/{w.alert}/ack", None)),
    "figures": (
        "staff",
        lambda w: (
            "GET",
            "/api/v1/admin/analytics/figures"
            f"?by=theater&from=2026-01-01&to=2026-12-31&theater_id={w.theater}",
            None,
        ),
    ),
    "list_forecasts": (
        "staff",
        lambda w: ("GET", f"/api/v1/admin/analytics/forecasts?theater_id={w.theater}", None),
    ),
    "forecast_accuracy": (
        "staff",
        lambda w: (
            "GET",
            "/api/v1/admin/analytics/forecast-accuracy"
            f"?from=2026-01-01&to=2026-12-31&theater_id={w.theater}",
            None,
        ),
    ),
    "fraud_decisions": ("ops", lambda w: ("GET", "/api/v1/admin/fraud/decisions", None)),
    "label_fraud_decision": (
        "ops",
        lambda w: (
            "PUT",
            f"/api/v1/admin/fraud/decisions/{w.decision}/label",
            {"is_fraud": False, "note": "a regular"},
        ),
    ),
    "list_experiments": ("ops", lambda w: ("GET", "/api/v1/admin/experiments", None)),
    "get_experiment": ("ops", lambda w: ("GET", "/api/v1/admin/experiments/pricing-1", None)),
    "create_experiment": (
        "ops",
        lambda w: (
            "POST",
            "/api/v1/admin/experiments",
            {
                "name": random_ref("exp"),
                "arms": [{"arm": "a", "share": 0.5}, {"arm": "b", "share": 0.5}],
            },
        ),
    ),
    "stop_experiment": (
        "ops",
        lambda w: ("POST", "/api/v1/admin/experiments/pricing-1/stop", {"arm": "control"}),
    ),
    "list_handoffs": ("ops", lambda w: ("GET", "/api/v1/admin/chat/handoffs", None)),
    "take_handoff": (
        "ops",
        lambda w: ("POST", f"/api/v1/admin/chat/handoffs/{w.handoff}/take", None),
    ),
    "answer_handoff": (
        "ops",
        lambda w: ("POST", f"/api/v1/admin/chat/handoffs/{w.handoff}/answer", {"text": "Hi"}),
    ),
    "close_handoff": (
        "ops",
        lambda w: ("POST", f"/api/v1/admin/chat/handoffs/{w.handoff}/close", None),
    ),
    "list_audit": ("ops", lambda w: ("GET", f"/api/v1/admin/audit?actor_id={w.ops.user_id}", None)),
}


def _flash_sale_body(w: World) -> dict[str, Any]:
    opens = dt.datetime.now(dt.UTC) + dt.timedelta(hours=20)
    return {
        "queue_opens_at": (opens - dt.timedelta(minutes=30)).isoformat(),
        "sale_opens_at": opens.isoformat(),
        "admission_per_min": 500 + w.n(),
        "token_ttl_s": 600,
    }


def test_every_admin_route_is_covered() -> None:
    admin = {e.name for e in ENDPOINTS if e.path.startswith("/api/v1/admin/")}
    assert admin == set(ROUTES)


@pytest.fixture
async def setup(
    aiohttp_client: Any,
    database_url: str,
    schema: str,
    redis_url: str,
    config: Any,
    pool: Any,
    engine: Engine,
    redis: Any,
) -> AsyncIterator[tuple[Any, World]]:
    world = World()
    await world.build(pool, config)
    client = await aiohttp_client(create_app(config, engine=engine.client))
    yield client, world
    keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if keys:
        await redis.delete(*keys)


async def _send(client: Any, request: Request, who: Account | None) -> tuple[int, Any]:
    method, path, body = request
    headers = {**new_key(), **(who.headers if who else {})}
    resp = await client.request(method, path, json=body, headers=headers)
    return resp.status, (await resp.json() if resp.status != 204 else None)


@pytest.mark.parametrize("name", sorted(ROUTES))
async def test_admin_route_roles(
    setup: tuple[Any, World], engine: Engine, pool: Any, name: str
) -> None:
    client, w = setup
    allowed, build = ROUTES[name]
    if name == "unblock_seats":  # something to unblock, for each allowed caller
        await engine.client.execute(w.show, actors.Block(("E11",)))
    if name == "queue_stats":  # a line to look at
        async with pool.acquire() as conn:
            await conn.execute("UPDATE shows SET status = 'flash_sale' WHERE id = $1", w.show)
    status, body = await _send(client, build(w), None)
    assert status == 401 and body["error"]["code"] == "unauthorized", body
    status, body = await _send(client, build(w), w.customer)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    status, body = await _send(client, build(w), w.other_admin)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    if allowed == "ops":
        status, body = await _send(client, build(w), w.admin)
        assert status == 403, body
    else:
        status, body = await _send(client, build(w), w.admin)
        assert status in (200, 201, 204), body
        if name == "unblock_seats":
            await engine.client.execute(w.show, actors.Block(("E11",)))
    status, body = await _send(client, build(w), w.ops)
    assert status in (200, 201, 204), body


async def test_admin_changes_take_effect(
    setup: tuple[Any, World], engine: Engine, pool: Any
) -> None:
    client, w = setup
    status, body = await _send(
        client, ("POST", f"/api/v1/admin/shows/{w.show}/blocks", {"seats": ["C1", "C2"]}), w.admin
    )
    assert status == 200 and body["seats"] == ["C1", "C2"]
    seatmap = await (await client.get(f"/api/v1/shows/{w.show}/seatmap")).json()
    assert seatmap["seats"]["C1"] == "blocked"
    status, body = await _send(
        client, ("POST", f"/api/v1/admin/shows/{w.show}/blocks", {"seats": ["C1"]}), w.admin
    )
    assert status == 409 and body["error"]["code"] == "seat_unavailable"
    prices = {"standard": 1500, "wheelchair": 900, "companion": 900}
    status, _ = await _send(
        client, ("PATCH", f"/api/v1/admin/shows/{w.show}", {"prices": prices}), w.admin
    )
    assert status == 204
    hold = await client.post(
        f"/api/v1/shows/{w.show}/holds",
        json={"seats": ["D1", "D2"]},
        headers={**w.customer.headers, **new_key()},
    )
    assert (await hold.json())["price_cents"] == 3000  # the actor quotes the new prices
    shown = await (await client.get(f"/api/v1/shows/{w.show}")).json()
    assert shown["prices"] == prices
    for _ in range(100):  # the live seat map follows the actor's PricesChanged delta
        seatmap = await (await client.get(f"/api/v1/shows/{w.show}/seatmap")).json()
        if seatmap["prices"] == prices:
            break
        await asyncio.sleep(0.02)
    assert seatmap["prices"] == prices
    status, body = await _send(
        client, ("PUT", f"/api/v1/admin/shows/{w.show}/status", {"status": "cancelled"}), w.admin
    )
    assert status == 200 and body["status"] == "cancelled"
    hold = await client.post(
        f"/api/v1/shows/{w.show}/holds",
        json={"count": 1},
        headers={**w.customer.headers, **new_key()},
    )
    assert hold.status == 409 and (await hold.json())["error"]["code"] == "show_not_on_sale"
    status, body = await _send(
        client,
        (
            "POST",
            "/api/v1/admin/shows",
            {**_show_body(w), "starts_at": "2020-01-01T10:00:00+00:00"},
        ),
        w.admin,
    )
    assert status == 422 and body["error"]["code"] == "show_in_past"
    status, body = await _send(
        client,
        (
            "POST",
            "/api/v1/admin/theaters",
            {"city_id": w.city, "name": "X", "time_zone": "Mars/Base"},
        ),
        w.ops,
    )
    assert status == 422 and body["error"]["code"] == "invalid_time_zone"
    status, body = await _send(
        client,
        ("POST", f"/api/v1/admin/theaters/{w.theater}/admins", {"user_id": w.grantee.user_id}),
        w.ops,
    )
    assert status == 204
    async with pool.acquire() as conn:
        assert await storage.theaters_of(conn, w.grantee.user_id) == [w.theater]
