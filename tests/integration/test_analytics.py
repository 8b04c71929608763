"""Business figures: the rollup agrees with a direct count over bookings, holds, payments and
refunds on demo data (every figure, several groupings, filters and ranges); a booking made,
then cancelled and refunded, moves the rollup at the next job run; the funnel counts reach it;
a theater admin sees only their theaters; CSV; bad input is refused at the edge."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

import storage
from gateway import keys
from gateway.app import create_app
from gateway.ops import analytics as ops_analytics
from gateway.ops.analytics_funnel import count_admitted, count_view
from gateway.ops.jobs import run_once
from storage import analytics
from tests.conftest import TEST_KEYRING, fresh_schema
from tests.gateway_support import Account, gateway_config, make_account
from tests.integration.shows import make_show

TODAY = dt.date(2026, 12, 6)
ROLLUP = next(j for j in ops_analytics.JOBS if j.name == "analytics.rollup")
FUNNEL = next(j for j in ops_analytics.JOBS if j.name == "analytics.funnel")


class NoEngine:
    """The figures need no show actors; nothing here opens a seat map."""

    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("no seat maps in these tests")


@dataclass(frozen=True)
class Demo:
    schema: str
    theaters: list[tuple[int, int]]  # (theater, city)
    movies: list[int]


async def _extras(conn: Any) -> None:
    """What the demo lacks: holds, payments (checkouts), refunds (paid, pending, nothing back),
    blocked seats and funnel counts, on a few shows."""
    rng = random.Random(3)
    rows = await conn.fetch(
        "SELECT booking_id, show_id, user_id, seats, price_cents FROM bookings "
        "WHERE status = 'confirmed' ORDER BY booking_id LIMIT 60"
    )
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for n, b in enumerate(rows):
        hold, payment = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO holds (hold_id, show_id, user_id, seats, price_cents, status, "
            "payment_started, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            hold,
            b["show_id"],
            b["user_id"],
            b["seats"],
            b["price_cents"],
            "confirmed" if n % 3 else "released",
            n % 3 != 0,
            now,
            now + dt.timedelta(minutes=5),
        )
        if n % 3 == 0:
            continue
        await conn.execute(
            "INSERT INTO payments (payment_id, hold_id, booking_id, user_id, provider, "
            "amount_cents, currency, status, show_id, seats, attempt) "
            "VALUES ($1, $2, $3, $4, 'test', $5, 'USD', 'booked', $6, $7, 1)",
            payment,
            hold,
            b["booking_id"],
            b["user_id"],
            b["price_cents"],
            b["show_id"],
            b["seats"],
        )
        if n % 4 == 1:
            await conn.execute(
                "INSERT INTO refunds (refund_id, payment_id, booking_id, reason, amount_cents, "
                "currency, status) VALUES ($1, $2, $3, 'customer_cancel', $4, 'USD', $5)",
                uuid.uuid4(),
                payment,
                b["booking_id"],
                b["price_cents"] // 2,
                ("succeeded", "pending", "none")[n // 4 % 3],
            )
    shows = [r["show_id"] for r in rows]
    for show in shows[:8]:
        await conn.execute(
            "INSERT INTO show_blocked_seats (show_id, seat) VALUES ($1, 'Z1'), ($1, 'Z2') "
            "ON CONFLICT DO NOTHING",
            show,
        )
    await analytics.add_funnel(
        conn, {s: (rng.randrange(1, 50), rng.randrange(0, 5)) for s in shows}
    )


@pytest.fixture(scope="module")
async def demo(database_url: str) -> AsyncIterator[Demo]:
    async with fresh_schema(database_url, "t_anl") as name:
        conn = await storage.connect(database_url, schema=name)
        try:
            await storage.generate_demo_data(
                conn, scale=0.07, seed=7, today=TODAY, keyring=TEST_KEYRING, progress=False
            )
            await _extras(conn)
            while await analytics.refresh_chunk(conn, limit=5000):
                pass
            assert await analytics.pending(conn) == 0
            theaters = [
                (r["id"], r["city_id"])
                for r in await conn.fetch("SELECT id, city_id FROM theaters ORDER BY id")
            ]
            movies = [
                r["movie_id"]
                for r in await conn.fetch(
                    "SELECT movie_id FROM bookings JOIN shows s ON s.id = show_id "
                    "GROUP BY movie_id ORDER BY count(*) DESC LIMIT 3"
                )
            ]
        finally:
            await conn.close()
        yield Demo(name, theaters, movies)


@pytest.fixture
async def demo_client(
    aiohttp_client: Any, database_url: str, redis_url: str, demo: Demo
) -> AsyncIterator[tuple[Any, Any]]:
    config = gateway_config(database_url, demo.schema, redis_url)
    client = await aiohttp_client(create_app(config, engine=NoEngine()))
    yield client, config


# The figures straight from the sources, grouped the same way (independent of show_stats).
_DIRECT = """
WITH sh AS (
    SELECT s.id, t.id AS theater_id, t.city_id, s.movie_id, s.currency, s.status,
           (s.starts_at AT TIME ZONE t.time_zone)::date AS local_date,
           sc.seat_count - (SELECT count(*) FROM show_blocked_seats x WHERE x.show_id = s.id)
               AS capacity
    FROM shows s JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id
    WHERE (s.starts_at AT TIME ZONE t.time_zone)::date BETWEEN $1 AND $2
      AND ($3::bigint IS NULL OR t.id = $3) AND ($4::bigint IS NULL OR t.city_id = $4)
      AND ($5::bigint IS NULL OR s.movie_id = $5)),
