"""Flash sales get a host of their own before they open (DESIGN rule 7)."""

from __future__ import annotations

import datetime as dt
from typing import Any


async def upcoming_flash_sales(conn: Any, now: dt.datetime, lead: dt.timedelta) -> list[int]:
    """Shows in flash-sale status whose sale opens within ``lead`` (or is open) and that have
    not started yet."""
    rows = await conn.fetch(
        """SELECT id FROM shows
           WHERE status = 'flash_sale' AND starts_at > $1
             AND coalesce(sale_opens_at, $1) <= $2
           ORDER BY sale_opens_at NULLS FIRST, id""",
        now,
        now + lead,
    )
    return [row["id"] for row in rows]


async def prepare_flash_sales(
    pool: Any, directory: Any, now: dt.datetime, lead: dt.timedelta
) -> list[int]:
    """Start and load a dedicated host for every upcoming flash sale; idempotent."""
    async with pool.acquire() as conn:
        shows = await upcoming_flash_sales(conn, now, lead)
    for show_id in shows:
        await directory.prepare_flash_sale.remote(show_id)
    return shows
