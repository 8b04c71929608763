"""SeatMap under random sequences of operations by a few users, with time moving on.

Every operation runs against a copy that has only expired the due holds: a refused operation
must leave the map exactly like that copy (the expiry that runs first is a real change), and a
successful one must add exactly one event with the next version. After every step the
invariants below are checked, including that replaying every delta onto the very first snapshot
gives the current snapshot.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)

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
    SetStatus,
    StartPayment,
    Unblock,
)
from actors.errors import BookingError
from actors.events import Booking, Hold, HoldReleased, Snapshot
from actors.layout import SeatState
from actors.seatmap import SeatMap
from tests.unit.plans import plan

PRICES = {"standard": 1000, "premium": 1500, "wheelchair": 700, "companion": 700}
T0 = 1_000_000.0
CAP, HOLD_TTL, PAYMENT_TTL, LIFETIME = 4, 300.0, 400.0, 500.0


LAYOUT = plan("WCSS|SS", "SSXS|SS", "PPPS|SS")
LABELS = [spec.label for spec in LAYOUT]
SETTINGS: dict[str, Any] = {
    "hold_ttl": HOLD_TTL,
    "payment_ttl": PAYMENT_TTL,
    "max_hold_lifetime": LIFETIME,
    "max_seats_per_user": CAP,
}

users = st.sampled_from(["u1", "u2", "u3"])
#: who acts on a hold or booking: mostly its owner ("owner"), sometimes someone else
actors = st.sampled_from(["owner", "owner", "owner", "u1", "u2", "u3"])
seat_lists = st.one_of(
    st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from([*LABELS, "Z9"]), max_size=4),  # empty, duplicates, unknown
).map(tuple)
categories = st.sampled_from(["standard", "premium", "wheelchair", "companion", "balcony"])
# Mostly admitted: a hold on a flash-sale show without an admission is refused.
admissions = st.sampled_from([True] * 4 + [False])
statuses = st.sampled_from(
    ["on_sale"] * 10 + ["flash_sale"] * 3 + ["scheduled"] * 4 + ["cancelled"]
)
#: time steps around the limits (hold 300 s, payment 400 s, lifetime 500 s)
steps = st.sampled_from([1, 30, 120, 200, 299, 300, 301, 450, 500])
#: a little time passing before acting on a hold
later = st.sampled_from([0, 0, 10, 100, 250, 299, 300])


Placed = MultipleResults[tuple[str, str]]  # (id, owner) of a hold or booking that was made


class SeatMapMachine(RuleBasedStateMachine):
    holds = Bundle("holds")
    bookings = Bundle("bookings")

    def __init__(self) -> None:
        super().__init__()
        self.seatmap = SeatMap("show", LAYOUT, prices=PRICES, **SETTINGS)
        self.now = T0
        self.op_now = T0
        self.replayed: Snapshot = self.seatmap.snapshot()
        self.admin_blocked: set[str] = set()
        self.before = self.replayed  # the state an operation starts from, after expiry
        self.ids = 0

    def fresh(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}{self.ids}"

    @staticmethod
    def who(actor: str, owned: tuple[str, str]) -> str:
        return owned[1] if actor == "owner" else actor

    def run(self, command: Command) -> Any:
        """Run ``command`` and check refusal/success against a copy that only expired."""
        expected = copy.deepcopy(self.seatmap)
        expected.expire(self.now)
        expected_events = expected.pull_events()
        self.before = expected.snapshot()
        self.op_now = self.now
        try:
            result = self.seatmap.execute(command, self.now)
        except BookingError:
            assert self.seatmap.pull_events() == expected_events
            assert vars(self.seatmap) == vars(expected)  # nothing at all changed, inside either
            self.absorb(expected_events)
            return None
        events = self.seatmap.pull_events()
        added = 0 if isinstance(command, Expire) else 1
        assert events[: len(expected_events)] == expected_events
        assert len(events) == len(expected_events) + added
        assert self.seatmap.version == expected.version + added
        self.absorb(events)
        return result

    def absorb(self, events: list[Any]) -> None:
        for event in events:
            assert event.version == self.replayed.version + 1
            if isinstance(event, HoldReleased) and event.reason == "expired":
                assert event.hold.expires_at <= self.now
            self.replayed = self.replayed.apply(event)

    # -- rules -----------------------------------------------------------------------------

    @rule(dt=steps)
    def tick(self, dt: int) -> None:
        self.now += dt

    @rule(target=holds, user=users, seats=seat_lists, admitted=admissions)
    def hold_seats(self, user: str, seats: tuple[str, ...], admitted: bool) -> Placed:
        hold = self.run(HoldSeats(self.fresh("h"), user, seats, admitted))
        if hold is None:
            return multiple()
        assert hold.seats == seats
        self.check_companions(user, hold.seats)
        return multiple((hold.hold_id, user))

    @rule(hold=holds, user=users, seats=seat_lists)
    def hold_seats_reusing_an_id(
        self, hold: tuple[str, str], user: str, seats: tuple[str, ...]
    ) -> None:
        self.run(HoldSeats(hold[0], user, seats, admitted=True))

    @rule(
        target=holds,
        user=users,
        count=st.integers(0, 5),
        category=categories,
        split=st.booleans(),
        admitted=admissions,
    )
    def hold_best(
        self, user: str, count: int, category: str, split: bool, admitted: bool
    ) -> Placed:
        hold = self.run(HoldBest(self.fresh("h"), user, count, category, split, admitted))
        if hold is None:
            return multiple()
        check_best(hold, count, category, split)
        if not split:
            assert not new_orphans(self.before.seats, self.seatmap.snapshot().seats)
        self.check_companions(user, hold.seats)
        return multiple((hold.hold_id, user))

    @rule(hold=holds, actor=actors, dt=later)
    def release(self, hold: tuple[str, str], actor: str, dt: int) -> None:
        self.now += dt
        self.run(Release(hold[0], self.who(actor, hold)))

    @rule(hold=holds, actor=actors, dt=later)
    def extend(self, hold: tuple[str, str], actor: str, dt: int) -> None:
        self.now += dt
        self.run(Extend(hold[0], self.who(actor, hold)))

    @rule(hold=holds, actor=actors, dt=later)
    def start_payment(self, hold: tuple[str, str], actor: str, dt: int) -> None:
        self.now += dt
        self.run(StartPayment(hold[0], self.who(actor, hold)))

    @rule(target=bookings, hold=holds, actor=actors, dt=later)
    def confirm(self, hold: tuple[str, str], actor: str, dt: int) -> Placed:
        self.now += dt
        booking = self.run(Confirm(hold[0], self.who(actor, hold), self.fresh("b")))
        if booking is None:
            return multiple()
        self.check_companions(booking.user_id, booking.seats)
        return multiple((booking.booking_id, booking.user_id))

    @rule(target=bookings, user=users, seats=seat_lists)
    def book(self, user: str, seats: tuple[str, ...]) -> Placed:
        """Hold and confirm straight away, so that there are bookings to cancel."""
        hold = self.run(HoldSeats(self.fresh("h"), user, seats, admitted=True))
        if hold is None:
            return multiple()
        booking = self.run(Confirm(hold.hold_id, user, self.fresh("b")))
        assert booking is not None and booking.seats == hold.seats
        return multiple((booking.booking_id, user))

    @rule(booking=bookings, hold=holds, actor=actors)
    def confirm_reusing_a_booking_id(
        self, booking: tuple[str, str], hold: tuple[str, str], actor: str
    ) -> None:
        self.run(Confirm(hold[0], self.who(actor, hold), booking[0]))

    @rule(booking=bookings, actor=st.one_of(actors, st.none()))
    def cancel(self, booking: tuple[str, str], actor: str | None) -> None:
        self.run(Cancel(booking[0], None if actor is None else self.who(actor, booking)))

    @rule(seats=st.lists(st.sampled_from([*LABELS, "Z9"]), max_size=2).map(tuple))
    def block(self, seats: tuple[str, ...]) -> None:
        if self.run(Block(seats)) is not None:
            self.admin_blocked.update(seats)

    @rule(seats=seat_lists)
    def unblock(self, seats: tuple[str, ...]) -> None:
        if self.run(Unblock(seats)) is not None:
            self.admin_blocked.difference_update(seats)

    @precondition(lambda self: self.admin_blocked)
    @rule(data=st.data())
    def unblock_blocked_seats(self, data: st.DataObject) -> None:
        blocked = sorted(self.admin_blocked)
        seats = data.draw(st.lists(st.sampled_from(blocked), min_size=1, unique=True))
        if self.run(Unblock(tuple(seats))) is not None:
            self.admin_blocked.difference_update(seats)

    @rule(status=statuses)
    def set_status(self, status: str) -> None:
        self.run(SetStatus(status))

    @rule()
    def expire(self) -> None:
        for hold in self.run(Expire()):
            assert hold.expires_at <= self.now

    @rule()
    def restart(self) -> None:
        """Recover from the current state, as the actor does from Postgres."""
        snapshot = self.seatmap.snapshot()
        self.seatmap = SeatMap.restore(
            "show",
            LAYOUT,
            prices=PRICES,
            status=snapshot.status,
            version=snapshot.version,
            holds=snapshot.holds,
            bookings=snapshot.bookings,
            blocked=self.admin_blocked,
            now=self.op_now,
            **SETTINGS,
        )
        assert self.seatmap.snapshot() == snapshot

    def check_companions(self, user: str, seats: tuple[str, ...]) -> None:
        """Each companion seat sits next to a wheelchair space the user holds or owns."""
        mine = {label for r in records(self.seatmap) if r.user_id == user for label in r.seats}
        for label in seats:
            if LAYOUT.seat(label).category == "companion":
                assert any(
                    LAYOUT.seat(other).category == "wheelchair" and other in mine
                    for other in LAYOUT.neighbours(label)
                )

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def seat_states_match_their_claims(self) -> None:
        snapshot = self.seatmap.snapshot()
        held = [label for hold in snapshot.holds for label in hold.seats]
        booked = [label for booking in snapshot.bookings for label in booking.seats]
        assert len(set(held) | set(booked)) == len(held) + len(booked)  # one claim per seat
        for spec in LAYOUT:
            state = snapshot.seats[spec.label]
            if spec.label in held:
                assert state is SeatState.HELD
            elif spec.label in booked:
                assert state is SeatState.BOOKED
            elif spec.out_of_service or spec.label in self.admin_blocked:
                assert state is SeatState.BLOCKED
            else:
                assert state is SeatState.AVAILABLE

    @invariant()
    def no_due_hold_survives_an_operation(self) -> None:
        for hold in self.seatmap.holds.values():
            assert self.op_now < hold.expires_at <= hold.created_at + LIFETIME

    @invariant()
    def users_stay_under_the_cap(self) -> None:
        owned: Counter[str] = Counter()
        for record in records(self.seatmap):
            owned[record.user_id] += len(record.seats)
        assert all(count <= CAP for count in owned.values())
        assert all(self.seatmap.seats_of(user) == count for user, count in owned.items())

    @invariant()
    def prices_are_the_sum_of_seat_prices(self) -> None:
        for record in records(self.seatmap):
            assert record.price_cents == sum(
                PRICES[LAYOUT.seat(label).category] for label in record.seats
            )

    @invariant()
    def replaying_deltas_gives_the_current_snapshot(self) -> None:
        assert self.replayed == self.seatmap.snapshot()


def records(seatmap: SeatMap) -> list[Hold | Booking]:
    """The live holds and bookings of the map."""
    return [*seatmap.holds.values(), *seatmap.bookings.values()]


def check_best(hold: Hold, count: int, category: str, split: bool) -> None:
    specs = [LAYOUT.seat(label) for label in hold.seats]
    assert len(specs) == count
    if category == "wheelchair":
        assert {spec.category for spec in specs} <= {"wheelchair", "companion"}
        assert any(spec.category == "wheelchair" for spec in specs)
    else:
        assert all(spec.category == category for spec in specs)
    if not split:
        for left, right in zip(hold.seats, hold.seats[1:], strict=False):
            assert right in LAYOUT.neighbours(left)


def new_orphans(before: dict[str, SeatState], after: dict[str, SeatState]) -> set[str]:
    """Seats stranded alone (a free seat with no free neighbour) after but not before."""

    def orphans(states: dict[str, SeatState]) -> set[str]:
        free = {label for label, state in states.items() if state is SeatState.AVAILABLE}
        return {label for label in free if not free & set(LAYOUT.neighbours(label))}

    return orphans(after) - orphans(before)


SeatMapMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSeatMapMachine = SeatMapMachine.TestCase
