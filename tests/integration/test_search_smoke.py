"""The search benchmark, briefly, through its main function: it deploys the embeddings, serves
from processes of its own, measures against hello-world, writes its JSON and cleans up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from loadtest import search
from tests.gateway_support import leftovers


@pytest.mark.slow
def test_search_is_measured_with_the_embeddings_on(
    ray_session: None,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--seconds", "1", "--connections", "4", "--client", "python"]
    argv += ["--database-url", database_url, "--redis-url", redis_url]
    assert search.main([*argv, "--json", str(tmp_path / "out.json")]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(out["servers"]) == {"hello", "search"}
    for name, server in out["servers"].items():
        assert server["requests"] > 0 and server["errors"] == 0, (name, server)
    assert 0 < out["ratio_search_hello"] < 1
    assert out["tfidf_fallback_share"] < 1  # the embeddings answered some of the load
    assert "search p99 at 4 connections" in capsys.readouterr().out
    assert asyncio.run(leftovers(database_url, redis_url, out["run"])) == ([], 0)


@pytest.mark.parametrize(
    "argv", [["--seconds", "0"], ["--connections", "1001"], ["--client", "ab"]]
)
def test_flags_are_validated(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        search.parse_args(argv)