b AS (SELECT show_id, status, count(*) AS n, sum(cardinality(seats)) AS seats,
             sum(price_cents) AS cents FROM bookings GROUP BY show_id, status),
h AS (SELECT show_id, count(*) AS n FROM holds GROUP BY show_id),
p AS (SELECT show_id, count(DISTINCT hold_id) AS n FROM payments GROUP BY show_id),
r AS (SELECT p.show_id, count(*) AS n, sum(r.amount_cents) AS cents
      FROM refunds r JOIN payments p USING (payment_id) WHERE r.status = 'succeeded'
      GROUP BY p.show_id)
SELECT {key}::text AS key, sh.currency, count(*) AS shows,
       coalesce(sum(sh.capacity) FILTER (WHERE sh.status <> 'cancelled'), 0) AS capacity,
       coalesce(sum(bc.seats), 0) AS tickets, coalesce(sum(bc.n), 0) AS bookings,
       coalesce(sum(bc.cents), 0) AS revenue_cents, coalesce(sum(bx.n), 0) AS cancellations,
       coalesce(sum(bx.seats), 0) AS cancelled_tickets, coalesce(sum(r.n), 0) AS refunds,
       coalesce(sum(r.cents), 0) AS refunded_cents, coalesce(sum(h.n), 0) AS holds,
       coalesce(sum(p.n), 0) AS checkouts, coalesce(sum(f.seatmap_views), 0) AS views,
       coalesce(sum(f.queue_admissions), 0) AS admissions
FROM sh
LEFT JOIN b bc ON bc.show_id = sh.id AND bc.status = 'confirmed'
LEFT JOIN b bx ON bx.show_id = sh.id AND bx.status = 'cancelled'
LEFT JOIN h ON h.show_id = sh.id LEFT JOIN p ON p.show_id = sh.id
LEFT JOIN r ON r.show_id = sh.id LEFT JOIN show_funnel f ON f.show_id = sh.id
GROUP BY 1, 2
"""
_KEYS = {"theater": "sh.theater_id", "city": "sh.city_id", "movie": "sh.movie_id"}


async def _direct(
    conn: Any, by: str, first: dt.date, last: dt.date, **filters: int | None
) -> dict[str, dict[str, Any]]:
    key = _KEYS.get(by, "to_char(sh.local_date, 'YYYY-MM-DD')")
    rows = await conn.fetch(
        _DIRECT.format(key=key),
        first,
        last,
        filters.get("theater_id"),
        filters.get("city_id"),
        filters.get("movie_id"),
    )
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r["key"], {"money": {}})
        for name in (
            "shows",
            "capacity",
            "tickets",
            "bookings",
            "cancellations",
            "cancelled_tickets",
            "refunds",
            "holds",
            "checkouts",
            "views",
            "admissions",
        ):
            g[name] = g.get(name, 0) + r[name]
        g["money"][r["currency"]] = (r["tickets"], r["revenue_cents"], r["refunded_cents"])
    return groups


def _as_direct(group: dict[str, Any]) -> dict[str, Any]:
    """The answer's group in the shape of ``_direct``."""
    f = group["funnel"]
    return {
        "shows": group["shows"],
        "capacity": group["capacity"],
        "tickets": group["tickets"],
        "bookings": group["bookings"],
        "cancellations": group["cancellations"],
        "cancelled_tickets": group["cancelled_tickets"],
        "refunds": group["refunds"],
        "holds": f["holds"],
        "checkouts": f["checkouts"],
        "views": f["seatmap_views"],
        "admissions": group["queue_admissions"],
        "money": {
            m["currency"]: (m["tickets"], m["revenue_cents"], m["refunded_cents"])
            for m in group["money"]
        },
    }


