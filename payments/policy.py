"""How much a customer's cancellation gives back: tiers of time before the show.

The default: everything until 2 hours before the show, half until 30 minutes before, nothing
after (the seats still go back on sale). Configured as text, longest lead first::

    >>> policy = RefundPolicy.parse("7200:100,1800:50")
    >>> policy.refund_cents(1250, seconds_before=3600)
    625
    >>> policy.refund_cents(1250, seconds_before=600)
    0

Amounts round down to the minor unit, so a refund never exceeds what was paid.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_POLICY = "7200:100,1800:50"


class PolicyError(ValueError):
    """A refund policy that cannot be parsed or makes no sense."""


@dataclass(frozen=True)
class Tier:
    min_seconds_before: int
    percent: int


@dataclass(frozen=True)
class RefundPolicy:
    tiers: tuple[Tier, ...]

    @classmethod
    def parse(cls, text: str) -> RefundPolicy:
        tiers: list[Tier] = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            lead, sep, percent = part.partition(":")
            if not sep:
                raise PolicyError(f"tier {part!r} is not SECONDS:PERCENT")
            try:
                tier = Tier(int(lead), int(percent))
            except ValueError as exc:
                raise PolicyError(f"tier {part!r} is not SECONDS:PERCENT") from exc
            if tier.min_seconds_before < 0 or not 0 <= tier.percent <= 100:
                raise PolicyError(f"tier {part!r}: seconds >= 0 and percent in 0..100")
            tiers.append(tier)
        leads = [t.min_seconds_before for t in tiers]
        if leads != sorted(leads, reverse=True) or len(set(leads)) != len(leads):
            raise PolicyError("tiers must go from the longest lead to the shortest")
        percents = [t.percent for t in tiers]
        if percents != sorted(percents, reverse=True):
            raise PolicyError("a later cancellation cannot give back more than an earlier one")
        return cls(tuple(tiers))

    def percent(self, seconds_before: float) -> int:
        """The percentage given back when cancelling ``seconds_before`` the show starts."""
        for tier in self.tiers:
            if seconds_before >= tier.min_seconds_before:
                return tier.percent
        return 0

    def refund_cents(self, paid_cents: int, *, seconds_before: float) -> int:
        return paid_cents * self.percent(seconds_before) // 100

    def describe(self) -> list[dict[str, int]]:
        return [
            {"min_seconds_before": t.min_seconds_before, "percent": t.percent} for t in self.tiers
        ]
