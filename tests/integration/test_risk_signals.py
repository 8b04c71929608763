"""Risk signals in real Redis: windows, TTLs, hashed keys, and the same counts as the
in-memory windows that training replays history through."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.risksignals import RiskSignals
from ml.fraud.features import DAY, HOUR, RETENTION, WEEK
from ml.fraud.signals import MemorySignals

T0 = 1_800_000_000.0
NY, LA = (40.71, -74.01), (34.05, -118.24)


def _ask(**overrides: Any) -> dict[str, Any]:
    ask = {
        "hold_created_at": T0,
        "seats": 2,
        "account_created_at": T0 - 10 * DAY,
        "card_city": NY,
        "theater_city": NY,
        "now": T0 + 60,
    }
    return {**ask, **overrides}


async def test_windows_count_what_happened(redis: Any) -> None:
    signals = RiskSignals(redis, prefix=redis.prefix)
    await signals.record_hold(7, "dev-a", "203.0.113.9", "h-old", 3, at=T0 - 2 * HOUR)
    await signals.record_release(7, "h-old", 3, at=T0 - 2 * HOUR + 600)
    await signals.record_hold(7, "dev-a", "203.0.113.9", "h1", 2, at=T0)
    await signals.record_hold(8, "dev-a", "203.0.113.9", "h2", 1, at=T0 + 5)
    await signals.record_payment_failure(7, "dev-a", at=T0 + 30)
    await signals.record_booking(7, "h-earlier", at=T0 - 5 * HOUR)
    row = await signals.features(7, "dev-a", "203.0.113.9", **_ask(card_city=LA))
    assert (row.holds_account_1h, row.holds_account_24h, row.bookings_account_24h) == (1, 2, 1)
    assert (row.holds_device_1h, row.holds_ip_1h) == (2, 2)
    assert (row.failed_payments_account_24h, row.failed_payments_device_24h) == (1, 1)
    assert (row.accounts_device_24h, row.accounts_ip_24h) == (2, 2)
    assert row.seats_unbought_account_7d == 3
    assert (row.hold_to_pay_s, row.seats_in_hold) == (60.0, 2)
    assert row.account_age_days == pytest.approx(10.0, abs=0.001)
    assert 3900 < row.card_distance_km < 4000
    later = await signals.features(7, "dev-a", "203.0.113.9", **_ask(now=T0 + 2 * DAY))
    assert (later.holds_account_24h, later.failed_payments_device_24h) == (0, 0)
    assert later.seats_unbought_account_7d == 3
    gone = await signals.features(7, "dev-a", "203.0.113.9", **_ask(now=T0 + 8 * DAY))
    assert gone.seats_unbought_account_7d == 0


async def test_keys_hash_devices_and_addresses_and_expire(redis: Any) -> None:
    signals = RiskSignals(redis, prefix=redis.prefix)
    await signals.record_hold(7, "my-secret-device", "198.51.100.4", "h1", 2, at=T0)
    await signals.record_release(7, "h1", 2, at=T0 + 600)
    keys = [
        k.decode() if isinstance(k, bytes) else k
        async for k in redis.scan_iter(match=redis.prefix + "*")
    ]
    assert keys and not any("my-secret-device" in k or "198.51.100.4" in k for k in keys)
    for key in keys:
        stream = key[len(redis.prefix) :].rsplit(":", 1)[0]
        ttl = await redis.ttl(key)
        assert RETENTION[stream] < ttl <= RETENTION[stream] + 60, (key, ttl)


async def test_a_write_trims_events_past_the_longest_window(redis: Any) -> None:
    signals = RiskSignals(redis, prefix=redis.prefix)
    await signals.record_hold(7, None, None, "h-old", 1, at=T0)
    await signals.record_hold(7, None, None, "h-new", 1, at=T0 + DAY + 1)
    assert await redis.zcard(redis.prefix + "holds:account:7") == 1
    await signals.record_release(7, "h-a", 2, at=T0)
    await signals.record_release(7, "h-b", 2, at=T0 + WEEK + 1)
    assert await redis.zcard(redis.prefix + "unbought:account:7") == 1


async def test_unknown_device_and_ip_count_nothing(redis: Any) -> None:
    signals = RiskSignals(redis, prefix=redis.prefix)
    await signals.record_hold(7, None, "", "h1", 2, at=T0)
    row = await signals.features(7, None, None, **_ask(card_city=None))
    assert (row.holds_account_1h, row.holds_device_1h, row.accounts_ip_24h) == (1, 0, 0)
    assert row.card_distance_km == -1.0


async def test_inputs_are_validated(redis: Any) -> None:
    signals = RiskSignals(redis, prefix=redis.prefix)
    with pytest.raises(ValueError):
        await signals.record_hold(7, "d", "i", "h1", 0, at=T0)
    with pytest.raises(ValueError):
        await signals.record_booking(7, "h1", at=float("nan"))
    with pytest.raises(ValueError):
        await signals.features(7, "d", "i", **_ask(card_city=(95.0, 0.0)))


async def test_redis_and_the_training_replay_count_alike(redis: Any) -> None:
    """A random event stream gives the same feature rows in Redis and in memory."""
    rng = random.Random(3)
    online, replay = RiskSignals(redis, prefix=redis.prefix), MemorySignals()
    t = T0
    for n in range(300):
        t += rng.expovariate(1 / 900)
        user, device, ip = rng.randint(1, 4), f"d{rng.randint(1, 3)}", f"i{rng.randint(1, 2)}"
        kind = rng.choice(("hold", "hold", "booking", "failure", "release", "check"))
        if kind == "hold":
            args: tuple[Any, ...] = (user, device, ip, f"h{n}", rng.randint(1, 6))
        elif kind == "booking":
            args = (user, f"h{n}")
        elif kind == "failure":
            kind, args = "payment_failure", (user, device)
        elif kind == "release":
            args = (user, f"h{n}", rng.randint(1, 6))
        else:
            ask = _ask(hold_created_at=t - 40, now=t, account_created_at=T0 - DAY)
            assert await online.features(user, device, ip, **ask) == replay.features(
                user, device, ip, **ask
            )
            continue
        await getattr(online, f"record_{kind}")(*args, at=t)
        getattr(replay, f"record_{kind}")(*args, at=t)


async def test_a_client_that_decodes_responses_reads_the_same(redis: Any, redis_url: str) -> None:
    import redis.asyncio as aioredis

    decoding = aioredis.from_url(redis_url, decode_responses=True)
    try:
        for client in (redis, decoding):
            signals = RiskSignals(client, prefix=redis.prefix)
            await signals.record_release(7, "h1", 4, at=T0)
            row = await signals.features(7, "d", "i", **_ask())
            assert row.seats_unbought_account_7d == 4
    finally:
        await decoding.aclose()
