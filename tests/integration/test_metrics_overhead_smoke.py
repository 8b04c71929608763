"""The metrics-overhead benchmark, briefly: it prints its figures and writes them as JSON and
a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import metrics_overhead


def test_it_measures_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "metrics.json", tmp_path / "metrics.png"
    argv = ["--rounds", "2", "--pairs", "200", "--json", str(out), "--plot", str(png)]
    assert metrics_overhead.main(argv) == 0
    printed = capsys.readouterr().out
    assert "observed/baseline x" in printed and "us a request" in printed
    found = json.loads(out.read_text())
    assert found["host"]["baseline_us"] > 0 and found["host"]["bookkeeping_us"] > 0
    assert found["gateway"]["per_request_us"] > 0
    assert png.read_bytes().startswith(b"\x89PNG")
