"""The locust suite, small: every journey's user class at once for a few seconds, in locust's own
process (the CLI, headless), against a gateway with payments (localstripe), show hosts on the
session's Ray, Postgres and Redis. No request fails, every journey completes at least once (a
booking through the funnel and through the mixed day, a flash-sale admission and its hold,
websocket deltas timed from the seat change), the report is written, and nothing is left
behind. No speed is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.__main__ import parse_args
from loadtest.locust.analysis import MIN_HOLDS, Sample, Stats, judge_step, stats
from loadtest.locust.local import open_local
from loadtest.locust.runner import Run, run_locust
from loadtest.locust.scenarios import ALL_CLASSES, mixed_weights
from loadtest.locust.stack import StackOptions
from loadtest.locust.suite import Suite, SuiteOptions, document
from loadtest.locust.writeup import write_report
from tests.conftest import random_ref
from tests.gateway_support import leftovers

SECONDS = 8.0
USERS = {"SeatMapWatcher": 3, "SeatChanger": 1, "FlashSaleCustomer": 2}  # the others: 1 each
# Enough bookings in the mixed day to see one in a few seconds (100:1 would take minutes).
MIXED = {"browse": 0.3, "search": 0.2, "seatmap": 0.2, "book": 0.3}


@pytest.mark.slow
async def test_every_journey_completes_without_a_failure(
    ray_session: None, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    run_id = random_ref("locust")
    options = StackOptions(
        database_url, redis_url, scale=0.01, accounts=80, flash_accounts=80, warm_up=False,
        run=run_id,
    )  # fmt: skip
    target = await open_local(options, lambda _: None)
    try:
        fixed = {name: USERS.get(name, 1) for name in ALL_CLASSES}
        run = Run(
            "smoke", "smoke", users=sum(fixed.values()), seconds=SECONDS, classes=ALL_CLASSES,
            think_s=(0.0, 0.2), fixed=fixed,
            plan={"mixed_weights": MIXED, "watch_s": 3.0, "admission_wait_s": 5.0},
        )  # fmt: skip
        result = await run_locust(target, run, tmp_path, tmp_path, lambda _: None)
    finally:
        await target.close()

    failed = [(s.method, s.name) for s in result.samples if not s.ok]
    assert failed == [] and result.summary["errors"] == {}, (failed[:5], result.summary)
    assert result.exit_code == 0
    counters = result.counters
    for journey in (
        "browsed", "searched", "bookings_funnel", "bookings_mixed", "flash_admissions",
        "flash_holds", "seat_changes", "ws_deltas",
    ):  # fmt: skip
        assert counters.get(journey, 0) >= 1, (journey, counters)
    assert counters.get("ws_gaps", 0) == 0
    names = {(s.method, s.name) for s in result.samples}
    assert ("GET", "/health") in names
    assert ("WS", "delta") in names  # a seat change timed to a watcher's screen
    assert ("JOURNEY", "booking (funnel)") in names
    assert ("JOURNEY", "flash admission (wait)") in names
    assert Path(f"{result.files}_stats.csv").stat().st_size > 0  # locust's own CSVs
    assert result.cpu and "gateway" in result.cpu[-1]["cores"]
    assert result.server["read"]["requests"] > 0 and result.server["hold"]["requests"] > 0
    hold_phases = result.server["phases"]["create_hold"]
    assert {"auth", "idempotency", "host_lane", "host_call"} <= hold_phases.keys(), hold_phases

    suite = Suite(runs={"smoke": result})
    paths = write_report(tmp_path, document(target, SuiteOptions(seconds=SECONDS), suite), suite)
    assert "| smoke |" in paths["report"].read_text()
    assert paths["scenarios"].stat().st_size > 0 and paths["cpu"].stat().st_size > 0
    assert await leftovers(database_url, redis_url, run_id) == ([], 0)


def test_the_mixed_day_makes_a_hundred_reads_for_each_write() -> None:
    weights = mixed_weights(100)
    reads = weights["browse"] * 5 + weights["search"] + weights["seatmap"] + weights["book"]
    assert reads / (weights["book"] * 3) == pytest.approx(100)
    assert sum(weights.values()) == pytest.approx(1)


def test_a_step_meets_the_goals_only_under_both_p99s() -> None:
    def group(ms: float, n: int = 200, failed: int = 0) -> Stats:
        samples = [Sample(0, "GET", "/x", ms, i >= failed) for i in range(n)]
        return stats(samples, 10.0)

    ok = {"read": group(150), "hold": group(40), "http": group(150)}
    assert judge_step(ok).ok
    assert not judge_step({**ok, "read": group(250)}).ok
    assert not judge_step({**ok, "hold": group(60)}).ok
    assert not judge_step({**ok, "read": group(250), "hold": group(40, n=5)}).undecided
    assert not judge_step({**ok, "http": group(10, failed=5)}).ok
    assert not judge_step({"read": group(150), "http": group(150)}).ok  # no hold: not met
    few = judge_step({**ok, "hold": group(40, n=MIN_HOLDS - 1)})
    assert (
        not few.ok
        and few.undecided
        and few.reasons == [f"9 holds in the window, fewer than {MIN_HOLDS} to judge their p99"]
    )
    assert judge_step({**ok, "hold": group(40, n=MIN_HOLDS)}).ok


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenarios", "nope"],
        ["--run-time", "0"],
        ["--run-time", "601"],
        ["--host", "http://example.com"],
        ["--start-users", "900", "--max-users", "800"],
    ],
)
def test_flags_are_validated(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_the_driver_leaves_gevent_to_the_locust_process() -> None:
    """Locust patches the standard library as it loads: only its own process may."""
    check = (
        "import sys, loadtest.__main__, loadtest.locust.suite, loadtest.locust.writeup; "
        "print(sorted({'locust', 'gevent'} & {*sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_quick_sets_ten_seconds_a_run() -> None:
    assert parse_args(["--quick"]).run_time == 10.0
