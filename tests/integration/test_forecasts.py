"""Forecasts of upcoming shows without a model: the naive fallback (same screen, same weekday last
week) is stored and flagged, a booking moves the forecast at the next run, snapshots settle
against what sold, and the endpoints keep a theater admin to their own theaters."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest
from aiohttp import web

import storage
from gateway import keys
from gateway.app import create_app
from gateway.ops import OpsConfig
from gateway.ops import forecasts_refresh as refresh
from storage import forecasts as store
from storage.partitions import ensure_partitions
from tests.conftest import TEST_KEYRING
from tests.gateway_support import make_account
from tests.integration.shows import Engine, make_show

SEATS = 60  # grid_layout(): 5 rows of 12


def _app(pool: Any, config: Any) -> web.Application:
    """Just what the jobs read: the pool and the config."""
    app = web.Application()
    app[keys.POOL] = pool
    app[keys.CONFIG] = dataclasses.replace(config, ops=OpsConfig())
    return app


async def _book(conn: Any, show_id: int, seats: list[str], at: dt.datetime) -> None:
    """A confirmed booking as the write-behind flush leaves it, the show's version bumped."""
    starts = await conn.fetchval("SELECT starts_at FROM shows WHERE id = $1", show_id)
    day = starts.astimezone(dt.UTC).date()
    await ensure_partitions(conn, day, day)
    booking = uuid.uuid4()
    user = (
        await conn.fetchval("SELECT min(id) FROM users")
        or (
            await storage.create_user(
                conn, f"{uuid.uuid4().hex}@example.com", "x", keyring=TEST_KEYRING
            )
        ).id
    )
    await conn.execute(
        """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats, price_cents,
               status, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6, 'confirmed', $7)""",
        booking, day, show_id, user, seats, 1200 * len(seats), at,
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO booking_seats (booking_id, show_date, show_id, seat) VALUES ($1, $2, $3, $4)",
        [(booking, day, show_id, seat) for seat in seats],
    )
    await conn.execute("UPDATE shows SET seat_version = seat_version + 1 WHERE id = $1", show_id)


def _labels(n: int) -> list[str]:
    return [f"{row}{k}" for row in "EDCBA" for k in range(12, 0, -1)][:n]


async def _last_week_show(conn: Any, show_id: int, sold: int) -> int:
    """The same screen's show 7 days (and 30 minutes) earlier, with ``sold`` seats sold."""
    past = await conn.fetchval(
        """INSERT INTO shows (screen_id, movie_id, starts_at, busy_until, prices, status)
           SELECT screen_id, movie_id, starts_at - interval '7 days 30 minutes',
                  busy_until - interval '7 days 30 minutes', prices, 'on_sale'
           FROM shows WHERE id = $1 RETURNING id""",
        show_id,
    )
    starts = await conn.fetchval("SELECT starts_at FROM shows WHERE id = $1", past)
    await _book(conn, past, _labels(sold), starts - dt.timedelta(days=1))
    return int(past)


async def _stored(pool: Any, show_id: int) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM show_forecasts WHERE show_id = $1", show_id)


async def test_the_fallback_forecast_moves_with_a_booking(pool: Any, config: Any) -> None:
    show = await make_show(pool, starts_in=dt.timedelta(hours=20))
    async with pool.acquire() as conn:
        await _last_week_show(conn, show, sold=30)
    app = _app(pool, config)  # models off: the naive forecast answers

    assert await refresh.refresh(app) == 1
    first = await _stored(pool, show)
    assert first["source"] == "fallback" and first["model_version"] is None
    assert (first["capacity"], first["sold"]) == (SEATS, 0)
    assert first["seats"] == first["naive_seats"] == 30  # half full last week
    assert first["seats_lo"] <= 30 <= first["seats_hi"] and first["flag"] is None
    assert first["revenue_cents"] == 30 * 1200 and first["horizon_h"] == 24
    assert await refresh.refresh(app) == 0  # nothing changed: nothing due

    async with pool.acquire() as conn:
        await _book(conn, show, _labels(58)[10:], dt.datetime.now(dt.UTC))
    assert await refresh.refresh(app) == 1
    moved = await _stored(pool, show)
    assert moved["sold"] == 48 and moved["seats"] == 48 > first["seats"]
    assert moved["seats_lo"] == 48 and moved["flag"] is None

    async with pool.acquire() as conn:
        await _book(conn, show, _labels(58)[:10], dt.datetime.now(dt.UTC))
        snapshots = await conn.fetch("SELECT * FROM forecast_snapshots WHERE show_id = $1", show)
    assert await refresh.refresh(app) == 1
    assert (await _stored(pool, show))["flag"] == "sell_out"  # 58 of 60 sold
    assert [(s["horizon_h"], s["seats"]) for s in snapshots] == [(24, 30)]  # the first within 24 h


