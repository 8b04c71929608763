"""The fraud rules: each fires on its pattern and stays quiet on an ordinary checkout."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from ml.fraud.features import UNKNOWN_DISTANCE, CheckoutFeatures, card_distance_km
from ml.fraud.rules import RULES, Thresholds, Verdict, rules_score, rules_verdict

NORMAL = CheckoutFeatures(
    holds_account_1h=1,
    holds_account_24h=1,
    bookings_account_24h=0,
    holds_device_1h=1,
    holds_ip_1h=1,
    failed_payments_account_24h=0,
    failed_payments_device_24h=0,
    accounts_device_24h=1,
    accounts_ip_24h=1,
    card_distance_km=8.0,
    seats_unbought_account_7d=2,
    hold_to_pay_s=75.0,
    seats_in_hold=2,
    account_age_days=400.0,
)

PATTERNS = {
    "device_farm": {"accounts_device_24h": 7},
    "card_testing": {"failed_payments_device_24h": 5, "failed_payments_account_24h": 3},
    "hoarding": {"seats_unbought_account_7d": 40, "holds_account_1h": 9},
    "far_new_account": {"card_distance_km": 3900.0, "account_age_days": 0.1},
}


def test_a_normal_checkout_is_allowed_without_reasons() -> None:
    verdict = rules_verdict(NORMAL)
    assert verdict == Verdict(0.0, "allow", (), "fallback")


@pytest.mark.parametrize("code", list(PATTERNS))
def test_each_rule_fires_on_its_pattern_alone(code: str) -> None:
    row = dataclasses.replace(NORMAL, **PATTERNS[code])
    verdict = rules_verdict(row)
    assert verdict.decision in ("verify", "block")
    assert verdict.reasons[0].startswith(f"{code}: ")
    scores = {name: rule(row)[0] for name, rule in RULES}
    assert {name for name, score in scores.items() if score > 0} == {code}


def test_speed_alone_is_a_reason_but_not_a_verdict() -> None:
    quick = dataclasses.replace(NORMAL, hold_to_pay_s=0.4)  # a customer who clicks "Pay" at once
    verdict = rules_verdict(quick)
    assert verdict.decision == "allow" and verdict.reasons[0].startswith("bot_speed: ")
    hoarder = dataclasses.replace(quick, holds_account_1h=5, seats_unbought_account_7d=12)
    assert rules_verdict(hoarder).decision in ("verify", "block")


def test_rules_stay_quiet_on_ordinary_variation() -> None:
    ordinary = [
        {"accounts_device_24h": 3, "accounts_ip_24h": 4},  # a household, a shared address
        {"failed_payments_account_24h": 1, "failed_payments_device_24h": 1},  # one decline
        {"holds_account_1h": 3, "seats_unbought_account_7d": 8},  # changed their mind
        {"hold_to_pay_s": 15.0},  # a saved card
        {"card_distance_km": 3900.0, "account_age_days": 30.0},  # travelling
        {"card_distance_km": UNKNOWN_DISTANCE, "account_age_days": 0.0},
    ]
    for change in ordinary:
        assert rules_verdict(dataclasses.replace(NORMAL, **change)).decision == "allow", change


def test_two_signals_together_score_higher_than_either() -> None:
    one = rules_score(dataclasses.replace(NORMAL, hold_to_pay_s=1.0))[0]
    both = rules_score(dataclasses.replace(NORMAL, hold_to_pay_s=1.0, holds_account_1h=5))[0]
    assert 0 < one < both <= 1


def test_thresholds_decide_and_are_validated() -> None:
    thresholds = Thresholds(verify=0.3, block=0.6)
    assert [thresholds.decide(s) for s in (0.29, 0.3, 0.6, 1.0)] == [
        "allow",
        "verify",
        "block",
        "block",
    ]
    for verify, block in ((0.0, 0.5), (0.5, 0.5), (0.8, 0.5), (0.5, 1.2), (-0.1, 0.5)):
        with pytest.raises(ValueError):
            Thresholds(verify=verify, block=block)
    with pytest.raises(TypeError):
        Thresholds(verify="0.5", block=0.8)  # type: ignore[arg-type]


def test_features_are_validated_and_round_trip() -> None:
    assert CheckoutFeatures.from_mapping(NORMAL.as_dict()) == NORMAL
    assert CheckoutFeatures.from_vector(NORMAL.as_vector()) == NORMAL
    with pytest.raises(ValueError):
        dataclasses.replace(NORMAL, holds_account_1h=-1)
    with pytest.raises(ValueError):
        CheckoutFeatures.from_mapping({**NORMAL.as_dict(), "surprise": 1})
    with pytest.raises(ValueError):
        Verdict(1.5, "allow", (), "model")
    assert card_distance_km(None, (40.7, -74.0)) == UNKNOWN_DISTANCE
    assert 3900 < card_distance_km((40.71, -74.01), (34.05, -118.24)) < 4000  # NY to LA


def test_the_fallback_imports_without_numpy_or_scikit_learn() -> None:
    check = (
        "import sys; from ml.fraud import rules_verdict, CheckoutFeatures; "
        "heavy = [m for m in ('numpy', 'sklearn') if m in sys.modules]; assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
