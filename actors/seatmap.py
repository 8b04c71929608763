"""SeatMap: the seats of one show as a pure, synchronous state machine.

No I/O, no clock, no randomness: time comes in as ``now`` (epoch seconds) and ids come from the
caller. The show actor is the only writer of a show; it calls one operation at a time, collects
the recorded events with ``pull_events()``, writes them behind and publishes their deltas.

Rules every operation keeps:

- It first releases the holds due at ``now`` (``expire``), so an expired hold is never
  confirmable and its seats are free. That expiry is a real change and stays even if the
  operation itself is then refused.
- A refused operation raises a ``BookingError`` and changes nothing else.
- A successful one bumps ``version`` by exactly one and records exactly one event carrying that
  version. ``expire`` records one ``HoldReleased`` (reason "expired") per hold, each with its own
  version, so versions in the event stream never skip.

Seats of a hold or booking that ends become AVAILABLE, or BLOCKED again if the layout marks them
out of service (an out-of-service seat is BLOCKED whenever nobody claims it and cannot be
unblocked: put it back in service by editing the layout).

    >>> seatmap = SeatMap("show-1", layout, prices={"standard": 1200})
    >>> hold = seatmap.hold(HoldBest("h1", "alice", 2, "standard"), now=1000.0)
    >>> booking = seatmap.confirm(Confirm("h1", "alice", "b1"), now=1030.0)
    >>> [type(e).__name__ for e in seatmap.pull_events()]
    ['HoldPlaced', 'BookingConfirmed']
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, TypeAlias

from actors.best_available import choose_best
from actors.commands import (
    Block,
    Cancel,
    Command,
    Confirm,
    Expire,
    Extend,
    HoldBest,
    HoldSeats,
    Release,
    SetPrices,
    SetStatus,
    StartPayment,
    Unblock,
)
from actors.errors import (
    AdmissionRequired,
    BookingNotFound,
    BookingNotYours,
    CompanionWithoutWheelchair,
    ExtendLimitReached,
    HoldExpired,
    HoldNotFound,
    HoldNotYours,
    InconsistentState,
    InvalidRequest,
    SeatNotBlocked,
    SeatUnavailable,
    ShowNotOnSale,
    TooManySeats,
    UnknownSeat,
)
from actors.events import (
    Booking,
    BookingCancelled,
    BookingConfirmed,
    Changes,
    Event,
    Hold,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PaymentStarted,
    PricesChanged,
    ReleaseReason,
    SeatsBlocked,
    SeatsUnblocked,
    Snapshot,
    StatusChanged,
    sort_bookings,
    sort_holds,
)
from actors.layout import Layout, SeatState

__all__ = ["STATUSES", "CommandResult", "SeatMap"]

#: Show statuses; holds are taken only while on sale.
STATUSES = ("scheduled", "on_sale", "flash_sale", "cancelled")
_SELLING = frozenset({"on_sale", "flash_sale"})
#: Arms of the pricing experiment a hold may be quoted under.
PRICE_ARMS = ("control", "dynamic")
#: A quoted price is at most this many times the show's price table (the surge cap).
MAX_SURGE = 2
_REMEMBERED_EXPIRIES = 1024  # expired hold ids kept to answer HoldExpired instead of HoldNotFound

#: What ``execute`` returns, by command: a hold, a booking, seat labels, expired holds, a status.
CommandResult: TypeAlias = Hold | Booking | tuple[str, ...] | list[Hold] | str | dict[str, int]


class SeatMap:
    """The seat state of one show: holds, bookings, blocks, status and version."""

    def __init__(
        self,
        show_id: str,
        layout: Layout,
        *,
        prices: Mapping[str, int],
        status: str = "on_sale",
        version: int = 0,
        hold_ttl: float = 300.0,
        payment_ttl: float = 600.0,
        max_hold_lifetime: float = 1200.0,
        max_seats_per_user: int = 10,
    ) -> None:
        _check_settings(layout, prices, status, (hold_ttl, payment_ttl, max_hold_lifetime))
        if max_seats_per_user < 1:
            raise InvalidRequest("max_seats_per_user must be positive")
        self.show_id = show_id
        self.layout = layout
        self._prices = dict(prices)
        self._status = status
        self._version = version
        self._hold_ttl = hold_ttl
        self._payment_ttl = payment_ttl
        self._max_lifetime = max_hold_lifetime
        self._max_seats = max_seats_per_user
        self._seats = {spec.label: _free_state(layout, spec.label) for spec in layout}
        self._blocked: set[str] = set()  # blocked by an admin (not out of service)
        self._holds: dict[str, Hold] = {}
        self._bookings: dict[str, Booking] = {}
        self._owner: dict[str, str] = {}  # seat label -> user id, for held and booked seats
        self._user_seats: dict[str, int] = {}
        self._due: list[tuple[float, str]] = []  # heap of (expires_at, hold id), may be stale
        self._expired: dict[str, None] = {}  # recently expired hold ids, oldest first
        self._events: list[Event] = []

    @classmethod
    def restore(
        cls,
        show_id: str,
        layout: Layout,
        *,
        prices: Mapping[str, int],
        status: str,
        version: int,
        holds: Iterable[Hold],
        bookings: Iterable[Booking],
        blocked: Iterable[str],
        now: float,
        hold_ttl: float = 300.0,
        payment_ttl: float = 600.0,
        max_hold_lifetime: float = 1200.0,
        max_seats_per_user: int = 10,
    ) -> SeatMap:
        """Rebuild a show from stored state, recording no events.

        Cancelled bookings and holds expired at ``now`` are dropped (a later ``confirm`` of such a
        hold raises ``HoldExpired``). ``blocked`` is the set of admin-blocked seats. A seat claimed
        twice, or an unknown seat, raises ``InconsistentState``; a booking or live hold on a seat
        the layout marks out of service wins over the layout. The other arguments are the
        constructor's.
        """
        seatmap = cls(
            show_id,
            layout,
            prices=prices,
            status=status,
            version=version,
            hold_ttl=hold_ttl,
            payment_ttl=payment_ttl,
            max_hold_lifetime=max_hold_lifetime,
            max_seats_per_user=max_seats_per_user,
        )
        claims = _Claims(layout)
        for booking in bookings:
            if not booking.cancelled:
                claims.claim(booking.seats, f"booking {booking.booking_id}")
                claims.unique("booking", booking.booking_id, seatmap._bookings)
                seatmap._add_booking(booking)
        for hold in holds:
            if hold.expires_at <= now:
                seatmap._remember_expired(hold.hold_id)
                continue
            claims.claim(hold.seats, f"hold {hold.hold_id}")
            claims.unique("hold", hold.hold_id, seatmap._holds)
            seatmap._add_hold(hold)
        for label in set(blocked):
            claims.claim((label,), "blocked")
            if not layout.seat(label).out_of_service:
                seatmap._blocked.add(label)
                seatmap._seats[label] = SeatState.BLOCKED
        return seatmap

    # -- reading ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped by one with every change."""
        return self._version

    @property
    def status(self) -> str:
        """One of ``STATUSES``."""
        return self._status

    @property
    def holds(self) -> Mapping[str, Hold]:
        """Live holds by id (read-only view)."""
        return MappingProxyType(self._holds)

    @property
    def bookings(self) -> Mapping[str, Booking]:
        """Live bookings by id (read-only view)."""
        return MappingProxyType(self._bookings)

    def seat_state(self, label: str) -> SeatState:
        """The state of one seat; ``KeyError`` if unknown."""
        return self._seats[label]

    def seats_of(self, user_id: str) -> int:
        """How many seats the user holds or has booked."""
        return self._user_seats.get(user_id, 0)

    def snapshot(self) -> Snapshot:
        """The whole visible state at the current version."""
        return Snapshot(
            show_id=self.show_id,
            version=self._version,
            status=self._status,
            seats=dict(self._seats),
            holds=sort_holds(self._holds.values()),
            bookings=sort_bookings(self._bookings.values()),
        )

    def pull_events(self) -> list[Event]:
        """The events recorded since the last pull, oldest first; clears them."""
        events, self._events = self._events, []
        return events

    # -- operations ------------------------------------------------------------------------

    def execute(self, command: Command, now: float) -> CommandResult:
        """Run any command; returns what its method returns (for batches)."""
        match command:
            case HoldSeats() | HoldBest():
                return self.hold(command, now)
            case Release():
                return self.release(command, now)
            case Extend():
                return self.extend(command, now)
            case StartPayment():
                return self.start_payment(command, now)
            case Confirm():
                return self.confirm(command, now)
            case Cancel():
                return self.cancel(command, now)
            case Block():
                return self.block(command, now)
            case Unblock():
                return self.unblock(command, now)
            case SetStatus():
                return self.set_status(command.status, now)
            case SetPrices():
                return self.set_prices(dict(command.prices), now)
            case Expire():
                return self.expire(now)
            case _:
                raise InvalidRequest("unknown command", {"command": type(command).__name__})

    def hold(self, command: HoldSeats | HoldBest, now: float) -> Hold:
        """Hold explicit seats or the best available ones, all or nothing."""
        self.expire(now)
        if self._status not in _SELLING:
            raise ShowNotOnSale("the show is not on sale", {"status": self._status})
        if self._status == "flash_sale" and not command.admitted:
            raise AdmissionRequired(
                "this show is in a flash sale: holds need an admission from its waiting room",
                {"status": self._status},
            )
        if not command.hold_id or not command.user_id:
            raise InvalidRequest("hold_id and user_id are required")
        if command.hold_id in self._holds:
            raise InvalidRequest("hold id already in use", {"hold_id": command.hold_id})
        if isinstance(command, HoldSeats):
            seats = self._check_explicit(command.user_id, command.seats)
        else:
            self._check_cap(command.user_id, command.count)
            seats = choose_best(
                self.layout,
                self._seats,
                command.count,
                command.category,
                allow_split=command.allow_split,
            )
        price = self._price_of(seats, command.prices, command.price_arm)
        expires_at = now + min(self._hold_ttl, self._max_lifetime)
        hold = Hold(
            command.hold_id,
            command.user_id,
            seats,
            price,
            expires_at,
            created_at=now,
            price_arm=command.price_arm,
        )
        self._add_hold(hold)
        self._expired.pop(hold.hold_id, None)
        changes = tuple((label, SeatState.HELD) for label in seats)
        self._record(HoldPlaced(**self._stamp(now, changes), hold=hold))
        return hold

    def _price_of(
        self, seats: tuple[str, ...], quote: tuple[tuple[str, int], ...], arm: str
    ) -> int:
        """What the seats cost: at the quoted prices when there is a quote (each within
        ``MAX_SURGE`` times the price table), else at the show's price table."""
        if arm not in PRICE_ARMS:
            raise InvalidRequest("unknown pricing arm", {"price_arm": arm, "known": PRICE_ARMS})
        categories = [self.layout.seat(label).category for label in seats]
        if not quote:
            return sum(self._prices[c] for c in categories)
        quoted = dict(quote)
        for category in set(categories):
            price, base = quoted.get(category), self._prices[category]
            if type(price) is not int or not 0 <= price <= MAX_SURGE * base:
                raise InvalidRequest(
                    "the quote has no valid price for a held seat's category",
                    {"category": category, "quoted": price, "most": MAX_SURGE * base},
                )
        return sum(quoted[c] for c in categories)

    def release(self, command: Release, now: float) -> Hold:
        """Give the seats of a hold back (also after its payment started)."""
        self.expire(now)
        hold = self._live_hold(command.hold_id, command.user_id)
        self._end_hold(hold, "released", now)
        return hold

    def extend(self, command: Extend, now: float) -> Hold:
        """Push a hold's expiry to ``now + hold_ttl``, never past its lifetime cap."""
        self.expire(now)
        hold = self._live_hold(command.hold_id, command.user_id)
        self._require_not_cancelled()
        expires_at = min(now + self._hold_ttl, hold.created_at + self._max_lifetime)
        if expires_at <= hold.expires_at:
            raise ExtendLimitReached(
                "the hold cannot be extended further",
                {"hold_id": hold.hold_id, "expires_at": hold.expires_at},
            )
        hold = self._replace_hold(hold, expires_at=expires_at)
        self._record(HoldExtended(**self._stamp(now, ()), hold=hold))
        return hold

    def start_payment(self, command: StartPayment, now: float) -> Hold:
        """Mark the payment started; expiry becomes ``now + payment_ttl`` (capped, never less)."""
        self.expire(now)
        hold = self._live_hold(command.hold_id, command.user_id)
        self._require_not_cancelled()
        if hold.payment_started:
            raise InvalidRequest("payment already started", {"hold_id": hold.hold_id})
        capped = min(now + self._payment_ttl, hold.created_at + self._max_lifetime)
        hold = self._replace_hold(
            hold, expires_at=max(hold.expires_at, capped), payment_started=True
        )
        self._record(PaymentStarted(**self._stamp(now, ()), hold=hold))
        return hold

    def confirm(self, command: Confirm, now: float) -> Booking:
        """Turn a live hold of the user into a booking; its seats become BOOKED.

        A companion seat is confirmed only while the user still holds or owns an adjacent
        wheelchair space (it may have been held apart and released since).
        """
        self.expire(now)
        if not command.booking_id or command.booking_id in self._bookings:
            raise InvalidRequest("booking id missing or in use", {"booking_id": command.booking_id})
        hold = self._live_hold(command.hold_id, command.user_id)
        self._require_not_cancelled()
        self._check_companions(hold.user_id, hold.seats)  # its wheelchair hold may have ended
        booking = Booking(
            command.booking_id,
            hold.hold_id,
            hold.user_id,
            hold.seats,
            hold.price_cents,
            now,
            price_arm=hold.price_arm,
        )
        self._drop_hold(hold)
        self._add_booking(booking)
        changes = tuple((label, SeatState.BOOKED) for label in booking.seats)
        self._record(BookingConfirmed(**self._stamp(now, changes), booking=booking))
        return booking

    def cancel(self, command: Cancel, now: float) -> Booking:
        """Cancel a booking (its owner, or an admin with ``user_id`` None); seats come free."""
        self.expire(now)
        booking = self._bookings.get(command.booking_id)
        if booking is None:
            raise BookingNotFound("no such booking", {"booking_id": command.booking_id})
        if command.user_id is not None and command.user_id != booking.user_id:
            raise BookingNotYours("the booking is not yours", {"booking_id": booking.booking_id})
        self._drop_booking(booking)
        booking = replace(booking, cancelled=True)
        changes = self._free(booking.seats)
        self._record(
            BookingCancelled(**self._stamp(now, changes), booking=booking, by=command.user_id)
        )
        return booking

    def block(self, command: Block, now: float) -> tuple[str, ...]:
        """Admin: block available seats (held, booked or blocked ones are refused)."""
        self.expire(now)
        seats = self._check_labels(command.seats)
        taken = [label for label in seats if self._seats[label] is not SeatState.AVAILABLE]
        if taken:
            raise SeatUnavailable("seats are not available", {"seats": taken})
        self._blocked.update(seats)
        changes = self._set(seats, SeatState.BLOCKED)
        self._record(SeatsBlocked(**self._stamp(now, changes), seats=seats))
        return seats

    def unblock(self, command: Unblock, now: float) -> tuple[str, ...]:
        """Admin: unblock seats an admin blocked."""
        self.expire(now)
        seats = self._check_labels(command.seats)
        wrong = [label for label in seats if label not in self._blocked]
        if wrong:
            raise SeatNotBlocked("seats are not blocked or are out of service", {"seats": wrong})
        self._blocked.difference_update(seats)
        changes = self._set(seats, SeatState.AVAILABLE)
        self._record(SeatsUnblocked(**self._stamp(now, changes), seats=seats))
        return seats

    def set_status(self, status: str, now: float) -> str:
        """Admin: change the show's status; "cancelled" is final. Live holds stay until they end,
        but only a selling show takes new holds and a cancelled one confirms nothing."""
        self.expire(now)
        if status not in STATUSES:
            raise InvalidRequest("unknown status", {"status": status})
        if status == self._status or self._status == "cancelled":
            raise InvalidRequest("status cannot change", {"from": self._status, "to": status})
        previous, self._status = self._status, status
        self._record(StatusChanged(**self._stamp(now, ()), status=status, previous=previous))
        return status

    @property
    def prices(self) -> Mapping[str, int]:
        return self._prices

    def set_prices(self, prices: Mapping[str, int], now: float) -> dict[str, int]:
        """Admin: new prices for every seat category of the layout; holds keep their quotes."""
        self.expire(now)
        _check_settings(self.layout, prices, self._status, (1.0,))
        unknown = sorted(set(prices) - {spec.category for spec in self.layout})
        if unknown:
            raise InvalidRequest("no seats of these categories", {"categories": unknown})
        if any(not isinstance(price, int) or isinstance(price, bool) for price in prices.values()):
            raise InvalidRequest("prices are whole minor units")
        self._prices = dict(prices)
        changed = tuple(sorted(self._prices.items()))
        self._record(PricesChanged(**self._stamp(now, ()), prices=changed))
        return dict(self._prices)

    def expire(self, now: float) -> list[Hold]:
        """Release every hold with ``expires_at <= now``, soonest first; returns them."""
        expired: list[Hold] = []
        while self._due and self._due[0][0] <= now:
            expires_at, hold_id = heapq.heappop(self._due)
            hold = self._holds.get(hold_id)
            if hold is not None and hold.expires_at == expires_at:
                self._end_hold(hold, "expired", now)
                self._remember_expired(hold_id)
                expired.append(hold)
        return expired

    # -- checks ----------------------------------------------------------------------------

    def _check_labels(self, seats: Iterable[str]) -> tuple[str, ...]:
        labels = tuple(seats)
        if not labels:
            raise InvalidRequest("no seats given")
        if len(set(labels)) != len(labels):
            twice = sorted({label for label in labels if labels.count(label) > 1})
            raise InvalidRequest("a seat is named twice", {"seats": twice})
        unknown = [label for label in labels if label not in self.layout]
        if unknown:
            raise UnknownSeat("no such seats in this show", {"seats": unknown})
        return labels

    def _check_explicit(self, user_id: str, seats: Iterable[str]) -> tuple[str, ...]:
        labels = self._check_labels(seats)
        self._check_cap(user_id, len(labels))
        taken = [label for label in labels if self._seats[label] is not SeatState.AVAILABLE]
        if taken:
            raise SeatUnavailable("seats are not available", {"seats": taken})
        self._check_companions(user_id, labels)
        return labels

    def _check_companions(self, user_id: str, labels: tuple[str, ...]) -> None:
        alone = [label for label in labels if not self._companion_ok(user_id, label, labels)]
        if alone:
            raise CompanionWithoutWheelchair(
                "a companion seat needs an adjacent wheelchair space of the same user",
                {"seats": alone},
            )

    def _companion_ok(self, user_id: str, label: str, labels: tuple[str, ...]) -> bool:
        if self.layout.seat(label).category != "companion":
            return True
        return any(
            self.layout.seat(other).category == "wheelchair"
            and (other in labels or self._owner.get(other) == user_id)
            for other in self.layout.neighbours(label)
        )

    def _check_cap(self, user_id: str, count: int) -> None:
        have = self._user_seats.get(user_id, 0)
        if have + count > self._max_seats:
            raise TooManySeats(
                "too many seats for one user",
                {"limit": self._max_seats, "have": have, "requested": count},
            )

    def _live_hold(self, hold_id: str, user_id: str) -> Hold:
        hold = self._holds.get(hold_id)
        if hold is None:
            if hold_id in self._expired:
                raise HoldExpired("the hold has expired", {"hold_id": hold_id})
            raise HoldNotFound("no such hold", {"hold_id": hold_id})
        if hold.user_id != user_id:
            raise HoldNotYours("the hold is not yours", {"hold_id": hold_id})
        return hold

    def _require_not_cancelled(self) -> None:
        if self._status == "cancelled":
            raise ShowNotOnSale("the show is cancelled", {"status": self._status})

    # -- changes (no checks below: callers have validated) ---------------------------------

    def _stamp(self, now: float, changes: Changes) -> dict[str, Any]:
        self._version += 1
        return {"show_id": self.show_id, "version": self._version, "at": now, "changes": changes}

    def _record(self, event: Event) -> None:
        self._events.append(event)

    def _end_hold(self, hold: Hold, reason: ReleaseReason, now: float) -> None:
        self._drop_hold(hold)
        changes = self._free(hold.seats)
        self._record(HoldReleased(**self._stamp(now, changes), hold=hold, reason=reason))

    def _add_hold(self, hold: Hold) -> None:
        self._holds[hold.hold_id] = hold
        heapq.heappush(self._due, (hold.expires_at, hold.hold_id))
        self._claim(hold.user_id, hold.seats, SeatState.HELD)

    def _replace_hold(self, hold: Hold, **fields: Any) -> Hold:
        hold = replace(hold, **fields)
        self._holds[hold.hold_id] = hold
        heapq.heappush(self._due, (hold.expires_at, hold.hold_id))
        return hold

    def _drop_hold(self, hold: Hold) -> None:
        del self._holds[hold.hold_id]
        self._unclaim(hold.user_id, hold.seats)
        if len(self._due) > 2 * len(self._holds) + 64:  # drop stale heap entries now and then
            self._due = [(h.expires_at, h.hold_id) for h in self._holds.values()]
            heapq.heapify(self._due)

    def _add_booking(self, booking: Booking) -> None:
        self._bookings[booking.booking_id] = booking
        self._claim(booking.user_id, booking.seats, SeatState.BOOKED)

    def _drop_booking(self, booking: Booking) -> None:
        del self._bookings[booking.booking_id]
        self._unclaim(booking.user_id, booking.seats)

    def _claim(self, user_id: str, seats: tuple[str, ...], state: SeatState) -> None:
        self._set(seats, state)
        self._owner.update(dict.fromkeys(seats, user_id))
        self._user_seats[user_id] = self._user_seats.get(user_id, 0) + len(seats)

    def _unclaim(self, user_id: str, seats: tuple[str, ...]) -> None:
        for label in seats:
            del self._owner[label]
        left = self._user_seats[user_id] - len(seats)
        if left:
            self._user_seats[user_id] = left
        else:
            del self._user_seats[user_id]

    def _free(self, seats: tuple[str, ...]) -> Changes:
        changes = tuple((label, _free_state(self.layout, label)) for label in seats)
        self._seats.update(changes)
        return changes

    def _set(self, seats: tuple[str, ...], state: SeatState) -> Changes:
        changes = tuple((label, state) for label in seats)
        self._seats.update(changes)
        return changes

    def _remember_expired(self, hold_id: str) -> None:
        self._expired[hold_id] = None
        if len(self._expired) > _REMEMBERED_EXPIRIES:
            del self._expired[next(iter(self._expired))]


