"""The SQL side of write-behind, without Ray: coalescing, ordering and recovery reads."""

from __future__ import annotations

import time
import uuid
from typing import Any

from actors import Cancel, Confirm, HoldSeats, Layout, Release, SeatMap
from actors.persistence import ShowBatch, load_show, write_batch
from tests.integration.shows import grid_layout, make_show


def new_id() -> str:
    return str(uuid.uuid4())


async def flush(pool: Any, record: Any, seatmap: SeatMap) -> None:
    batch = ShowBatch(record.show_id, record.show_date, record.currency, seatmap.pull_events())
    async with pool.acquire() as conn:
        await write_batch(conn, [batch])


async def test_seat_freed_and_sold_again_in_one_flush(pool: Any) -> None:
    show = await make_show(pool)
    now = time.time()
    async with pool.acquire() as conn:
        record = await load_show(conn, show, now)
    assert record is not None
    seatmap = SeatMap(str(show), Layout.from_dict(grid_layout()), prices=record.prices)
    first = seatmap.hold(HoldSeats(new_id(), "1", ("C3",)), now)
    booking = seatmap.confirm(Confirm(first.hold_id, "1", new_id()), now)
    await flush(pool, record, seatmap)
    # One flush: cancel the first booking, sell the seat again, and a hold placed and released.
    seatmap.cancel(Cancel(booking.booking_id, "1"), now)
    second = seatmap.hold(HoldSeats(new_id(), "2", ("C3",)), now)
    rebooked = seatmap.confirm(Confirm(second.hold_id, "2", new_id()), now)
    gone = seatmap.hold(HoldSeats(new_id(), "3", ("D1",)), now)
    seatmap.release(Release(gone.hold_id, "3"), now)
    await flush(pool, record, seatmap)

    rows = await pool.fetch("SELECT booking_id, live FROM booking_seats WHERE seat = 'C3'")
    assert {(str(r["booking_id"]), r["live"]) for r in rows} == {
        (booking.booking_id, False),
        (rebooked.booking_id, True),
    }
    statuses = dict(await pool.fetch("SELECT hold_id::text, status FROM holds"))
    assert statuses == {
        first.hold_id: "confirmed",
        second.hold_id: "confirmed",
        gone.hold_id: "released",
    }
    assert await pool.fetchval("SELECT seat_version FROM shows WHERE id = $1", show) == 7
    async with pool.acquire() as conn:
        again = await load_show(conn, show, now)
    assert again is not None and again.version == seatmap.version
    assert [b.booking_id for b in again.bookings] == [rebooked.booking_id]


async def test_a_hold_that_lapsed_while_no_actor_ran_is_recorded_expired_at_its_expiry(
    pool: Any,
) -> None:
    """A host lost before it wrote a hold's expiry leaves the row live; the next load of the
    show records it expired at its expiry, does not load it, and moves the show's version on.
    A hold still running is loaded and left live."""
    show = await make_show(pool)
    now = time.time()
    async with pool.acquire() as conn:
        record = await load_show(conn, show, now)
    assert record is not None
    seatmap = SeatMap(str(show), Layout.from_dict(grid_layout()), prices=record.prices)
    lapsing = seatmap.hold(HoldSeats(new_id(), "1", ("C3",)), now)
    running = seatmap.hold(HoldSeats(new_id(), "2", ("C4",)), now + 200)
    await flush(pool, record, seatmap)  # both live in Postgres; nobody writes the expiry

    later = now + 300 + 1  # the default TTL: the first one's expiry has passed, not the second's
    async with pool.acquire() as conn:
        again = await load_show(conn, show, later)
    assert again is not None
    assert [h.hold_id for h in again.holds] == [running.hold_id]
    assert again.version == seatmap.version + 1  # watchers see a gap and fetch the map again
    rows = {
        str(r["hold_id"]): r
        for r in await pool.fetch("SELECT hold_id, status, expires_at, ended_at FROM holds")
    }
    assert rows[lapsing.hold_id]["status"] == "expired"
    assert rows[lapsing.hold_id]["ended_at"] == rows[lapsing.hold_id]["expires_at"]
    assert rows[running.hold_id]["status"] == "live" and rows[running.hold_id]["ended_at"] is None
