"""Rates of the rate limits, as the settings write them: ``N/UNIT`` (UNIT ``s``, ``min`` or
``h``), optionally ``:BURST`` (the bucket's size; ``N`` when left out), or ``off``.

    Rate.parse("30/min:10")              # Rate(per_s=0.5, burst=10)
    RateLimits.parse({"hold_user": "60/min:20", "hold_ip": "off"})

Pure: it imports nothing of the gateway's, so the settings can check their values with it
before anything starts (``gateway.ratelimit`` applies them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|min|h)\s*(?::\s*(\d+))?\s*$")
_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    per_s: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"30/min"``, ``"5/s:20"``, or ``"off"`` (None); ``ValueError`` otherwise."""
        if text.strip().lower() == "off":
            return None
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"a rate looks like 30/min, 5/s:20 or off, not {text!r}")
        count, unit, burst = float(match[1]), match[2], match[3]
        if count <= 0:
            raise ValueError(f"a rate must be above zero, not {text!r}")
        size = int(burst) if burst is not None else max(1, math.floor(count))
        if size < 1:
            raise ValueError(f"a burst must be at least 1, not {text!r}")
        return cls(count / _UNITS[unit], size)

    def __str__(self) -> str:
        return f"{self.per_s * 60:g}/min:{self.burst}"


@dataclass(frozen=True)
class RateLimits:
    """One rate per (action, who); None: unlimited. The defaults of a gateway without any are
    unlimited; ``seatserver`` settings give every deployment real ones."""

    login_ip: Rate | None = None
    login_account: Rate | None = None
    join_user: Rate | None = None
    join_ip: Rate | None = None
    hold_user: Rate | None = None
    hold_ip: Rate | None = None
    poll_user: Rate | None = None  # where do I stand in the queue (the websocket pushes it)

    @classmethod
    def parse(cls, texts: Mapping[str, str]) -> RateLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(texts) - known
        if unknown:
            raise ValueError(f"unknown rate limits: {sorted(unknown)}")
        return cls(**{name: Rate.parse(text) for name, text in texts.items()})
