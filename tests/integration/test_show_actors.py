"""Show actors on a real Ray, writing behind to a real Postgres and publishing on Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import actors
from actors import Confirm, HoldBest, HoldSeats, Release
from tests.integration.shows import Engine, make_show, start_engine, stop_engine


@pytest.fixture
async def engine(
    ray_session: None, database_url: str, schema: str, redis_url: str
) -> AsyncIterator[Engine]:
    started = await start_engine(database_url, schema, redis_url)
    yield started
    await stop_engine(started)


def to_microseconds(snapshot: actors.Snapshot) -> actors.Snapshot:
    """The snapshot with its times at Postgres's precision (microseconds)."""

    def fix(record: Any) -> Any:
        times = {
            name: round(getattr(record, name), 6)
            for name in ("expires_at", "created_at", "confirmed_at")
            if hasattr(record, name)
        }
        return dataclasses.replace(record, **times)

    return dataclasses.replace(
        snapshot, holds=tuple(map(fix, snapshot.holds)), bookings=tuple(map(fix, snapshot.bookings))
    )


def new_id() -> str:
    return str(uuid.uuid4())


async def booked_seats_in_db(pool: Any, show_id: int) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT seat, count(*) AS n FROM booking_seats WHERE show_id = $1 AND live GROUP BY seat",
        show_id,
    )
    return {r["seat"]: r["n"] for r in rows}


async def test_hold_confirm_is_durable_and_published(engine: Engine, pool: Any, redis: Any) -> None:
    show = await make_show(pool)
    pubsub = redis.pubsub()
    await pubsub.subscribe(actors.channel(show))
    hold = await engine.client.execute(show, HoldSeats(new_id(), "7", ("C5", "C6")))
    booking = await engine.client.execute(show, Confirm(hold.hold_id, "7", new_id()))
    # The confirmation was answered only after its flush committed.
    assert await booked_seats_in_db(pool, show) == {"C5": 1, "C6": 1}
    row = await pool.fetchrow(
        "SELECT status FROM holds WHERE hold_id = $1", uuid.UUID(hold.hold_id)
    )
    assert row["status"] == "confirmed"
    outbox = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'booking.confirmed'")
    assert outbox == 1
    versions = []
    async with asyncio.timeout(5):
        while len(versions) < 2:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message:
                versions.append(json.loads(message["data"])["version"])
    assert versions == sorted(versions) and versions[-1] > versions[0]
    snapshot = await engine.client.snapshot(show)
    assert snapshot.seats["C5"] == actors.SeatState.BOOKED
    assert [b.booking_id for b in snapshot.bookings] == [booking.booking_id]
    await pubsub.aclose()


async def test_two_hundred_clients_race_for_ten_seats(engine: Engine, pool: Any) -> None:
    show = await make_show(pool)
    contested = [f"B{n}" for n in range(1, 11)]
    rng = random.Random(7)
    winners: list[tuple[str, tuple[str, ...]]] = []
    refusals = 0

    async def client(user: int) -> None:
        nonlocal refusals
        seats = tuple(rng.sample(contested, rng.choice((1, 2))))
        try:
            hold = await engine.client.execute(show, HoldSeats(new_id(), str(user), seats))
            booking = await engine.client.execute(show, Confirm(hold.hold_id, str(user), new_id()))
        except actors.SeatUnavailable:
            refusals += 1
        else:
            winners.append((str(user), booking.seats))

    await asyncio.gather(*(client(user) for user in range(1, 201)))
    sold = [seat for _, seats in winners for seat in seats]
    assert len(sold) == len(set(sold)), "a seat was sold twice"
    assert refusals == 200 - len(winners) and winners
    in_db = await booked_seats_in_db(pool, show)
    assert set(in_db) == set(sold) and set(in_db.values()) == {1}
    snapshot = await engine.client.snapshot(show)
    in_memory = {s for s, state in snapshot.seats.items() if state == actors.SeatState.BOOKED}
    assert in_memory == set(sold)


