"""The fault run's history checker and report, on small histories made by hand: a consistent
one passes every check; each way of breaking it fires its own check and no other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.faults import checker
from loadtest.faults.checker.confirmations import confirmation_lost
from loadtest.faults.checker.holds import hold_overdue, hold_vanished
from loadtest.faults.checker.money import payment_double, payment_unsettled
from loadtest.faults.checker.seats import seat_in_two_bookings
from loadtest.faults.checker.verdict import LISTED_PER_CHECK, violation_counts
from loadtest.faults.checker.watchers import watcher_diverged
from loadtest.faults.model import FAULT_KINDS, Call, Fault, FinalState, History, Watcher
from loadtest.faults.report import write_report

T0 = 1_700_000_000.0
SEATS = {"A1": "booked", "A2": "booked", "A3": "available", "A4": "available"}


def call(client: str, op: str, at: float, status: int | None, **extra: Any) -> Call:
    """A call made ``at`` seconds into the run, answered 0.1 s later."""
    return Call(client, op, T0 + at, T0 + at + 0.1, status, **extra)


def hold_row(hold_id: str, status: str, created: float, ended: float | None) -> dict[str, Any]:
    return {
        "hold_id": hold_id,
        "show_id": 1,
        "user_id": 1,
        "seats": ["A1"],
        "status": status,
        "created_at": T0 + created,
        "expires_at": T0 + created + 15,
        "ended_at": None if ended is None else T0 + ended,
    }


def make_history() -> History:
    """Two customers book (one cancels, refunded), one releases a hold, one rides out a gateway
    kill; a visitor is admitted and lets its hold expire; two watchers end in step."""
    calls = [
        call("customer-1", "hold", 1, 201, show_id=1, ids={"hold_id": "h1"}),
        call("customer-1", "checkout", 1.5, 201, ids={"payment_id": "p1"}),
        call(
            "customer-1",
            "pay",
            2,
            200,
            ids={"payment_id": "p1"},
            body={"status": "booked", "booking_id": "b1"},
        ),
        call(
            "customer-1",
            "booking",
            2.5,
            200,
            ids={"booking_id": "b1"},
            body={"status": "confirmed"},
        ),
        call("customer-2", "hold", 2, 201, show_id=1, ids={"hold_id": "h2"}),
        call("customer-2", "release", 2.5, 204, ids={"hold_id": "h2"}),
        call("customer-2", "hold", 3, 201, show_id=1, ids={"hold_id": "h3"}),
        call(
            "customer-2",
            "payment_status",
            3.5,
            200,
            ids={"payment_id": "p2"},
            body={"status": "booked", "booking_id": "b2"},
        ),
        call(
            "customer-2",
            "cancel",
            4,
            200,
            ids={"booking_id": "b2"},
            body={"booking": {"booking_id": "b2", "status": "cancelled"}},
        ),
        call("visitor-1", "queue_join", 1, 200, show_id=2),
        call("visitor-1", "queue_poll", 2, 200, show_id=2, ids={"admission": "d1"}),
        call(
            "visitor-1", "queue_hold", 3, 201, show_id=2, ids={"hold_id": "h4", "admission": "d1"}
        ),
        call("customer-3", "hold", 5, None, show_id=1, code="ClientConnectionError"),
        call("customer-3", "hold", 5.5, 503, show_id=1, code="unavailable", attempt=2),
        call("customer-3", "hold", 7.5, 201, show_id=1, attempt=3, ids={"hold_id": "h5"}),
        call("customer-3", "release", 8, 204, ids={"hold_id": "h5"}),
        call("watcher-1", "seatmap", 6, None),  # a watcher's outage is not a customer's
    ]
    final = FinalState(
        taken_at=T0 + 40,
        hold_slack_s=2.0,
        holds=[
            hold_row("h1", "confirmed", 1, 2),
            hold_row("h2", "released", 2, 2.5),
            hold_row("h3", "confirmed", 3, 3.5),
            {**hold_row("h4", "expired", 3, 18.5), "show_id": 2},
            hold_row("h5", "released", 7.5, 8),
        ],
        bookings=[
            {
                "booking_id": "b1",
                "show_id": 1,
                "user_id": 1,
                "hold_id": "h1",
                "seats": ["A1", "A2"],
                "status": "confirmed",
            },
            {
                "booking_id": "b2",
                "show_id": 1,
                "user_id": 2,
                "hold_id": "h3",
                "seats": ["A4"],
                "status": "cancelled",
            },
        ],
        payments=[
            {
                "payment_id": "p1",
                "hold_id": "h1",
                "booking_id": "b1",
                "user_id": 1,
                "provider_ref": "pi_1",
                "status": "booked",
                "amount_cents": 2000,
            },
            {
                "payment_id": "p2",
                "hold_id": "h3",
                "booking_id": "b2",
                "user_id": 2,
                "provider_ref": "pi_2",
                "status": "booked",
                "amount_cents": 1000,
            },
        ],
        refunds=[
            {
                "refund_id": "r2",
                "payment_id": "p2",
                "booking_id": "b2",
                "reason": "customer_cancel",
                "status": "succeeded",
                "amount_cents": 1000,
                "provider_ref": "re_2",
            },
        ],
        webhooks=[],
        admissions=[{"show_id": 2, "user_id": 201, "number": 1}],
        snapshots={
            1: {"version": 9, "seats": dict(SEATS), "bookings": ["b1"], "holds": []},
            2: {"version": 2, "seats": {"B1": "AVAILABLE"}, "bookings": [], "holds": []},
        },
        intents=[
            {"id": "pi_1", "status": "succeeded", "amount": 2000, "amount_received": 2000},
            {"id": "pi_2", "status": "succeeded", "amount": 1000, "amount_received": 1000},
            {
                "id": "pi_3",
                "status": "requires_payment_method",
                "amount": 900,
                "amount_received": 0,
            },
        ],
        provider_refunds=[
            {"id": "re_2", "payment_intent": "pi_2", "amount": 1000, "status": "succeeded"}
        ],
    )
    return History(
        seed=7,
        started=T0,
        ended=T0 + 30,
        calls=calls,
        faults=[Fault("gateway_kill", T0 + 4.9, T0 + 7, "gateway-0 pid 1")],
        watchers=[
            Watcher("watcher-1", 1, connects=1, version=9, seats=dict(SEATS)),
            Watcher("watcher-2", 1, connects=3, version=9, seats=dict(SEATS)),
        ],
        final=final,
    )


def fired(history: History) -> set[str]:
    return {v.check for v in checker.check(history)}


def test_a_consistent_history_keeps_every_promise() -> None:
    assert checker.check(make_history()) == []


def test_a_history_without_its_final_state_is_refused_clearly() -> None:
    history = make_history()
    history.final = None
    with pytest.raises(ValueError, match="no final state"):
        checker.check(history)


# -- seats ------------------------------------------------------------------------------------


def test_a_seat_in_two_confirmed_bookings() -> None:
    history = make_history()
    assert history.final is not None
    history.final.bookings.append(
        {"booking_id": "b9", "show_id": 1, "hold_id": "h9", "seats": ["A2"], "status": "confirmed"}
    )
    assert fired(history) == {"seat_in_two_bookings"}
    (found,) = seat_in_two_bookings(history)
    assert "A2" in found.message and "b1" in found.message and "b9" in found.message


def test_an_actor_booked_seat_no_booking_holds() -> None:
    history = make_history()
    assert history.final is not None
    history.final.snapshots[1]["seats"]["A3"] = "booked"
    for watcher in history.watchers:  # they saw it too: only the seat check is about this
        watcher.seats["A3"] = "booked"
    assert fired(history) == {"seat_in_two_bookings"}


# -- confirmations ----------------------------------------------------------------------------


def test_a_confirmation_told_but_not_in_postgres() -> None:
    history = make_history()
    history.calls.append(
        call(
            "customer-4",
            "booking",
            9,
            200,
            ids={"booking_id": "b-lost"},
            body={"status": "confirmed"},
        )
    )
    assert fired(history) == {"confirmation_lost"}
    (found,) = confirmation_lost(history)
    assert "b-lost" in found.message and "customer-4" in found.message


def test_a_cancellation_told_but_still_confirmed() -> None:
    history = make_history()
    history.calls.append(
        call("customer-1", "cancel", 9, 200, body={"booking": {"booking_id": "b1"}})
    )
    assert fired(history) == {"confirmation_lost"}


@pytest.mark.parametrize("status", [None, 503, 202])
def test_a_cancel_of_unknown_outcome_allows_either_state_but_not_none(status: int | None) -> None:
    history = make_history()
    history.calls.append(call("customer-1", "cancel", 9, status, ids={"booking_id": "b1"}))
    assert fired(history) == set()
    assert history.final is not None
    history.final.bookings[0]["status"] = "cancelled"
    assert confirmation_lost(history) == []
    history.final.bookings.pop(0)
    assert [v.ids["booking_id"] for v in confirmation_lost(history)] == ["b1"]


# -- payments ---------------------------------------------------------------------------------


def test_money_captured_with_neither_booking_nor_refund() -> None:
    history = make_history()
    assert history.final is not None
    history.final.intents.append(
        {"id": "pi_9", "status": "succeeded", "amount": 500, "amount_received": 500}
    )
    history.final.payments.append(
        {
            "payment_id": "p9",
            "hold_id": "h9",
            "booking_id": None,
            "provider_ref": "pi_9",
            "status": "succeeded",
            "amount_cents": 500,
        }
    )
    assert fired(history) == {"payment_unsettled"}
    (found,) = payment_unsettled(history)
    assert "pi_9" in found.message and "neither" in found.message


def test_money_captured_with_no_payment_row() -> None:
    history = make_history()
    assert history.final is not None
    history.final.intents.append(
        {"id": "pi_8", "status": "succeeded", "amount": 500, "amount_received": 500}
    )
    assert fired(history) == {"payment_unsettled"}


def test_a_refund_row_that_says_succeeded_needs_a_refund_at_the_provider() -> None:
    history = make_history()
    assert history.final is not None
    history.final.provider_refunds.clear()
    assert fired(history) == {"payment_unsettled"}


def test_money_captured_with_both_a_booking_and_a_refund() -> None:
    history = make_history()
    assert history.final is not None
    history.final.refunds.append(
        {"refund_id": "r1", "payment_id": "p1", "booking_id": "b1", "status": "succeeded"}
    )
    history.final.provider_refunds.append({"id": "re_1", "payment_intent": "pi_1"})
    assert fired(history) == {"payment_double"}


def test_one_hold_captured_twice_and_booked_twice() -> None:
    history = make_history()
    assert history.final is not None
    history.final.intents.append(
        {"id": "pi_4", "status": "succeeded", "amount": 2000, "amount_received": 2000}
    )
    history.final.payments.append(
        {
            "payment_id": "p4",
            "hold_id": "h1",
            "booking_id": "b4",
            "provider_ref": "pi_4",
            "status": "booked",
        }
    )
    history.final.bookings.append(
        {
            "booking_id": "b4",
            "show_id": 1,
            "hold_id": "h1",
            "seats": ["A1", "A2"],
            "status": "confirmed",
        }
    )
    # Two live bookings of one hold share its seats: the seat check cannot but fire as well.
    assert fired(history) == {"payment_double", "seat_in_two_bookings"}
    assert any("hold h1" in v.message for v in payment_double(history))


# -- holds ------------------------------------------------------------------------------------


def test_a_hold_that_ended_past_its_expiry_and_the_slack() -> None:
    history = make_history()
    assert history.final is not None
    history.final.holds[3]["ended_at"] = history.final.holds[3]["expires_at"] + 2.5
    assert fired(history) == {"hold_overdue"}
    assert "h4" in hold_overdue(history)[0].message


def test_a_hold_live_at_the_end_in_postgres_or_an_actor() -> None:
    history = make_history()
    assert history.final is not None
    history.final.holds[3].update(status="live", ended_at=None)
    assert fired(history) == {"hold_live_at_end"}
    history = make_history()
    assert history.final is not None
    history.final.snapshots[1]["holds"] = ["h5"]
    assert fired(history) == {"hold_live_at_end"}


def test_a_told_hold_missing_from_postgres_with_no_crash_to_excuse_it() -> None:
    history = make_history()
    assert history.final is not None
    history.final.holds.pop()  # h5; the gateway kill around it loses no holds
    assert fired(history) == {"hold_vanished"}
    assert "h5" in hold_vanished(history)[0].message


def test_a_host_kill_just_after_the_answer_excuses_a_lost_hold() -> None:
    history = make_history()
    assert history.final is not None
    history.final.holds.pop()
    answered = T0 + 7.6
    history.faults.append(Fault("host_kill", answered + 0.5, answered + 1.5, "host-1 pid 2"))
    assert fired(history) == set()
    history.final.snapshots[1]["holds"] = ["h5"]  # but not if an actor still has it
    assert "hold_vanished" in fired(history)
    history.final.snapshots[1]["holds"] = []
    history.faults[-1] = Fault("host_kill", answered + 5, answered + 6, "host-1 pid 2")
    assert fired(history) == {"hold_vanished"}  # too late to explain it


# -- watchers and the waiting room ------------------------------------------------------------


def test_a_watcher_that_stayed_connected_and_diverged() -> None:
    history = make_history()
    history.watchers[0].seats["A3"] = "held"
    assert fired(history) == {"watcher_diverged"}
    assert "A3 held!=available" in watcher_diverged(history)[0].message


def test_a_watcher_that_reconnected_and_fell_behind() -> None:
    history = make_history()
    history.watchers[1].version = 8
    assert fired(history) == {"watcher_diverged_after_reconnect"}


def test_an_admission_twice_in_the_waiting_rooms_events() -> None:
    history = make_history()
    assert history.final is not None
    history.final.admissions.append({"show_id": 2, "user_id": 201, "number": 2})
    assert fired(history) == {"admitted_twice"}


def test_a_visitor_given_two_admissions() -> None:
    history = make_history()
    history.calls.append(
        call("visitor-1", "queue_poll", 9, 200, show_id=2, ids={"admission": "d2"})
    )
    assert fired(history) == {"admitted_twice"}


def test_many_violations_of_one_check_are_capped_but_counted() -> None:
    history = make_history()
    assert history.final is not None
    history.final.bookings += [
        {"booking_id": f"x{i}{twin}", "show_id": 1, "seats": [f"Z{i}"], "status": "confirmed"}
        for i in range(15)
        for twin in "ab"
    ]
    history.final.snapshots.clear()
    history.watchers.clear()
    found = checker.check(history)
    assert len(found) == LISTED_PER_CHECK + 1
    assert found[-1].ids == {"not_listed": 5}
    assert violation_counts(found)["seat_in_two_bookings"] == 15


# -- what customers saw -----------------------------------------------------------------------


def test_an_outage_during_a_gateway_kill_is_measured_from_first_failure_to_next_ok() -> None:
    table = checker.unavailability(make_history())
    assert set(table) == {*FAULT_KINDS, "none"}
    worst = table["gateway_kill"]
    assert worst["runs"] == 1 and worst["client"] == "customer-3" and worst["recovered"]
    assert worst["longest_s"] == pytest.approx(7.6 - 5)
    assert all(table[k]["runs"] == 0 for k in table if k != "gateway_kill")


def test_outages_are_laid_at_the_fault_whose_span_holds_their_start() -> None:
    history = make_history()
    history.calls += [
        call("customer-5", "hold", 10, 502),  # 3 s after the gateway came back: still its
        call("customer-5", "hold", 11, 201),
        call("customer-6", "seatmap", 20, None),  # long after: no fault's
        call("customer-6", "seatmap", 20.5, 429),
        call("customer-6", "hold", 21, 409),  # answered (sold out): the service is back
        call("customer-7", "seatmap", 30, None),  # never answered again
        call("customer-7", "seatmap", 31, 503),
    ]
    table = checker.unavailability(history)
    assert table["gateway_kill"]["runs"] == 2
    assert table["none"] == {
        "longest_s": pytest.approx(21.1 - 20),
        "client": "customer-6",
        "at_s": pytest.approx(20),
        "recovered": True,
        "runs": 2,
    }


def test_the_summary_counts_webhooks_received_and_processed() -> None:
    """A notification whose processing failed stays unprocessed until the provider sends it
    again (the reconciler settles its payment meanwhile): counted, not a violation."""
    history = make_history()
    final = history.final
    assert final is not None
    final.webhooks = [
        {"event_id": "evt_1", "type": "payment_intent.succeeded", "deliveries": 2, "outcome": "x"},
        {"event_id": "evt_2", "type": "payment_intent.succeeded", "deliveries": 1, "outcome": None},
    ]
    assert checker.summary(history)["webhooks"] == {"received": 2, "processed": 1}
    assert checker.check(history) == []


def test_a_call_in_flight_when_the_fault_struck_counts_for_that_fault() -> None:
    """The gateway_kill starts at 4.9 s; a payment sent at 4.8 s loses its connection: that
    outage began before the fault was recorded, and is still the fault's."""
    history = make_history()
    history.calls += [
        call("customer-9", "pay", 4.8, None, code="ServerDisconnectedError"),
        call("customer-9", "pay", 5.5, 409, code="idempotency_request_in_progress"),
        call("customer-9", "pay", 9.0, 200),
    ]
    row = checker.unavailability(history)["gateway_kill"]
    assert row["client"] == "customer-9" and row["longest_s"] == pytest.approx(9.1 - 4.8)
    assert checker.unavailability(history)["none"]["runs"] == 0


