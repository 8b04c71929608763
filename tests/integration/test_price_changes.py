"""Dynamic prices in force: the latest change per category, and at most one change an hour
even when two gateways reprice one show at the same moment."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from storage import prices
from tests.integration.shows import make_show

HOUR = 3600.0


async def test_one_change_an_hour_per_category_even_when_raced(pool: Any) -> None:
    show = await make_show(pool)
    now = dt.datetime.now(dt.UTC)

    async def change(cents: int, at: dt.datetime, category: str = "standard") -> bool:
        async with pool.acquire() as conn:
            return await prices.record_price_change(
                conn,
                show,
                category,
                price_cents=cents,
                base_cents=1200,
                at=at,
                source="model",
                model_version="v1",
                min_gap_s=HOUR,
            )

    racing = await asyncio.gather(*(change(1300 + n, now) for n in range(4)))
    assert sorted(racing) == [False, False, False, True]
    assert not await change(1250, now + dt.timedelta(minutes=59))
    assert await change(1100, now + dt.timedelta(minutes=61))
    assert await change(1150, now, category="wheelchair")  # each category keeps its own hour
    async with pool.acquire() as conn:
        in_force = await prices.prices_in_force(conn, show)
    assert in_force["standard"].price_cents == 1100
    assert in_force["wheelchair"].price_cents == 1150
    assert set(in_force) == {"standard", "wheelchair"}
