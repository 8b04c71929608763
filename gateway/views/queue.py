"""The waiting room of flash sales over HTTP: join, where do I stand, leave; and its admin side
(the sale's terms, the admission rate during the sale, the line's counters).

A join is idempotent by nature (one place per visitor, found again on every retry), so its
``Idempotency-Key`` is optional and rarely worth its two Redis round trips. Polling
``GET /shows/{id}/queue`` is a heartbeat; so is an open queue websocket
(``gateway.queue_ws``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway import keys
from gateway.auth import require_theater_admin
from gateway.endpoint import Call
from gateway.errors import Conflict
from storage import flash_sales


async def _flash_sale_show(call: Call, show_id: int) -> None:
    details = await call.app[keys.SHOW_INFO](show_id)
    flash_sales.require_flash_sale(show_id, details.status)


async def join_queue(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    await _flash_sale_show(call, show_id)
    standing = await call.app[keys.WAITING_ROOM].join(show_id, call.user.user_id)
    call.app[keys.QUEUE_HUB].touch(show_id)
    return standing.public()


async def queue_status(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    await _flash_sale_show(call, show_id)
    standing = await call.app[keys.WAITING_ROOM].status(show_id, call.user.user_id)
    call.app[keys.QUEUE_HUB].touch(show_id)
    return standing.public()


async def leave_queue(call: Call) -> None:
    await call.app[keys.WAITING_ROOM].leave(call.path.show_id, call.user.user_id)


# -- admin -----------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _terms(call: Call, show_id: int) -> flash_sales.FlashSale:
    async with call.app[keys.POOL].acquire() as conn:
        return await flash_sales.flash_sale_terms(conn, show_id, now=_now())


async def _publish(call: Call, sale: flash_sales.FlashSale) -> None:
    """Copy changed terms to Redis, where every gateway's waiting room reads them."""
    if sale.status == "flash_sale":
        await call.app[keys.WAITING_ROOM].load_terms(sale.show_id, replace=True)
    call.app[keys.SHOW_INFO].forget(sale.show_id)


async def get_flash_sale(call: Call) -> dict[str, Any]:
    sale = await _terms(call, call.path.show_id)
    await require_theater_admin(call.request, sale.theater_id)
    return sale.public()


async def set_flash_sale(call: Call) -> dict[str, Any]:
    show_id, b = call.path.show_id, call.body
    current = await _terms(call, show_id)
    principal = await require_theater_admin(call.request, current.theater_id)
    under_way = current.status == "flash_sale" and _now() >= current.queue_opens_at
    if under_way and not principal.is_ops:
        raise Conflict(
            "this sale's queue is open: only operations may change it now (the admission "
            "rate through PUT /admin/shows/{show_id}/flash-sale/rate)",
            {"show_id": show_id, "queue_opens_at": current.queue_opens_at.isoformat()},
            code="flash_sale_under_way",
        )
    async with call.app[keys.POOL].acquire() as conn:
        sale = await flash_sales.set_flash_sale(
            conn,
            show_id,
            queue_opens_at=b.queue_opens_at,
            sale_opens_at=b.sale_opens_at,
            admission_per_min=b.admission_per_min,
            token_ttl_s=b.token_ttl_s,
            by=principal.user_id,
            now=_now(),
        )
    await _publish(call, sale)
    return sale.public()


async def set_admission_rate(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    async with call.app[keys.POOL].acquire() as conn:
        sale = await flash_sales.set_admission_rate(
            conn, show_id, call.body.admission_per_min, by=call.user.user_id, now=_now()
        )
    await _publish(call, sale)
    return sale.public()


async def queue_stats(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    sale = await _terms(call, show_id)
    await require_theater_admin(call.request, sale.theater_id)
    flash_sales.require_flash_sale(show_id, sale.status)
    return await call.app[keys.WAITING_ROOM].stats(show_id)
