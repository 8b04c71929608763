"""The waiting room on real Redis (and Postgres for the terms), with time passed in: fairness
of a 2,000-visitor burst, abandoned places, returns, the rate, tokens, and many gateways."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.waitingroom import (
    AdmissionRefused,
    QueueClosed,
    QueueNotOpen,
    QueueSoldOut,
    Terms,
    WaitingRoom,
)
from tests.conftest import random_ref

T0 = 1_900_000_000_000  # ms; the queue opens here
SALE = T0 + 60_000  # and the sale a minute later
SHOW = 1


def _terms(rate: int = 600, ttl_s: int = 600) -> Terms:
    return Terms(
        queue_ms=T0, sale_ms=SALE, close_ms=SALE + 3_600_000, rate=rate, ttl_ms=ttl_s * 1000
    )


@pytest.fixture
async def prefix(redis: Any) -> AsyncIterator[str]:
    name = random_ref("t") + ":"
    yield name
    keys = [k async for k in redis.scan_iter(match=name + "*")]
    if keys:
        await redis.delete(*keys)


def _room(redis: Any, prefix: str, **kw: Any) -> WaitingRoom:
    return WaitingRoom(redis, None, prefix=prefix, secret="test-secret", **kw)


async def _admissions(room: WaitingRoom, redis: Any) -> dict[int, tuple[int, int]]:
    """user → (queue number, admitted at), straight from Redis."""
    raw = await redis.hgetall(room.keys(SHOW)[3])
    out = {}
    for user, value in raw.items():
        number, at = value.decode().split(":")
        out[int(user)] = (int(float(number)), int(at))
    return out


async def _numbers(room: WaitingRoom, redis: Any) -> dict[int, int]:
    return {
        int(u): int(s) for u, s in await redis.zrange(room.keys(SHOW)[1], 0, -1, withscores=True)
    }


async def _burst(room: WaitingRoom, users: list[int], now: int) -> list[Any]:
    """Everyone joins at once (as many at a time as the client's connections allow)."""
    gate = asyncio.Semaphore(32)

    async def one(user: int) -> Any:
        async with gate:
            return await room.join(SHOW, user, now_ms=now)

    return await asyncio.gather(*(one(u) for u in users))


async def _heartbeat(room: WaitingRoom, users: list[int], now: int) -> None:
    await room.statuses(SHOW, users, now_ms=now)


async def test_a_burst_of_2000_is_admitted_in_queue_order(redis: Any, prefix: str) -> None:
    room = _room(redis, prefix)
    await room.write_terms(SHOW, _terms(rate=1200), replace=True, now_ms=T0)
    early = list(range(1, 1001))
    late = list(range(1001, 2001))
    # 1,000 arrive at once before the sale: a place each, no position shown (order by lot).
    standings = await _burst(room, early, T0 + 1_000)
    assert all(s.state == "waiting" and s.position is None for s in standings)
    assert standings[-1].phase == "pre_sale"
    # Joining again (another tab, a retry) keeps the place.
    before = await _numbers(room, redis)
    again = await _burst(room, early[:100], T0 + 2_000)
    assert await _numbers(room, redis) == before and all(s.state == "waiting" for s in again)
    # 1,000 more after the opening, one after another: first come, first served.
    for i, user in enumerate(late):
        await room.join(SHOW, user, now_ms=SALE + 1 + i)
    numbers = await _numbers(room, redis)
    assert len(numbers) == 2000
    ordered = sorted(numbers, key=numbers.__getitem__)
    assert set(ordered[:1000]) == set(early) and ordered[1000:] == late
    assert ordered[:1000] != early  # the early ones' order was drawn, not kept
    # Positions: a permutation of 1..2000.
    status = await room.statuses(SHOW, ordered, now_ms=SALE + 1_500)
    assert [s.position for s in status] == list(range(1, 2001))

    # The counter advances at 1,200 a minute = 20 a second: tick every 250 ms, heartbeats on.
    now, seen_admitted = SALE + 1_500, 0
    per_tick = []
    while seen_admitted < 2000:
        now += 250
        admitted, expired, _ = await room.tick(SHOW, now_ms=now)
        assert expired == 0
        per_tick.append(admitted)
        seen_admitted += admitted
        if now % 10_000 < 250:
            await _heartbeat(room, ordered[seen_admitted:], now)
        assert now < SALE + 200_000, "admission stalled"
    adm = await _admissions(room, redis)
    assert len(adm) == 2000  # none twice, none skipped
    by_time = sorted(adm, key=lambda u: (adm[u][1], adm[u][0]))
    assert by_time == ordered
    # Every admission was in queue order across ticks as well.
    times = [adm[u][1] for u in ordered]
    assert times == sorted(times)
    # The first tick admits those due since the opening (1.75 s at 20 a second), the others
    # 5 a tick; at 20 a second, 2,000 take 100 s from the opening (± a tick).
    assert per_tick[0] == 35 and max(per_tick[1:]) == 5 and sum(per_tick) == 2000
    assert 99_750 <= now - SALE <= 100_250


async def test_abandoned_places_expire_and_do_not_stall_admission(redis: Any, prefix: str) -> None:
    room = _room(redis, prefix, place_ttl_s=30)
    await room.write_terms(SHOW, _terms(rate=600), replace=True, now_ms=T0)
    users = list(range(1, 601))
    for i, user in enumerate(users):
        await room.join(SHOW, user, now_ms=SALE + i)
    rng = random.Random(7)
    # A third close the tab and never come back, all from the back half of the line (those
    # near the front are admitted before 30 s without a heartbeat have passed).
    gone = set(rng.sample(users[300:], 200))
    stay = [u for u in users if u not in gone]
    now = SALE + 1_000
    admitted_total, expired_total, waiting_seen = 0, 0, []
    while admitted_total < len(stay):
        now += 1_000
        if now % 10_000 == 0:
            await _heartbeat(room, stay, now)
        admitted, expired, waiting = await room.tick(SHOW, now_ms=now)
        admitted_total += admitted
        expired_total += expired
        waiting_seen.append(waiting)
        assert now < SALE + 120_000, "admission stalled"
    adm = await _admissions(room, redis)
    assert set(adm) == set(stay)  # no abandoned place was admitted, every live one was
    assert expired_total == 200
    # 10 a second for the 400 who stayed: 40 s, as if the others had never been there.
    assert now - (SALE + 1_000) <= 42_000
    # The line's length stopped counting the abandoned places once they expired (after 30 s).
    assert waiting_seen[35] <= len(stay) - 10 * 35
    # Positions of those who stayed count only live places ahead of them.
    stats = await room.stats(SHOW, now_ms=now)
    assert stats["admitted"] == 400 and stats["waiting"] == 0


async def test_a_visitor_who_returns_in_time_gets_the_old_place(redis: Any, prefix: str) -> None:
    room = _room(redis, prefix, place_ttl_s=20, return_grace_s=120, burst_s=1.0)
    await room.write_terms(SHOW, _terms(rate=60), replace=True, now_ms=T0)  # 1 a tick here
    for user in range(1, 11):
        await room.join(SHOW, user, now_ms=SALE + user)
    first = await room.status(SHOW, 3, now_ms=SALE + 100)
    assert first.position == 3
    # Everyone but visitor 3 keeps their heartbeat; 3's phone sleeps for 40 s.
    now = SALE + 100
    for _ in range(4):
        now += 10_000
        await _heartbeat(room, [u for u in range(1, 11) if u != 3], now)
    await room.tick(SHOW, now_ms=now)  # 3 drops out; 1 is admitted
    assert (await room.status(SHOW, 3, now_ms=now)).state == "not_in_queue"
    assert (await room.status(SHOW, 2, now_ms=now)).position == 1
    assert (await room.status(SHOW, 4, now_ms=now)).position == 2
    back = await room.join(SHOW, 3, now_ms=now + 1)  # back within the grace period
    assert back.state == "waiting" and back.position == 2  # ahead of everyone it was ahead of
    assert (await room.status(SHOW, 4, now_ms=now + 2)).position == 3
    # Visitor 10 stays away for longer than the grace period: back of the line.
    await _heartbeat(room, list(range(1, 10)), now + 10_000)
    await room.tick(SHOW, now_ms=now + 30_000)  # 10 drops out here
    later = now + 30_000 + 121_000
    fresh = await room.join(SHOW, 99, now_ms=later + 1)
    rejoined = await room.join(SHOW, 10, now_ms=later + 2)
    assert rejoined.position is not None and fresh.position is not None
    assert rejoined.position == fresh.position + 1


async def test_tokens_are_bound_to_user_and_show_and_expire(redis: Any, prefix: str) -> None:
    room = _room(redis, prefix)
    await room.write_terms(SHOW, _terms(rate=600, ttl_s=60), replace=True, now_ms=T0)
    await room.write_terms(2, _terms(rate=600, ttl_s=60), replace=True, now_ms=T0)
    with pytest.raises(QueueNotOpen):
        await room.join(SHOW, 1, now_ms=T0 - 1)
    await room.join(SHOW, 1, now_ms=SALE + 1)
    await room.join(SHOW, 2, now_ms=SALE + 2)
    await room.join(2, 1, now_ms=SALE + 3)
    with pytest.raises(AdmissionRefused) as refused:
        await room.check_admission(SHOW, 1, None, now_ms=SALE + 10)
    assert refused.value.code == "admission_required"
    await room.tick(SHOW, now_ms=SALE + 1_000)
    mine = await room.status(SHOW, 1, now_ms=SALE + 1_001)
    assert mine.state == "admitted" and mine.admission_token
    # The same admission again: one token a user.
    assert (await room.join(SHOW, 1, now_ms=SALE + 1_002)).admission_token == mine.admission_token
    token = mine.admission_token
    await room.check_admission(SHOW, 1, token, now_ms=SALE + 2_000)
    for show, user, code in ((SHOW, 2, "admission_invalid"), (2, 1, "admission_invalid")):
        with pytest.raises(AdmissionRefused) as refused:
            await room.check_admission(show, user, token, now_ms=SALE + 2_000)
        assert refused.value.code == code
    with pytest.raises(AdmissionRefused) as refused:
        await room.check_admission(SHOW, 1, token[:-4] + "AAAA", now_ms=SALE + 2_000)
    assert refused.value.code == "admission_invalid"
    # A token signed by another deployment is refused.
    other = WaitingRoom(redis, None, prefix=prefix, secret="another-secret")
    forged = other.token(SHOW, 1, 1, SALE, SALE + 60_000)
    with pytest.raises(AdmissionRefused):
        await room.check_admission(SHOW, 1, forged, now_ms=SALE + 2_000)
    # After its lifetime: refused, and joining again is a new place at the back.
    with pytest.raises(AdmissionRefused) as refused:
        await room.check_admission(SHOW, 1, token, now_ms=SALE + 62_000)
    assert refused.value.code == "admission_expired"
    await room.join(SHOW, 3, now_ms=SALE + 62_001)
    again = await room.join(SHOW, 1, now_ms=SALE + 62_002)
    assert again.state == "waiting" and again.position == 2
    with pytest.raises(AdmissionRefused) as refused:  # the old token is not current any more
        await room.check_admission(SHOW, 1, token, now_ms=SALE + 62_003)
    # Leaving gives the admission up.
    await room.tick(SHOW, now_ms=SALE + 70_000)
    await room.leave(SHOW, 2, now_ms=SALE + 70_001)
    assert (await room.status(SHOW, 2, now_ms=SALE + 70_002)).state == "not_in_queue"
    with pytest.raises(QueueClosed):
        await room.join(SHOW, 5, now_ms=SALE + 3_600_000)


async def test_a_rate_change_applies_from_its_moment(redis: Any, prefix: str) -> None:
    room = _room(redis, prefix, burst_s=2.0, place_ttl_s=3600)
    await room.write_terms(SHOW, _terms(rate=600), replace=True, now_ms=T0)
    for user in range(1, 2001):
        await room.join(SHOW, user, now_ms=T0 + 1)
    total = 0
    for step in range(1, 41):  # 10 s at 600/min: 100
        admitted, _, _ = await room.tick(SHOW, now_ms=SALE + step * 250)
        total += admitted
    assert total == 100
    # Ops triple the rate: what was due at the old rate is admitted first.
    await room.write_terms(SHOW, _terms(rate=1800), replace=True, now_ms=SALE + 10_100)
    for step in range(1, 41):
        admitted, _, _ = await room.tick(SHOW, now_ms=SALE + 10_000 + step * 250)
        total += admitted
    stats = await room.stats(SHOW, now_ms=SALE + 20_000)
    assert stats["admission_per_min"] == 1800
    # The change admitted the 100 ms due at 10 a second (1), then 9.9 s at 30 a second: 297
    # (± the fraction carried).
    assert stats["admitted"] - total == 1
    assert 100 + 1 + 296 <= stats["admitted"] <= 100 + 1 + 297


async def test_many_gateways_ticking_admit_as_one(redis: Any, prefix: str) -> None:
    rooms = [_room(redis, prefix, place_ttl_s=3600) for _ in range(4)]
    await rooms[0].write_terms(SHOW, _terms(rate=1200), replace=True, now_ms=T0)
    for user in range(1, 1001):
        await rooms[user % 4].join(SHOW, user, now_ms=T0 + 5)
    # Four gateways tick every 100 ms, each with its own slightly different clock.
    now = SALE
    for _ in range(300):  # 30 s at 20 a second: 600
        now += 100
        await asyncio.gather(
            *(
                room.tick(SHOW, now_ms=now + skew)
                for room, skew in zip(rooms, (0, 3, 7, 11), strict=True)
            )
        )
    adm = await _admissions(rooms[0], redis)
    assert 598 <= len(adm) <= 602


async def test_admission_pauses_while_every_seat_is_held(redis: Any, prefix: str) -> None:
    room = _room(redis, prefix, place_ttl_s=3600)
    await room.write_terms(SHOW, _terms(rate=600), replace=True, now_ms=T0)
    for user in range(1, 101):
        await room.join(SHOW, user, now_ms=SALE + user)
    assert (await room.tick(SHOW, now_ms=SALE + 1_000))[0] == 10
    await room.set_supply(SHOW, "paused", now_ms=SALE + 1_000)
    for step in range(1, 11):  # 10 s with every seat held: nobody is let in
        assert (await room.tick(SHOW, now_ms=SALE + 1_000 + step * 1_000))[0] == 0
    waiting = await room.status(SHOW, 50, now_ms=SALE + 11_000)
    assert waiting.phase == "paused" and waiting.position == 40
    await room.set_supply(SHOW, "open", now_ms=SALE + 11_000)
    # Seats came back: admission goes on at the rate, without the paused time's credit.
    assert (await room.tick(SHOW, now_ms=SALE + 12_000))[0] == 10
    await room.set_supply(SHOW, "sold_out", now_ms=SALE + 12_000)
    assert (await room.status(SHOW, 50, now_ms=SALE + 12_001)).phase == "sold_out"
    with pytest.raises(QueueSoldOut):
        await room.join(SHOW, 999, now_ms=SALE + 12_002)
    assert (await room.join(SHOW, 50, now_ms=SALE + 12_003)).state == "waiting"  # still there
    # The show left flash-sale status: the line ended, and stays so until put back.
    await room.set_supply(SHOW, "ended", now_ms=SALE + 13_000)
    assert await room.set_supply(SHOW, "open", now_ms=SALE + 13_001) == "ended"
    assert (await room.status(SHOW, 50, now_ms=SALE + 13_002)).phase == "ended"
    with pytest.raises(QueueClosed):
        await room.join(SHOW, 998, now_ms=SALE + 13_003)
    await room.set_supply(SHOW, "open", force=True, now_ms=SALE + 14_000)
    assert (await room.join(SHOW, 998, now_ms=SALE + 14_001)).phase == "on_sale"


async def test_scripts_survive_a_flush_and_a_dropped_connection(redis: Any, prefix: str) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    room = _room(redis, prefix, place_ttl_s=3600)
    await room.write_terms(SHOW, _terms(rate=600), replace=True, now_ms=T0)
    await room.join(SHOW, 1, now_ms=T0 + 1)
    await redis.script_flush()  # Redis forgot every script (a restart would do the same)
    assert (await room.join(SHOW, 2, now_ms=T0 + 2)).waiting == 2
    wire = room._batch._wire  # the batcher's own connection, cut from under it
    assert wire._writer is not None
    wire._writer.transport.abort()
    # This batch may fail (answered 503); the next one connects again.
    with contextlib.suppress(RedisConnectionError):
        await room.join(SHOW, 3, now_ms=T0 + 3)
    assert (await room.join(SHOW, 4, now_ms=T0 + 4)).state == "waiting"
    assert (await room.join(SHOW, 3, now_ms=T0 + 5)).state == "waiting"
    assert (await room.stats(SHOW, now_ms=T0 + 6))["waiting"] == 4
