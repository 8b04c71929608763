"""`seatserver retrain` on the demo history: a fresh model is skipped, a stale one retrained
and promoted (with an input reference for drift monitoring), and a version that fails its gate
is not promoted; and the fraud reference against a held-out week of the demo history: clean,
and drifted once one feature is shifted."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml import drift
from ml.artifacts import ArtifactStore, Gate
from seatserver import cli
from seatserver.modelcmds import retrain_stale
from tests.ml.conftest import DemoHistory
from tests.ml.test_commands import _env, _run

PERIODS = {"recommender": 7.0, "pricing": 7.0, "fraud": 3.0}


def _fake(store: ArtifactStore, kind: str, *, age_days: float, passed: bool = True) -> str:
    """A version of ``kind`` (meta only) trained ``age_days`` ago."""
    with store.draft(kind) as draft:
        artifact = draft.commit(metrics={}, gate=Gate(passed, "test"), data={})
    meta = json.loads((artifact.path / "meta.json").read_text())
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days)
    meta["created_at"] = at.isoformat(timespec="seconds")
    (artifact.path / "meta.json").write_text(json.dumps(meta))
    return artifact.version


async def test_retrain_skips_a_fresh_model_and_retrains_a_stale_one(
    demo_history: DemoHistory, tmp_path: Path
) -> None:
    store = ArtifactStore(tmp_path / "models")
    fresh = _fake(store, "pricing", age_days=1)  # retrained every 7 days
    stale = _fake(store, "fraud", age_days=4)  # every 3
    env = _env(tmp_path, demo_history)
    done = _run("retrain", "fraud", "pricing", "--no-progress", "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    fraud, pricing = json.loads(done.stdout)
    assert pricing == {"kind": "pricing", "serving": fresh, "action": "skipped",
                       "why": "fresh: 1.0 of 7 days"}  # fmt: skip
    assert fraud["action"] == "promoted" and fraud["why"].startswith("stale: 4.0 days old")
    assert fraud["version"] != stale and fraud["serving"] == fraud["version"]
    latest = store.latest("fraud")
    assert latest is not None and latest.version == fraud["version"]
    reference = drift.read_reference(latest.path)
    assert reference is not None and reference["hold_to_pay_s"]["type"] == "numeric"
    assert "pricing: skipped" in done.stderr and "fraud: promoted" in done.stderr


class _Conn:
    """A connection whose alerts table has an open drift alert on ``drifting``."""

    def __init__(self, drifting: str | None = None) -> None:
        self.drifting = drifting

    async def fetch(self, query: str, *args: Any) -> list[dict[str, str]]:
        assert "alerts" in query
        return [{"model": self.drifting}] if self.drifting else []


async def _failing(conn: Any, store: ArtifactStore, *, progress: bool, seed: int) -> Any:
    with store.draft("fraud") as draft:
        return draft.commit(metrics={}, gate=Gate(False, "beat the rules"), data={})


async def test_a_version_that_fails_its_gate_is_not_promoted(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    old = _fake(store, "fraud", age_days=10)
    [item] = await retrain_stale(
        _Conn(), store, ("fraud",), periods=PERIODS, trainers={"fraud": _failing}
    )
    assert item["action"] == "not_promoted" and "failed its gate (beat the rules)" in item["why"]
    assert item["serving"] == old and item["version"] != old
    assert store.latest("fraud").version == old  # type: ignore[union-attr]
    assert len(store.list("fraud")) == 2  # kept for a look, never served


async def test_an_open_drift_alert_or_force_retrains_a_fresh_model(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    _fake(store, "fraud", age_days=0.5)
    [skipped] = await retrain_stale(_Conn(), store, ("fraud",), periods=PERIODS)
    assert skipped["action"] == "skipped"
    trainers = {"fraud": _failing}
    [drifting] = await retrain_stale(
        _Conn("fraud"), store, ("fraud",), periods=PERIODS, trainers=trainers
    )
    assert drifting["why"].startswith("its drift alert is open")
    [forced] = await retrain_stale(
        _Conn(), store, ("fraud",), periods=PERIODS, force=True, trainers=trainers
    )
    assert forced["why"].startswith("forced")


def test_the_command_exits_1_when_the_gate_fails(
    demo_history: DemoHistory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.fraud.train

    store = ArtifactStore(tmp_path / "models")
    old = _fake(store, "fraud", age_days=10)
    for name, value in _env(tmp_path, demo_history).items():
        if name.startswith("SEATSERVER_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(ml.fraud.train, "train", _failing)
    assert cli.main(["retrain", "fraud", "--no-progress"]) == 1
    assert store.latest("fraud").version == old  # type: ignore[union-attr]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for args in (("retrain", "nonsense"), ("retrain", "--seed", "-1"), ("retrain", "--bogus")):
        done = _run(*args, env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)


async def test_fraud_reference_against_held_out_demo_weeks(demo_history: DemoHistory) -> None:
    """The reference kept at training against the last week of the demo history (held out),
    as the gateway would bin it: no feature drifts; shifted, one does."""
    from ml.fraud.features import FEATURES
    from ml.fraud.synth import build_dataset, load_history
    from ml.fraud.train import CUTS, input_reference

    conn: Any = await demo_history.connect()
    try:
        data = build_dataset(await load_history(conn), seed=0)
    finally:
        await conn.close()
    train_set, _, test = data.split_by_time(*CUTS)
    reference = input_reference(train_set.X)
    # At the test's scale (a tenth of the demo) a week has too few checkouts to judge: the
    # last four weeks stand for one week of the full demo.
    week = test.take(test.at >= test.at.max() - 28 * 86400)
    week = week.take(week.y == 0)  # the ordinary customers' checkouts

    def psis(X: np.ndarray) -> dict[str, float]:
        live: dict[str, dict[str, int]] = {}
        for row in X:
            for name, value in zip(FEATURES, row, strict=True):
                key = drift.bin_of(reference[name], float(value))
                counts = live.setdefault(name, {})
                counts[key] = counts.get(key, 0) + 1
        found = drift.feature_drift(reference, live, min_samples=500)
        return {name: f["psi"] for name, f in found.items() if f["alert"]}

    clean = psis(week.X)
    print("held-out weeks:", len(week), "checkouts; PSI", clean)
    assert len(week) >= 500 and max(clean.values()) < 0.2, clean
    # The accounts' age moves on by itself (reported, never alerted on).
    assert reference["account_age_days"]["alert"] is False and "account_age_days" not in clean
    shifted = week.X.copy()
    shifted[:, FEATURES.index("seats_in_hold")] += 3
    drifted = psis(shifted)
    print("seats_in_hold + 3: PSI", drifted)
    assert drifted["seats_in_hold"] > 0.2
    assert {n for n, v in drifted.items() if v > 0.2} == {"seats_in_hold"}
