"""The contention benchmark, briefly: every engine runs, holds seats, and never double-holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import contention, report
from loadtest.workload import Workload
from tests.conftest import random_ref


async def test_every_engine_runs_without_double_holds(
    ray_session: None, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    assert contention.ensure_ray() is False  # the session's Ray is reused, not restarted
    options = contention.Options(
        Workload(shows=3, seats=100, clients=8, seconds=1.0, warmup_s=0.2),
        database_url,
        redis_url,
        run=random_ref("bench"),
    )
    lines: list[str] = []
    results = await contention.run_engines(options, lines.append)
    assert [r.engine for r in results] == list(contention.ENGINES)
    for result in results:
        assert result.ops > 0, result.engine
        assert result.double_holds == 0, result.engine
        assert result.errors == 0, (result.engine, lines)
        assert result.percentile(99) >= result.percentile(50) > 0
    document = contention.document(options, results)
    assert set(document["engines"]) == set(contention.ENGINES)
    assert document["ratio_actor_pg_rowlock"] > 0
    report.write_json(tmp_path / "out.json", document)
    assert json.loads((tmp_path / "out.json").read_text())["engines"]["actor"]["double_holds"] == 0
    report.plot(tmp_path / "out.png", results, "smoke")
    assert (tmp_path / "out.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--seconds", "0"],
        ["--seconds", "601"],
        ["--clients", "1001"],
        ["--shows", "-1"],
        ["--seats", "1"],
        ["--engines", "mysql"],
    ],
)
def test_flags_are_validated(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        contention.parse_args(argv)
