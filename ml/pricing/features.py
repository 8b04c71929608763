"""The demand model's features: names, encodings and the one matrix builder that training and
serving both call, so the two can never drift.

A row is one show's seat category in one time bucket before the show; the target is the seats
of that category sold in the bucket. Buckets run from ``BUCKET_EDGES[b]`` down to
``BUCKET_EDGES[b + 1]`` hours before the start; ``hours_to_show`` is the bucket's upper edge.

The price lever is ``price_ratio``: the category's price against a reference, the median base
price of that category in the show's city over the training shows. History prices are static
per show, so in training the ratio is the show's base price over the reference (the cross-
sectional variation the model learns from); in serving it is the candidate price over the same
reference. A city or category the reference has not seen falls back to the category's median
over all cities, then to the show's own base price (ratio 1 at the base price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from storage import SEAT_CATEGORIES

FEATURES: tuple[str, ...] = (
    "occupancy",  # share of the category's seats sold (or held) at the bucket's start
    "show_occupancy",  # the same over all seats of the show
    "hours_to_show",  # the bucket's upper edge, hours before the start
    "weekday",  # local, Monday = 0
    "hour",  # local start hour
    "movie_popularity",  # bookings of the movie made in the 7 days before
    "movie_age_days",  # days since release on the show's date
    "screen_seats",  # the screen's size
    "category_seats",  # seats of this category
    "category",  # encoded seat category
    "city",  # encoded city, missing when the model has not seen it
    "holiday_days",  # days to the nearest public holiday
    "city_bookings",  # bookings made in the city in the 7 days before (the market's level)
    "price_ratio",  # price over the reference price (the lever)
)
PRICE_FEATURE = "price_ratio"
# Demand never rises with price: -1 on the price ratio, free elsewhere.
MONOTONE = tuple(-1 if name == PRICE_FEATURE else 0 for name in FEATURES)

BUCKET_EDGES: tuple[float, ...] = (336.0, 168.0, 72.0, 24.0, 8.0, 3.0, 0.0)
N_BUCKETS = len(BUCKET_EDGES) - 1
CATEGORY_CODES = {name: code for code, name in enumerate(SEAT_CATEGORIES)}


class FeatureError(ValueError):
    """Feature columns that do not make a matrix."""


@dataclass(frozen=True)
class Encoders:
    """Codes and reference prices learned from the training shows."""

    cities: Mapping[int, int]  # city id -> code
    reference: Mapping[tuple[int, str], float]  # (city id, category) -> median base price
    category_reference: Mapping[str, float]  # category -> median base price over all cities

    def encode(
        self, city_ids: np.ndarray, categories: np.ndarray, base_cents: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """City codes (NaN when unseen), category codes and reference prices, row by row
        (see the module docstring for the reference's fallbacks)."""
        cities = np.array([self.cities.get(int(c), np.nan) for c in city_ids], dtype=np.float64)
        codes = np.array([CATEGORY_CODES.get(str(c), np.nan) for c in categories], dtype=np.float64)
        reference = np.array(
            [
                self.reference.get((int(city), str(cat)))
                or self.category_reference.get(str(cat))
                or float(base)
                for city, cat, base in zip(city_ids, categories, base_cents, strict=True)
            ],
            dtype=np.float64,
        )
        return cities, codes, reference

    def to_json(self) -> dict[str, Any]:
        return {
            "cities": {str(k): v for k, v in self.cities.items()},
            "reference": [[c, cat, p] for (c, cat), p in sorted(self.reference.items())],
            "category_reference": dict(self.category_reference),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Encoders:
        return cls(
            cities={int(k): int(v) for k, v in data["cities"].items()},
            reference={(int(c), str(cat)): float(p) for c, cat, p in data["reference"]},
            category_reference={str(k): float(v) for k, v in data["category_reference"].items()},
        )


def bucket_of(hours: float) -> int:
    """The bucket ``hours`` before the show falls in (0 for anything further out than the first
    edge; the last bucket for the final hours)."""
    for b in range(N_BUCKETS):
        if hours >= BUCKET_EDGES[b + 1]:
            return b
    return N_BUCKETS - 1


def feature_matrix(columns: Mapping[str, Any]) -> np.ndarray:
    """Stack named columns (arrays or scalars, broadcast to one length) into the model's matrix,
    in FEATURES order."""
    missing = [name for name in FEATURES if name not in columns]
    extra = sorted(set(columns) - set(FEATURES))
    if missing or extra:
        raise FeatureError(f"feature columns: missing {missing}, unknown {extra}")
    arrays = np.broadcast_arrays(
        *(np.asarray(columns[name], dtype=np.float32) for name in FEATURES)
    )
    if arrays[0].ndim != 1:
        raise FeatureError("feature columns must be one-dimensional")
    return np.stack(arrays, axis=1)
