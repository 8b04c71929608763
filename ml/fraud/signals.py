"""The risk signals' sliding windows in memory: what ``gateway.risksignals.RiskSignals`` keeps
in Redis, with the same calls (synchronous), so training replays history through the very
counts the gateway serves. Pure Python.

    signals = MemorySignals()
    signals.record_hold(7, "device-a", "203.0.113.9", "h1", 2, at=1000.0)
    row = signals.features(7, "device-a", "203.0.113.9", hold_created_at=1000.0, seats=2,
                           account_created_at=0.0, card_city=None, theater_city=None, now=1040.0)
"""

from __future__ import annotations

import hashlib
import uuid

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

DIGEST_CHARS = 16  # of the sha256 hex digest that stands for a device or an IP address


def fingerprint(value: str) -> str:
    """A device's or IP address's stand-in in keys: its sha256, truncated."""
    return hashlib.sha256(value.encode()).hexdigest()[:DIGEST_CHARS]


def subjects(user_id: int, device: str | None, ip: str | None) -> dict[str, str | None]:
    """The subject of each stream kind (None when unknown: nothing recorded, counts 0)."""
    return {
        "account": str(user_id),
        "device": fingerprint(device) if device else None,
        "ip": fingerprint(ip) if ip else None,
    }


def subject_of(stream: str, who: dict[str, str | None]) -> str | None:
    return who[stream.rpartition(":")[2]]


class MemorySignals:
    """Sorted sets as dicts (member -> time), trimmed to their stream's retention on write."""

    def __init__(self) -> None:
        self._sets: dict[str, dict[str, float]] = {}

    def _add(self, stream: str, subject: str | None, member: str, at: float) -> None:
        if subject is None:
            return
        members = self._sets.setdefault(f"{stream}:{subject}", {})
        members[member] = max(at, members.get(member, at))
        low = at - RETENTION[stream]
        for old in [m for m, t in members.items() if t < low]:
            del members[old]

    def _window(self, key: str, low: float, now: float) -> list[str]:
        return [m for m, t in self._sets.get(key, {}).items() if low <= t <= now]

    def record_hold(
        self, user_id: int, device: str | None, ip: str | None, hold_id: str, seats: int, at: float
    ) -> None:
        who = subjects(user_id, device, ip)
        for stream in ("holds:account", "holds:device", "holds:ip"):
            self._add(stream, subject_of(stream, who), str(hold_id), at)
        self._add("accounts:device", who["device"], str(user_id), at)
        self._add("accounts:ip", who["ip"], str(user_id), at)

    def record_booking(self, user_id: int, hold_id: str, at: float) -> None:
        self._add("bookings:account", str(user_id), str(hold_id), at)

    def record_payment_failure(self, user_id: int, device: str | None, at: float) -> None:
        who = subjects(user_id, device, None)
        member = uuid.uuid4().hex
        self._add("failures:account", who["account"], member, at)
        self._add("failures:device", who["device"], member, at)

    def record_release(self, user_id: int, hold_id: str, seats: int, at: float) -> None:
        self._add(UNBOUGHT_STREAM, str(user_id), unbought_member(str(hold_id), seats), at)

    def features(
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
        who = subjects(user_id, device, ip)
        counts = {}
        for feature, stream, window in COUNTS:
            subject = subject_of(stream, who)
            key = f"{stream}:{subject}"
            counts[feature] = 0 if subject is None else len(self._window(key, now - window, now))
        released = self._window(f"{UNBOUGHT_STREAM}:{user_id}", now - UNBOUGHT_WINDOW, now)
        return checkout_features(
            counts,
            seats_unbought=unbought_seats(released),
            hold_created_at=hold_created_at,
            seats=seats,
            account_created_at=account_created_at,
            card_city=card_city,
            theater_city=theater_city,
            now=now,
        )
