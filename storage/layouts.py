"""Seat layouts of screens: the JSON shape kept in ``screens.layout`` and its validator.

A layout lists rows from the screen backwards; each row lists its seats left to right as seen
from the screen, so a seat's position is its index in the list::

    {"rows": [{"label": "A", "seats": [
        {"label": "A1", "category": "wheelchair", "x": 0.0, "y": 0.0},
        {"label": "A2", "category": "companion", "x": 1.0, "y": 0.0, "aisle_after": true},
        {"label": "A3", "category": "standard", "x": 3.0, "y": 0.0, "out_of_service": true}]}],
     "sweet_spot": {"x": 1.5, "y": 6.0}}

``aisle_after`` (default false) puts an aisle between a seat and the next one, so the two are
not adjacent; ``out_of_service`` defaults to false; ``sweet_spot`` is optional. ``x``/``y`` are
drawing coordinates with the screen at low ``y``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from storage.errors import CompanionWithoutWheelchairSpace, DuplicateSeatLabel, InvalidLayout

SEAT_CATEGORIES = ("companion", "premium", "recliner", "standard", "wheelchair")
MAX_SEATS = 2000

_LAYOUT_KEYS = frozenset({"rows", "sweet_spot"})
_ROW_KEYS = frozenset({"label", "seats"})
_SEAT_KEYS = frozenset({"label", "category", "x", "y", "aisle_after", "out_of_service"})
_POINT_KEYS = frozenset({"x", "y"})


@dataclass(frozen=True)
class LayoutSummary:
    """What the catalog keeps beside a valid layout."""

    seat_count: int
    categories: tuple[str, ...]  # sorted, each once


def validate_layout(layout: object) -> LayoutSummary:
    """Check a layout's shape and seating rules; return its seat count and categories.

    Raises ``InvalidLayout`` (``details["path"]`` names the bad part), ``DuplicateSeatLabel``
    or ``CompanionWithoutWheelchairSpace``.

    >>> validate_layout({"rows": [{"label": "A", "seats": [
    ...     {"label": "A1", "category": "standard", "x": 0, "y": 0}]}]})
    LayoutSummary(seat_count=1, categories=('standard',))
    """
    top = _mapping(layout, "layout", _LAYOUT_KEYS, required=frozenset({"rows"}))
    if "sweet_spot" in top:
        point = _mapping(top["sweet_spot"], "sweet_spot", _POINT_KEYS, required=_POINT_KEYS)
        _coordinates(point, "sweet_spot")
    rows = top["rows"]
    if not isinstance(rows, list) or not rows:
        raise _invalid("rows", "a layout needs a non-empty list of rows")
    seats = [_seats_of_row(row, f"rows[{i}]") for i, row in enumerate(rows)]
    seat_count = sum(len(row_seats) for row_seats in seats)
    if seat_count > MAX_SEATS:
        raise InvalidLayout(
            f"a screen has at most {MAX_SEATS} seats, this layout has {seat_count}",
            {"path": "rows", "seat_count": seat_count, "limit": MAX_SEATS},
        )
    _check_unique([row["label"] for row in rows], "row")
    _check_unique([seat["label"] for row_seats in seats for seat in row_seats], "seat")
    _check_companions(seats)
    categories = {seat["category"] for row_seats in seats for seat in row_seats}
    return LayoutSummary(seat_count, tuple(sorted(categories)))


def _seats_of_row(row: object, path: str) -> list[dict[str, Any]]:
    checked = _mapping(row, path, _ROW_KEYS, required=_ROW_KEYS)
    _label(checked, path)
    seats = checked["seats"]
    if not isinstance(seats, list) or not seats:
        raise _invalid(f"{path}.seats", "a row needs a non-empty list of seats")
    return [_seat(seat, f"{path}.seats[{i}]") for i, seat in enumerate(seats)]


def _seat(seat: object, path: str) -> dict[str, Any]:
    checked = _mapping(seat, path, _SEAT_KEYS, required=frozenset({"label", "category", "x", "y"}))
    _label(checked, path)
    if checked["category"] not in SEAT_CATEGORIES:
        raise _invalid(
            f"{path}.category",
            f"unknown seat category {checked['category']!r}; use one of "
            + ", ".join(SEAT_CATEGORIES),
        )
    _coordinates(checked, path)
    for flag in ("aisle_after", "out_of_service"):
        if not isinstance(checked.get(flag, False), bool):
            raise _invalid(f"{path}.{flag}", f"{flag} must be true or false")
    return checked


def _mapping(
    value: object, path: str, allowed: frozenset[str], *, required: frozenset[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(path, "must be a JSON object")
    unknown = sorted(str(key) for key in value.keys() - allowed)
    if unknown:
        raise _invalid(path, f"unknown keys {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(required - value.keys())
    if missing:
        raise _invalid(path, f"missing keys {missing}")
    return value


def _label(value: dict[str, Any], path: str) -> None:
    label = value["label"]
    if not isinstance(label, str) or not label.strip():
        raise _invalid(f"{path}.label", "a label must be a non-empty string")


def _coordinates(value: dict[str, Any], path: str) -> None:
    for axis in ("x", "y"):
        number = value[axis]
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise _invalid(f"{path}.{axis}", f"{axis} must be a number")
        if not math.isfinite(number):
            raise _invalid(f"{path}.{axis}", f"{axis} must be finite")


def _check_unique(labels: list[str], kind: str) -> None:
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise DuplicateSeatLabel(
            f"{kind} labels used more than once: {', '.join(duplicates)}",
            {"kind": kind, "labels": duplicates},
        )


def _check_companions(rows: list[list[dict[str, Any]]]) -> None:
    """A companion seat must sit right beside a wheelchair space, with no aisle between."""
    lonely = [
        row[i]["label"]
        for row in rows
        for i in range(len(row))
        if row[i]["category"] == "companion"
        and not any(seat["category"] == "wheelchair" for seat in _neighbours(row, i))
    ]
    if lonely:
        raise CompanionWithoutWheelchairSpace(
            f"companion seats without an adjacent wheelchair space: {', '.join(lonely)}",
            {"labels": lonely},
        )


def _neighbours(row: list[dict[str, Any]], i: int) -> list[dict[str, Any]]:
    """The seats directly beside ``row[i]`` with no aisle between."""
    found = []
    if i > 0 and not row[i - 1].get("aisle_after", False):
        found.append(row[i - 1])
    if i + 1 < len(row) and not row[i].get("aisle_after", False):
        found.append(row[i + 1])
    return found


def _invalid(path: str, problem: str) -> InvalidLayout:
    return InvalidLayout(f"invalid layout at {path}: {problem}", {"path": path})