async def _get(client: Any, who: Account | None, **params: Any) -> Any:
    headers = who.headers if who else {}
    query = {k: str(v) for k, v in params.items()}
    return await client.get("/api/v1/admin/analytics/figures", params=query, headers=headers)


async def test_rollup_agrees_with_a_direct_count(demo: Demo, demo_client: tuple[Any, Any]) -> None:
    client, config = demo_client
    conn = await storage.connect(config.database_url, schema=demo.schema)
    try:
        ops = await _ops(config, demo)
        theater, city = demo.theaters[-1]
        year = (TODAY - dt.timedelta(days=364), TODAY + dt.timedelta(days=7))
        month = (TODAY - dt.timedelta(days=40), TODAY - dt.timedelta(days=10))
        cases: list[tuple[str, tuple[dt.date, dt.date], dict[str, int]]] = [
            ("theater", year, {}),
            ("city", year, {}),
            ("movie", month, {}),
            ("day", month, {}),
            ("day", year, {"city_id": city}),
            ("movie", year, {"theater_id": theater}),
            ("theater", year, {"movie_id": demo.movies[0]}),
            ("city", (TODAY, TODAY + dt.timedelta(days=7)), {}),
        ]
        checked = 0
        for by, (first, last), filters in cases:
            resp = await _get(client, ops, by=by, **{"from": first, "to": last}, **filters)
            assert resp.status == 200, await resp.text()
            body = await resp.json()
            want = await _direct(conn, by, first, last, **filters)
            got = {g["key"]: _as_direct(g) for g in body["groups"]}
            assert got == want, (by, first, last, filters)
            assert body["totals"]["tickets"] == sum(g["tickets"] for g in want.values())
            checked += sum(g["tickets"] for g in want.values())
        assert len({c for _, c in demo.theaters}) >= 2 and checked > 1000
        # Every source had something to count.
        everything = await _direct(conn, "city", *year)
        for name in ("tickets", "cancellations", "refunds", "holds", "checkouts", "views"):
            assert sum(g[name] for g in everything.values()) > 0, name
    finally:
        await conn.close()


async def _ops(config: Any, demo: Demo) -> Account:
    pool = await storage.create_pool(config.database_url, schema=demo.schema, min_size=1)
    try:
        return await make_account(pool, config, "admin")
    finally:
        await pool.close()


async def test_theater_admin_sees_only_their_theaters(
    demo: Demo, demo_client: tuple[Any, Any]
) -> None:
    client, config = demo_client
    (mine, my_city), (theirs, _) = demo.theaters[0], demo.theaters[-1]
    pool = await storage.create_pool(config.database_url, schema=demo.schema, min_size=1)
    try:
        admin = await make_account(pool, config, "theater_admin", (mine,))
        customer = await make_account(pool, config)
        ops = await make_account(pool, config, "admin")
    finally:
        await pool.close()
    span = {"from": TODAY - dt.timedelta(days=90), "to": TODAY}
    resp = await _get(client, admin, by="theater", theater_id=theirs, **span)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await _get(client, admin, by="day", theater_id=theirs, format="csv", **span)
    assert resp.status == 403
    for who, status in ((None, 401), (customer, 403)):
        assert (await _get(client, who, by="theater", **span)).status == status
    for by, filters in (("theater", {}), ("city", {"city_id": my_city}), ("movie", {})):
        body = await (await _get(client, admin, by=by, **span, **filters)).json()
        assert body["theater_ids"] == [mine]
        assert [t["id"] for t in body["theaters"]] == [mine]
        only = await (await _get(client, ops, by=by, theater_id=mine, **span, **filters)).json()
        assert body["groups"] == only["groups"] and body["totals"] == only["totals"]
        everyone = await (await _get(client, ops, by=by, **span, **filters)).json()
        assert everyone["totals"]["tickets"] > body["totals"]["tickets"] > 0 or by == "city"
    body = await (await _get(client, admin, by="theater", **span)).json()
    assert [g["key"] for g in body["groups"]] == [str(mine)]
    body = await (await _get(client, ops, by="theater", **span)).json()
    assert {g["key"] for g in body["groups"]} == {str(t) for t, _ in demo.theaters}
    assert len(body["theaters"]) == len(demo.theaters)