def test_the_summary_counts_operations_faults_watchers_and_violations() -> None:
    figures = checker.summary(make_history())
    assert figures["operations"]["hold"] == {"total": 6, "ok": 4, "4xx": 0, "unavailable": 2}
    assert figures["faults"]["gateway_kill"] == {"count": 1, "seconds": pytest.approx(2.1)}
    assert figures["faults"]["redis_restart"] == {"count": 0, "seconds": 0.0}
    assert figures["watchers"] == {"total": 2, "stayed_connected": 1, "reconnected": 1}
    assert set(figures["violations"].values()) == {0}


# -- the report -------------------------------------------------------------------------------


def test_the_report_is_written(tmp_path: Path) -> None:
    history = make_history()
    security = [
        {
            "name": "no token",
            "method": "POST",
            "path": "/api/v1/shows/1/holds",
            "expected_status": 401,
            "expected_code": "unauthorized",
            "got_status": 401,
            "got_code": "unauthorized",
            "changed": False,
            "passed": True,
        },
        {
            "name": "forged token",
            "expected_status": 401,
            "expected_code": "token_invalid",
            "got_status": 200,
            "got_code": None,
            "changed": True,
            "passed": False,
            "detail": "holds changed",
        },
    ]
    page = write_report(history, checker.check(history), tmp_path / "out", security=security)
    text = page.read_text()
    assert page == tmp_path / "out" / "report.md"
    assert "seed 7" in text and "python -m loadtest.faults --seed 7 --seconds 30" in text
    assert "None: every check held." in text and "| gateway_kill | 1 |" in text
    assert "| no token |" in text and "timeline.png" in text
    assert "| 401 token_invalid | 200 | yes | **no**: holds changed |" in text
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 1000
    again = History.from_json(json.loads((tmp_path / "out" / "history.json").read_text()))
    assert again == history
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["unavailability"]["gateway_kill"]["client"] == "customer-3"
    assert document["violations"] == [] and document["security"] == security


def test_the_report_lists_violations(tmp_path: Path) -> None:
    history = make_history()
    history.watchers[0].seats["A3"] = "held"
    write_report(history, checker.check(history), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "1 (0 expected): watcher_diverged 1." in text
    assert "- **watcher_diverged**: watcher-1" in text
