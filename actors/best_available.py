"""Best available: which free seats to offer for "n seats of this category".

The rules, in order of preference:

1. One block: ``count`` adjacent seats (one segment of one row, no aisle inside) whose centroid
   is nearest the layout's sweet spot.
2. Only with ``allow_split``: two blocks in consecutive rows, one in front of the other (their
   x extents overlap, within half a seat pitch), sizes summing to ``count``, nearest the sweet
   spot (seat-weighted mean of the blocks' centroid distances; then the most even split).
3. Only with ``allow_split``: the fewest blocks anywhere, nearest the sweet spot (same measure).
   At most one block is cut from one run of free seats.

Orphan rule: a choice never leaves a single free seat stranded (a run of exactly one AVAILABLE
seat between taken or blocked seats, an aisle or the row end). Since a block always sits inside
one run of free seats, that means the free seats it leaves on either side of it number 0 or at
least 2. Without ``allow_split`` the rule is absolute. With it, steps 1-3 are tried with the rule
first, and only if none of them finds any orphan-free choice are they tried again without it.

Category "wheelchair" chooses wheelchair spaces together with companion seats: every block holds
at least one wheelchair space, and each companion seat in it is adjacent to a wheelchair space of
the same block; ``count`` counts both. A request for "companion" alone is refused.

Ties are broken deterministically: front rows first, then left to right. Distances are rounded to
nine decimals before comparing, so mirror-image blocks tie exactly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from actors.errors import CompanionWithoutWheelchair, InvalidRequest, NoSeatsAvailable
from actors.layout import CATEGORIES, Layout, SeatState, Segment

__all__ = ["choose_best"]

_WHEELCHAIR = "wheelchair"
_COMPANION = "companion"
_AVAILABLE = SeatState.AVAILABLE
_EPSILON = 1e-9  # distances closer than this tie


class _Block(NamedTuple):
    """A candidate block: ``labels`` adjacent in one segment, cut from free-seat run ``group``.

    Fields are ordered so that sorting blocks puts the nearest first, then front, then left.
    """

    distance: float
    size: int
    row: int
    group: int
    order: tuple[int, int]
    labels: tuple[str, ...]
    xmin: float
    xmax: float


def choose_best(
    layout: Layout,
    states: Mapping[str, SeatState],
    count: int,
    category: str,
    *,
    allow_split: bool = False,
) -> tuple[str, ...]:
    """The labels of the best ``count`` available seats of ``category``, front to back.

    ``states`` maps every label of ``layout`` to its state. Raises ``InvalidRequest`` (count below
    one, unknown category), ``CompanionWithoutWheelchair`` (category "companion") or
    ``NoSeatsAvailable``.

        seats = choose_best(layout, seatmap.snapshot().seats, 2, "standard", allow_split=True)
    """
    _check_request(count, category)
    for strict in (True, False) if allow_split else (True,):
        single = _best_single(layout, states, count, category, strict)
        if single is not None:
            return single
        if allow_split and count > 1:
            blocks = list(_blocks(layout, states, category, range(1, count), strict))
            choice = _front_back(blocks, count, layout.pitch) or _fewest(blocks, count)
            if choice:
                return tuple(label for block in choice for label in block.labels)
    raise NoSeatsAvailable(
        "no seats fit the request", {"count": count, "category": category, "split": allow_split}
    )


def _check_request(count: int, category: str) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidRequest("count must be a positive integer", {"count": count})
    if category not in CATEGORIES:
        raise InvalidRequest("unknown seat category", {"category": category})
    if category == _COMPANION:
        raise CompanionWithoutWheelchair(
            "companion seats are sold only with a wheelchair space; ask for 'wheelchair'",
            {"category": category},
        )


def _best_single(
    layout: Layout, states: Mapping[str, SeatState], count: int, category: str, strict: bool
) -> tuple[str, ...] | None:
    """Step 1, written without block objects: this is the hot path."""
    sx, sy = layout.sweet_spot
    best: tuple[float, int, int] | None = None
    best_at: tuple[Segment, int] | None = None
    for seg_index, seg, i, j, _ in _windows(layout, states, category, (count,), strict):
        cx = (seg.cum_x[j] - seg.cum_x[i]) / count
        cy = (seg.cum_y[j] - seg.cum_y[i]) / count
        key = (round(math.hypot(cx - sx, cy - sy), 9), seg_index, i)
        if best is None or key < best:
            best, best_at = key, (seg, i)
    if best_at is None:
        return None
    seg, i = best_at
    return seg.labels[i : i + count]


def _windows(
    layout: Layout,
    states: Mapping[str, SeatState],
    category: str,
    sizes: Iterable[int],
    strict: bool,
) -> Iterator[tuple[int, Segment, int, int, int]]:
    """Every allowed block as ``(segment index, segment, start, stop, group)``."""
    eligible = {_WHEELCHAIR, _COMPANION} if category == _WHEELCHAIR else {category}
    sizes = tuple(sizes)
    group = 0
    for seg_index, seg in enumerate(layout.segments):
        free = [states[label] == _AVAILABLE for label in seg.labels]
        fits = [cat in eligible for cat in seg.categories]
        for a, b in _runs(free, 0, len(free)):
            group += 1
            for p, q in _runs(fits, a, b):
                group += 0 if strict else 1  # without the orphan rule, runs never interact
                for size in sizes:
                    for i in range(p, q - size + 1):
                        j = i + size
                        if strict and (i - a == 1 or b - j == 1):
                            continue
                        if category == _WHEELCHAIR and not _wheelchair_ok(seg.categories, i, j):
                            continue
                        yield seg_index, seg, i, j, group


def _runs(flags: Sequence[bool], start: int, stop: int) -> Iterator[tuple[int, int]]:
    """Maximal ``[a, b)`` ranges inside ``[start, stop)`` where ``flags`` are true."""
    a = None
    for k in range(start, stop):
        if flags[k]:
            if a is None:
                a = k
        elif a is not None:
            yield a, k
            a = None
    if a is not None:
        yield a, stop


def _wheelchair_ok(categories: tuple[str, ...], i: int, j: int) -> bool:
    """At least one wheelchair space, and every companion seat next to one, all inside."""
    window = categories[i:j]
    if _WHEELCHAIR not in window:
        return False
    for k, category in enumerate(window):
        if category == _COMPANION and _WHEELCHAIR not in window[max(k - 1, 0) : k + 2]:
            return False
    return True


def _blocks(
    layout: Layout,
    states: Mapping[str, SeatState],
    category: str,
    sizes: Iterable[int],
    strict: bool,
) -> Iterator[_Block]:
    sx, sy = layout.sweet_spot
    for seg_index, seg, i, j, group in _windows(layout, states, category, sizes, strict):
        size = j - i
        cx = (seg.cum_x[j] - seg.cum_x[i]) / size
        cy = (seg.cum_y[j] - seg.cum_y[i]) / size
        x1, x2 = seg.xs[i], seg.xs[j - 1]
        yield _Block(
            distance=math.hypot(cx - sx, cy - sy),
            size=size,
            row=seg.row_index,
            group=group,
            order=(seg_index, i),
            labels=seg.labels[i:j],
            xmin=min(x1, x2),
            xmax=max(x1, x2),
        )


def _front_back(blocks: list[_Block], count: int, pitch: float) -> tuple[_Block, ...] | None:
    """Step 2: two blocks in consecutive rows, one behind the other."""
    by_row_size: dict[tuple[int, int], list[_Block]] = {}
    for block in sorted(blocks):  # nearest first, so the search below can stop early
        by_row_size.setdefault((block.row, block.size), []).append(block)
    slack = pitch / 2
    best: tuple[tuple[float, int, tuple[int, int], tuple[int, int]], _Block, _Block] | None = None
    for (row, front_size), fronts in by_row_size.items():
        backs = by_row_size.get((row + 1, count - front_size))
        if not backs:
            continue
        by_x = sorted(backs, key=lambda back: back.xmin)
        starts = [back.xmin for back in by_x]
        widest = max(back.xmax - back.xmin for back in by_x)
        for front in fronts:
            if best is not None and _score((front, backs[0]), count) > best[0][0]:
                break  # no later front can beat the best pair found
            lo = bisect.bisect_left(starts, front.xmin - slack - widest)
            hi = bisect.bisect_right(starts, front.xmax + slack)
            for back in by_x[lo:hi]:
                if back.xmax + slack < front.xmin:
                    continue
                key = (
                    _score((front, back), count),
                    abs(2 * front_size - count),
                    front.order,
                    back.order,
                )
                if best is None or key < best[0]:
                    best = (key, front, back)
    return None if best is None else (best[1], best[2])


class _Plan(NamedTuple):
    """A way to reach some number of seats: ``blocks`` used, their weighted distance, a chain."""

    blocks: int
    cost: float
    block: _Block | None
    parent: _Plan | None


def _fewest(blocks: list[_Block], count: int) -> tuple[_Block, ...] | None:
    """Step 3: the fewest blocks, at most one per free-seat run, nearest the sweet spot.

    A knapsack over runs: ``plans[s]`` is the best plan reaching ``s`` seats, minimising
    ``(blocks, cost)`` lexicographically, where cost is the seat-weighted distance.
    """
    options: dict[int, dict[int, _Block]] = {}
    for block in blocks:  # keep the nearest block of each size in each run
        sized = options.setdefault(block.group, {})
        if block.size not in sized or block.distance < sized[block.size].distance:
            sized[block.size] = block
    plans: list[_Plan | None] = [None] * (count + 1)
    plans[0] = _Plan(0, 0.0, None, None)
    for sized in options.values():
        previous = list(plans)
        for seats, plan in enumerate(previous):
            if plan is None:
                continue
            for size, block in sized.items():
                if seats + size > count:
                    continue
                cost = plan.cost + size * block.distance
                current = plans[seats + size]
                if current is None or (plan.blocks + 1, cost + _EPSILON) < (
                    current.blocks,
                    current.cost,
                ):
                    plans[seats + size] = _Plan(plan.blocks + 1, cost, block, plan)
    chosen: list[_Block] = []
    plan = plans[count]
    while plan is not None and plan.block is not None:
        chosen.append(plan.block)
        plan = plan.parent
    return tuple(sorted(chosen, key=lambda block: block.order)) or None


def _score(blocks: Iterable[_Block], count: int) -> float:
    """Seat-weighted mean distance of the blocks' centroids to the sweet spot."""
    return round(sum(block.size * block.distance for block in blocks) / count, 9)
