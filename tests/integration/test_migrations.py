from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

import storage
from tests.conftest import random_ref


async def test_migrations_apply_on_empty_schema_and_again(database_url: str) -> None:
    name = random_ref("m")
    admin = await storage.connect(database_url)
    await admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        conn = await storage.connect(database_url, schema=name)
        try:
            applied = await storage.migrate(conn)
            assert applied == [m.version for m in storage.load_migrations()]
            assert await storage.migrate(conn) == []
            tables = {
                r["table_name"]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    name,
                )
            }
            assert {
                "cities",
                "theaters",
                "screens",
                "movies",
                "shows",
                "users",
                "holds",
                "bookings",
                "booking_seats",
                "payments",
                "outbox",
                "idempotency_keys",
            } <= tables
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        await admin.close()


async def test_edited_migration_is_refused(schema: str, database_url: str) -> None:
    conn = await storage.connect(database_url, schema=schema)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(storage.MigrationError):
            await storage.migrate(conn)
    finally:
        await conn.close()


async def test_partitions_created_ahead_and_seat_sold_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        created = await storage.ensure_partitions_ahead(conn, dt.date(2026, 11, 24), months_ahead=2)
        assert created == 8  # Oct..Jan, two tables
        assert (
            await storage.ensure_partitions_ahead(conn, dt.date(2026, 11, 24), months_ahead=2) == 0
        )
        insert = (
            "INSERT INTO booking_seats (booking_id, show_date, show_id, seat) "
            "VALUES (gen_random_uuid(), '2026-12-05', 1, 'A1')"
        )
        await conn.execute(insert)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert)
        with pytest.raises(asyncpg.PostgresError):  # no partition for that month yet
            await conn.execute(insert.replace("2026-12-05", "2028-01-01"))