async def test_csv_export(demo: Demo, demo_client: tuple[Any, Any]) -> None:
    client, config = demo_client
    ops = await _ops(config, demo)
    span = {"from": TODAY - dt.timedelta(days=60), "to": TODAY}
    body = await (await _get(client, ops, by="movie", **span)).json()
    resp = await _get(client, ops, by="movie", format="csv", **span)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    disposition = resp.headers["Content-Disposition"]
    assert disposition == (
        f'attachment; filename="figures-movie-{span["from"].isoformat()}-{TODAY.isoformat()}.csv"'
    )
    lines = list(csv.DictReader(io.StringIO(await resp.text())))
    assert list(lines[0]) == list(ops_analytics.CSV_COLUMNS)
    assert len(lines) == sum(max(1, len(g["money"])) for g in body["groups"]) + 1
    by_key = {line["key"]: line for line in lines}
    for group in body["groups"]:
        line = by_key[group["key"]]
        assert line["label"] == group["label"]
        assert int(line["tickets"]) == group["tickets"]
        assert int(line["revenue_cents"]) == sum(m["revenue_cents"] for m in group["money"])
    assert lines[-1]["key"] == "total"
    assert int(lines[-1]["tickets"]) == body["totals"]["tickets"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-12-06", "to": "2026-12-01"},  # backwards
        {"from": "2025-01-01", "to": "2026-12-01"},  # over 400 days
        {"from": "2026-13-01", "to": "2026-12-01"},  # no such day
        {"from": "yesterday", "to": "2026-12-01"},
        {"to": "2026-12-01"},  # no start
        {"from": "2026-12-01", "to": "2026-12-02", "by": "country"},
        {"from": "2026-12-01", "to": "2026-12-02", "theater_id": "0"},
        {"from": "2026-12-01", "to": "2026-12-02", "city_id": str(2**63)},
        {"from": "2026-12-01", "to": "2026-12-02", "format": "xlsx"},
        {"from": "2026-12-01", "to": "2026-12-02", "limit": "5"},
        {"from": "1900-01-01", "to": "1900-01-02"},
    ],
)
async def test_bad_input_is_refused(
    demo: Demo, demo_client: tuple[Any, Any], params: dict[str, str]
) -> None:
    client, config = demo_client
    ops = await _ops(config, demo)
    resp = await client.get("/api/v1/admin/analytics/figures", params=params, headers=ops.headers)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "validation_failed"


