"""The load report's reading of the gateway's histograms (``loadtest.locust.server_view``) and
its words for them (``loadtest.locust.analysis``): phases told apart by view, hosts added up,
the phase holding a hold's p99 named beside the host's decision time, and a p99 over few holds
said to be near the maximum."""

from __future__ import annotations

import math

from loadtest.locust.analysis import phase_at_p99, rests_on
from loadtest.locust.server_view import (
    DECISION_SECONDS,
    PHASE_SECONDS,
    REQUEST_SECONDS,
    difference,
    summarize,
)

INF = math.inf


def _scraped(host_call: float, hold: float, decided: float) -> dict:
    """Cumulative buckets as two scrapes would read them: ``host_call`` holds at ≤ 100 ms."""
    return {
        REQUEST_SECONDS: {
            ("POST", "/api/v1/shows/{show_id}/holds"): {
                0.05: hold - host_call,
                0.2: hold,
                INF: hold,
            },
            ("GET", "/api/v1/health"): {0.001: 50, INF: 50},
        },
        PHASE_SECONDS: {
            ("create_hold", "host_call"): {0.01: hold - host_call, 0.1: hold, INF: hold},
            ("create_hold", "auth"): {0.0001: hold, 0.1: hold, INF: hold},
            ("seatmap", "view"): {0.001: 10, INF: 10},
        },
        DECISION_SECONDS: {
            ("hold_seats",): {0.00005: decided, 0.01: decided, INF: decided},
            ("confirm",): {0.00005: 5, INF: 5},
        },
    }


def test_the_phases_of_a_window_are_read_by_view_and_the_hosts_decisions_added_up() -> None:
    before = _scraped(host_call=0, hold=100, decided=100)
    after = _scraped(host_call=5, hold=300, decided=400)
    view = summarize(difference(before, after))

    assert view["hold"] == {"requests": 200, "p50_le_ms": 50.0, "p99_le_ms": 200.0}
    assert "read" not in view  # health is not a read
    host_call = view["phases"]["create_hold"]["host_call"]
    assert host_call == {"requests": 200, "p50_le_ms": 10.0, "p99_le_ms": 100.0}
    assert "seatmap" not in view["phases"]  # none in the window
    assert view["decision"] == {"requests": 300, "p50_le_ms": 0.05, "p99_le_ms": 0.05}


def test_the_report_names_the_phase_at_the_p99_and_the_hosts_decision_beside_it() -> None:
    view = summarize(_scraped(host_call=5, hold=200, decided=200))
    words = phase_at_p99("holds", view["phases"]["create_hold"], 200.0, view["decision"])
    assert words.startswith("holds: host_call p99 ≤ 100 ms (50% of the ≤ 200 ms request p99)")
    assert "next auth ≤ 0.1 ms" in words
    assert words.endswith("not the host's decision (its p99 ≤ 0.05 ms)")
    unread = phase_at_p99("holds", view["phases"]["create_hold"], 200.0, None)
    assert unread.endswith("the host's decision time was not read")
    lane = {"host_lane": {"p99_le_ms": 30.0}, "host_call": {"p99_le_ms": 5.0}}
    assert "waiting in the show host's lane" in phase_at_p99("holds", lane, 50.0, None)
    assert phase_at_p99("holds", {}, 50.0) == ""


def test_a_p99_over_few_holds_is_said_to_be_near_the_maximum() -> None:
    assert rests_on(42) == "42 holds: the p99 is near the maximum"
    assert rests_on(100) == "100 holds"
