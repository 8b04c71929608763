"""What the seat core records: holds, bookings, the events of a show, and its snapshot.

Every successful operation bumps the show's version by one and records exactly one event with
that version, so a show's events are numbered 1, 2, 3, ... without gaps. Each event carries
``changes``, the seats whose state it changed and their new state: that is the delta published to
clients. A client keeps a ``Snapshot`` and applies deltas in order; a gap in versions means it
missed one and must fetch a fresh snapshot::

    snapshot = seatmap.snapshot()
    for event in seatmap.pull_events():
        snapshot = snapshot.apply(event)   # InconsistentState on a gap

All records are frozen dataclasses (replaced on change) and picklable, so Ray can ship them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from actors.errors import HoldNotFound, HoldNotYours, InconsistentState
from actors.layout import SeatState

__all__ = [
    "Booking",
    "BookingCancelled",
    "BookingConfirmed",
    "Changes",
    "Event",
    "Hold",
    "HoldExtended",
    "HoldPlaced",
    "HoldReleased",
    "PaymentStarted",
    "ReleaseReason",
    "SeatsBlocked",
    "SeatsUnblocked",
    "ShowEvent",
    "Snapshot",
    "PricesChanged",
    "StatusChanged",
    "apply_delta",
]

#: Seats whose state changed, with their new state.
Changes: TypeAlias = tuple[tuple[str, SeatState], ...]
#: Why a hold ended without a booking.
ReleaseReason: TypeAlias = Literal["released", "expired"]


@dataclass(frozen=True, slots=True)
class Hold:
    """Seats set aside for one user until ``expires_at`` (epoch seconds), all or nothing, at
    the price quoted when it was placed (under the pricing arm ``price_arm``)."""

    hold_id: str
    user_id: str
    seats: tuple[str, ...]
    price_cents: int
    expires_at: float
    created_at: float
    payment_started: bool = False
    price_arm: str = "control"


@dataclass(frozen=True, slots=True)
class Booking:
    """Seats sold to one user, confirmed from the hold ``hold_id``."""

    booking_id: str
    hold_id: str
    user_id: str
    seats: tuple[str, ...]
    price_cents: int
    confirmed_at: float
    cancelled: bool = False
    price_arm: str = "control"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowEvent:
    """Base of all events: the show, its version after the change, when, and the seat delta."""

    show_id: str
    version: int
    at: float
    changes: Changes = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldPlaced(ShowEvent):
    """A hold was placed; its seats are HELD."""

    hold: Hold


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldReleased(ShowEvent):
    """A hold ended without a booking: released by its user or expired."""

    hold: Hold
    reason: ReleaseReason


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldExtended(ShowEvent):
    """A hold's expiry moved later (``hold`` is the new value); no seat changed."""

    hold: Hold


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentStarted(ShowEvent):
    """The payment of a hold started (``hold`` is the new value); no seat changed."""

    hold: Hold


@dataclass(frozen=True, slots=True, kw_only=True)
class BookingConfirmed(ShowEvent):
    """A hold became a booking (``booking.hold_id``); the hold is gone, its seats BOOKED."""

    booking: Booking


@dataclass(frozen=True, slots=True, kw_only=True)
class BookingCancelled(ShowEvent):
    """A booking was cancelled by its user or by an admin (``by`` is None)."""

    booking: Booking
    by: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatsBlocked(ShowEvent):
    """An admin blocked seats."""

    seats: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatsUnblocked(ShowEvent):
    """An admin unblocked seats."""

    seats: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(ShowEvent):
    """The show's status changed from ``previous`` to ``status``."""

    status: str
    previous: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PricesChanged(ShowEvent):
    """The show's prices by seat category changed (``prices``); no seat changed."""

    prices: tuple[tuple[str, int], ...]


Event: TypeAlias = (
    HoldPlaced
    | HoldReleased
    | HoldExtended
    | PaymentStarted
    | BookingConfirmed
    | BookingCancelled
    | SeatsBlocked
    | SeatsUnblocked
    | StatusChanged
    | PricesChanged
)


def apply_delta(seats: Mapping[str, SeatState], event: ShowEvent) -> dict[str, SeatState]:
    """A copy of ``seats`` with the event's changes applied (for clients that track seats only)."""
    result = dict(seats)
    result.update(event.changes)
    return result


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole visible state of a show at one version: seats, live holds, live bookings.

    Holds and bookings are sorted by id.
    """

    show_id: str
    version: int
    status: str
    seats: dict[str, SeatState]
    holds: tuple[Hold, ...]
    bookings: tuple[Booking, ...]

    def live_hold(self, hold_id: str, user_id: str) -> Hold:
        """The live hold ``hold_id`` of ``user_id``; ``HoldNotFound`` or ``HoldNotYours``."""
        for hold in self.holds:
            if hold.hold_id == hold_id:
                if hold.user_id != user_id:
                    raise HoldNotYours("the hold is not yours", {"hold_id": hold_id})
                return hold
        raise HoldNotFound("no live hold with this id", {"hold_id": hold_id})

    def apply(self, event: ShowEvent) -> Snapshot:
        """The snapshot after ``event``; raises ``InconsistentState`` unless it is the next one."""
        if event.show_id != self.show_id or event.version != self.version + 1:
            raise InconsistentState(
                "event does not follow this snapshot",
                {"show_id": event.show_id, "version": event.version, "expected": self.version + 1},
            )
        holds = {hold.hold_id: hold for hold in self.holds}
        bookings = {booking.booking_id: booking for booking in self.bookings}
        status = self.status
        if isinstance(event, HoldPlaced | HoldExtended | PaymentStarted):
            holds[event.hold.hold_id] = event.hold
        elif isinstance(event, HoldReleased):
            del holds[event.hold.hold_id]
        elif isinstance(event, BookingConfirmed):
            del holds[event.booking.hold_id]
            bookings[event.booking.booking_id] = event.booking
        elif isinstance(event, BookingCancelled):
            del bookings[event.booking.booking_id]
        elif isinstance(event, StatusChanged):
            status = event.status
        return Snapshot(
            show_id=self.show_id,
            version=event.version,
            status=status,
            seats=apply_delta(self.seats, event),
            holds=sort_holds(holds.values()),
            bookings=sort_bookings(bookings.values()),
        )


def sort_holds(holds: Iterable[Hold]) -> tuple[Hold, ...]:
    """Holds in snapshot order (by id)."""
    return tuple(sorted(holds, key=lambda hold: hold.hold_id))


def sort_bookings(bookings: Iterable[Booking]) -> tuple[Booking, ...]:
    """Bookings in snapshot order (by id)."""
    return tuple(sorted(bookings, key=lambda booking: booking.booking_id))
