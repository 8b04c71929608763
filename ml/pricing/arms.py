"""The pricing experiment's arms: a user sees the control price table or the optimizer's
prices, decided by a stable hash so the same user always lands in the same arm (across
processes and restarts, unlike Python's ``hash``)."""

from __future__ import annotations

import hashlib
from typing import Literal

Arm = Literal["control", "dynamic"]
ARMS: tuple[Arm, ...] = ("control", "dynamic")
_SCALE = float(2**64)


def assign_arm(user_id: int, *, experiment: str = "pricing-1", dynamic_share: float = 0.5) -> Arm:
    """The arm of ``user_id`` in ``experiment``: "dynamic" for a ``dynamic_share`` of users.

    >>> assign_arm(42) == assign_arm(42)
    True
    """
    if not 0.0 <= dynamic_share <= 1.0:
        raise ValueError("dynamic_share must be within 0..1")
    if not experiment:
        raise ValueError("experiment needs a name")
    return "dynamic" if hash_point(experiment, user_id) < dynamic_share else "control"


def hash_point(experiment: str, user_id: int) -> float:
    """Where ``user_id`` falls in ``experiment``: uniform in [0, 1), the same in every process
    (sha256 of "experiment:user"); arms laid end to end by their shares take the user whose
    point falls in theirs."""
    digest = hashlib.sha256(f"{experiment}:{int(user_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE
