"""Admin routes: cities, theaters and who runs them, screens and layouts, movies, shows, seat
blocks and show status.

Ops admins (role ``admin``) may do everything; a theater admin only what concerns the theaters
they run (``theater_admins``); customers nothing. The roles come from the endpoint table
(``gateway.routes``); the views check only which theater a theater admin runs. Seat blocks and
status changes go through the show's actor, the only writer of its seats; the rest is catalog
data in Postgres.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import actors
import storage
from gateway import keys
from gateway.auth import require_theater_admin
from gateway.endpoint import Call


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _theater_of(call: Call, **what: int) -> int:
    async with call.app[keys.POOL].acquire() as conn:
        return await storage.theater_of(conn, **what)


async def create_city(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        return {"id": await storage.create_city(conn, call.body.name, call.body.country)}


async def create_theater(call: Call) -> dict[str, Any]:
    b = call.body
    async with call.app[keys.POOL].acquire() as conn:
        theater_id = await storage.create_theater(
            conn, b.city_id, b.name, b.time_zone, b.address, b.latitude, b.longitude
        )
    return {"id": theater_id}


async def update_theater(call: Call) -> dict[str, Any]:
    theater_id = call.path.theater_id
    async with call.app[keys.POOL].acquire() as conn:
        await storage.get_theater(conn, theater_id)  # 404 before 403
    await require_theater_admin(call.request, theater_id)
    b = call.body
    async with call.app[keys.POOL].acquire() as conn, conn.transaction():
        await storage.update_theater(
            conn, theater_id, name=b.name, address=b.address, time_zone=b.time_zone
        )
        if b.latitude is not None or b.longitude is not None:
            await conn.execute(
                "UPDATE theaters SET latitude = coalesce($2, latitude), "
                "longitude = coalesce($3, longitude) WHERE id = $1",
                theater_id,
                b.latitude,
                b.longitude,
            )
        theater = await storage.get_theater(conn, theater_id)
    from gateway import serialize

    return serialize.theater(theater)


async def grant_theater_admin(call: Call) -> None:
    async with call.app[keys.POOL].acquire() as conn:
        await storage.grant_theater(conn, call.body.user_id, call.path.theater_id)


async def create_screen(call: Call) -> dict[str, Any]:
    theater_id = call.path.theater_id
    async with call.app[keys.POOL].acquire() as conn:
        await storage.get_theater(conn, theater_id)
    await require_theater_admin(call.request, theater_id)
    async with call.app[keys.POOL].acquire() as conn:
        screen_id = await storage.create_screen(
            conn, theater_id, call.body.name, call.body.layout.raw()
        )
    return {"id": screen_id}


async def update_layout(call: Call) -> None:
    screen_id = call.path.screen_id
    await require_theater_admin(call.request, await _theater_of(call, screen_id=screen_id))
    async with call.app[keys.POOL].acquire() as conn:
        await storage.update_screen_layout(
            conn, screen_id, call.body.layout.raw(), new_prices=call.body.new_prices, now=_now()
        )


async def create_movie(call: Call) -> dict[str, Any]:
    b = call.body
    async with call.app[keys.POOL].acquire() as conn:
        movie_id = await storage.create_movie(
            conn,
            title=b.title,
            genres=b.genres,
            runtime_min=b.runtime_min,
            certificate=b.certificate,
            language=b.language,
            release_date=b.release_date,
            cast_members=b.cast_members,
            synopsis=b.synopsis,
        )
    return {"id": movie_id}


async def update_movie(call: Call) -> None:
    fields = call.body.model_dump(exclude_none=True)
    async with call.app[keys.POOL].acquire() as conn:
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM movies WHERE id = $1)", call.path.movie_id
        ):
            raise storage.NotFound("no such movie", {"movie_id": call.path.movie_id})
        if fields:
            await storage.update_movie(conn, call.path.movie_id, **fields)


async def create_show(call: Call) -> dict[str, Any]:
    b = call.body
    await require_theater_admin(call.request, await _theater_of(call, screen_id=b.screen_id))
    async with call.app[keys.POOL].acquire() as conn:
        show_id = await storage.create_show(
            conn,
            screen_id=b.screen_id,
            movie_id=b.movie_id,
            starts_at=b.starts_at,
            prices=b.prices,
            now=_now(),
            status=b.status,
            sale_opens_at=b.sale_opens_at,
            currency=b.currency,
        )
    return {"id": show_id}


async def update_show(call: Call) -> None:
    show_id, b = call.path.show_id, call.body
    await require_theater_admin(call.request, await _theater_of(call, show_id=show_id))
    async with call.app[keys.POOL].acquire() as conn:
        await storage.update_show(
            conn, show_id, now=_now(), starts_at=b.starts_at, prices=b.prices, movie_id=b.movie_id
        )
    if b.prices is not None:
        # The actor quotes holds from its own copy (an inactive show loads the new ones).
        prices = tuple(sorted(b.prices.items()))
        await call.app[keys.ENGINE].execute(show_id, actors.SetPrices(prices))
    call.app[keys.SHOW_INFO].forget(show_id)


async def block_seats(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    await require_theater_admin(call.request, await _theater_of(call, show_id=show_id))
    seats = await call.app[keys.ENGINE].execute(show_id, actors.Block(tuple(call.body.seats)))
    return {"show_id": show_id, "seats": list(seats)}


async def unblock_seats(call: Call) -> dict[str, Any]:
    show_id = call.path.show_id
    await require_theater_admin(call.request, await _theater_of(call, show_id=show_id))
    seats = await call.app[keys.ENGINE].execute(show_id, actors.Unblock(tuple(call.body.seats)))
    return {"show_id": show_id, "seats": list(seats)}


async def _tell_the_line(call: Call, show_id: int, status: str) -> None:
    """A show put in a flash sale gets its terms in Redis; one taken out of it ends its line
    (those waiting are told, holds need no admission)."""
    room = call.app[keys.WAITING_ROOM]
    if status == "flash_sale":
        await room.load_terms(show_id, replace=True)
        await room.set_supply(show_id, "open", force=True)
    elif await room.has_line(show_id):
        await room.set_supply(show_id, "ended")


async def set_status(call: Call) -> dict[str, Any]:
    show_id, wanted = call.path.show_id, call.body.status
    await require_theater_admin(call.request, await _theater_of(call, show_id=show_id))
    try:
        status = await call.app[keys.ENGINE].execute(show_id, actors.SetStatus(wanted))
    except actors.InvalidRequest as exc:
        if exc.details.get("from") != wanted:  # already so: nothing to do
            raise
        status = wanted
    call.app[keys.SHOW_INFO].forget(show_id)
    await _tell_the_line(call, show_id, status)
    refunds = None
    saga = call.app[keys.SAGA]
    if status == "cancelled" and saga is not None:
        refunds = await saga.cancel_show(show_id)  # everyone is refunded in full
    return {"show_id": show_id, "status": status, "refunds": refunds}
