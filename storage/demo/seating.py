"""Choosing seats for the demo's past bookings: adjacent seats of one category, near the sweet
spot more often than not, never a seat already taken, never a companion seat without its
wheelchair space."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Seating:
    """A screen's sellable seats, grouped for quick picking."""

    blocks: dict[str, tuple[tuple[str, ...], ...]]  # category -> runs of adjacent seats, best first
    pairs: tuple[tuple[str, str], ...]  # (wheelchair space, companion seat), best first

    @classmethod
    def from_layout(cls, layout: dict[str, Any]) -> Seating:
        sx, sy = layout["sweet_spot"]["x"], layout["sweet_spot"]["y"]
        runs: list[tuple[float, str, tuple[str, ...]]] = []
        pairs: list[tuple[float, tuple[str, str]]] = []
        for row in layout["rows"]:
            seats = row["seats"]
            run: list[dict[str, Any]] = []
            for index, seat in enumerate(seats):
                usable = not seat["out_of_service"]
                if run and (not usable or seat["category"] != run[-1]["category"]):
                    runs.append(_run(run, sx, sy))
                    run = []
                if usable:
                    run.append(seat)
                if run and seat["aisle_after"]:
                    runs.append(_run(run, sx, sy))
                    run = []
                if seat["category"] == "companion":
                    space = _space_beside(seats, index)
                    if space is not None:
                        distance = (seat["x"] - sx) ** 2 + (seat["y"] - sy) ** 2
                        pairs.append((distance, (space, seat["label"])))
            if run:
                runs.append(_run(run, sx, sy))
        blocks: dict[str, list[tuple[str, ...]]] = {}
        for _, category, labels in sorted(runs):
            if category not in ("wheelchair", "companion"):
                blocks.setdefault(category, []).append(labels)
        return cls({c: tuple(b) for c, b in blocks.items()}, tuple(p for _, p in sorted(pairs)))

    def pick(
        self, rng: random.Random, taken: set[str], category: str, count: int
    ) -> list[str] | None:
        """``count`` free seats of ``category``: side by side when possible, else split."""
        blocks = [b for b in self.blocks.get(category, ()) if len(b) >= count]
        for _ in range(6 if blocks else 0):
            block = blocks[int(len(blocks) * rng.random() ** 2)]
            start = rng.randrange(len(block) - count + 1)
            chosen = block[start : start + count]
            if not taken.intersection(chosen):
                return list(chosen)
        for block in blocks:
            for start in range(len(block) - count + 1):
                chosen = block[start : start + count]
                if not taken.intersection(chosen):
                    return list(chosen)
        free = [s for b in self.blocks.get(category, ()) for s in b if s not in taken]
        return free[:count] if len(free) >= count else None

    def pick_accessible(
        self, rng: random.Random, taken: set[str], with_companion: bool
    ) -> list[str] | None:
        """A wheelchair space, with its companion seat when asked."""
        free = [p for p in self.pairs if p[0] not in taken and p[1] not in taken]
        if not free:
            return None
        space, companion = free[int(len(free) * rng.random() ** 2)]
        return [space, companion] if with_companion else [space]


def _run(run: list[dict[str, Any]], sx: float, sy: float) -> tuple[float, str, tuple[str, ...]]:
    mx = sum(s["x"] for s in run) / len(run)
    my = sum(s["y"] for s in run) / len(run)
    return ((mx - sx) ** 2 + (my - sy) ** 2, run[0]["category"], tuple(s["label"] for s in run))


def _space_beside(seats: list[dict[str, Any]], index: int) -> str | None:
    """The wheelchair space right beside the companion seat at ``index``, if there is one."""
    if index > 0:
        left = seats[index - 1]
        if left["category"] == "wheelchair" and not left["aisle_after"]:
            return str(left["label"])
    if index + 1 < len(seats):
        right = seats[index + 1]
        if right["category"] == "wheelchair" and not seats[index]["aisle_after"]:
            return str(right["label"])
    return None