async def test_snapshots_settle_once_the_show_starts(pool: Any, config: Any) -> None:
    show = await make_show(pool, starts_in=dt.timedelta(hours=2))
    cancelled = await make_show(pool, starts_in=dt.timedelta(hours=2), name="2")
    app = _app(pool, config)
    assert await refresh.refresh(app) == 2
    async with pool.acquire() as conn:
        await conn.execute("UPDATE shows SET status = 'cancelled' WHERE id = $1", cancelled)
    async with pool.acquire() as conn:
        await _book(conn, show, _labels(12), dt.datetime.now(dt.UTC))
        starts = await conn.fetchval("SELECT starts_at FROM shows WHERE id = $1", show)
    assert await refresh.settle(app, now=starts - dt.timedelta(minutes=1)) == 0  # not yet
    assert await refresh.settle(app, now=starts + dt.timedelta(minutes=1)) == 1
    async with pool.acquire() as conn:
        [snap] = await conn.fetch("SELECT * FROM forecast_snapshots")  # the cancelled one's gone
        week = await store.accuracy(
            conn, theater_ids=None, starts_from=starts - dt.timedelta(days=1),
            starts_to=starts + dt.timedelta(days=1),
        )  # fmt: skip
    assert (snap["horizon_h"], snap["seats"], snap["actual_seats"]) == (3, 0, 12)
    [row] = week
    assert (row["horizon_h"], row["shows"], row["mape_shows"]) == (3, 1, 1)
    assert row["mape"] == pytest.approx(1.0) and row["naive_mape"] == pytest.approx(1.0)


@pytest.fixture
async def site(aiohttp_client: Any, config: Any, pool: Any, engine: Engine) -> Any:
    client = await aiohttp_client(create_app(config, engine=engine.client))
    shows = [await make_show(pool, name=n, starts_in=dt.timedelta(days=2)) for n in "AB"]
    async with pool.acquire() as conn:
        theaters = [await storage.theater_of(conn, show_id=s) for s in shows]
    await refresh.refresh(_app(pool, config))
    return client, shows, theaters


async def test_a_theater_admin_reads_only_their_theaters(site: Any, pool: Any, config: Any) -> None:
    client, (mine, other), (theater, other_theater) = site
    ops = await make_account(pool, config, "admin")
    admin = await make_account(pool, config, "theater_admin", (theater,))
    path = "/api/v1/admin/analytics/forecasts"

    resp = await client.get(path, headers=ops.headers)
    body = await resp.json()
    assert resp.status == 200, body
    assert {f["show_id"] for f in body["forecasts"]} == {mine, other}
    assert set(body["forecasts"][0]) == {
        "show_id", "movie_title", "theater_name", "starts_at", "capacity", "sold", "occupancy",
        "occupancy_lo", "occupancy_hi", "revenue_cents", "revenue_lo_cents", "revenue_hi_cents",
        "currency", "flag", "source", "model_version", "made_at",
    }  # fmt: skip

    resp = await client.get(path, headers=admin.headers)
    assert [f["show_id"] for f in (await resp.json())["forecasts"]] == [mine]
    resp = await client.get(path, params={"theater_id": other_theater}, headers=admin.headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await client.get(
        "/api/v1/admin/analytics/forecast-accuracy",
        params={"from": "2026-01-01", "to": "2026-12-31", "theater_id": other_theater},
        headers=admin.headers,
    )
    assert resp.status == 403

    pages, after = [], None  # a page at a time: each show once, in order of start
    while True:
        params = {"limit": "1"} | ({} if after is None else {"after": after})
        resp = await client.get(path, params=params, headers=ops.headers)
        page = await resp.json()
        assert resp.status == 200, page
        pages += [f["show_id"] for f in page["forecasts"]]
        if (after := page["next"]) is None:
            break
    assert pages == [f["show_id"] for f in body["forecasts"]] and len(pages) == 2

    resp = await client.get(path, params={"flag": "empty"}, headers=ops.headers)
    assert {f["show_id"] for f in (await resp.json())["forecasts"]} == {mine, other}  # 0 sold
    resp = await client.get(path, params={"flag": "sell_out"}, headers=ops.headers)
    assert (await resp.json())["forecasts"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"flag": "full"},
        {"limit": "0"},
        {"theater_id": "-1"},
        {"from": "2026-12-10T00:00:00Z", "to": "2026-12-09T00:00:00Z"},
        {"from": "yesterday"},
        {"after": "12:x"},
        {"after": "9999999999999999:1"},
    ],
)
async def test_bad_input_is_refused(site: Any, pool: Any, config: Any, params: Any) -> None:
    client = site[0]
    ops = await make_account(pool, config, "admin")
    resp = await client.get("/api/v1/admin/analytics/forecasts", params=params, headers=ops.headers)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "validation_failed", body


async def test_accuracy_needs_a_range(site: Any, pool: Any, config: Any) -> None:
    client = site[0]
    ops = await make_account(pool, config, "admin")
    path = "/api/v1/admin/analytics/forecast-accuracy"
    resp = await client.get(path, params={"from": "2026-01-01"}, headers=ops.headers)
    assert resp.status == 422
    resp = await client.get(
        path, params={"from": "2020-01-01", "to": "2026-01-01"}, headers=ops.headers
    )
    assert resp.status == 422
    resp = await client.get(
        path, params={"from": "2026-01-01", "to": "2026-12-31"}, headers=ops.headers
    )
    body = await resp.json()
    assert resp.status == 200 and body["weeks"] == [] and "mape" in body["definition"]
