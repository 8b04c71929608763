"""Domain errors of the seat core.

One tree, one base. Every class has a stable machine-readable ``code`` and every instance a
``details`` dict of plain JSON values; the gateway maps them to its error envelope by walking the
class's MRO, so a subclass is answered like its parent unless it is mapped itself::

    BookingError                        booking_error
    ├── InvalidRequest                  invalid_request
    │   ├── UnknownSeat                 unknown_seat
    │   └── SeatNotBlocked              seat_not_blocked
    ├── SeatUnavailable                 seat_unavailable
    │   └── NoSeatsAvailable            no_seats_available
    ├── TooManySeats                    too_many_seats
    ├── CompanionWithoutWheelchair      companion_without_wheelchair
    ├── ShowNotOnSale                   show_not_on_sale
    │   └── AdmissionRequired           admission_required
    ├── HoldNotFound                    hold_not_found
    │   └── HoldExpired                 hold_expired
    ├── HoldNotYours                    hold_not_yours
    ├── ExtendLimitReached              extend_limit_reached
    ├── BookingNotFound                 booking_not_found
    ├── BookingNotYours                 booking_not_yours
    ├── LayoutError                     layout_error
    ├── InconsistentState               inconsistent_state
    ├── ShowNotFound                    show_not_found
    ├── ConfirmationPending             confirmation_pending
    └── ShowUnavailable                 show_unavailable
        ├── ShowMoved                   show_moved
        └── HostUnavailable             host_unavailable

The last five belong to the shell around the core (the directory and host actors), not to
``SeatMap``: a ``ShowUnavailable`` is worth retrying.

Errors stay plain and picklable (Ray re-raises them by type in the caller)::

    >>> import pickle
    >>> err = SeatUnavailable("seats are taken", {"seats": ["A1"]})
    >>> pickle.loads(pickle.dumps(err)).details
    {'seats': ['A1']}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BookingError",
    "BookingNotFound",
    "BookingNotYours",
    "CompanionWithoutWheelchair",
    "ConfirmationPending",
    "ExtendLimitReached",
    "HoldExpired",
    "HoldNotFound",
    "HoldNotYours",
    "HostUnavailable",
    "InconsistentState",
    "InvalidRequest",
    "LayoutError",
    "NoSeatsAvailable",
    "SeatNotBlocked",
    "SeatUnavailable",
    "ShowMoved",
    "ShowNotFound",
    "ShowNotOnSale",
    "AdmissionRequired",
    "ShowUnavailable",
    "TooManySeats",
    "UnknownSeat",
]


class BookingError(Exception):
    """Base of every refusal by the seat core; a refused operation changes nothing."""

    code: ClassVar[str] = "booking_error"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __reduce__(self) -> tuple[type[BookingError], tuple[str, dict[str, Any]]]:
        return (type(self), (self.message, self.details))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.details!r})"


class InvalidRequest(BookingError):
    """The request itself is malformed: empty, duplicate labels, a count below one, ..."""

    code = "invalid_request"


class UnknownSeat(InvalidRequest):
    """A label that is not a seat of this show (``details["seats"]``)."""

    code = "unknown_seat"


class SeatNotBlocked(InvalidRequest):
    """Unblock of a seat that is not blocked, or that the layout keeps out of service."""

    code = "seat_not_blocked"


class SeatUnavailable(BookingError):
    """Some requested seats are held, booked or blocked (``details["seats"]``)."""

    code = "seat_unavailable"


class NoSeatsAvailable(SeatUnavailable):
    """Best available found no seats that fit the request."""

    code = "no_seats_available"


class TooManySeats(BookingError):
    """The user would hold or own more seats of the show than allowed."""

    code = "too_many_seats"


class CompanionWithoutWheelchair(BookingError):
    """A companion seat requested without an adjacent wheelchair space of the same user."""

    code = "companion_without_wheelchair"


class ShowNotOnSale(BookingError):
    """The show's status does not allow the operation (``details["status"]``)."""

    code = "show_not_on_sale"


class AdmissionRequired(ShowNotOnSale):
    """A hold on a show in a flash sale without an admission from its waiting room."""

    code = "admission_required"


class HoldNotFound(BookingError):
    """No live hold with this id (never placed, released, confirmed or expired)."""

    code = "hold_not_found"


class HoldExpired(HoldNotFound):
    """The hold existed but expired; its seats are free again."""

    code = "hold_expired"


class HoldNotYours(BookingError):
    """The hold belongs to another user."""

    code = "hold_not_yours"


class ExtendLimitReached(BookingError):
    """The hold cannot be pushed any further (its lifetime cap is reached)."""

    code = "extend_limit_reached"


class BookingNotFound(BookingError):
    """No live booking with this id."""

    code = "booking_not_found"


class BookingNotYours(BookingError):
    """The booking belongs to another user."""

    code = "booking_not_yours"


class LayoutError(BookingError):
    """A screen layout that is malformed."""

    code = "layout_error"


class InconsistentState(BookingError):
    """State handed to the core contradicts itself (a seat claimed twice, an unknown seat)."""

    code = "inconsistent_state"


class ShowNotFound(BookingError):
    """No show with this id."""

    code = "show_not_found"


class ShowUnavailable(BookingError):
    """The show cannot be served right now (not active on its host); retry."""

    code = "show_unavailable"


class ShowMoved(ShowUnavailable):
    """The show now lives on another host; ask the directory again."""

    code = "show_moved"


class HostUnavailable(ShowUnavailable):
    """The show's host failed or cannot be reached."""

    code = "host_unavailable"


class ConfirmationPending(BookingError):
    """Decided in memory but not yet stored (Postgres slow or down): the outcome comes later.
    Ask again with the same idempotency key; nothing acknowledged is ever lost."""

    code = "confirmation_pending"
