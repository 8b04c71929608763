"""The models' commands as ops run them: `seatserver train` on a database, `seatserver models`,
and `seatserver eval recommender` on a MovieLens directory; bad input is refused with exit 2."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tests.ml.conftest import DemoHistory

SEATSERVER = [sys.executable, "-m", "seatserver.cli"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEATSERVER, *args], env=env, capture_output=True, text=True, timeout=600
    )


def _env(tmp_path: Path, demo: DemoHistory | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEATSERVER_")}
    env["SEATSERVER_DATA_DIR"] = str(tmp_path / "data")
    env["SEATSERVER_MODELS_DIR"] = str(tmp_path / "models")
    if demo is not None:
        env["SEATSERVER_DATABASE_URL"] = demo.database_url
        env["SEATSERVER_DATABASE_SCHEMA"] = demo.schema
    return env


async def test_train_then_list_a_model(demo_history: DemoHistory, tmp_path: Path) -> None:
    env = _env(tmp_path, demo_history)
    done = _run("train", "fraud", "--no-progress", "--seed", "3", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed its gate" in done.stderr
    listed = _run("models", "--json", env=env)
    [model] = json.loads(listed.stdout)
    assert model["kind"] == "fraud" and model["gate"]["passed"]
    assert model["data"] and model["metrics"]["test"]["model"]["verify"]["fpr"] < 0.02
    assert (tmp_path / "models" / "fraud" / model["version"] / "eval.png").stat().st_size > 0
    table = _run("models", env=env).stdout
    assert table.startswith("* fraud") and "test.model.verify.fpr=" in table


def _ratings(directory: Path, users: int = 120, items: int = 60, seed: int = 1) -> None:
    """MovieLens-format ratings with a taste structure: each user favours one of four groups
    of movies, so a collaborative model has something to learn."""
    rng = random.Random(seed)
    lines = []
    for user in range(1, users + 1):
        group = user % 4
        liked = [i for i in range(1, items + 1) if i % 4 == group]
        others = [i for i in range(1, items + 1) if i % 4 != group]
        chosen = rng.sample(liked, 10) + rng.sample(others, 2)
        rng.shuffle(chosen)
        for n, item in enumerate(chosen):
            lines.append(f"{user}\t{item}\t{rng.randint(1, 5)}\t{880000000 + user * 100 + n}")
    directory.mkdir(parents=True)
    (directory / "u.data").write_text("\n".join(lines) + "\n")


def test_eval_recommender_on_a_movielens_directory(tmp_path: Path) -> None:
    data = tmp_path / "ml-tiny"
    _ratings(data)
    out = tmp_path / "report.json"
    done = _run(
        "eval",
        "recommender",
        "--movielens",
        str(data),
        "--json",
        str(out),
        "--no-progress",
        env=_env(tmp_path),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    for method in ("model", "popularity", "itemknn"):
        assert set(report[method]) >= {"hr@10", "ndcg@10"}
        assert 0 <= report[method]["ndcg@10"] <= report[method]["hr@10"] <= 1
    assert report["model"]["hr@10"] > report["popularity"]["hr@10"]
    assert "HR@10" in done.stdout and "itemknn" in done.stdout
    assert not (tmp_path / "models").exists()  # eval keeps nothing


def test_bad_input_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for args in (
        ("train", "nonsense"),
        ("train", "fraud", "--seed", "-1"),
        ("eval", "recommender", "--movielens", str(tmp_path / "missing")),
        ("models", "pricing", "--bogus"),
    ):
        done = _run(*args, env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _run("eval", "recommender", "--movielens", str(empty), env=env)
    assert done.returncode == 2 and "u.data" in done.stderr, done.stderr