class _Claims:
    """Who claims which seat while restoring; a second claim is an inconsistency."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._by_seat: dict[str, str] = {}

    def claim(self, seats: Iterable[str], claimant: str) -> None:
        for label in seats:
            if label not in self._layout:
                raise InconsistentState("unknown seat", {"seat": label, "claimant": claimant})
            if label in self._by_seat:
                claimants = [self._by_seat[label], claimant]
                raise InconsistentState("seat claimed twice", {"seat": label, "by": claimants})
            self._by_seat[label] = claimant

    @staticmethod
    def unique(kind: str, key: str, existing: Mapping[str, object]) -> None:
        if key in existing:
            raise InconsistentState(f"duplicate {kind} id", {"id": key})


def _free_state(layout: Layout, label: str) -> SeatState:
    return SeatState.BLOCKED if layout.seat(label).out_of_service else SeatState.AVAILABLE


def _check_settings(
    layout: Layout, prices: Mapping[str, int], status: str, ttls: tuple[float, ...]
) -> None:
    if status not in STATUSES:
        raise InvalidRequest("unknown status", {"status": status})
    if any(not ttl > 0 for ttl in ttls):
        raise InvalidRequest("time limits must be positive", {"ttls": list(ttls)})
    missing = sorted({spec.category for spec in layout} - set(prices))
    if missing:
        raise InvalidRequest("no price for some seat categories", {"categories": missing})
    if any(price < 0 for price in prices.values()):
        raise InvalidRequest("prices must not be negative")
