"""The rollup-overhead benchmark, briefly: both schemas get the flushes, only one logs them, and
neither is left behind."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import storage
from loadtest import report, rollup_overhead
from tests.conftest import random_ref


async def test_both_schemas_get_the_flushes_and_are_dropped(
    database_url: str, tmp_path: Path
) -> None:
    options = rollup_overhead.Options(
        shows=3, seats=60, batches=12, holds=4, warmup=2, database_url=database_url,
        run=random_ref("rollup"),
    )  # fmt: skip
    lines: list[str] = []
    comparison = await rollup_overhead.compare(options, lines.append)
    out = rollup_overhead.document(comparison)

    for side in rollup_overhead.SIDES:
        assert out[side]["flushes"] == 10, side
        assert out[side]["p99_ms"] >= out[side]["p50_ms"] > 0, side
        assert out[side]["flushes_per_s"] > 0, side
    assert out["baseline"]["dirty_rows_logged"] == 0
    assert out["triggers"]["dirty_rows_logged"] > 0
    assert "holds.holds_stats_ins" in out["triggers_dropped_in_baseline"]
    assert all(v > 0 for v in out["ratio_triggers_baseline"].values())
    assert out["workload"]["confirmed_per_flush"] == 1
    assert len(rollup_overhead.table(out).splitlines()) == 4  # head, rule, a line a side

    conn = await storage.connect(database_url)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1::text[])", out["schemas"]
        )
    finally:
        await conn.close()
    assert len(out["schemas"]) == 2 and left == 0

    report.write_json(tmp_path / "out.json", out)
    assert json.loads((tmp_path / "out.json").read_text())["baseline"]["flushes"] == 10
    results = [comparison.results[side] for side in rollup_overhead.SIDES]
    report.plot(tmp_path / "out.png", results, "smoke")
    assert (tmp_path / "out.png").stat().st_size > 0


def test_the_flushes_place_confirm_and_release_the_same_for_a_seed() -> None:
    options = rollup_overhead.Options(shows=2, seats=40, batches=5, holds=3, warmup=0)
    flushes = rollup_overhead.make_flushes(options, 1.8e9)
    assert flushes == rollup_overhead.make_flushes(options, 1.8e9)
    assert flushes != rollup_overhead.make_flushes(replace(options, seed=2), 1.8e9)
    kinds = {type(e).__name__ for f in flushes for events in f.values() for e in events}
    assert kinds == {"HoldPlaced", "BookingConfirmed", "HoldReleased"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--batches", "0"],
        ["--batches", "20001"],
        ["--shows", "-1"],
        ["--seats", "1"],
        ["--confirm-share", "1.5"],
        ["--warmup", "50", "--batches", "50"],
        ["--max-seconds", "0"],
        ["--shows", "1", "--seats", "10"],  # more seats booked than there are
    ],
)
def test_flags_are_validated(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        rollup_overhead.parse_args(argv)
