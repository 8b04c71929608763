"""Requests to the seat core of one show: small frozen dataclasses.

Ids (hold, booking) are chosen by the caller, so a retried request can carry the same ones.
``SeatMap.execute(command, now)`` runs any of them; the actor shell batches them that way.
Every command may carry the ``request_id`` of the request that caused it (set by
``ShowClient``), so the host's log records about it name that request; the core ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Block",
    "Cancel",
    "Command",
    "Confirm",
    "Expire",
    "Extend",
    "HoldBest",
    "HoldSeats",
    "Release",
    "SetPrices",
    "SetStatus",
    "StartPayment",
    "Unblock",
]


@dataclass(frozen=True, slots=True)
class HoldSeats:
    """Hold exactly these seats for ``user_id``, all or nothing. ``admitted``: the caller
    checked the user's admission from the waiting room (needed while in a flash sale).
    ``prices``: the quote the customer saw, by seat category (``(("standard", 1300), ...)``),
    charged instead of the show's price table; ``price_arm``: the pricing experiment's arm it
    was quoted under ("control" or "dynamic")."""

    hold_id: str
    user_id: str
    seats: tuple[str, ...]
    admitted: bool = False
    prices: tuple[tuple[str, int], ...] = ()
    price_arm: str = "control"
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class HoldBest:
    """Hold the best ``count`` seats of ``category``; ``allow_split`` permits several blocks;
    ``admitted``, ``prices`` and ``price_arm`` as for ``HoldSeats``."""

    hold_id: str
    user_id: str
    count: int
    category: str
    allow_split: bool = False
    admitted: bool = False
    prices: tuple[tuple[str, int], ...] = ()
    price_arm: str = "control"
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """Give a hold's seats back."""

    hold_id: str
    user_id: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Extend:
    """Push a hold's expiry to ``now + hold_ttl`` (capped by its maximum lifetime)."""

    hold_id: str
    user_id: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class StartPayment:
    """Mark a hold's payment as started; its expiry moves to ``now + payment_ttl`` (capped)."""

    hold_id: str
    user_id: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Confirm:
    """Turn a live hold into the booking ``booking_id``."""

    hold_id: str
    user_id: str
    booking_id: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a booking; ``user_id`` None means an admin, who may cancel anyone's."""

    booking_id: str
    user_id: str | None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """Admin: take available seats out of sale."""

    seats: tuple[str, ...]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unblock:
    """Admin: put blocked seats back on sale."""

    seats: tuple[str, ...]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetStatus:
    """Admin: change the show's status ("scheduled", "on_sale", "flash_sale", "cancelled")."""

    status: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetPrices:
    """Admin: new prices by seat category, ``(("standard", 1250), ...)``, for every category of
    the layout. Live holds keep the price they were quoted."""

    prices: tuple[tuple[str, int], ...]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """Release every hold due at ``now`` (what the actor's timer sends)."""

    request_id: str | None = None


Command: TypeAlias = (
    HoldSeats
    | HoldBest
    | Release
    | Extend
    | StartPayment
    | Confirm
    | Cancel
    | Block
    | Unblock
    | SetStatus
    | SetPrices
    | Expire
)
