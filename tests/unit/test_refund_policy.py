"""The cancellation refund policy: tiers, edges, rounding and refusals of bad text."""

from __future__ import annotations

import pytest

from payments.policy import DEFAULT_POLICY, PolicyError, RefundPolicy

HOUR = 3600


@pytest.mark.parametrize(
    ("seconds_before", "percent"),
    [
        (3 * HOUR, 100),
        (2 * HOUR, 100),  # the edge belongs to the better tier
        (2 * HOUR - 1, 50),
        (30 * 60, 50),
        (30 * 60 - 1, 0),
        (0, 0),
        (-HOUR, 0),
    ],
)
def test_default_tiers(seconds_before: float, percent: int) -> None:
    assert RefundPolicy.parse(DEFAULT_POLICY).percent(seconds_before) == percent


def test_amounts_round_down_to_the_minor_unit() -> None:
    policy = RefundPolicy.parse(DEFAULT_POLICY)
    assert policy.refund_cents(1251, seconds_before=HOUR) == 625
    assert policy.refund_cents(1251, seconds_before=3 * HOUR) == 1251
    assert policy.refund_cents(1251, seconds_before=60) == 0


def test_custom_policy_and_description() -> None:
    policy = RefundPolicy.parse("86400:100, 3600:25")
    assert policy.percent(2 * 86400) == 100
    assert policy.percent(2 * HOUR) == 25
    assert policy.percent(60) == 0
    assert policy.describe() == [
        {"min_seconds_before": 86400, "percent": 100},
        {"min_seconds_before": 3600, "percent": 25},
    ]
    assert RefundPolicy.parse("").percent(10 * HOUR) == 0  # no refunds at all


@pytest.mark.parametrize(
    "text",
    ["7200", "x:100", "7200:101", "-1:50", "1800:50,7200:100", "7200:50,1800:100", "60:1,60:1"],
)
def test_bad_policies_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        RefundPolicy.parse(text)
