"""The fraud rules, the verdict they give, and the decision thresholds. Pure Python: the
gateway falls back to ``rules_verdict`` when the model is slow or down.

Each rule scores one known pattern in [0, 1] and says why; the rules' score is their noisy-or
(two half-sure rules make a surer one). A score at or over ``verify`` asks the customer to
verify (3-D Secure, a captcha), at or over ``block`` refuses the payment.

    verdict = rules_verdict(row, Thresholds(verify=0.5, block=0.8))
    verdict.decision, verdict.reasons   # "verify", ("card_testing: 4 declined ...",)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ml.fraud.features import CheckoutFeatures

Decision = Literal["allow", "verify", "block"]
Source = Literal["model", "fallback"]
DECISIONS: tuple[Decision, ...] = ("allow", "verify", "block")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Scores at or over ``verify`` are verified, at or over ``block`` blocked."""

    verify: float = 0.5
    block: float = 0.8

    def __post_init__(self) -> None:
        for name in ("verify", "block"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"threshold {name} must be a number, not {value!r}")
        if not (0 < self.verify < self.block <= 1):
            raise ValueError(
                f"thresholds need 0 < verify < block <= 1, got verify={self.verify}, "
                f"block={self.block}"
            )

    def decide(self, score: float) -> Decision:
        if score >= self.block:
            return "block"
        return "verify" if score >= self.verify else "allow"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A fraud check's answer; ``reasons`` are ``code: words`` for ops, never for customers."""

    score: float
    decision: Decision
    reasons: tuple[str, ...]
    source: Source

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or math.isnan(self.score):
            raise ValueError(f"a fraud score is in [0, 1], not {self.score!r}")
        if self.decision not in DECISIONS:
            raise ValueError(f"unknown decision {self.decision!r}")
        if self.source not in ("model", "fallback"):
            raise ValueError(f"unknown verdict source {self.source!r}")


def _ramp(value: float, low: float, high: float, top: float) -> float:
    """0 at or below ``low``, rising linearly to ``top`` at ``high`` and beyond."""
    if value <= low:
        return 0.0
    return top * min(1.0, (value - low) / (high - low))


# A rule: its code and a function giving its score and the words for it.
Hit = tuple[float, str]
Rule = Callable[[CheckoutFeatures], Hit]


def device_farm(f: CheckoutFeatures) -> Hit:
    """Many accounts on one device or IP address in a day: an account farm."""
    score = max(_ramp(f.accounts_device_24h, 3, 6, 0.9), _ramp(f.accounts_ip_24h, 5, 12, 0.7))
    return score, f"{f.accounts_device_24h} accounts on the device, {f.accounts_ip_24h} on the IP"


def card_testing(f: CheckoutFeatures) -> Hit:
    """Several declined payments in a day: someone trying cards."""
    declined = max(f.failed_payments_account_24h, f.failed_payments_device_24h)
    return _ramp(declined, 1, 4, 0.95), f"{declined} declined payments in 24 h"


def hoarding(f: CheckoutFeatures) -> Hit:
    """Seats held and let go, or holds one after another: someone taking seats off sale."""
    score = max(
        _ramp(f.seats_unbought_account_7d, 10, 30, 0.9),
        _ramp(f.holds_account_1h, 3, 8, 0.85),
        _ramp(f.holds_device_1h, 4, 10, 0.85),
    )
    return score, (
        f"{f.seats_unbought_account_7d} seats held unbought in 7 days, "
        f"{f.holds_account_1h} holds in 1 h"
    )


def bot_speed(f: CheckoutFeatures) -> Hit:
    """Checked out within a couple of seconds of the hold. On its own this stays below the
    verify threshold: a quick customer clicks "Pay" as soon as the seats are theirs (the card
    is typed after checkout); with any other signal it tips the score over."""
    return _ramp(2.0 - f.hold_to_pay_s, 0.0, 2.0, 0.45), f"paid {f.hold_to_pay_s:.1f} s after hold"


def far_new_account(f: CheckoutFeatures) -> Hit:
    """A card from far away on an account a few days old."""
    if not f.distance_known or f.account_age_days >= 7:
        return 0.0, ""
    fresh = 1.0 - f.account_age_days / 7
    score = _ramp(f.card_distance_km, 300, 1500, 0.75) * fresh
    return score, f"card {f.card_distance_km:.0f} km away, account {f.account_age_days:.1f} days"


RULES: tuple[tuple[str, Rule], ...] = (
    ("device_farm", device_farm),
    ("card_testing", card_testing),
    ("hoarding", hoarding),
    ("bot_speed", bot_speed),
    ("far_new_account", far_new_account),
)
MIN_REASON = 0.2  # a rule scoring below this is not given as a reason


def rules_score(features: CheckoutFeatures) -> tuple[float, tuple[str, ...]]:
    """The rules' combined score (noisy-or) and the reasons of those that fired, surest first."""
    keep_clean = 1.0
    hits: list[tuple[float, str]] = []
    for code, rule in RULES:
        score, words = rule(features)
        keep_clean *= 1.0 - score
        if score >= MIN_REASON:
            hits.append((score, f"{code}: {words}"))
    hits.sort(key=lambda hit: -hit[0])
    return round(1.0 - keep_clean, 6), tuple(reason for _, reason in hits)


DEFAULT_THRESHOLDS = Thresholds()


def rules_verdict(
    features: CheckoutFeatures, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> Verdict:
    """The rules alone, as the gateway's fallback when the model cannot answer in time."""
    score, reasons = rules_score(features)
    return Verdict(score, thresholds.decide(score), reasons, "fallback")
