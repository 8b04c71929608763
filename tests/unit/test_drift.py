"""The population stability index and the references it is measured against; the monitoring's
pure parts: percentiles of merged histograms, the CTR rule, the in-memory counters."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from gateway.ops import monitoring_eval as ev
from gateway.ops.config import OpsConfig
from gateway.ops.monitoring_stats import Monitor
from ml import drift
from storage.monitoring import StatsRow


def test_identical_distributions_have_a_psi_of_zero() -> None:
    expected = {"0": 0.2, "1": 0.3, "2": 0.5}
    assert drift.psi(expected, {"0": 20, "1": 30, "2": 50}) == pytest.approx(0.0, abs=1e-12)
    values = [random.Random(1).gauss(0, 1) for _ in range(5000)]
    ref = drift.numeric_reference(values)
    live: dict[str, int] = {}
    for v in values:
        key = drift.bin_of(ref, v)
        live[key] = live.get(key, 0) + 1
    assert drift.psi(drift.reference_shares(ref), live) == pytest.approx(0.0, abs=1e-9)


def test_a_known_shift_gives_the_textbook_value() -> None:
    # (0.7 - 0.5) ln(0.7 / 0.5) + (0.3 - 0.5) ln(0.3 / 0.5)
    textbook = 0.2 * math.log(1.4) + 0.2 * math.log(0.5 / 0.3)
    assert drift.psi({"a": 0.5, "b": 0.5}, {"a": 70, "b": 30}) == pytest.approx(textbook)
    assert textbook == pytest.approx(0.1695, abs=1e-4)  # a warning, not yet drift


def test_empty_bins_are_floored() -> None:
    value = drift.psi({"a": 0.5, "b": 0.5}, {"a": 100})
    floor = drift.FLOOR
    expected = (1 - 0.5) * math.log(1 / 0.5) + (floor - 0.5) * math.log(floor / 0.5)
    assert math.isfinite(value) and value == pytest.approx(expected)
    # a live bin the reference never saw counts against the floor too
    assert drift.psi({"a": 1.0}, {"a": 50, "b": 50}) > drift.DRIFT_AT
    with pytest.raises(ValueError):
        drift.psi({"a": 1.0}, {})


def test_references_bin_on_deciles_and_values() -> None:
    ref = drift.numeric_reference([float(v) for v in range(1000)])
    assert len(ref["edges"]) == 9 and ref["shares"] == pytest.approx([0.1] * 10)
    assert drift.bin_of(ref, -5) == "0" and drift.bin_of(ref, 10_000) == "9"
    counts = drift.numeric_reference([0.0] * 900 + [1.0] * 90 + [7.0] * 10)  # a bin per value
    assert counts["edges"] == [1.0, 7.0] and counts["shares"] == pytest.approx([0.9, 0.09, 0.01])
    assert drift.bin_of(counts, 3) == "1" and drift.bin_of(counts, 70) == "2"
    skewed = [0.0] * 500 + [float(v) for v in range(1, 501)]  # repeated deciles drop out
    edges = drift.numeric_reference(skewed)["edges"]
    assert edges == [0.0, 1.0, 101.0, 201.0, 301.0, 401.0]
    cats = drift.categorical_reference([3, 3, 4, 5])
    assert drift.bin_of(cats, 3) == "3" and drift.bin_of(cats, 9) == drift.OTHER
    both = drift.reference({"x": [1.0, 2.0], "day": [0, 1]}, categorical=["day"])
    assert both["x"]["type"] == "numeric" and both["day"]["type"] == "categorical"


def test_feature_drift_needs_enough_samples() -> None:
    ref = {"x": drift.categorical_reference(["a"] * 50 + ["b"] * 50)}
    few = drift.feature_drift(ref, {"x": {"a": 10}}, min_samples=500)
    assert few["x"] == {"samples": 10, "psi": None, "status": "too_few_samples", "alert": True}
    shifted = drift.feature_drift(ref, {"x": {"a": 900, "b": 100}}, min_samples=500)
    assert shifted["x"]["status"] == "drift" and shifted["x"]["psi"] > 0.2
    clean = drift.feature_drift(ref, {"x": {"a": 505, "b": 495}}, min_samples=500)
    assert clean["x"]["status"] == "ok"
    quiet = drift.reference({"age": [1.0, 2.0, 3.0]}, reported_only=["age"])
    aged = drift.feature_drift(quiet, {"age": {"0": 1000}}, min_samples=500)["age"]
    assert aged["status"] == "drift" and aged["psi"] > 0.2 and aged["alert"] is False


def test_reference_files_round_trip(tmp_path: object) -> None:
    from pathlib import Path

    where = Path(str(tmp_path))
    assert drift.read_reference(where) is None  # trained before references were kept
    ref = drift.reference({"x": [1.0, 2.0, 3.0]})
    drift.write_reference(where, ref)
    assert drift.read_reference(where) == ref


def test_percentiles_of_merged_histograms() -> None:
    rows = [
        StatsRow("fraud", "a", "v1", calls=90, answers=90, latency={"5": 90}),
        StatsRow("fraud", "b", "v1", calls=12, answers=10, errors=2, latency={"300": 10},
                 fallbacks={"timeout": 2}),
    ]  # fmt: skip
    merged = ev.merge(rows)["fraud"]
    assert (merged.calls, merged.answers, merged.errors) == (102, 100, 2)
    assert merged.processes == {"a", "b"}
    assert ev.percentile(merged.latency, 0.5) == 5.0
    assert ev.percentile(merged.latency, 0.95) == 300.0
    assert ev.percentile({}, 0.99) is None


def test_ctr_drop_needs_counts_and_a_real_drop() -> None:
    config = OpsConfig(ctr_min_impressions=500)
    before = {"impressions": 7000, "clicks": 700, "ctr": 0.1}
    assert ev.ctr_condition({"impressions": 1000, "ctr": 0.07}, before, config).firing
    assert not ev.ctr_condition({"impressions": 1000, "ctr": 0.085}, before, config).firing
    assert not ev.ctr_condition({"impressions": 100, "ctr": 0.01}, before, config).firing


def test_monitor_counts_and_starts_over_after_a_take() -> None:
    monitor = Monitor("p1")
    monitor.observe_call("fraud", "model", None, 0.004)
    monitor.observe_call("fraud", "fallback", "timeout", None)
    monitor.observe_call("fraud", "fallback", "absent", None)
    monitor.prediction("fraud", 0.05)
    monitor.inputs("fraud", {"seats_in_hold": 2})  # no reference yet: not counted
    now = dt.datetime(2026, 12, 6, 10, 30, tzinfo=dt.UTC)
    monitor.recommended(7, [1, 2], "model", now)
    monitor.clicked(7, 1, "model", now)
    rows, shown = monitor.take()
    [row] = rows
    assert (row.calls, row.answers, row.errors) == (3, 1, 1)
    assert row.fallbacks == {"timeout": 1, "absent": 1} and row.latency == {"5": 1}
    assert row.predictions == {"0.1": 1} and row.features == {}
    hour = now.replace(minute=0)
    assert sorted(shown) == [(hour, 7, 1, "model", 1, 1), (hour, 7, 2, "model", 1, 0)]
    assert monitor.take() == ([], [])
    monitor.put_back(rows, shown)  # a failed flush goes with the next
    again, shown_again = monitor.take()
    assert again[0].calls == 3 and len(shown_again) == 2
