"""What a fault stack is asked for (``FaultStackOptions``), checked when it is made: a bad value
is refused with a message that names it, before anything starts."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

RUN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # it names a Ray namespace and Redis keys


@dataclass(frozen=True)
class FaultStackOptions:
    work_dir: Path  # made by the stack (absent or empty), removed at close
    customers: int = 24
    visitors: int = 30
    shows: int = 3
    rows: int = 10
    per_row: int = 20
    hold_ttl_s: float = 15.0
    payment_ttl_s: float = 30.0  # a hold whose payment started lives this long from then
    gateways: int = 2
    admission_per_min: int = 600
    run: str = field(default_factory=lambda: f"faults_{uuid.uuid4().hex[:8]}")
    keep_work_dir: bool = False

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("fault stack options: " + "; ".join(problems))


def _problems(o: FaultStackOptions) -> list[str]:
    ranges = {
        "customers": (o.customers, 2, 10_000),  # the security checks need two
        "visitors": (o.visitors, 1, 10_000),
        "shows": (o.shows, 1, 50),
        "rows": (o.rows, 1, 26),  # rows are lettered A..Z
        "per_row": (o.per_row, 1, 50),
        "gateways": (o.gateways, 1, 8),
        "admission_per_min": (o.admission_per_min, 1, 1_000_000),
    }
    problems = [
        f"{name} must be an integer in {low}..{high}, not {value!r}"
        for name, (value, low, high) in ranges.items()
        if type(value) is not int or not low <= value <= high
    ]
    for name, value in (("hold_ttl_s", o.hold_ttl_s), ("payment_ttl_s", o.payment_ttl_s)):
        if not isinstance(value, int | float) or not 1.0 <= value <= 3600.0:
            problems.append(f"{name} must be 1..3600 seconds, not {value!r}")
    if not isinstance(o.work_dir, Path):
        problems.append(f"work_dir must be a Path, not {o.work_dir!r}")
    if not isinstance(o.run, str) or not RUN_NAME.match(o.run):
        problems.append(f"run must match {RUN_NAME.pattern}, not {o.run!r}")
    return problems
