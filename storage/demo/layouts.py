"""Seat layouts of the demo screens, in the JSON shape stored in ``screens.layout``::

    {"rows": [{"label": "A", "seats": [{"label": "A1", "category": "standard", "x": 0.0,
               "y": 3.0, "aisle_after": false, "out_of_service": false}, ...]}, ...],
     "sweet_spot": {"x": 7.5, "y": 11.2}}

A seat's position is its index in its row, left to right; ``aisle_after`` puts an aisle between
it and the next one. The screen is at y = 0. Every companion seat sits right beside a
wheelchair space (same row, next position, no aisle between).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

CATEGORY_ORDER = ("standard", "premium", "recliner", "wheelchair", "companion")
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0
_WIDTH = {"standard": 1.0, "premium": 1.1, "recliner": 1.7, "wheelchair": 1.5, "companion": 1.0}
_AISLE = 1.2
MIN_SEATS, MAX_SEATS = 80, 400


@dataclass(frozen=True, slots=True)
class _RowPlan:
    sections: tuple[int, ...]  # seats per block between aisles, left to right
    category: str  # the row's main category
    premium_centre_only: bool


def row_label(index: int) -> str:
    """A, B, … Z (no I, O), then AA, AB, …"""
    n = len(_ROW_LETTERS)
    if index < n:
        return _ROW_LETTERS[index]
    return _ROW_LETTERS[index // n - 1] + _ROW_LETTERS[index % n]


def _sections(rng: random.Random, width: int, aisles: int) -> tuple[int, ...]:
    if aisles == 1:
        if rng.random() < 0.6:
            return (width // 2, width - width // 2)
        side = 3 + width // 6
        return (width - side, side)
    side = max(3, round(width * rng.uniform(0.2, 0.28)))
    return (side, width - 2 * side, side)


def _plan_rows(rng: random.Random, size: int) -> tuple[list[_RowPlan], bool]:
    curved = rng.random() < 0.4
    aisles = 2 if size > 180 and rng.random() < 0.75 else rng.choice((1, 2))
    width = min(28, max(10, round(math.sqrt(size * 1.5))))
    base = _sections(rng, width, aisles)
    roll = rng.random()
    recliners = "all" if roll < 0.08 and size <= 200 else "back" if roll < 0.35 else "none"
    has_premium = recliners != "all" and rng.random() < 0.9
    centre_only = aisles == 2 and rng.random() < 0.5

    def standard_row(index: int) -> tuple[int, ...]:
        fan = index // 4 if curved else 0
        return tuple(n + (fan if k != 1 or len(base) == 2 else 0) for k, n in enumerate(base))

    def recliner_row() -> tuple[int, ...]:
        return tuple(max(2, round(n * 0.6)) for n in base)

    plans: list[_RowPlan] = []
    back = rng.choice((2, 3)) if recliners == "back" else 0
    total = 0
    while total < size or len(plans) < 4:
        if recliners == "all":
            sections = recliner_row()
            plans.append(_RowPlan(sections, "recliner", False))
        else:
            sections = standard_row(len(plans))
            plans.append(_RowPlan(sections, "standard", centre_only))
        total += sum(sections)
    for index in range(max(1, len(plans) - back), len(plans)):
        plans[index] = _RowPlan(recliner_row(), "recliner", False)
    if has_premium:
        usable = [i for i, p in enumerate(plans) if p.category == "standard"]
        band = usable[len(usable) // 2 : max(len(usable) // 2 + 1, round(len(usable) * 0.8))]
        for index in band:
            plans[index] = _RowPlan(plans[index].sections, "premium", centre_only)
    while sum(sum(p.sections) for p in plans) > MAX_SEATS:
        plans.pop(0)
    while sum(sum(p.sections) for p in plans) < MIN_SEATS:
        plans.insert(0, _RowPlan(base, "standard", False))
    return plans, curved


def _seat_categories(plan: _RowPlan) -> list[str]:
    cats: list[str] = []
    for k, n in enumerate(plan.sections):
        side = plan.premium_centre_only and len(plan.sections) == 3 and k != 1
        cats.extend(["standard" if side and plan.category == "premium" else plan.category] * n)
    return cats


def _wheelchair_pairs(rng: random.Random, plan: _RowPlan, cats: list[str], pairs: int) -> None:
    """Turn row ends and aisle sides into (wheelchair space, companion) pairs, in place."""
    edges: list[tuple[int, int]] = []  # (wheelchair position, companion position)
    start = 0
    for n in plan.sections:
        end = start + n - 1
        edges.append((start, start + 1))
        edges.append((end, end - 1))
        start = end + 1
    rng.shuffle(edges)
    used: set[int] = set()
    for space, companion in edges:
        if pairs == 0:
            break
        if {space, companion} & used or not 0 <= companion < len(cats):
            continue
        cats[space], cats[companion] = "wheelchair", "companion"
        used |= {space, companion, space - 1, space + 1, companion - 1, companion + 1}
        pairs -= 1


def build_layout(rng: random.Random, size: int) -> dict[str, Any]:
    """A varied layout of about ``size`` seats (80–400): straight or curved rows, one or two
    aisles, premium rows in the middle, sometimes recliners, wheelchair spaces with companions.

    >>> layout = build_layout(random.Random(1), 180)
    """
    plans, curved = _plan_rows(rng, min(MAX_SEATS - 40, max(MIN_SEATS, size)))
    total = sum(sum(p.sections) for p in plans)
    standard_rows = [i for i, p in enumerate(plans) if p.category != "recliner"] or [0]
    wheel_row = rng.choice(
        (standard_rows[0], standard_rows[len(standard_rows) // 3], standard_rows[-1])
    )
    pairs = 2 if total < 150 else 3 if total < 280 else 4
    rows: list[dict[str, Any]] = []
    depth = 3.0
    half = max(_row_width(p, _seat_categories(p)) for p in plans) / 2 + 0.5
    for index, plan in enumerate(plans):
        cats = _seat_categories(plan)
        if index == wheel_row:
            _wheelchair_pairs(rng, plan, cats, pairs)
        label = row_label(index)
        rows.append({"label": label, "seats": _place_row(label, plan, cats, depth, half, curved)})
        depth += 1.7 if plan.category == "recliner" else 1.0
    _break_some(rng, rows)
    sweet = {"x": round(half, 2), "y": round(3.0 + (depth - 3.0) * 0.62, 2)}
    return {"rows": rows, "sweet_spot": sweet}


def _row_width(plan: _RowPlan, cats: list[str]) -> float:
    return sum(_WIDTH[c] for c in cats) + _AISLE * (len(plan.sections) - 1)


def _place_row(
    label: str, plan: _RowPlan, cats: list[str], y: float, centre: float, curved: bool
) -> list[dict[str, Any]]:
    ends = set()
    position = -1
    for n in plan.sections[:-1]:
        position += n
        ends.add(position)
    x = centre - _row_width(plan, cats) / 2
    seats: list[dict[str, Any]] = []
    for index, category in enumerate(cats):
        width = _WIDTH[category]
        sx = x + width / 2
        sy = y - (sx - centre) ** 2 / (2 * (y + 10.0)) if curved else y
        seats.append(
            {
                "label": f"{label}{index + 1}",
                "category": category,
                "x": round(sx, 2),
                "y": round(sy, 2),
                "aisle_after": index in ends,
                "out_of_service": False,
            }
        )
        x += width + (_AISLE if index in ends else 0.0)
    return seats


def _break_some(rng: random.Random, rows: list[dict[str, Any]]) -> None:
    """Mark up to three ordinary seats out of service."""
    ordinary = [s for r in rows for s in r["seats"] if s["category"] in ("standard", "premium")]
    for seat in rng.sample(ordinary, min(len(ordinary), rng.choice((0, 1, 1, 2, 3)))):
        seat["out_of_service"] = True


def layout_summary(layout: dict[str, Any]) -> tuple[int, list[str]]:
    """(seat count, categories present in canonical order) for the screens columns."""
    seats = [s for r in layout["rows"] for s in r["seats"]]
    present = {s["category"] for s in seats}
    return len(seats), [c for c in CATEGORY_ORDER if c in present]
