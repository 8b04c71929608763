"""The plain values of the operator features; built by the composition root from ``Settings``.

Each area keeps its fields in its own block below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpsConfig:
    # -- analytics --

    # -- forecasts --

    # -- experiments --

    # -- monitoring --
    pass
