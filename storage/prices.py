"""Dynamic prices in force: the latest change per show and seat category.

A change is written only if the category's last one is at least ``min_gap_s`` old, checked
under a transaction-scoped advisory lock of that show and category, so two gateways repricing
one show at once make one change, not two.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PriceInForce:
    category: str
    price_cents: int
    changed_at: dt.datetime
    source: str


async def prices_in_force(conn: Any, show_id: int) -> dict[str, PriceInForce]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (category) category, price_cents, changed_at, source
           FROM price_changes WHERE show_id = $1
           ORDER BY category, changed_at DESC""",
        show_id,
    )
    return {
        r["category"]: PriceInForce(r["category"], r["price_cents"], r["changed_at"], r["source"])
        for r in rows
    }


async def record_price_change(
    conn: Any,
    show_id: int,
    category: str,
    *,
    price_cents: int,
    base_cents: int,
    at: dt.datetime,
    source: str,
    model_version: str | None,
    min_gap_s: float,
) -> bool:
    """Put ``price_cents`` in force from ``at``, unless the category changed within
    ``min_gap_s`` before ``at``; True when it was written."""
    async with conn.transaction():
        await conn.execute(
            """SELECT pg_advisory_xact_lock(hashtext('price_changes'),
                                            hashtext($1::bigint::text || ':' || $2::text))""",
            show_id,
            category,
        )
        done = await conn.execute(
            """INSERT INTO price_changes (show_id, category, price_cents, base_cents, changed_at,
                                          source, model_version)
               SELECT $1::bigint, $2::text, $3::integer, $4::integer, $5::timestamptz,
                      $6::text, $7::text
               WHERE NOT EXISTS (
                   SELECT 1 FROM price_changes
                   WHERE show_id = $1 AND category = $2
                     AND changed_at > $5::timestamptz - make_interval(secs => $8::double precision))
               ON CONFLICT DO NOTHING""",
            show_id,
            category,
            price_cents,
            base_cents,
            at,
            source,
            model_version,
            min_gap_s,
        )
    return bool(done == "INSERT 0 1")