async def test_passivate_and_reactivate_gives_the_same_snapshot(engine: Engine, pool: Any) -> None:
    show = await make_show(pool)
    first = await engine.client.execute(show, HoldBest(new_id(), "1", 3, "standard"))
    await engine.client.execute(show, Confirm(first.hold_id, "1", new_id()))
    hold = await engine.client.execute(show, HoldSeats(new_id(), "2", ("E1",)))
    await engine.client.execute(show, Release(hold.hold_id, "2"))
    await engine.client.execute(show, actors.Block(("E12",)))
    live = await engine.client.execute(show, HoldSeats(new_id(), "3", ("A9", "A10")))
    before = await engine.client.snapshot(show)
    host = await engine.directory.host_for.remote(show)
    assert not await host.passivate.remote(show)  # a live hold keeps it in memory
    await engine.client.execute(show, Release(live.hold_id, "3"))
    before = await engine.client.snapshot(show)
    assert await host.passivate.remote(show)
    assert (await host.stats.remote())["active_shows"] == 0
    after = await engine.client.snapshot(show)
    assert to_microseconds(after) == to_microseconds(before)


async def test_flash_sale_show_gets_a_host_of_its_own(engine: Engine, pool: Any) -> None:
    show = await make_show(pool, status="flash_sale")  # holds admitted by the waiting room
    hold = await engine.client.execute(show, HoldSeats(new_id(), "1", ("A5",), admitted=True))
    shared = await engine.directory.host_for.remote(show)
    name = await engine.directory.prepare_flash_sale.remote(show)
    assert name == f"seatserver-show-{show}"
    dedicated = await engine.directory.host_for.remote(show)
    assert dedicated != shared
    # The client still routes to the shared host; it is told the show moved and follows.
    again = await engine.client.execute(show, HoldSeats(new_id(), "2", ("A7",), admitted=True))
    assert again.seats == ("A7",)
    snapshot = await dedicated.snapshot.remote(show)
    assert {h.hold_id for h in snapshot.holds} == {hold.hold_id, again.hold_id}
    with pytest.raises(actors.ShowMoved):
        replies = await shared.call.remote(
            [(show, HoldSeats(new_id(), "3", ("A9",), admitted=True))]
        )
        raise replies[0].error


async def test_unknown_show_is_a_clear_error(engine: Engine, pool: Any) -> None:
    with pytest.raises(actors.ShowNotFound):
        await engine.client.execute(10**9, HoldSeats(new_id(), "1", ("A1",)))


async def test_upcoming_flash_sales_are_prepared_before_they_open(
    engine: Engine, pool: Any
) -> None:
    from actors.flash import prepare_flash_sales

    flash = await make_show(pool, status="flash_sale", name="flash")
    await make_show(pool, status="on_sale", name="plain")
    now = dt.datetime.now(dt.UTC)
    await pool.execute(
        "UPDATE shows SET sale_opens_at = $2 WHERE id = $1", flash, now + dt.timedelta(minutes=10)
    )
    lead = dt.timedelta(minutes=15)
    assert await prepare_flash_sales(pool, engine.directory, now, dt.timedelta(minutes=5)) == []
    assert await prepare_flash_sales(pool, engine.directory, now, lead) == [flash]
    host = await engine.directory.host_for.remote(flash)
    stats = await host.stats.remote()
    assert stats["name"] == f"seatserver-show-{flash}" and stats["active_shows"] == 1
    assert await prepare_flash_sales(pool, engine.directory, now, lead) == [flash]  # idempotent


