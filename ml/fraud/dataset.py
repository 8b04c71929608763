"""A labelled set of checkout feature rows: the synthetic history's and the analysts'."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

NORMAL = "normal"  # the pattern name of a legitimate row


@dataclass(frozen=True)
class Dataset:
    """Feature rows (columns in the order of ``FEATURES``), labels, pattern names, times."""

    X: np.ndarray
    y: np.ndarray
    pattern: np.ndarray
    at: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, which: np.ndarray) -> Dataset:
        return Dataset(self.X[which], self.y[which], self.pattern[which], self.at[which])

    def split_by_time(self, *cuts: float) -> list[Dataset]:
        """Consecutive parts by time; ``cuts`` are fractions of the time span, e.g. 0.6, 0.8."""
        if not all(a < b for a, b in pairwise([0.0, *cuts, 1.0])):
            raise ValueError(f"cuts must rise strictly within (0, 1), got {cuts}")
        low, high = float(self.at.min()), float(self.at.max())
        edges = [-math.inf, *(low + c * (high - low) for c in cuts), math.inf]
        return [self.take((self.at >= a) & (self.at < b)) for a, b in pairwise(edges)]

    @staticmethod
    def concat(parts: list[Dataset]) -> Dataset:
        return Dataset(
            np.concatenate([p.X for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.pattern for p in parts]),
            np.concatenate([p.at for p in parts]),
        )
