"""The checkout feature vector: what the fraud check knows about one payment attempt.

Pure Python (no numpy): the gateway builds it from Redis (``gateway.risksignals``), training
builds it from the demo history (``ml.fraud.synth``); both count the same windows, defined here.

    row = CheckoutFeatures(holds_account_1h=1, ..., account_age_days=412.0)
    row.as_vector()  # floats in the order of FEATURES
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
UNKNOWN_DISTANCE = -1.0  # card_distance_km when the card's or the theater's city is unknown
EARTH_RADIUS_KM = 6371.0

LatLon = tuple[float, float]

# The counted signals: (feature, stream, window in seconds). A stream is a sliding window of
# events per account, device or IP address; a count takes the events in [now - window, now].
COUNTS: tuple[tuple[str, str, float], ...] = (
    ("holds_account_1h", "holds:account", HOUR),
    ("holds_account_24h", "holds:account", DAY),
    ("bookings_account_24h", "bookings:account", DAY),
    ("holds_device_1h", "holds:device", HOUR),
    ("holds_ip_1h", "holds:ip", HOUR),
    ("failed_payments_account_24h", "failures:account", DAY),
    ("failed_payments_device_24h", "failures:device", DAY),
    ("accounts_device_24h", "accounts:device", DAY),
    ("accounts_ip_24h", "accounts:ip", DAY),
)
UNBOUGHT_STREAM, UNBOUGHT_WINDOW = "unbought:account", WEEK  # members "hold_id:seats"
# How long each stream keeps its events: its longest window.
RETENTION: dict[str, float] = {UNBOUGHT_STREAM: UNBOUGHT_WINDOW}
for _feature, _stream, _window in COUNTS:
    RETENTION[_stream] = max(RETENTION.get(_stream, 0.0), _window)


@dataclass(frozen=True, slots=True)
class CheckoutFeatures:
    """One checkout's risk signals; counts include the hold being paid for."""

    holds_account_1h: int  # holds made by the account in the last hour
    holds_account_24h: int  # ... in the last 24 hours
    bookings_account_24h: int  # bookings the account completed in the last 24 hours
    holds_device_1h: int  # holds made from the device in the last hour
    holds_ip_1h: int  # holds made from the IP address in the last hour
    failed_payments_account_24h: int  # declined payments of the account in 24 hours
    failed_payments_device_24h: int  # declined payments from the device in 24 hours
    accounts_device_24h: int  # distinct accounts seen on the device in 24 hours
    accounts_ip_24h: int  # distinct accounts seen on the IP address in 24 hours
    card_distance_km: float  # card's city to the theater's city, or UNKNOWN_DISTANCE
    seats_unbought_account_7d: int  # seats the account held and let go unbought in 7 days
    hold_to_pay_s: float  # seconds from the hold to this payment attempt
    seats_in_hold: int  # seats in the hold being paid for
    account_age_days: float  # days since the account was created

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{field.name} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{field.name} must be finite, not {value!r}")
            if value < 0 and not (field.name == "card_distance_km" and value == UNKNOWN_DISTANCE):
                raise ValueError(f"{field.name} must not be negative, not {value!r}")

    @property
    def distance_known(self) -> bool:
        return self.card_distance_km != UNKNOWN_DISTANCE

    def as_vector(self) -> list[float]:
        """The values as floats, in the order of ``FEATURES``."""
        return [float(getattr(self, name)) for name in FEATURES]

    def as_dict(self) -> dict[str, float | int]:
        """By name, as stored in ``fraud_decisions.features``."""
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CheckoutFeatures:
        """From ``as_dict()`` output (e.g. a stored decision); unknown names are refused."""
        missing = [name for name in FEATURES if name not in values]
        extra = [name for name in values if name not in FEATURES]
        if missing or extra:
            raise ValueError(f"feature names: missing {missing}, unknown {extra}")
        numbers: dict[str, Any] = {name: _number(name, values[name]) for name in FEATURES}
        return cls(**numbers)

    @classmethod
    def from_vector(cls, vector: list[float] | tuple[float, ...]) -> CheckoutFeatures:
        """From ``as_vector()`` output (counts come back as ints)."""
        if len(vector) != len(FEATURES):
            raise ValueError(f"expected {len(FEATURES)} values, got {len(vector)}")
        return cls.from_mapping(dict(zip(FEATURES, vector, strict=True)))


FEATURES: tuple[str, ...] = tuple(f.name for f in fields(CheckoutFeatures))
_FLOATS = frozenset(f.name for f in fields(CheckoutFeatures) if f.type in ("float", float))


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if name in _FLOATS:
        return float(value)
    if value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def checkout_features(
    counts: Mapping[str, int],
    *,
    seats_unbought: int,
    hold_created_at: float,
    seats: int,
    account_created_at: float,
    card_city: LatLon | None,
    theater_city: LatLon | None,
    now: float,
) -> CheckoutFeatures:
    """The feature row from the windowed counts (by feature name, as in ``COUNTS``) and what
    the checkout itself knows."""
    if seats < 1:
        raise ValueError(f"a hold has at least one seat, not {seats}")
    return CheckoutFeatures(
        **{feature: int(counts[feature]) for feature, _, _ in COUNTS},
        card_distance_km=card_distance_km(card_city, theater_city),
        seats_unbought_account_7d=seats_unbought,
        hold_to_pay_s=round(max(0.0, now - hold_created_at), 3),
        seats_in_hold=seats,
        account_age_days=round(account_age_days(account_created_at, now), 3),
    )


def unbought_member(hold_id: str, seats: int) -> str:
    """How a released hold is kept in the unbought stream: its id and its seat count."""
    if seats < 1:
        raise ValueError(f"a hold has at least one seat, not {seats}")
    return f"{hold_id}:{seats}"


def unbought_seats(members: list[str]) -> int:
    """Seats of the released holds ``unbought_member`` made."""
    return sum(int(member.rpartition(":")[2]) for member in members)


def haversine_km(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in km between two (latitude, longitude) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def card_distance_km(card_city: LatLon | None, theater_city: LatLon | None) -> float:
    """Distance from the card's city to the theater's, or ``UNKNOWN_DISTANCE``."""
    if card_city is None or theater_city is None:
        return UNKNOWN_DISTANCE
    for point in (card_city, theater_city):
        lat, lon = point
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"not a (latitude, longitude) in degrees: {point!r}")
    return round(haversine_km(card_city, theater_city), 1)


def account_age_days(account_created_at: float, now: float) -> float:
    """Days since the account was created (0 for a clock that disagrees)."""
    return max(0.0, (now - account_created_at) / DAY)
