"""Monthly partitions of the bookings tables, created ahead of time."""

from __future__ import annotations

import datetime as dt
from typing import Any


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


async def ensure_partitions(conn: Any, first: dt.date, last: dt.date) -> int:
    """Create the missing monthly partitions covering ``first`` … ``last``; returns how many."""
    created: int = await conn.fetchval(
        "SELECT ensure_booking_partitions($1, $2)", _month_start(first), last
    )
    return created


async def ensure_partitions_ahead(
    conn: Any, today: dt.date, *, months_ahead: int, months_back: int = 1
) -> int:
    """Partitions from ``months_back`` before ``today`` to ``months_ahead`` after it."""
    first = _add_months(_month_start(today), -months_back)
    last = _add_months(_month_start(today), months_ahead)
    return await ensure_partitions(conn, first, last)