@pytest.mark.parametrize("hold_flushed_first", [False, True], ids=["together", "hold-first"])
async def test_the_unique_index_stops_a_second_writer(
    engine: Engine, pool: Any, hold_flushed_first: bool
) -> None:
    """A writer that bypasses the show actor books C1 behind its back. The actor's own sale of
    C1 is refused by the live-seat index at flush, its confirmation fails, and the show is
    reloaded from Postgres, where C1 is booked once. When the hold reached Postgres before its
    confirmation, it is still live there: the load records it released (the booking wins), so
    the show loads at all."""
    show = await make_show(pool)
    await engine.client.snapshot(show)  # active, not knowing what comes next
    intruder = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        day = await conn.fetchval(
            "SELECT (starts_at AT TIME ZONE 'UTC')::date FROM shows WHERE id = $1", show
        )
        await conn.execute(
            """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats,
                                     price_cents, status, confirmed_at)
               VALUES ($1, $2, $3, 99, '{C1}', 1200, 'confirmed', now())""",
            intruder,
            day,
            show,
        )
        await conn.execute(
            "INSERT INTO booking_seats (booking_id, show_date, show_id, seat) "
            "VALUES ($1, $2, $3, 'C1')",
            intruder,
            day,
            show,
        )
    hold = await engine.client.execute(show, HoldSeats(new_id(), "5", ("C1", "C2")))
    if hold_flushed_first:
        await _until_stored(pool, hold.hold_id)
    with pytest.raises(actors.InconsistentState):
        await engine.client.execute(show, Confirm(hold.hold_id, "5", new_id()))
    assert await booked_seats_in_db(pool, show) == {"C1": 1}
    snapshot = await engine.client.snapshot(show)
    assert [b.booking_id for b in snapshot.bookings] == [str(intruder)]
    assert snapshot.seats["C1"] == actors.SeatState.BOOKED
    assert snapshot.seats["C2"] == actors.SeatState.AVAILABLE
    async with pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM holds WHERE hold_id = $1", hold.hold_id)
    # Not stored at all when its flush was the confirmation's, which was rolled back.
    assert status in ({"released"} if hold_flushed_first else {"released", None})


async def _until_stored(pool: Any, hold_id: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with pool.acquire() as conn:
        while not await conn.fetchval("SELECT 1 FROM holds WHERE hold_id = $1", hold_id):
            assert asyncio.get_running_loop().time() < deadline, "the hold was never flushed"
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "command",
    [
        HoldSeats("not-a-uuid", "1", ("A3",)),
        HoldSeats(str(uuid.uuid4()).upper(), "1", ("A3",)),
        HoldSeats(str(uuid.uuid4()), "-4", ("A3",)),
        HoldSeats(str(uuid.uuid4()), "9" * 30, ("A3",)),
        Confirm(str(uuid.uuid4()), "1", "booking-1"),
    ],
)
async def test_malformed_ids_are_refused_before_they_reach_postgres(
    engine: Engine, pool: Any, command: Any
) -> None:
    show = await make_show(pool)
    with pytest.raises(actors.InvalidRequest):
        await engine.client.execute(show, command)
    hold = await engine.client.execute(show, HoldSeats(new_id(), "1", ("A3",)))
    await engine.client.execute(show, Confirm(hold.hold_id, "1", new_id()))  # still flushing
    assert await booked_seats_in_db(pool, show) == {"A3": 1}


async def test_flash_sales_past_the_host_cap_stay_on_shared_hosts(
    ray_session: None, database_url: str, schema: str, redis_url: str, pool: Any
) -> None:
    engine = await start_engine(database_url, schema, redis_url, max_dedicated_hosts=1)
    try:
        first = await make_show(pool, status="flash_sale", name="first")
        second = await make_show(pool, status="flash_sale", name="second")
        assert await engine.directory.prepare_flash_sale.remote(first) == (
            f"seatserver-show-{first}"
        )
        assert await engine.directory.prepare_flash_sale.remote(second) == (
            f"seatserver-host-{second % 2}"
        )
        hold = await engine.client.execute(second, HoldSeats(new_id(), "1", ("A4",), admitted=True))
        assert hold.seats == ("A4",)
        assert len(await engine.directory.hosts.remote()) == 3
    finally:
        await stop_engine(engine)
