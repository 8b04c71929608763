"""The seats of a screen: where they are, what kind they are, which ones sit side by side.

A ``Layout`` is built once per show and never changes. It precomputes what the hot paths need:
lookup by label, rows in order front to back (the screen is at low ``y``), adjacency, and the
*segments* of each row (maximal runs of adjacent seats, cut by aisles and gaps), each with prefix
sums of its coordinates so that best available finds a block's centroid in O(1).

    >>> layout = Layout.from_dict({"rows": [{"label": "A", "seats": [
    ...     {"label": "A1", "category": "standard", "x": 0.0, "y": 0.0, "aisle_after": True},
    ...     {"label": "A2", "category": "standard", "x": 1.0, "y": 0.0}]}]})
    >>> layout.neighbours("A1")
    ()
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from actors.errors import LayoutError

__all__ = ["CATEGORIES", "Layout", "SeatSpec", "SeatState", "Segment"]

#: Seat categories a layout may use; wheelchair spaces and companion seats are their own.
CATEGORIES = frozenset({"standard", "premium", "recliner", "wheelchair", "companion"})


class SeatState(StrEnum):
    """The state of one seat of one show."""

    AVAILABLE = "available"
    HELD = "held"
    BOOKED = "booked"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class SeatSpec:
    """One seat of a screen; ``aisle_after`` means the next seat of the row is not adjacent."""

    label: str
    row: str
    position: int
    category: str
    x: float
    y: float
    aisle_after: bool = False
    out_of_service: bool = False


@dataclass(frozen=True, slots=True)
class Segment:
    """A maximal run of adjacent seats in one row, left to right.

    ``cum_x[i]`` is the sum of the first ``i`` x coordinates (same for ``cum_y``).
    """

    row_index: int
    labels: tuple[str, ...]
    categories: tuple[str, ...]
    xs: tuple[float, ...]
    cum_x: tuple[float, ...]
    cum_y: tuple[float, ...]


class Layout:
    """The immutable seat plan of a show, with precomputed rows, adjacency and segments."""

    def __init__(
        self, seats: Iterable[SeatSpec], sweet_spot: tuple[float, float] | None = None
    ) -> None:
        specs = list(seats)
        _check_specs(specs)
        rows: dict[str, list[SeatSpec]] = {}
        for spec in specs:
            rows.setdefault(spec.row, []).append(spec)
        self._rows = {row: tuple(sorted(s, key=lambda s: s.position)) for row, s in rows.items()}
        self._row_index = {row: i for i, row in enumerate(self._rows)}
        self._seats = tuple(spec for row in self._rows.values() for spec in row)
        self._by_label = {spec.label: spec for spec in self._seats}
        self._segments = tuple(_segments(self._rows))
        self._neighbours = _neighbours(self._segments)
        spot = _default_spot(self._seats) if sweet_spot is None else _check_point(sweet_spot)
        self._sweet_spot = spot
        self._pitch = _pitch(self._segments)

    @property
    def seats(self) -> tuple[SeatSpec, ...]:
        """All seats, row by row (front to back), left to right."""
        return self._seats

    @property
    def labels(self) -> tuple[str, ...]:
        """All seat labels in the order of ``seats``."""
        return tuple(self._by_label)

    @property
    def rows(self) -> tuple[str, ...]:
        """Row labels in order, front (near the screen) to back."""
        return tuple(self._rows)

    @property
    def sweet_spot(self) -> tuple[float, float]:
        """The best point to sit at, ``(x, y)``."""
        return self._sweet_spot

    @property
    def pitch(self) -> float:
        """The typical distance between two adjacent seats (median), 1.0 if none are adjacent."""
        return self._pitch

    @property
    def segments(self) -> tuple[Segment, ...]:
        """Maximal runs of adjacent seats, row by row, left to right."""
        return self._segments

    def seat(self, label: str) -> SeatSpec:
        """The seat with this label; ``KeyError`` if there is none."""
        return self._by_label[label]

    def row_seats(self, row: str) -> tuple[SeatSpec, ...]:
        """The seats of one row, left to right."""
        return self._rows[row]

    def row_index(self, row: str) -> int:
        """The row's place from the front, starting at 0."""
        return self._row_index[row]

    def neighbours(self, label: str) -> tuple[str, ...]:
        """The seats adjacent to ``label``: same row, consecutive positions, no aisle between."""
        return self._neighbours[label]

    def __contains__(self, label: object) -> bool:
        return label in self._by_label

    def __iter__(self) -> Iterator[SeatSpec]:
        return iter(self._seats)

    def __len__(self) -> int:
        return len(self._seats)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return self._seats == other._seats and self._sweet_spot == other._sweet_spot

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Layout({len(self._seats)} seats, {len(self._rows)} rows)"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        """Build a layout from its JSON shape (as kept in ``screens.layout``).

        ``{"rows": [{"label": "A", "seats": [{"label": "A1", "category": "standard",
        "x": 0.0, "y": 0.0, "aisle_after": false, "out_of_service": false}]}],
        "sweet_spot": {"x": 1.0, "y": 2.0}}``; a seat's position is its index in its row.
        Raises ``LayoutError`` on malformed input.
        """
        if not isinstance(data, Mapping):
            raise LayoutError("layout must be an object", {"path": ""})
        rows = _get(data, "rows", list, "")
        specs = [spec for i, row in enumerate(rows) for spec in _row_specs(row, f"rows[{i}]")]
        spot = data.get("sweet_spot")
        if spot is None:
            return cls(specs)
        if not isinstance(spot, Mapping):
            raise LayoutError("sweet_spot must be an object", {"path": "sweet_spot"})
        return cls(specs, (_number(spot, "x", "sweet_spot"), _number(spot, "y", "sweet_spot")))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape read by ``from_dict``."""
        rows = [
            {"label": row, "seats": [_seat_dict(spec) for spec in specs]}
            for row, specs in self._rows.items()
        ]
        x, y = self._sweet_spot
        return {"rows": rows, "sweet_spot": {"x": x, "y": y}}


