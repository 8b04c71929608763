"""Faults under load: a host process killed, Postgres stopped and started again.

The durability contract (DESIGN rule 5): an acknowledged confirmation is never lost and no seat is
ever booked twice; only holds younger than one flush may be lost in a crash.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import actors
import storage
from actors import Cancel, Confirm, HoldBest
from tests.integration.shows import Engine, grid_layout, make_show, start_engine, stop_engine

pytestmark = pytest.mark.slow


@dataclass
class Ledger:
    """What the clients were told: only acknowledged outcomes count."""

    booked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    cancel_tried: set[str] = field(default_factory=set)  # outcome unknown unless in cancelled
    holds: int = 0
    holds_while: Callable[[], bool] = lambda: False
    holds_during_fault: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def error(self, exc: BaseException) -> None:
        code = getattr(exc, "code", type(exc).__name__)
        self.errors[code] = self.errors.get(code, 0) + 1
        self.examples.setdefault(code, f"{exc} {getattr(exc, 'details', '')}")


async def mixed_load(
    engine: Engine, show: int, user: int, ledger: Ledger, stop: asyncio.Event
) -> None:
    """Hold two seats, confirm, and cancel every second booking, until told to stop."""
    rounds = 0
    while not stop.is_set() and rounds < 10_000:
        rounds += 1
        uid = str(user * 100_000 + rounds)  # a new customer each round: no per-user cap
        try:
            hold = await engine.client.execute(
                show, HoldBest(str(uuid.uuid4()), uid, 2, "standard", allow_split=True)
            )
            ledger.holds += 1
            if ledger.holds_while():
                ledger.holds_during_fault += 1
            booking = await engine.client.execute(
                show, Confirm(hold.hold_id, uid, str(uuid.uuid4()))
            )
            ledger.booked[booking.booking_id] = booking.seats
            if len(ledger.booked) % 2 == 0:
                ledger.cancel_tried.add(booking.booking_id)
                await engine.client.execute(show, Cancel(booking.booking_id, uid))
                ledger.cancelled.add(booking.booking_id)
        except (actors.BookingError, actors.ShowUnavailable) as exc:
            ledger.error(exc)
            await asyncio.sleep(0.02)


async def live_bookings(pool: Any, show: int) -> dict[str, tuple[str, ...]]:
    rows = await pool.fetch(
        "SELECT booking_id, seats FROM bookings WHERE show_id = $1 AND status = 'confirmed'", show
    )
    return {str(r["booking_id"]): tuple(r["seats"]) for r in rows}


async def assert_contract(engine: Engine, pool: Any, show: int, ledger: Ledger) -> None:
    in_db = await live_bookings(pool, show)
    acknowledged = {b: s for b, s in ledger.booked.items() if b not in ledger.cancel_tried}
    missing = set(acknowledged) - set(in_db)
    assert not missing, f"acknowledged confirmations lost: {missing}"
    assert not ledger.cancelled & set(in_db), "an acknowledged cancellation came back"
    seats = [seat for booked in in_db.values() for seat in booked]
    assert len(seats) == len(set(seats)), "a seat is booked twice in Postgres"
    snapshot = await engine.client.snapshot(show)
    assert {b.booking_id for b in snapshot.bookings} == set(in_db)
    booked = {s for s, st in snapshot.seats.items() if st == actors.SeatState.BOOKED}
    assert booked == set(seats)


async def test_killed_host_recovers_every_acknowledged_booking(
    ray_session: None, database_url: str, schema: str, redis_url: str, pool: Any
) -> None:
    engine = await start_engine(database_url, schema, redis_url)
    try:
        show = await make_show(pool, layout=grid_layout(rows=30, per_row=30))
        host = await engine.directory.host_for.remote(show)
        await engine.client.snapshot(show)
        pid = (await host.stats.remote())["pid"]
        ledger, stop = Ledger(), asyncio.Event()
        workers = [
            asyncio.create_task(mixed_load(engine, show, u, ledger, stop)) for u in range(1, 17)
        ]
        await asyncio.sleep(1.5)
        booked_before_kill = len(ledger.booked)
        os.kill(pid, signal.SIGKILL)  # the host process this test's engine started
        await asyncio.sleep(4)
        stop.set()
        await asyncio.gather(*workers)
        assert booked_before_kill > 0 and len(ledger.booked) > booked_before_kill, ledger.examples
        assert ledger.errors.get("host_unavailable", 0) > 0
        assert (await host.stats.remote())["pid"] != pid
        await host.flush.remote()
        await assert_contract(engine, pool, show, ledger)
    finally:
        await stop_engine(engine)


def _stop_postgres(server: storage.EmbeddedServer) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(
        ["-w", "-m", "fast", "stop"], pgdata=server.handle.pgdata, user=server.handle.system_user
    )


async def test_postgres_down_and_up_loses_no_acknowledged_booking(
    ray_session: None, tmp_path: Path, redis_url: str
) -> None:
    server = storage.start_postgres(tmp_path)  # a Postgres of this test's own, to stop
    pool = await storage.create_pool(server.url, min_size=1, max_size=2)
    engine = None
    try:
        async with pool.acquire() as conn:
            await storage.migrate(conn)
        show = await make_show(pool, layout=grid_layout(rows=30, per_row=30))
        engine = await start_engine(server.url, "public", redis_url, confirm_timeout_s=2.0)
        await engine.client.snapshot(show)
        down = False
        ledger, stop = Ledger(holds_while=lambda: down), asyncio.Event()
        workers = [
            asyncio.create_task(mixed_load(engine, show, u, ledger, stop)) for u in range(1, 9)
        ]
        await asyncio.sleep(1.0)
        _stop_postgres(server)
        down, outage_started = True, time.monotonic()
        await asyncio.sleep(4)
        down = False
        server.handle.ensure_postgres_running()
        await asyncio.sleep(4)
        stop.set()
        await asyncio.gather(*workers)
        assert time.monotonic() - outage_started > 4
        assert ledger.holds_during_fault > 0, "holds must keep working while Postgres is down"
        assert ledger.errors.get("confirmation_pending", 0) > 0
        host = await engine.directory.host_for.remote(show)
        await host.flush.remote()
        await pool.expire_connections()
        await assert_contract(engine, pool, show, ledger)
    finally:
        if engine is not None:
            await stop_engine(engine)
        await pool.close()
        server.stop()
