"""SeatMap by example: every operation, every refusal."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import pytest

from actors import errors
from actors.commands import (
    Block,
    Cancel,
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
    BookingError,
    BookingNotFound,
    BookingNotYours,
    CompanionWithoutWheelchair,
    ExtendLimitReached,
    HoldExpired,
    HoldNotFound,
    HoldNotYours,
    InconsistentState,
    InvalidRequest,
    LayoutError,
    NoSeatsAvailable,
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
    Hold,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PaymentStarted,
    PricesChanged,
    SeatsBlocked,
    SeatsUnblocked,
    StatusChanged,
    apply_delta,
)
from actors.layout import Layout, SeatState
from actors.seatmap import SeatMap
from tests.unit.plans import plan

AVAILABLE, HELD, BOOKED, BLOCKED = (
    SeatState.AVAILABLE,
    SeatState.HELD,
    SeatState.BOOKED,
    SeatState.BLOCKED,
)
PRICES = {"standard": 1000, "premium": 1500, "wheelchair": 800, "companion": 800}
T0 = 1_000_000.0


LAYOUT = plan("WCSS|SSSS", "SSSX|SSSS", "PPPP|PPPP")


def make(**settings: Any) -> SeatMap:
    return SeatMap("show-1", LAYOUT, prices=PRICES, **settings)


def held(seatmap: SeatMap, user: str, *seats: str, hold_id: str = "h1", now: float = T0) -> Hold:
    return seatmap.hold(HoldSeats(hold_id, user, seats), now)


def booked(seatmap: SeatMap, user: str, *seats: str, hold_id: str = "h1") -> Booking:
    held(seatmap, user, *seats, hold_id=hold_id)
    return seatmap.confirm(Confirm(hold_id, user, f"b-{hold_id}"), T0 + 1)


def refused(seatmap: SeatMap, error: type[BookingError], command: Any, now: float = T0) -> None:
    """The command is refused with ``error`` and changes nothing (events pulled so far are
    dropped; the expiry that runs first is done beforehand)."""
    seatmap.expire(now)
    seatmap.pull_events()
    before = seatmap.snapshot()
    with pytest.raises(error):
        seatmap.execute(command, now)
    assert seatmap.snapshot() == before
    assert seatmap.pull_events() == []


# -- layout -----------------------------------------------------------------------------------


def test_layout_lookup_rows_and_neighbours() -> None:
    assert LAYOUT.rows == ("A", "B", "C")
    assert LAYOUT.seat("A5").position == 4
    assert [s.label for s in LAYOUT.row_seats("B")][:3] == ["B1", "B2", "B3"]
    assert LAYOUT.neighbours("A2") == ("A1", "A3")
    assert LAYOUT.neighbours("A4") == ("A3",)  # aisle after A4
    assert LAYOUT.neighbours("A5") == ("A6",)
    assert "Z9" not in LAYOUT
    assert len(LAYOUT) == 24


def test_layout_from_dict_round_trip_and_defaults() -> None:
    data = {
        "rows": [
            {"label": "A", "seats": [{"label": "A1", "category": "standard", "x": 0, "y": 0}]},
            {
                "label": "B",
                "seats": [
                    {"label": "B1", "category": "wheelchair", "x": 0, "y": 3, "aisle_after": True},
                    {"label": "B2", "category": "companion", "x": 1, "y": 3},
                ],
            },
        ]
    }
    layout = Layout.from_dict(data)
    assert layout.sweet_spot == pytest.approx((1 / 3, 2.0))
    assert layout.neighbours("B1") == ()
    assert Layout.from_dict(layout.to_dict()) == layout
    spotted = Layout.from_dict({**data, "sweet_spot": {"x": 5, "y": 6}})
    assert spotted.sweet_spot == (5.0, 6.0)
    assert pickle.loads(pickle.dumps(layout)) == layout


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        {"rows": []},
        {"rows": [{"label": "A"}]},
        {"rows": [{"label": "A", "seats": [{"label": "A1", "category": "vip", "x": 0, "y": 0}]}]},
        {"rows": [{"label": "A", "seats": [{"label": "A1", "category": "standard", "x": "0"}]}]},
        {"rows": [{"label": "A", "seats": [{"label": "A1", "category": "standard", "x": 0}]}]},
        {"rows": [{"label": "A", "seats": ["A1"]}]},
        {"rows": [{"label": "A", "seats": [{"label": "A1", "category": "standard", "x": True}]}]},
        {
            "rows": [
                {"label": "A", "seats": [{"label": "A1", "category": "standard", "x": 0, "y": 0}]},
                {"label": "B", "seats": [{"label": "A1", "category": "standard", "x": 0, "y": 1}]},
            ]
        },
        {
            "rows": [
                {"label": "A", "seats": [{"label": "A1", "category": "standard", "x": 0, "y": 0}]}
            ],
            "sweet_spot": [1, 2],
        },
    ],
)
def test_layout_rejects_malformed_input(data: Any) -> None:
    with pytest.raises(LayoutError):
        Layout.from_dict(data)


def test_out_of_service_seats_start_blocked() -> None:
    seatmap = make()
    assert seatmap.seat_state("B4") is BLOCKED
    assert seatmap.seat_state("B3") is AVAILABLE


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        SeatMap("s", LAYOUT, prices={"standard": 1})
    with pytest.raises(InvalidRequest):
        make(status="sold_out")
    with pytest.raises(InvalidRequest):
        make(hold_ttl=0)
    with pytest.raises(InvalidRequest):
        make(max_seats_per_user=0)


# -- holds ------------------------------------------------------------------------------------


def test_hold_explicit_seats() -> None:
    seatmap = make()
    hold = held(seatmap, "alice", "C1", "C2")
    assert hold == Hold("h1", "alice", ("C1", "C2"), 3000, T0 + 300, T0, False)
    assert seatmap.seat_state("C1") is HELD
    assert seatmap.version == 1
    assert seatmap.pull_events() == [
        HoldPlaced(
            show_id="show-1",
            version=1,
            at=T0,
            changes=(("C1", HELD), ("C2", HELD)),
            hold=hold,
        )
    ]
    assert seatmap.pull_events() == []


def test_hold_best_available() -> None:
    seatmap = make()
    hold = seatmap.hold(HoldBest("h1", "alice", 2, "premium"), T0)
    assert len(hold.seats) == 2
    assert all(LAYOUT.seat(label).category == "premium" for label in hold.seats)
    assert hold.price_cents == 3000
    assert all(seatmap.seat_state(label) is HELD for label in hold.seats)


def test_a_hold_is_charged_the_quote_it_brings_and_keeps_its_arm() -> None:
    seatmap = make()
    quote = (("premium", 1650), ("standard", 1100))
    hold = seatmap.hold(
        HoldSeats("h1", "alice", ("C1", "A3"), prices=quote, price_arm="dynamic"), T0
    )
    assert hold.price_cents == 1650 + 1100
    assert hold.price_arm == "dynamic"
    seatmap.set_prices({**PRICES, "premium": 900}, T0 + 1)  # a later price change: no effect
    booking = seatmap.confirm(Confirm("h1", "alice", "b1"), T0 + 2)
    assert (booking.price_cents, booking.price_arm) == (2750, "dynamic")
    best = seatmap.hold(HoldBest("h2", "bob", 2, "premium", prices=(("premium", 1200),)), T0 + 3)
    assert best.price_cents == 2400 and best.price_arm == "control"


def test_a_quote_beyond_the_surge_cap_or_missing_a_category_is_refused() -> None:
    seatmap = make()
    over = (("standard", 2 * PRICES["standard"] + 1),)
    refused(seatmap, InvalidRequest, HoldSeats("h1", "alice", ("A3",), prices=over))
    partial = (("standard", 1000),)
    refused(seatmap, InvalidRequest, HoldSeats("h1", "alice", ("A3", "C1"), prices=partial))
    refused(seatmap, InvalidRequest, HoldSeats("h1", "alice", ("A3",), prices=(("standard", -1),)))
    refused(seatmap, InvalidRequest, HoldSeats("h1", "alice", ("A3",), price_arm="vip"))
    at_cap = (("standard", 2 * PRICES["standard"]),)
    assert seatmap.hold(HoldSeats("h1", "alice", ("A3",), prices=at_cap), T0).price_cents == 2000


def test_hold_is_all_or_nothing() -> None:
    seatmap = make()
    held(seatmap, "alice", "A5")
    refused(seatmap, SeatUnavailable, HoldSeats("h2", "bob", ("A6", "A5")))
    assert seatmap.seat_state("A6") is AVAILABLE


def test_hold_refusals() -> None:
    seatmap = make()
    held(seatmap, "alice", "A5")
    refused(seatmap, InvalidRequest, HoldSeats("h2", "bob", ()))
    refused(seatmap, InvalidRequest, HoldSeats("h2", "bob", ("A6", "A6")))
    refused(seatmap, InvalidRequest, HoldSeats("h1", "bob", ("A6",)))  # hold id in use
    refused(seatmap, InvalidRequest, HoldSeats("", "bob", ("A6",)))
    refused(seatmap, UnknownSeat, HoldSeats("h2", "bob", ("A6", "Z1")))
    refused(seatmap, SeatUnavailable, HoldSeats("h2", "bob", ("B4",)))  # out of service
    refused(seatmap, InvalidRequest, HoldBest("h2", "bob", 0, "standard"))
    refused(seatmap, InvalidRequest, HoldBest("h2", "bob", 1, "balcony"))
    refused(seatmap, NoSeatsAvailable, HoldBest("h2", "bob", 5, "standard"))
    refused(seatmap, CompanionWithoutWheelchair, HoldBest("h2", "bob", 1, "companion"))


def test_holds_only_while_on_sale() -> None:
    seatmap = make(status="scheduled")
    refused(seatmap, ShowNotOnSale, HoldSeats("h1", "alice", ("A5",)))
    seatmap.set_status("flash_sale", T0)
    # In a flash sale, only holds the gateway marked as admitted (by the waiting room).
    refused(seatmap, AdmissionRequired, HoldSeats("h1", "alice", ("A5",)))
    refused(seatmap, AdmissionRequired, HoldBest("h1", "alice", 1, "standard"))
    assert seatmap.hold(HoldSeats("h1", "alice", ("A5",), admitted=True), T0).seats == ("A5",)
    seatmap.set_status("on_sale", T0)
    assert held(seatmap, "bob", "A6", hold_id="h2").seats == ("A6",)


def test_new_prices_apply_to_new_holds_only() -> None:
    seatmap = make()
    before = held(seatmap, "alice", "A5", "A6")
    assert before.price_cents == 2000
    new = {**PRICES, "standard": 1250}
    assert seatmap.execute(SetPrices(tuple(new.items())), T0) == new
    (event,) = [e for e in seatmap.pull_events() if isinstance(e, PricesChanged)]
    assert dict(event.prices) == new and event.changes == ()
    assert held(seatmap, "bob", "A7", hold_id="h2").price_cents == 1250
    assert seatmap.holds["h1"].price_cents == 2000  # the quote stays
    refused(seatmap, InvalidRequest, SetPrices((("standard", 1000),)))  # categories missing
    refused(seatmap, InvalidRequest, SetPrices(tuple({**new, "recliner": 9}.items())))
    refused(seatmap, InvalidRequest, SetPrices(tuple({**new, "premium": -1}.items())))


def test_seat_cap_counts_holds_and_bookings() -> None:
    seatmap = make(max_seats_per_user=4)
    booked(seatmap, "alice", "C1", "C2", hold_id="h1")
    held(seatmap, "alice", "C5", hold_id="h2")
    refused(seatmap, TooManySeats, HoldSeats("h3", "alice", ("A5", "A6")))
    refused(seatmap, TooManySeats, HoldBest("h3", "alice", 2, "standard"))
    assert held(seatmap, "alice", "A5", hold_id="h3").seats == ("A5",)
    assert seatmap.seats_of("alice") == 4
    assert held(seatmap, "bob", "A6", "A7", hold_id="h4").user_id == "bob"


def test_companion_needs_an_adjacent_wheelchair_space() -> None:
    seatmap = make()
    refused(seatmap, CompanionWithoutWheelchair, HoldSeats("h1", "alice", ("A2",)))
    assert held(seatmap, "alice", "A1", "A2").seats == ("A1", "A2")


def test_companion_next_to_the_users_own_wheelchair_space() -> None:
    seatmap = make()
    held(seatmap, "alice", "A1", hold_id="h1")
    refused(seatmap, CompanionWithoutWheelchair, HoldSeats("h2", "bob", ("A2",)))
    assert held(seatmap, "alice", "A2", hold_id="h2").seats == ("A2",)


def test_companion_is_not_confirmed_after_its_wheelchair_space_is_released() -> None:
    seatmap = make()
    held(seatmap, "alice", "A1", hold_id="h1")
    held(seatmap, "alice", "A2", hold_id="h2")
    seatmap.release(Release("h1", "alice"), T0)
    refused(seatmap, CompanionWithoutWheelchair, Confirm("h2", "alice", "b2"))


def test_wheelchair_best_available_takes_companions_along() -> None:
    seatmap = make()
    hold = seatmap.hold(HoldBest("h1", "alice", 2, "wheelchair"), T0)
    assert set(hold.seats) == {"A1", "A2"}


# -- release, extend, payment -------------------------------------------------------------------


def test_release() -> None:
    seatmap = make()
    hold = held(seatmap, "alice", "A5", "A6")
    assert seatmap.release(Release("h1", "alice"), T0 + 10) == hold
    assert seatmap.seat_state("A5") is AVAILABLE
    event = seatmap.pull_events()[-1]
    assert isinstance(event, HoldReleased)
    assert (event.reason, event.version, event.changes) == (
        "released",
        2,
        (("A5", AVAILABLE), ("A6", AVAILABLE)),
    )


def test_release_refusals() -> None:
    seatmap = make()
    held(seatmap, "alice", "A5")
    refused(seatmap, HoldNotYours, Release("h1", "bob"))
    refused(seatmap, HoldNotFound, Release("nope", "alice"))
    seatmap.expire(T0 + 300)
    refused(seatmap, HoldExpired, Release("h1", "alice"), now=T0 + 300)


def test_extend_pushes_expiry_up_to_the_lifetime_cap() -> None:
    seatmap = make(hold_ttl=300, max_hold_lifetime=700)
    held(seatmap, "alice", "A5")
    assert seatmap.extend(Extend("h1", "alice"), T0 + 200).expires_at == T0 + 500
    assert seatmap.extend(Extend("h1", "alice"), T0 + 450).expires_at == T0 + 700
    event = seatmap.pull_events()[-1]
    assert isinstance(event, HoldExtended)
    assert event.changes == ()
    refused(seatmap, ExtendLimitReached, Extend("h1", "alice"), now=T0 + 600)
    refused(seatmap, HoldNotYours, Extend("h1", "bob"), now=T0 + 600)


def test_start_payment_moves_expiry_and_still_allows_release() -> None:
    seatmap = make(hold_ttl=300, payment_ttl=600, max_hold_lifetime=1200)
    held(seatmap, "alice", "A5")
    hold = seatmap.start_payment(StartPayment("h1", "alice"), T0 + 100)
    assert (hold.payment_started, hold.expires_at) == (True, T0 + 700)
    assert isinstance(seatmap.pull_events()[-1], PaymentStarted)
    refused(seatmap, InvalidRequest, StartPayment("h1", "alice"), now=T0 + 200)
    refused(seatmap, HoldNotYours, StartPayment("h1", "bob"), now=T0 + 200)
    assert seatmap.release(Release("h1", "alice"), T0 + 300).hold_id == "h1"


def test_start_payment_is_capped_by_the_lifetime() -> None:
    seatmap = make(hold_ttl=300, payment_ttl=600, max_hold_lifetime=800)
    held(seatmap, "alice", "A5")
    hold = seatmap.start_payment(StartPayment("h1", "alice"), T0 + 250)
    assert hold.expires_at == T0 + 800


# -- confirm and cancel -------------------------------------------------------------------------


def test_confirm() -> None:
    seatmap = make()
    hold = held(seatmap, "alice", "C3", "C4")
    booking = seatmap.confirm(Confirm("h1", "alice", "b1"), T0 + 60)
    assert booking == Booking("b1", "h1", "alice", ("C3", "C4"), 3000, T0 + 60, False)
    assert seatmap.seat_state("C3") is BOOKED
    assert "h1" not in seatmap.holds and seatmap.bookings["b1"] == booking
    event = seatmap.pull_events()[-1]
    assert isinstance(event, BookingConfirmed)
    assert event.booking.hold_id == hold.hold_id
    assert event.changes == (("C3", BOOKED), ("C4", BOOKED))


def test_confirm_refusals() -> None:
    seatmap = make()
    booked(seatmap, "alice", "C1", hold_id="h0")
    held(seatmap, "alice", "C3")
    refused(seatmap, HoldNotYours, Confirm("h1", "bob", "b1"))
    refused(seatmap, HoldNotFound, Confirm("h9", "alice", "b1"))
    refused(seatmap, InvalidRequest, Confirm("h1", "alice", "b-h0"))  # booking id in use
    seatmap.set_status("cancelled", T0)
    refused(seatmap, ShowNotOnSale, Confirm("h1", "alice", "b1"))
    refused(seatmap, ShowNotOnSale, Extend("h1", "alice"))


def test_an_expired_hold_is_never_confirmable() -> None:
    seatmap = make(hold_ttl=300)
    held(seatmap, "alice", "C3")
    with pytest.raises(HoldExpired):
        seatmap.confirm(Confirm("h1", "alice", "b1"), T0 + 300)
    assert seatmap.seat_state("C3") is AVAILABLE
    # the expiry itself was a real change, recorded before the refusal
    assert [type(e) for e in seatmap.pull_events()] == [HoldPlaced, HoldReleased]


def test_every_operation_first_expires_due_holds() -> None:
    seatmap = make(hold_ttl=300)
    held(seatmap, "alice", "C3")
    hold = held(seatmap, "bob", "C3", hold_id="h2", now=T0 + 301)
    assert hold.user_id == "bob"
    events = seatmap.pull_events()
    assert [(type(e), e.version) for e in events] == [
        (HoldPlaced, 1),
        (HoldReleased, 2),
        (HoldPlaced, 3),
    ]
    assert isinstance(events[1], HoldReleased) and events[1].reason == "expired"


def test_cancel_by_owner_and_by_admin() -> None:
    seatmap = make()
    booked(seatmap, "alice", "C1", "C2", hold_id="h1")
    booked(seatmap, "bob", "C5", hold_id="h2")
    cancelled = seatmap.cancel(Cancel("b-h1", "alice"), T0 + 5)
    assert cancelled.cancelled and cancelled.booking_id == "b-h1"
    assert seatmap.seat_state("C1") is AVAILABLE
    event = seatmap.pull_events()[-1]
    assert isinstance(event, BookingCancelled)
    assert (event.by, event.changes) == ("alice", (("C1", AVAILABLE), ("C2", AVAILABLE)))
    assert seatmap.cancel(Cancel("b-h2", None), T0 + 5).user_id == "bob"
    assert seatmap.bookings == {}


def test_cancel_refusals() -> None:
    seatmap = make()
    booked(seatmap, "alice", "C1")
    refused(seatmap, BookingNotYours, Cancel("b-h1", "bob"))
    refused(seatmap, BookingNotFound, Cancel("b-zz", None))


# -- blocks, status, expiry ------------------------------------------------------------------


def test_block_and_unblock() -> None:
    seatmap = make()
    assert seatmap.block(Block(("A7", "A8")), T0) == ("A7", "A8")
    assert seatmap.seat_state("A7") is BLOCKED
    [blocked] = seatmap.pull_events()
    assert isinstance(blocked, SeatsBlocked) and blocked.seats == ("A7", "A8")
    refused(seatmap, SeatUnavailable, HoldSeats("h1", "alice", ("A7",)))
    assert seatmap.unblock(Unblock(("A7",)), T0) == ("A7",)
    assert seatmap.seat_state("A7") is AVAILABLE
    [unblocked] = seatmap.pull_events()
    assert isinstance(unblocked, SeatsUnblocked)
    assert unblocked.changes == (("A7", AVAILABLE),)


def test_block_and_unblock_refusals() -> None:
    seatmap = make()
    held(seatmap, "alice", "A5")
    booked(seatmap, "alice", "A6", hold_id="h2")
    refused(seatmap, SeatUnavailable, Block(("A7", "A5")))  # held
    refused(seatmap, SeatUnavailable, Block(("A6",)))  # booked
    refused(seatmap, SeatUnavailable, Block(("B4",)))  # already blocked
    refused(seatmap, UnknownSeat, Block(("Q1",)))
    refused(seatmap, SeatNotBlocked, Unblock(("A7",)))
    refused(seatmap, SeatNotBlocked, Unblock(("B4",)))  # out of service stays blocked


def test_set_status() -> None:
    seatmap = make()
    assert seatmap.execute(SetStatus("scheduled"), T0) == "scheduled"
    event = seatmap.pull_events()[-1]
    assert isinstance(event, StatusChanged)
    assert (event.previous, event.status, event.version) == ("on_sale", "scheduled", 1)
    refused(seatmap, InvalidRequest, SetStatus("scheduled"))
    refused(seatmap, InvalidRequest, SetStatus("sold_out"))
    seatmap.set_status("cancelled", T0)
    refused(seatmap, InvalidRequest, SetStatus("on_sale"))


def test_expire_releases_due_holds_one_version_each() -> None:
    seatmap = make(hold_ttl=300)
    held(seatmap, "alice", "A5", hold_id="h1", now=T0)
    held(seatmap, "bob", "A7", hold_id="h2", now=T0 + 10)
    held(seatmap, "carol", "C1", hold_id="h3", now=T0 + 100)
    seatmap.pull_events()
    expired = seatmap.expire(T0 + 310)
    assert [h.hold_id for h in expired] == ["h1", "h2"]
    events = seatmap.pull_events()
    assert [(e.version, e.reason) for e in events if isinstance(e, HoldReleased)] == [
        (4, "expired"),
        (5, "expired"),
    ]
    assert seatmap.expire(T0 + 310) == []
    assert seatmap.version == 5


def test_execute_dispatches_every_command() -> None:
    seatmap = make()
    assert isinstance(seatmap.execute(HoldSeats("h1", "a", ("A5",)), T0), Hold)
    assert isinstance(seatmap.execute(HoldBest("h2", "a", 2, "premium"), T0), Hold)
    assert seatmap.execute(Extend("h1", "a"), T0 + 100).expires_at == T0 + 400  # type: ignore[union-attr]
    assert seatmap.execute(StartPayment("h1", "a"), T0 + 100).payment_started  # type: ignore[union-attr]
    assert isinstance(seatmap.execute(Confirm("h1", "a", "b1"), T0 + 100), Booking)
    assert isinstance(seatmap.execute(Cancel("b1", "a"), T0 + 100), Booking)
    assert isinstance(seatmap.execute(Release("h2", "a"), T0 + 100), Hold)
    assert seatmap.execute(Block(("A8",)), T0) == ("A8",)
    assert seatmap.execute(Unblock(("A8",)), T0) == ("A8",)
    assert seatmap.execute(SetStatus("scheduled"), T0) == "scheduled"
    assert seatmap.execute(Expire(), T0) == []
    assert seatmap.version == 10
    with pytest.raises(InvalidRequest):
        seatmap.execute("hold please", T0)  # type: ignore[arg-type]


# -- snapshots, deltas, recovery -------------------------------------------------------------


def test_snapshot_replay_and_gap_detection() -> None:
    seatmap = make()
    first = seatmap.snapshot()
    booked(seatmap, "alice", "C1", "C2")
    held(seatmap, "bob", "A5", hold_id="h2")
    seatmap.block(Block(("A8",)), T0)
    events = seatmap.pull_events()
    replayed = first
    seats = dict(first.seats)
    for event in events:
        replayed = replayed.apply(event)
        seats = apply_delta(seats, event)
    assert replayed == seatmap.snapshot()
    assert seats == seatmap.snapshot().seats
    with pytest.raises(InconsistentState):
        first.apply(events[1])
    assert pickle.loads(pickle.dumps(replayed)) == replayed


def test_restore_rebuilds_state() -> None:
    seatmap = make()
    booked(seatmap, "alice", "C1", "C2", hold_id="h1")
    held(seatmap, "bob", "A5", hold_id="h2", now=T0)
    held(seatmap, "carol", "A7", hold_id="h3", now=T0 + 200)
    seatmap.block(Block(("A8",)), T0)
    snap = seatmap.snapshot()
    restored = SeatMap.restore(
        "show-1",
        LAYOUT,
        prices=PRICES,
        status="on_sale",
        version=snap.version,
        holds=snap.holds,
        bookings=[*snap.bookings, replace(snap.bookings[0], booking_id="old", cancelled=True)],
        blocked=["A8", "B4"],
        now=T0 + 300,
    )
    assert set(restored.holds) == {"h3"}  # h2 expired at T0 + 300 and is dropped
    assert restored.seat_state("A5") is AVAILABLE
    assert restored.seat_state("A8") is BLOCKED and restored.seat_state("B4") is BLOCKED
    assert restored.bookings == seatmap.bookings
    assert restored.pull_events() == [] and restored.version == snap.version
    with pytest.raises(HoldExpired):
        restored.confirm(Confirm("h2", "bob", "b2"), T0 + 300)
    assert restored.unblock(Unblock(("A8",)), T0 + 300) == ("A8",)


def restore(**state: Any) -> SeatMap:
    defaults: dict[str, Any] = {"holds": (), "bookings": (), "blocked": ()}
    return SeatMap.restore(
        "show-1",
        LAYOUT,
        prices=PRICES,
        status="on_sale",
        version=7,
        now=T0,
        **{**defaults, **state},
    )


def test_restore_refuses_inconsistent_state() -> None:
    hold = Hold("h1", "alice", ("A5",), 1000, T0 + 100, T0)
    booking = Booking("b1", "h0", "bob", ("A5",), 1000, T0)
    with pytest.raises(InconsistentState):
        restore(holds=[hold], bookings=[booking])
    with pytest.raises(InconsistentState):
        restore(holds=[hold], blocked=["A5"])
    with pytest.raises(InconsistentState):
        restore(holds=[hold, replace(hold, seats=("A6",))])
    with pytest.raises(InconsistentState):
        restore(blocked=["Q7"])


def test_restore_lets_a_booking_win_over_an_out_of_service_seat() -> None:
    booking = Booking("b1", "h0", "bob", ("B4",), 1000, T0)
    seatmap = restore(bookings=[booking])
    assert seatmap.seat_state("B4") is BOOKED
    seatmap.cancel(Cancel("b1", None), T0)
    assert seatmap.seat_state("B4") is BLOCKED


# -- errors and records -------------------------------------------------------------------------

ERRORS = [
    cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, BookingError)
]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_errors_pickle_with_type_message_and_details(cls: type[BookingError]) -> None:
    err = cls("something is wrong", {"seats": ["A1"], "limit": 4})
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert (str(copy), copy.message, copy.details) == (str(err), err.message, err.details)
    assert pickle.loads(pickle.dumps(cls("bare"))).details == {}


def test_error_codes_are_unique_and_snake_case() -> None:
    codes = [cls.code for cls in ERRORS]
    assert len(set(codes)) == len(codes) == len(errors.__all__)
    assert all(code.isidentifier() and code.islower() for code in codes)


def test_records_and_events_pickle() -> None:
    seatmap = make()
    booked(seatmap, "alice", "C1")
    for event in seatmap.pull_events():
        assert pickle.loads(pickle.dumps(event)) == event
    assert pickle.loads(pickle.dumps(seatmap)).snapshot() == seatmap.snapshot()