async def test_a_booking_cancelled_and_refunded_moves_the_rollup(
    aiohttp_client: Any, pool: Any, config: Any
) -> None:
    show = await make_show(pool, starts_in=dt.timedelta(days=1))
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT s.starts_at, t.time_zone, t.id AS theater FROM shows s "
            "JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id "
            "WHERE s.id = $1",
            show,
        )
    day = row["starts_at"].astimezone(_zone(row["time_zone"])).date()
    app = create_app(config, engine=NoEngine())
    client = await aiohttp_client(app)
    admin = await make_account(pool, config, "theater_admin", (row["theater"],))
    assert await run_once(app, ROLLUP)  # took the lease: later runs call the job itself

    async def figures() -> dict[str, Any]:
        resp = await _get(client, admin, by="day", **{"from": day, "to": day})
        assert resp.status == 200
        return (await resp.json())["totals"]

    before = await figures()
    assert (before["shows"], before["tickets"], before["capacity"]) == (1, 0, 60)
    hold, payment, booking = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    show_date = row["starts_at"].astimezone(dt.UTC).date()
    async with pool.acquire() as conn:
        await storage.ensure_partitions(conn, show_date, show_date)
        async with conn.transaction():  # what the saga and the write-behind leave behind
            await conn.execute(
                "INSERT INTO holds (hold_id, show_id, user_id, seats, price_cents, status, "
                "payment_started, created_at, expires_at) "
                "VALUES ($1, $2, 1, '{B1,B2}', 2400, 'confirmed', true, $3, $3)",
                hold,
                show,
                now,
            )
            await conn.execute(
                "INSERT INTO payments (payment_id, hold_id, booking_id, user_id, provider, "
                "amount_cents, currency, status, show_id, seats, attempt) "
                "VALUES ($1, $2, $3, 1, 'test', 2400, 'USD', 'booked', $4, '{B1,B2}', 1)",
                payment,
                hold,
                booking,
                show,
            )
            await conn.execute(
                "INSERT INTO bookings (booking_id, show_date, show_id, user_id, hold_id, seats, "
                "price_cents, currency, status, confirmed_at) "
                "VALUES ($1, $2, $3, 1, $4, '{B1,B2}', 2400, 'USD', 'confirmed', $5)",
                booking,
                show_date,
                show,
                hold,
                now,
            )
    assert await figures() == before  # not until the job runs
    await ops_analytics.rollup(app)
    booked = await figures()
    assert (booked["tickets"], booked["bookings"], booked["occupancy"]) == (2, 1, round(2 / 60, 4))
    assert booked["money"] == [
        {
            "currency": "USD",
            "tickets": 2,
            "revenue_cents": 2400,
            "refunded_cents": 0,
            "average_price_cents": 1200,
        }
    ]
    assert booked["funnel"] == {
        "seatmap_views": 0,
        "holds": 1,
        "checkouts": 1,
        "bookings": 1,
        "view_to_hold": None,
        "hold_to_checkout": 1.0,
        "checkout_to_booking": 1.0,
    }
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = now() WHERE booking_id = $1",
            booking,
        )
        await conn.execute(
            "INSERT INTO refunds (refund_id, payment_id, booking_id, reason, amount_cents, "
            "currency, status) VALUES ($1, $2, $3, 'customer_cancel', 1800, 'USD', 'pending')",
            uuid.uuid4(),
            payment,
            booking,
        )
    await ops_analytics.rollup(app)
    cancelled = await figures()
    assert (cancelled["tickets"], cancelled["cancellations"], cancelled["refunds"]) == (0, 1, 0)
    assert cancelled["funnel"]["bookings"] == 1  # made, then cancelled
    async with pool.acquire() as conn:
        await conn.execute("UPDATE refunds SET status = 'succeeded' WHERE payment_id = $1", payment)
    await ops_analytics.rollup(app)
    refunded = await figures()
    assert (refunded["refunds"], refunded["money"][0]["refunded_cents"]) == (1, 1800)
    assert refunded["money"][0]["revenue_cents"] == 0

    # The funnel counts of this process reach the rollup after a flush and a rollup.
    for _ in range(3):
        count_view(app, show)
    count_admitted(app, show, 2)
    count_view(app, 10**15)  # a show that does not exist is dropped
    assert await run_once(app, FUNNEL)
    await ops_analytics.rollup(app)
    counted = await figures()
    assert (counted["funnel"]["seatmap_views"], counted["queue_admissions"]) == (3, 2)
    assert app[keys.FUNNEL].take() == {}


async def test_a_backlog_drains_in_chunks(pool: Any, config: Any, aiohttp_client: Any) -> None:
    shows = [await make_show(pool, name=str(n)) for n in range(5)]
    small = dataclasses.replace(config, ops=ops_analytics.OpsConfig(analytics_rollup_chunk=2))
    app = create_app(small, engine=NoEngine())
    await aiohttp_client(app)
    async with pool.acquire() as conn:
        assert await analytics.pending(conn) >= 5
        assert await analytics.refresh_chunk(conn, limit=2) <= 2
        assert await analytics.pending(conn) >= 3
    await run_once(app, ROLLUP)
    async with pool.acquire() as conn:
        assert await analytics.pending(conn) == 0
        stats = await conn.fetchval(
            "SELECT count(*) FROM show_stats WHERE show_id = ANY($1::bigint[])", shows
        )
    assert stats == 5
    async with pool.acquire() as conn:  # the write-behind's version bumps log nothing
        await conn.execute("UPDATE shows SET seat_version = seat_version + 1")
        assert await analytics.pending(conn) == 0
        await conn.execute("UPDATE shows SET status = 'cancelled' WHERE id = $1", shows[0])
        assert await analytics.pending(conn) == 1
    await ops_analytics.rollup(app)
    async with pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM show_stats WHERE show_id = $1", shows[0])
    assert status == "cancelled"
    async with pool.acquire() as conn:  # a new layout: the screen's shows to come
        await conn.execute(
            "UPDATE screens SET seat_count = seat_count - 1 "
            "WHERE id = (SELECT screen_id FROM shows WHERE id = $1)",
            shows[1],
        )
        assert await analytics.pending(conn) == 1
    await ops_analytics.rollup(app)
    async with pool.acquire() as conn:
        capacity = await conn.fetchval(
            "SELECT capacity FROM show_stats WHERE show_id = $1", shows[1]
        )
    assert capacity == 59


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
