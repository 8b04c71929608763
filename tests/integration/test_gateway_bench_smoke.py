"""The gateway benchmarks, briefly, through their main functions: each serves from processes of
its own, measures, writes its JSON and plot, passes its correctness check, and cleans up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from loadtest import gateway_holds, gateway_reads, http
from tests.gateway_support import leftovers


def _args(database_url: str, redis_url: str, tmp_path: Path) -> list[str]:
    return [
        "--seconds",
        "1",
        "--database-url",
        database_url,
        "--redis-url",
        redis_url,
        "--json",
        str(tmp_path / "out.json"),
        "--plot",
        str(tmp_path / "out.png"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("client", ["python", "wrk"])
def test_reads_measure_seatmaps_against_hello_world(
    ray_session: None,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    client: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if client == "wrk" and http.wrk_path() is None:
        pytest.skip("wrk is not installed")
    argv = [*_args(database_url, redis_url, tmp_path), "--shows", "2", "--seats", "100"]
    assert gateway_reads.main([*argv, "--connections", "8", "--client", client]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(out["servers"]) == {"hello", "hello_big", "seatmap"}
    for name, server in out["servers"].items():
        assert server["tool"] == client, name
        assert server["requests"] > 0 and server["errors"] == 0, (name, server)
        assert 0 < server["latency_ms"]["p50"] <= server["latency_ms"]["p99"], (name, server)
    assert out["ratio_seatmap_hello"] > 0
    assert out["workload"]["seatmap_bytes"] > 100 * 50  # every seat of the layout is there
    assert (tmp_path / "out.png").stat().st_size > 0
    assert "seatmap/hello ratio: " in capsys.readouterr().out
    assert asyncio.run(leftovers(database_url, redis_url, out["run"])) == ([], 0)


@pytest.mark.slow
def test_holds_through_the_gateway_never_double_hold(
    ray_session: None, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    argv = [*_args(database_url, redis_url, tmp_path), "--shows", "3", "--seats", "100"]
    argv += ["--clients", "8", "--gateways", "2", "--engines", "pg_rowlock,gateway"]
    assert gateway_holds.main(argv) == 0  # 1 when a seat was granted twice or a hold left
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(out["engines"]) == {"pg_rowlock", "gateway"}
    for name, engine in out["engines"].items():
        assert engine["ops_per_s"] > 0 and engine["errors"] == 0, (name, engine)
        assert engine["double_holds"] == 0, name
    assert out["holds_left_behind"] == 0
    assert out["ratio_gateway_pg_rowlock"] > 0
    assert out["cpu_cores"]["gateway"]["gateways"] > 0  # the gateway processes' CPU was read
    assert (tmp_path / "out.png").stat().st_size > 0
    assert asyncio.run(leftovers(database_url, redis_url, out["run"])) == ([], 0)


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        (gateway_reads, ["--seconds", "0"]),
        (gateway_reads, ["--connections", "1001"]),
        (gateway_reads, ["--client", "ab"]),
        (gateway_holds, ["--seconds", "601"]),
        (gateway_holds, ["--seats", "1"]),
        (gateway_holds, ["--gateways", "0"]),
        (gateway_holds, ["--engines", "mysql"]),
    ],
)
def test_flags_are_validated(module: object, argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        module.parse_args(argv)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_queue_joins_make_a_place_each_and_count_redis_work(
    ray_session: None,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from loadtest import queue_joins

    if http.wrk_path() is None:
        pytest.skip("wrk is not installed")
    argv = [*_args(database_url, redis_url, tmp_path), "--visitors", "4000", "--connections", "8"]
    assert queue_joins.main(argv) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    joins = out["joins"]
    assert joins["errors"] == 0 and joins["requests"] > 0
    # Every join was a new place until the visitors ran out; none made two (those in flight
    # on the 8 connections when wrk stopped were served but not counted).
    assert 0 < out["new_places"] <= min(joins["requests"] + 8, 4000)
    assert out["redis"]["commands_per_join"] > out["redis"]["scripts_per_join"] >= 1.9
    assert "joins/hello ratio:" in capsys.readouterr().out
    assert (tmp_path / "out.png").stat().st_size > 0
    run_prefix = "joins_"
    assert asyncio.run(leftovers(database_url, redis_url, run_prefix)) == ([], 0)
