"""The demo data generator against a real Postgres: deterministic, valid, and learnable.

One module-wide run (scale 0.07: 2 cities in two time zones, 4 theaters, 32 screens, ~3,500
customers, a year of shows and ~20,000 bookings) is checked from the database; the tests that
need a schema of their own use the ``schema`` fixture.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher

import storage
from storage.demo import ADMIN_EMAIL, DEMO_PASSWORD, DemoReport, generate_demo_data
from tests.conftest import TEST_KEYRING, random_ref

TODAY = dt.date(2026, 11, 24)
SCALE = 0.07
SEED = 7

# Every column of every row, in a fixed order: equal digests mean equal tables.
DIGESTS = {
    "cities": "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM cities t",
    "theaters": "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM theaters t",
    "screens": "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM screens t",
    "movies": "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM movies t",
    "shows": "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM shows t",
    # The email's ciphertext has a fresh nonce each run; its blind index is the same.
    "users": "SELECT md5(string_agg((id, email_index, password_hash, role, display_name, "
    "home_city_id, created_at)::text, '|' ORDER BY id)) FROM users t",
    "bookings": "SELECT md5(string_agg(t::text, '|' ORDER BY booking_id)) FROM bookings t",
    "booking_seats": "SELECT md5(string_agg(t::text, '|' ORDER BY booking_id, seat)) "
    "FROM booking_seats t",
}


async def digests(conn: Any) -> dict[str, str]:
    return {table: await conn.fetchval(sql) for table, sql in DIGESTS.items()}


@pytest.fixture(scope="module")
async def demo(database_url: str) -> AsyncIterator[tuple[str, DemoReport]]:
    """(schema, report) of one demo run shared by the read-only tests of this module."""
    name = random_ref("demo")
    admin = await storage.connect(database_url)
    await admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        conn = await storage.connect(database_url, schema=name)
        try:
            await storage.migrate(conn)
            report = await generate_demo_data(
                conn, scale=SCALE, seed=SEED, today=TODAY, keyring=TEST_KEYRING, progress=False
            )
        finally:
            await conn.close()
        yield name, report
    finally:
        await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        await admin.close()


@pytest.fixture
async def db(demo: tuple[str, DemoReport], database_url: str) -> AsyncIterator[Any]:
    conn = await storage.connect(database_url, schema=demo[0])
    yield conn
    await conn.close()


async def test_report_counts_match_the_tables(demo: tuple[str, DemoReport], db: Any) -> None:
    report = demo[1]
    for table, count in report.counts.items():
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == count, table
    assert report.counts["cities"] == 2
    assert report.counts["theaters"] == 4
    assert report.counts["screens"] == 32
    assert report.counts["bookings"] > 10_000
    assert report.seconds > 0
    time_zones = await db.fetchval("SELECT count(DISTINCT time_zone) FROM theaters")
    assert time_zones == 2


async def test_same_seed_same_rows_other_seed_other_rows_and_replace(
    demo: tuple[str, DemoReport], db: Any, pool: asyncpg.Pool
) -> None:
    expected = await digests(db)
    async with pool.acquire() as conn:
        await generate_demo_data(
            conn, scale=SCALE, seed=SEED + 1, today=TODAY, keyring=TEST_KEYRING, progress=False
        )
        other = await digests(conn)
        for table in ("theaters", "screens", "movies", "shows", "users", "bookings"):
            assert other[table] != expected[table], table

        with pytest.raises(storage.InvalidCatalogData) as refused:
            await generate_demo_data(
                conn, scale=SCALE, seed=SEED, today=TODAY, keyring=TEST_KEYRING, progress=False
            )
        assert "cities" in refused.value.details["tables"]
        assert await digests(conn) == other  # the refusal changed nothing

        await generate_demo_data(
            conn,
            scale=SCALE,
            seed=SEED,
            today=TODAY,
            keyring=TEST_KEYRING,
            progress=False,
            replace=True,
        )
        assert await digests(conn) == expected


def _beside_a_wheelchair_space(seats: list[dict[str, Any]], i: int) -> bool:
    """The companion seat at position ``i`` has a wheelchair space next to it, no aisle between."""
    left = seats[i - 1] if i > 0 else None
    right = seats[i + 1] if i + 1 < len(seats) else None
    return bool(
        (left and left["category"] == "wheelchair" and not left["aisle_after"])
        or (right and right["category"] == "wheelchair" and not seats[i]["aisle_after"])
    )


def _check_layout(layout: dict[str, Any]) -> Counter[str]:
    """Assert the layout rules; returns the seats per category (out of service ones too)."""
    assert set(layout) == {"rows", "sweet_spot"}
    assert set(layout["sweet_spot"]) == {"x", "y"}
    labels = [seat["label"] for row in layout["rows"] for seat in row["seats"]]
    assert len(labels) == len(set(labels)), "seat labels repeat"
    assert 80 <= len(labels) <= 400
    rows = [row["label"] for row in layout["rows"]]
    assert len(rows) == len(set(rows))
    categories: Counter[str] = Counter()
    for row in layout["rows"]:
        for i, seat in enumerate(row["seats"]):
            assert set(seat) == {"label", "category", "x", "y", "aisle_after", "out_of_service"}
            categories[seat["category"]] += 1
            if seat["category"] == "companion":
                assert _beside_a_wheelchair_space(row["seats"], i), seat["label"]
    assert categories["wheelchair"] >= 1
    return categories


async def test_every_layout_follows_the_rules_and_they_vary(db: Any) -> None:
    screens = await db.fetch("SELECT layout, seat_count, categories FROM screens")
    curved = with_recliners = out_of_service = 0
    aisles: set[int] = set()
    for screen in screens:
        layout = screen["layout"]
        categories = _check_layout(layout)
        assert screen["seat_count"] == sum(categories.values())
        assert set(screen["categories"]) == set(categories)
        back_row = layout["rows"][-1]["seats"]
        curved += len({seat["y"] for seat in back_row}) > 1
        aisles.add(sum(seat["aisle_after"] for seat in back_row))
        with_recliners += "recliner" in categories
        out_of_service += sum(s["out_of_service"] for r in layout["rows"] for s in r["seats"])
    assert 0 < curved < len(screens)
    assert 0 < with_recliners < len(screens)
    assert aisles >= {1, 2}
    assert out_of_service > 0
    assert len({s["seat_count"] for s in screens}) > len(screens) // 2


async def broken_rules(db: Any, rules: dict[str, str], *args: Any) -> dict[str, int]:
    """Each rule is a query counting the rows that break it; returns the rules broken."""
    counts = {name: await db.fetchval(sql, *args) for name, sql in rules.items()}
    return {name: n for name, n in counts.items() if n}


SHOW_RULES = {
    "overlap on a screen": """
        SELECT count(*) FROM shows a JOIN shows b
        ON b.screen_id = a.screen_id AND b.id <> a.id
        AND b.starts_at >= a.starts_at AND b.starts_at < a.busy_until""",
    "busy_until is not start + runtime + 20 min": """
        SELECT count(*) FROM shows s JOIN movies m ON m.id = s.movie_id
        WHERE s.busy_until <> s.starts_at + make_interval(mins => m.runtime_min + 20)""",
    "flash sale without an opening, or opening after the start": """
        SELECT count(*) FROM shows
        WHERE (status = 'flash_sale') <> (sale_opens_at IS NOT NULL)
           OR sale_opens_at >= starts_at""",
    "shown before the movie's release": """
        SELECT count(*) FROM shows s JOIN movies m ON m.id = s.movie_id
        WHERE s.starts_at < m.release_date - interval '1 day'""",
}

LOCAL_SHOWS = """
    SELECT s.*, (s.starts_at AT TIME ZONE t.time_zone) AS local_start
    FROM shows s JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id"""


async def test_shows_never_overlap_and_keep_their_rules(db: Any) -> None:
    assert await broken_rules(db, SHOW_RULES) == {}


async def test_shows_run_on_local_days_and_hours(db: Any) -> None:
    row = await db.fetchrow(
        f"""SELECT min(local_start::date) AS first, max(local_start::date) AS last,
                   min(local_start::time) AS opens, max(local_start::time) AS closes
            FROM ({LOCAL_SHOWS}) x"""
    )
    assert row["first"] == TODAY - dt.timedelta(days=365)
    assert row["last"] == TODAY + dt.timedelta(days=6)
    assert row["opens"] >= dt.time(10) and row["closes"] <= dt.time(23, 30)
    per_screen_day = await db.fetch(
        f"""SELECT screen_id, local_start::date AS day, count(*) AS n FROM ({LOCAL_SHOWS}) x
            WHERE local_start::date >= $1 GROUP BY 1, 2""",
        TODAY,
    )
    assert len(per_screen_day) == 32 * 7
    assert {r["n"] for r in per_screen_day} == {6}
    statuses = await db.fetch(
        f"""SELECT local_start::date >= $1 AS coming, status, count(*) AS n
            FROM ({LOCAL_SHOWS}) x GROUP BY 1, 2""",
        TODAY,
    )
    past = {r["status"]: r["n"] for r in statuses if not r["coming"]}
    coming = {r["status"]: r["n"] for r in statuses if r["coming"]}
    assert set(past) == {"on_sale"}
    assert coming["on_sale"] > coming["scheduled"] > coming["flash_sale"] > 0


async def test_prices_cover_every_category_of_the_screen(db: Any) -> None:
    rows = await db.fetch(
        """SELECT s.prices, sc.categories FROM shows s JOIN screens sc ON sc.id = s.screen_id
           WHERE s.id % 97 = 0"""
    )
    for row in rows:
        prices = row["prices"]
        assert set(prices) == set(row["categories"])
        if "standard" in prices:
            assert 500 <= prices["standard"] <= 2500
            assert prices.get("wheelchair", prices["standard"]) == prices["standard"]
            assert prices.get("premium", 10**6) > prices["standard"]


SEAT_LABELS = """
    CREATE TEMP TABLE seat_labels AS
    SELECT sc.id AS screen_id, seat->>'label' AS label, seat->>'category' AS category,
           (seat->>'out_of_service')::boolean AS broken
    FROM screens sc, jsonb_array_elements(sc.layout->'rows') r,
         jsonb_array_elements(r->'seats') seat;
    CREATE INDEX ON seat_labels (screen_id, label);
    ANALYZE seat_labels"""

BOOKED = """
    FROM booking_seats bs JOIN shows s ON s.id = bs.show_id
    LEFT JOIN seat_labels l ON l.screen_id = s.screen_id AND l.label = bs.seat"""

BOOKING_RULES = {
    "no such seat on the screen": f"SELECT count(*) {BOOKED} WHERE l.label IS NULL",
    "out-of-service seat booked": f"SELECT count(*) {BOOKED} WHERE l.broken",
    "live seat booked twice": """
        SELECT count(*) FROM (
            SELECT show_id, seat FROM booking_seats WHERE live GROUP BY 1, 2 HAVING count(*) > 1
        ) x""",
    "companion seat without its wheelchair space": f"""
        SELECT count(*) {BOOKED} WHERE l.category = 'companion' AND NOT EXISTS (
            SELECT FROM booking_seats w JOIN seat_labels wl
            ON wl.screen_id = s.screen_id AND wl.label = w.seat
            WHERE w.booking_id = bs.booking_id AND wl.category = 'wheelchair')""",
    "booking disagrees with its show or its seats": """
        SELECT count(*) FROM bookings b JOIN shows s ON s.id = b.show_id,
        LATERAL (SELECT array_agg(bs.seat) AS seats, sum((s.prices->>l.category)::int) AS price
                 FROM booking_seats bs JOIN seat_labels l
                 ON l.screen_id = s.screen_id AND l.label = bs.seat
                 WHERE bs.booking_id = b.booking_id) x
        WHERE b.show_date <> (s.starts_at AT TIME ZONE 'UTC')::date
           OR b.confirmed_at >= s.starts_at
           OR (b.status = 'cancelled') <> (b.cancelled_at IS NOT NULL)
           OR b.cancelled_at NOT BETWEEN b.confirmed_at AND s.starts_at
           OR NOT (b.seats @> x.seats AND x.seats @> b.seats)
           OR cardinality(b.seats) <> cardinality(x.seats)
           OR b.price_cents <> x.price""",
    "seat live unless its booking is cancelled": """
        SELECT count(*) FROM booking_seats bs JOIN bookings b USING (booking_id, show_date)
        WHERE bs.live <> (b.status = 'confirmed')""",
    "booked before the customer joined": """
        SELECT count(*) FROM bookings b JOIN users u ON u.id = b.user_id
        WHERE b.confirmed_at < u.created_at""",
}


async def test_booked_seats_are_real_free_and_consistent(db: Any) -> None:
    await db.execute(SEAT_LABELS)
    assert await broken_rules(db, BOOKING_RULES) == {}
    sizes = dict(await db.fetch("SELECT cardinality(seats), count(*) FROM bookings GROUP BY 1"))
    assert set(sizes) <= set(range(1, 7)) and max(sizes, key=sizes.__getitem__) == 2
    assert await db.fetchval("SELECT count(*) FROM bookings WHERE status = 'cancelled'") > 0
    assert await db.fetchval("SELECT count(*) FROM bookings WHERE show_date >= $1", TODAY) > 0


async def test_users_share_one_demo_password(db: Any) -> None:
    roles = dict(await db.fetch("SELECT role, count(*) FROM users GROUP BY 1"))
    assert roles["admin"] == 1 and roles["theater_admin"] >= 1 and roles["customer"] == 3500
    by_email = "SELECT {} FROM users WHERE email_index = $1"
    admin = TEST_KEYRING.blind_index(ADMIN_EMAIL, field="users.email")
    assert await db.fetchval(by_email.format("role"), admin) == "admin"
    assert await db.fetchval("SELECT count(DISTINCT password_hash) FROM users") == 1
    user1 = TEST_KEYRING.blind_index("user1@example.com", field="users.email")
    hashed = await db.fetchval(by_email.format("password_hash"), user1)
    assert PasswordHasher().verify(hashed, DEMO_PASSWORD)


async def test_sequences_follow_the_loaded_ids(db: Any) -> None:
    """A row inserted without an id after loading gets the next free one."""
    inserts = {
        "cities": "INSERT INTO cities (name) VALUES ('Testville') RETURNING id",
        "movies": """INSERT INTO movies (title, runtime_min, certificate, language, release_date)
                     VALUES ('Test', 90, 'G', 'English', '2026-01-01') RETURNING id""",
        "users": "INSERT INTO users (email_enc, email_index, password_hash) "
        "VALUES ('\\x01'::bytea, '\\x02'::bytea, 'x') RETURNING id",
        "shows": """INSERT INTO shows (screen_id, movie_id, starts_at, busy_until, prices)
                    VALUES (1, 1, '2027-01-01 10:00Z', '2027-01-01 12:00Z', '{}') RETURNING id""",
    }
    transaction = db.transaction()
    await transaction.start()
    try:
        for table, insert in inserts.items():
            before = await db.fetchval(f"SELECT max(id) FROM {table}")
            assert await db.fetchval(insert) == before + 1, table
        for table in ("theaters", "screens"):
            assert await db.fetchval(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                f"= (SELECT max(id) + 1 FROM {table})"
            ), table
    finally:
        await transaction.rollback()


async def test_bookings_follow_each_customers_habits(db: Any) -> None:
    visits = """SELECT b.user_id, m.genres[1] AS genre, t.city_id, u.home_city_id,
                       extract(hour FROM s.starts_at AT TIME ZONE t.time_zone) AS hour
                FROM bookings b JOIN users u ON u.id = b.user_id
                JOIN shows s ON s.id = b.show_id JOIN movies m ON m.id = s.movie_id
                JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id"""

    async def concentration(column: str) -> tuple[float, float]:
        """(mean share of each frequent customer's top value, share of the top value overall)"""
        personal = await db.fetchval(
            f"""SELECT avg(top::float / total) FROM (
                  SELECT user_id, max(n) AS top, sum(n) AS total FROM (
                    SELECT user_id, {column} AS v, count(*) AS n FROM ({visits}) x GROUP BY 1, 2
                  ) y GROUP BY 1 HAVING sum(n) >= 6) z"""
        )
        overall = await db.fetchval(
            f"""SELECT max(n)::float / sum(n) FROM (
                  SELECT {column} AS v, count(*) AS n FROM ({visits}) x GROUP BY 1) y"""
        )
        return personal, overall

    personal, overall = await concentration("genre")
    assert personal > 1.6 * overall, (personal, overall)
    personal, overall = await concentration(
        "CASE WHEN hour < 13 THEN 0 WHEN hour < 17 THEN 1 WHEN hour < 21 THEN 2 ELSE 3 END"
    )
    assert personal > overall + 0.1, (personal, overall)
    home = await db.fetchval(f"SELECT avg((city_id = home_city_id)::int) FROM ({visits}) x")
    assert home > 0.85
