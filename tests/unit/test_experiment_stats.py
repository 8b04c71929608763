"""The experiments' statistics (``gateway.ops.stats``) against scipy, the arm assignment
against the pricing model's own, and the report's verdicts."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sp

from gateway.ops import experiments_report as report
from gateway.ops import stats
from gateway.ops.experiments_registry import assign, pricing_arms
from ml.pricing.arms import assign_arm
from storage.experiments import ArmResult, Experiment

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def moments(values: list[float]) -> stats.Moments:
    return stats.Moments(len(values), float(sum(values)), float(sum(v * v for v in values)))


@pytest.mark.parametrize("x", [-40.0, -8.5, -3.0, -1.96, -0.5, 0.0, 0.3, 1.0, 1.96, 6.0, 39.0])
def test_normal_cdf_is_scipys(x: float) -> None:
    assert stats.normal_cdf(x) == pytest.approx(sp.norm.cdf(x), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("p", [1e-9, 0.025, 0.2, 0.5, 0.9, 0.975, 1 - 1e-9])
def test_normal_quantile_is_scipys(p: float) -> None:
    assert stats.normal_quantile(p) == pytest.approx(sp.norm.ppf(p), abs=1e-9)


@pytest.mark.parametrize(
    ("t", "df"),
    [(0.0, 1.0), (-2.0, 1.0), (2.0, 10.0), (-0.3, 3.7), (12.0, 2.5), (-1.5, 0.6), (1.96, 1e5)],
)
def test_t_cdf_is_scipys_on_fixed_points(t: float, df: float) -> None:
    assert stats.student_t_cdf(t, df) == pytest.approx(sp.t.cdf(t, df), rel=1e-9, abs=1e-14)


@settings(max_examples=300, deadline=None)
@given(
    t=st.floats(min_value=-60, max_value=60, allow_nan=False),
    df=st.floats(min_value=0.2, max_value=5000, allow_nan=False),
)
def test_t_cdf_is_scipys(t: float, df: float) -> None:
    assert stats.student_t_cdf(t, df) == pytest.approx(sp.t.cdf(t, df), rel=1e-8, abs=1e-13)


@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(min_value=0.05, max_value=500),
    b=st.floats(min_value=0.05, max_value=500),
    x=st.floats(min_value=0, max_value=1),
)
def test_incomplete_beta_is_scipys(a: float, b: float, x: float) -> None:
    assert stats.incomplete_beta(a, b, x) == pytest.approx(
        special.betainc(a, b, x), rel=1e-8, abs=1e-13
    )


@pytest.mark.parametrize(("p", "df"), [(0.975, 1.0), (0.975, 4.2), (0.025, 30.0), (0.9, 900.0)])
def test_t_quantile_is_scipys(p: float, df: float) -> None:
    assert stats.student_t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-8)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(120, 1000, 150, 1000), (5, 40, 12, 41), (300, 5000, 290, 4800), (0, 10, 3, 10)],
)
def test_two_proportion_z_is_the_chi_square_test(x1: int, n1: int, x2: int, n2: int) -> None:
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    chi2, p, _, _ = sp.chi2_contingency(table, correction=False)
    found = stats.two_proportion_z(x1, n1, x2, n2)
    assert found.statistic**2 == pytest.approx(chi2, rel=1e-9)
    assert found.p_value == pytest.approx(p, rel=1e-9)
    assert (found.statistic > 0) == (x2 / n2 > x1 / n1)


def test_two_proportion_z_without_variance_concludes_nothing() -> None:
    assert stats.two_proportion_z(0, 10, 0, 12).p_value == 1.0
    assert stats.two_proportion_z(0, 0, 3, 12).p_value == 1.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), zeros=st.floats(0.0, 0.95))
def test_welch_from_sums_is_scipys(seed: int, zeros: float) -> None:
    """Revenue per visitor: mostly zeros, then a few tickets' worth, as the SQL sums it."""
    rng = random.Random(seed)

    def sample(n: int, price: int) -> list[float]:
        return [0.0 if rng.random() < zeros else float(price * rng.randint(1, 4)) for _ in range(n)]

    a, b = sample(rng.randint(5, 300), 1200), sample(rng.randint(5, 300), 1350)
    if len(set(a)) < 2 or len(set(b)) < 2:
        return  # no variance: scipy answers nan, we answer "nothing to conclude"
    expected = sp.ttest_ind(b, a, equal_var=False)
    found = stats.welch_t(moments(a), moments(b))
    assert found.statistic == pytest.approx(expected.statistic, rel=1e-7)
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)
    assert found.df == pytest.approx(expected.df, rel=1e-7)
    low, high = expected.confidence_interval(0.95)
    lift = stats.lift(moments(a), moments(b))
    assert lift.absolute_ci == pytest.approx((low, high), rel=1e-6)
    assert lift.absolute == pytest.approx(sum(b) / len(b) - sum(a) / len(a))


