"""Online risk signals for the fraud check: sliding windows of holds, bookings, declined
payments and released holds per account, device and IP address, in Redis sorted sets.

Each event is a member scored by its time; a write trims its set to the stream's longest
window and sets a TTL just over it, so idle keys go away. Every call is one round trip (a
pipeline). Devices and IP addresses appear in keys only as truncated sha256 digests. The
windows and the feature row are those of ``ml.fraud.features``; ``ml.fraud.signals`` keeps the
same windows in memory for training.

    signals = RiskSignals(redis, prefix="risk:")
    await signals.record_hold(7, device, ip, hold_id, seats=2, at=now)
    row = await signals.features(7, device, ip, hold_created_at=..., seats=2,
                                 account_created_at=..., card_city=(40.7, -74.0),
                                 theater_city=(40.7, -74.0), now=time.time())

Redis errors (``redis.exceptions.RedisError``) reach the caller, whose fraud check then falls
back without these signals.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from ml.fraud.features import (
    COUNTS,
    RETENTION,
    UNBOUGHT_STREAM,
    UNBOUGHT_WINDOW,
    CheckoutFeatures,
    LatLon,
    checkout_features,
    unbought_member,
    unbought_seats,
)
from ml.fraud.signals import subject_of, subjects

TTL_MARGIN_S = 60  # a key lives this much longer than its stream's longest window


def _time(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite epoch time in seconds, not {value!r}")
    return float(value)


def _seats(seats: int) -> int:
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
        raise ValueError(f"seats must be a positive whole number, not {seats!r}")
    return seats


class RiskSignals:
    """The risk signals of ``redis`` (a ``redis.asyncio`` client, decoding responses or not)
    under ``prefix``."""

    def __init__(self, redis: Any, prefix: str = "risk:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, stream: str, subject: str) -> str:
        return f"{self._prefix}{stream}:{subject}"

    async def _write(self, events: list[tuple[str, str | None, str]], at: float) -> None:
        """Adds each (stream, subject, member) at ``at``; events of unknown subjects are
        skipped."""
        pipe = self._redis.pipeline(transaction=False)
        for stream, subject, member in events:
            if subject is None:
                continue
            key, keep = self._key(stream, subject), RETENTION[stream]
            pipe.zadd(key, {member: at}, gt=True)
            pipe.zremrangebyscore(key, "-inf", f"({at - keep}")
            pipe.expire(key, math.ceil(keep) + TTL_MARGIN_S)
        await pipe.execute()

    async def record_hold(
        self, user_id: int, device: str | None, ip: str | None, hold_id: str, seats: int, at: float
    ) -> None:
        """A hold was made (counts toward the account's, the device's and the IP's holds)."""
        _seats(seats)
        who, hold = subjects(user_id, device, ip), str(hold_id)
        await self._write(
            [
                ("holds:account", who["account"], hold),
                ("holds:device", who["device"], hold),
                ("holds:ip", who["ip"], hold),
                ("accounts:device", who["device"], str(user_id)),
                ("accounts:ip", who["ip"], str(user_id)),
            ],
            _time("at", at),
        )

    async def record_booking(self, user_id: int, hold_id: str, at: float) -> None:
        """A hold became a booking."""
        await self._write([("bookings:account", str(user_id), str(hold_id))], _time("at", at))

    async def record_payment_failure(self, user_id: int, device: str | None, at: float) -> None:
        """A payment of the account, from the device, was declined."""
        who, member = subjects(user_id, device, None), uuid.uuid4().hex
        await self._write(
            [
                ("failures:account", who["account"], member),
                ("failures:device", who["device"], member),
            ],
            _time("at", at),
        )

    async def record_release(self, user_id: int, hold_id: str, seats: int, at: float) -> None:
        """A hold was released or expired unbought: its seats count as held, never bought."""
        member = unbought_member(str(hold_id), _seats(seats))
        await self._write([(UNBOUGHT_STREAM, str(user_id), member)], _time("at", at))

    async def features(
        self,
        user_id: int,
        device: str | None,
        ip: str | None,
        *,
        hold_created_at: float,
        seats: int,
        account_created_at: float,
        card_city: LatLon | None,
        theater_city: LatLon | None,
        now: float,
    ) -> CheckoutFeatures:
        """The checkout's feature row, its counts read in one round trip."""
        now = _time("now", now)
        who = subjects(user_id, device, ip)
        pipe = self._redis.pipeline(transaction=False)
        asked: list[str] = []
        for feature, stream, window in COUNTS:
            subject = subject_of(stream, who)
            if subject is not None:
                pipe.zcount(self._key(stream, subject), now - window, now)
                asked.append(feature)
        pipe.zrangebyscore(self._key(UNBOUGHT_STREAM, str(user_id)), now - UNBOUGHT_WINDOW, now)
        *answers, released = await pipe.execute()
        counts = {feature: 0 for feature, _, _ in COUNTS}
        counts.update(zip(asked, answers, strict=True))
        members = [m.decode() if isinstance(m, bytes) else m for m in released]
        return checkout_features(
            counts,
            seats_unbought=unbought_seats(members),
            hold_created_at=_time("hold_created_at", hold_created_at),
            seats=_seats(seats),
            account_created_at=_time("account_created_at", account_created_at),
            card_city=card_city,
            theater_city=theater_city,
            now=now,
        )
