"""A flash sale's terms: when its queue opens, when the sale starts, how many visitors a minute
are admitted and how long an admission lasts.

The sale's start is the show's ``sale_opens_at``; the rest lives in ``flash_sales`` (one row per
show, optional: a show without one gets ``DEFAULTS``). Postgres is the record; the waiting room
keeps a copy of the terms in Redis, which every change here is followed by.

>>> terms = await flash_sale_terms(conn, show_id, now=now)
>>> terms = await set_flash_sale(conn, show_id, queue_opens_at=..., sale_opens_at=...,
...                              admission_per_min=1200, token_ttl_s=600, by=user_id, now=now)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from storage.errors import CatalogError, NotFound

MAX_ADMISSION_PER_MIN = 1_000_000
TOKEN_TTL_RANGE_S = (30, 86_400)


@dataclass(frozen=True)
class Defaults:
    queue_lead: dt.timedelta = dt.timedelta(minutes=30)  # queue opens this long before the sale
    admission_per_min: int = 600
    token_ttl_s: int = 600


DEFAULTS = Defaults()


class InvalidFlashSale(CatalogError):
    code = "invalid_flash_sale"


class NotAFlashSale(CatalogError):
    code = "not_a_flash_sale"


def require_flash_sale(show_id: int, status: str) -> None:
    """``NotAFlashSale`` unless ``status`` is a flash sale's."""
    if status != "flash_sale":
        raise NotAFlashSale(
            "this show is not in a flash sale: hold seats directly",
            {"show_id": show_id, "status": status},
        )


@dataclass(frozen=True)
class FlashSale:
    show_id: int
    theater_id: int
    status: str
    starts_at: dt.datetime  # the show's start: the queue closes then
    sale_opens_at: dt.datetime
    queue_opens_at: dt.datetime
    admission_per_min: int
    token_ttl_s: int
    configured: bool  # False: the defaults, no row of its own yet

    def public(self) -> dict[str, Any]:
        return {
            "show_id": self.show_id,
            "status": self.status,
            "starts_at": self.starts_at.isoformat(),
            "sale_opens_at": self.sale_opens_at.isoformat(),
            "queue_opens_at": self.queue_opens_at.isoformat(),
            "admission_per_min": self.admission_per_min,
            "token_ttl_s": self.token_ttl_s,
            "configured": self.configured,
        }


async def flash_sale_terms(
    conn: Any, show_id: int, *, now: dt.datetime, defaults: Defaults = DEFAULTS
) -> FlashSale:
    """The terms of a show's sale (``NotFound`` for no such show). A show whose sale has no
    opening time opened when it was created."""
    r = await conn.fetchrow(
        """SELECT s.id, s.status, s.starts_at, coalesce(s.sale_opens_at, s.created_at) AS opens,
                  sc.theater_id, f.queue_opens_at, f.admission_per_min, f.token_ttl_s
           FROM shows s
           JOIN screens sc ON sc.id = s.screen_id
           LEFT JOIN flash_sales f ON f.show_id = s.id
           WHERE s.id = $1""",
        show_id,
    )
    if r is None:
        raise NotFound(f"no show {show_id}", {"entity": "show", "id": show_id})
    configured = r["admission_per_min"] is not None
    opens: dt.datetime = r["opens"]
    return FlashSale(
        show_id=r["id"],
        theater_id=r["theater_id"],
        status=r["status"],
        starts_at=r["starts_at"],
        sale_opens_at=opens,
        queue_opens_at=r["queue_opens_at"] if configured else opens - defaults.queue_lead,
        admission_per_min=r["admission_per_min"] if configured else defaults.admission_per_min,
        token_ttl_s=r["token_ttl_s"] if configured else defaults.token_ttl_s,
        configured=configured,
    )


def check_terms(
    *,
    starts_at: dt.datetime,
    queue_opens_at: dt.datetime,
    sale_opens_at: dt.datetime,
    admission_per_min: int,
    token_ttl_s: int,
) -> None:
    """``InvalidFlashSale`` unless queue ≤ sale < show and the rate and lifetime are in range."""
    if not queue_opens_at <= sale_opens_at:
        raise InvalidFlashSale(
            "the queue must open no later than the sale", {"field": "queue_opens_at"}
        )
    if not sale_opens_at < starts_at:
        raise InvalidFlashSale(
            "the sale must open before the show starts", {"field": "sale_opens_at"}
        )
    if not 1 <= admission_per_min <= MAX_ADMISSION_PER_MIN:
        raise InvalidFlashSale(
            "the admission rate is out of range",
            {"field": "admission_per_min", "max": MAX_ADMISSION_PER_MIN},
        )
    low, high = TOKEN_TTL_RANGE_S
    if not low <= token_ttl_s <= high:
        raise InvalidFlashSale(
            "the token lifetime is out of range",
            {"field": "token_ttl_s", "min": low, "max": high},
        )


async def set_flash_sale(
    conn: Any,
    show_id: int,
    *,
    queue_opens_at: dt.datetime,
    sale_opens_at: dt.datetime,
    admission_per_min: int,
    token_ttl_s: int,
    by: int | None,
    now: dt.datetime,
) -> FlashSale:
    """Set every term of a show's sale in one transaction; returns them."""
    async with conn.transaction():
        current = await flash_sale_terms(conn, show_id, now=now)
        check_terms(
            starts_at=current.starts_at,
            queue_opens_at=queue_opens_at,
            sale_opens_at=sale_opens_at,
            admission_per_min=admission_per_min,
            token_ttl_s=token_ttl_s,
        )
        await conn.execute(
            "UPDATE shows SET sale_opens_at = $2 WHERE id = $1", show_id, sale_opens_at
        )
        await conn.execute(
            """INSERT INTO flash_sales (show_id, queue_opens_at, admission_per_min, token_ttl_s,
                                        updated_at, updated_by)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (show_id) DO UPDATE
               SET queue_opens_at = EXCLUDED.queue_opens_at,
                   admission_per_min = EXCLUDED.admission_per_min,
                   token_ttl_s = EXCLUDED.token_ttl_s,
                   updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by""",
            show_id,
            queue_opens_at,
            admission_per_min,
            token_ttl_s,
            now,
            by,
        )
        return await flash_sale_terms(conn, show_id, now=now)


async def set_admission_rate(
    conn: Any, show_id: int, admission_per_min: int, *, by: int | None, now: dt.datetime
) -> FlashSale:
    """Change only the admission rate (ops, during the sale); the other terms stay."""
    async with conn.transaction():
        current = await flash_sale_terms(conn, show_id, now=now)
        return await set_flash_sale(
            conn,
            show_id,
            queue_opens_at=current.queue_opens_at,
            sale_opens_at=current.sale_opens_at,
            admission_per_min=admission_per_min,
            token_ttl_s=current.token_ttl_s,
            by=by,
            now=now,
        )