def test_relative_lift_interval_holds_the_ratio() -> None:
    a, b = moments([0.0] * 80 + [1000.0] * 20), moments([0.0] * 70 + [1000.0] * 30)
    lift = stats.lift(a, b)
    assert lift.relative == pytest.approx(0.5)
    assert lift.relative_ci is not None
    assert lift.relative_ci[0] < 0.5 < lift.relative_ci[1]
    assert stats.lift(moments([0.0, 0.0]), b).relative is None


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 0.73, 1.0])
def test_assign_agrees_with_the_pricing_models_arms(share: float) -> None:
    for user in range(1, 2000):
        expected = assign_arm(user, experiment="pricing-1", dynamic_share=share)
        assert assign("pricing-1", user, pricing_arms(share)) == expected


def test_assign_follows_the_shares_and_the_name() -> None:
    arms = [("a", 0.2), ("b", 0.3), ("c", 0.5)]
    counts = {"a": 0, "b": 0, "c": 0}
    for user in range(20_000):
        counts[assign("menu-1", user, arms)] += 1
    assert counts["a"] == pytest.approx(4000, rel=0.06)
    assert counts["b"] == pytest.approx(6000, rel=0.05)
    assert counts["c"] == pytest.approx(10000, rel=0.04)
    moved = sum(assign("menu-2", u, arms) != assign("menu-1", u, arms) for u in range(2000))
    assert moved > 500  # another experiment shuffles users anew


def _experiment() -> Experiment:
    arms = (("dynamic", 0.5), ("control", 0.5))
    return Experiment("pricing-1", "pricing", arms, "running", "", NOW, None, None, None)


def _row(arm: str, visitors: int, converted: int, revenue: int, sq: float) -> ArmResult:
    return ArmResult(arm, "USD", visitors, converted, converted, revenue, sq, NOW)


def test_report_says_when_the_sample_is_too_small() -> None:
    rows = [
        _row("control", 30, 3, 3600, 3 * 1200.0**2),
        _row("dynamic", 25, 4, 5200, 4 * 1300.0**2),
    ]
    (block,) = report.currency_results(_experiment(), rows, min_visitors=100)
    assert block["verdict"] == "too_small" and "fewer than 100" in block["note"]
    assert [a["arm"] for a in block["arms"]] == ["dynamic", "control"]
    control = block["arms"][1]
    assert control["conversion_test"] is None and control["conversion"] == pytest.approx(0.1)
    assert block["arms"][0]["revenue_per_visitor"] == pytest.approx(208.0)


def test_report_finds_a_real_difference_and_not_a_null_one() -> None:
    big = [
        _row("control", 2000, 200, 200 * 1200, 200 * 1200.0**2),
        _row("dynamic", 2000, 300, 300 * 1200, 300 * 1200.0**2),
    ]
    (block,) = report.currency_results(_experiment(), big, min_visitors=100)
    assert block["verdict"] == "significant"
    dynamic = block["arms"][0]
    assert dynamic["conversion_test"]["p_value"] < 1e-5
    assert dynamic["conversion_lift"]["relative"] == pytest.approx(0.5)
    same = [big[0], _row("dynamic", 2000, 201, 201 * 1200, 201 * 1200.0**2)]
    (block,) = report.currency_results(_experiment(), same, min_visitors=100)
    assert block["verdict"] == "not_significant"