def _check_specs(specs: list[SeatSpec]) -> None:
    if not specs:
        raise LayoutError("a layout needs at least one seat")
    labels: set[str] = set()
    places: set[tuple[str, int]] = set()
    for spec in specs:
        where = {"seat": spec.label}
        if not spec.label or not spec.row:
            raise LayoutError("seat and row labels must not be empty", where)
        if spec.label in labels:
            raise LayoutError("duplicate seat label", where)
        if (spec.row, spec.position) in places:
            raise LayoutError("two seats share a position in their row", where)
        if spec.category not in CATEGORIES:
            raise LayoutError("unknown seat category", {**where, "category": spec.category})
        if not (math.isfinite(spec.x) and math.isfinite(spec.y)):
            raise LayoutError("seat coordinates must be finite", where)
        labels.add(spec.label)
        places.add((spec.row, spec.position))


def _segments(rows: Mapping[str, tuple[SeatSpec, ...]]) -> Iterator[Segment]:
    for row_index, specs in enumerate(rows.values()):
        run: list[SeatSpec] = []
        for spec in specs:
            if run and (run[-1].aisle_after or run[-1].position + 1 != spec.position):
                yield _segment(row_index, run)
                run = []
            run.append(spec)
        yield _segment(row_index, run)


def _segment(row_index: int, run: list[SeatSpec]) -> Segment:
    cum_x, cum_y = [0.0], [0.0]
    for spec in run:
        cum_x.append(cum_x[-1] + spec.x)
        cum_y.append(cum_y[-1] + spec.y)
    return Segment(
        row_index=row_index,
        labels=tuple(s.label for s in run),
        categories=tuple(s.category for s in run),
        xs=tuple(s.x for s in run),
        cum_x=tuple(cum_x),
        cum_y=tuple(cum_y),
    )


def _neighbours(segments: Iterable[Segment]) -> dict[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for seg in segments:
        labels = seg.labels
        for i, label in enumerate(labels):
            result[label] = labels[max(i - 1, 0) : i] + labels[i + 1 : i + 2]
    return result


def _default_spot(seats: tuple[SeatSpec, ...]) -> tuple[float, float]:
    ys = [s.y for s in seats]
    x = statistics.fmean(s.x for s in seats)
    return (x, min(ys) + (max(ys) - min(ys)) * 2 / 3)


def _pitch(segments: Iterable[Segment]) -> float:
    gaps = [abs(b - a) for seg in segments for a, b in zip(seg.xs, seg.xs[1:], strict=False)]
    gap = statistics.median(gaps) if gaps else 0.0
    return gap if gap > 0 else 1.0


def _check_point(point: tuple[float, float]) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError) as exc:
        raise LayoutError("sweet spot must be a pair of numbers", {"path": "sweet_spot"}) from exc
    if not (math.isfinite(x) and math.isfinite(y)):
        raise LayoutError("sweet spot must be finite", {"path": "sweet_spot"})
    return (x, y)


def _row_specs(row: object, path: str) -> list[SeatSpec]:
    if not isinstance(row, Mapping):
        raise LayoutError("a row must be an object", {"path": path})
    label = _get(row, "label", str, path)
    seats = _get(row, "seats", list, path)
    return [_seat_spec(seat, label, i, f"{path}.seats[{i}]") for i, seat in enumerate(seats)]


def _seat_spec(seat: object, row: str, position: int, path: str) -> SeatSpec:
    if not isinstance(seat, Mapping):
        raise LayoutError("a seat must be an object", {"path": path})
    return SeatSpec(
        label=_get(seat, "label", str, path),
        row=row,
        position=position,
        category=_get(seat, "category", str, path),
        x=_number(seat, "x", path),
        y=_number(seat, "y", path),
        aisle_after=_get(seat, "aisle_after", bool, path, default=False),
        out_of_service=_get(seat, "out_of_service", bool, path, default=False),
    )


_MISSING: Any = object()


def _get(
    data: Mapping[str, Any], key: str, kind: type[Any], path: str, default: Any = _MISSING
) -> Any:
    where = {"path": f"{path}.{key}" if path else key}
    if key not in data:
        if default is _MISSING:
            raise LayoutError(f"missing field {key!r}", where)
        return default
    value = data[key]
    if not isinstance(value, kind):
        raise LayoutError(f"field {key!r} must be of type {kind.__name__}", where)
    return value


def _number(data: Mapping[str, Any], key: str, path: str) -> float:
    where = {"path": f"{path}.{key}"}
    if key not in data:
        raise LayoutError(f"missing field {key!r}", where)
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LayoutError(f"field {key!r} must be a finite number", where)
    return float(value)


def _seat_dict(spec: SeatSpec) -> dict[str, Any]:
    return {
        "label": spec.label,
        "category": spec.category,
        "x": spec.x,
        "y": spec.y,
        "aisle_after": spec.aisle_after,
        "out_of_service": spec.out_of_service,
    }
