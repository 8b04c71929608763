"""Training rows from the booking history: for each past show, seat category and time bucket
before the show, the seats of that category sold in the bucket and the features as of the
bucket's start (occupancy from the earlier bookings, less those cancelled by then).

Only priced categories make rows (accessible seats keep their base price, so there is nothing
to learn for them), but every seat counts towards the show's occupancy. The history ends at its
latest booking: shows starting after it are still on sale and are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.pricing.facts import (
    POPULARITY_DAYS,
    SEAT_CATEGORIES_SQL,
    SHOW_SQL,
    SOLD_SEATS_SQL,
    holiday_distance,
)
from ml.pricing.features import BUCKET_EDGES, N_BUCKETS, Encoders, feature_matrix
from ml.pricing.optimizer import ACCESSIBLE

_EDGES_S = np.asarray(BUCKET_EDGES) * 3600.0


class HistoryError(ValueError):
    """A history too thin to train on."""


@dataclass(frozen=True)
class Series:
    """One show's priced seat category; arrays are aligned, one entry per series."""

    show_id: np.ndarray
    starts: np.ndarray  # epoch seconds
    category: np.ndarray  # str
    city_id: np.ndarray
    base_cents: np.ndarray
    seats: np.ndarray  # of the category
    static: dict[str, np.ndarray]  # features that do not change with the bucket
    demand: np.ndarray  # (series, bucket) seats sold in the bucket
    occupancy: np.ndarray  # (series, bucket) share of the category taken at the bucket's start
    show_occupancy: np.ndarray  # (series, bucket) the same for the whole show
    popularity: np.ndarray  # (series, bucket) movie bookings in the week before the start
    city_bookings: np.ndarray  # (series, bucket) bookings in the city in that week
    cutoff: dt.datetime

    def __len__(self) -> int:
        return len(self.show_id)

    def subset(self, mask: np.ndarray) -> Series:
        fields = {name: getattr(self, name)[mask] for name in _ARRAYS}
        static = {k: v[mask] for k, v in self.static.items()}
        return Series(static=static, cutoff=self.cutoff, **fields)

    @staticmethod
    def concat(parts: list[Series]) -> Series:
        fields = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS}
        static = {k: np.concatenate([p.static[k] for p in parts]) for k in parts[0].static}
        return Series(static=static, cutoff=max(p.cutoff for p in parts), **fields)


_ARRAYS = (
    "show_id", "starts", "category", "city_id", "base_cents", "seats", "demand", "occupancy",
    "show_occupancy", "popularity", "city_bookings",
)  # fmt: skip


def bucket_columns(
    series: Series,
    encoders: Encoders,
    bucket: int | np.ndarray,
    *,
    price_cents: Any = None,
    occupancy: Any = None,
    show_occupancy: Any = None,
) -> dict[str, np.ndarray]:
    """Feature columns of every series at ``bucket`` (one bucket, or one per series), at the
    base price unless ``price_cents`` says otherwise; occupancy as in the history unless given."""
    rows = np.arange(len(series))
    bucket = np.broadcast_to(np.asarray(bucket), rows.shape)
    cities, codes, reference = encoders.encode(series.city_id, series.category, series.base_cents)
    price = series.base_cents if price_cents is None else np.asarray(price_cents, dtype=float)
    return {
        **series.static,
        "occupancy": series.occupancy[rows, bucket] if occupancy is None else occupancy,
        "show_occupancy": (
            series.show_occupancy[rows, bucket] if show_occupancy is None else show_occupancy
        ),
        "hours_to_show": np.asarray(BUCKET_EDGES)[bucket],
        "movie_popularity": series.popularity[rows, bucket],
        "city_bookings": series.city_bookings[rows, bucket],
        "category_seats": series.seats,
        "category": codes,
        "city": cities,
        "price_ratio": price / reference,
    }


def training_matrix(series: Series, encoders: Encoders) -> tuple[np.ndarray, np.ndarray]:
    """(features, demand) with one row per series and bucket, bucket-major."""
    blocks = [feature_matrix(bucket_columns(series, encoders, b)) for b in range(N_BUCKETS)]
    return np.concatenate(blocks), series.demand.T.reshape(-1).astype(np.float32)


def fit_encoders(series: Series) -> Encoders:
    """City codes and median base prices per (city, category) and per category."""
    cities = {int(c): i for i, c in enumerate(np.unique(series.city_id))}
    reference: dict[tuple[int, str], float] = {}
    by_category: dict[str, float] = {}
    for category in np.unique(series.category):
        in_cat = series.category == category
        by_category[str(category)] = float(np.median(series.base_cents[in_cat]))
        for city in np.unique(series.city_id[in_cat]):
            pick = in_cat & (series.city_id == city)
            reference[(int(city), str(category))] = float(np.median(series.base_cents[pick]))
    return Encoders(cities, reference, by_category)


async def load_history(conn: Any) -> Series:
    """Every past show's priced categories, with their demand per bucket."""
    cutoff = await conn.fetchval("SELECT max(confirmed_at) FROM bookings")
    if cutoff is None:
        raise HistoryError("no bookings to learn demand from")
    shows = await conn.fetch(
        f"{SHOW_SQL} WHERE sh.starts_at <= $1 AND sh.status NOT IN ('cancelled', 'flash_sale')"
        " ORDER BY sh.id",
        cutoff,
    )
    if not shows:
        raise HistoryError("no past shows in the history")
    layout = await conn.fetch(
        f"SELECT screen_id, category, count(*)::int AS n FROM ({SEAT_CATEGORIES_SQL}) s"
        " GROUP BY 1, 2"
    )
    seats = await conn.fetch(f"{SOLD_SEATS_SQL} WHERE sh.starts_at <= $1", cutoff)
    made = await conn.fetch(
        """
        SELECT s.movie_id, t.city_id, extract(epoch FROM b.confirmed_at)::float8 AS at
        FROM bookings b JOIN shows s ON s.id = b.show_id
        JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id
        """
    )
    return _build(shows, layout, seats, made, cutoff)


def _build(
    shows: list[Mapping[str, Any]],
    layout: list[Mapping[str, Any]],
    seats: list[Mapping[str, Any]],
    made: list[Mapping[str, Any]],
    cutoff: dt.datetime,
) -> Series:
    screen_seats: dict[int, dict[str, int]] = {}
    for r in layout:
        screen_seats.setdefault(r["screen_id"], {})[r["category"]] = r["n"]
    keys: dict[tuple[int, str], int] = {}  # (show index, category) -> series, every category
    for s, show in enumerate(shows):
        for category in sorted(screen_seats.get(show["screen_id"], {})):
            if category in show["prices"]:
                keys[(s, category)] = len(keys)
    key_list = list(keys)
    show_of = np.array([s for s, _ in key_list], dtype=np.int64)
    cat_of = np.array([c for _, c in key_list], dtype=object)
    starts_s = np.array([show["starts_at"].timestamp() for show in shows])
    index = {show["show_id"]: s for s, show in enumerate(shows)}

    counts = _slot_counts(seats, index, keys, starts_s)  # (series, slot) bought - cancelled
    demand, taken = counts[0][:, 1 : N_BUCKETS + 1], np.cumsum(counts[0] - counts[1], axis=1)
    taken = taken[:, :N_BUCKETS]  # taken at the start of each bucket
    cat_seats = np.array(
        [screen_seats[shows[s]["screen_id"]][c] for s, c in key_list], dtype=np.float64
    )
    show_taken = np.zeros((len(shows), N_BUCKETS))
    np.add.at(show_taken, show_of, taken)
    show_total = np.bincount(show_of, weights=cat_seats, minlength=len(shows))
    priced = np.array([c not in ACCESSIBLE for c in cat_of], dtype=bool)
    if not priced.any():
        raise HistoryError("no priced seat categories in the history")

    pick = np.flatnonzero(priced)
    s_of = show_of[pick]
    bucket_starts = starts_s[s_of, None] - _EDGES_S[None, :N_BUCKETS]
    movie = np.array([shows[s]["movie_id"] for s in s_of], dtype=np.int64)
    city = np.array([shows[s]["city_id"] for s in s_of], dtype=np.int64)
    static = _static_columns(shows, s_of)
    return Series(
        show_id=np.array([shows[s]["show_id"] for s in s_of], dtype=np.int64),
        starts=starts_s[s_of],
        category=cat_of[pick],
        city_id=city,
        base_cents=np.array(
            [shows[s]["prices"][c] for s, c in zip(s_of, cat_of[pick], strict=True)], dtype=float
        ),
        seats=cat_seats[pick],
        static=static,
        demand=demand[pick],
        occupancy=np.clip(taken[pick] / cat_seats[pick, None], 0.0, 1.0),
        show_occupancy=np.clip(show_taken[s_of] / show_total[s_of, None], 0.0, 1.0),
        popularity=_recent(made, "movie_id", movie, bucket_starts),
        city_bookings=_recent(made, "city_id", city, bucket_starts),
        cutoff=cutoff,
    )


def _slot_counts(
    seats: list[Mapping[str, Any]],
    index: Mapping[int, int],
    keys: Mapping[tuple[int, str], int],
    starts_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Seats bought and cancelled per series and slot: slot 0 is before the first bucket,
    slot b + 1 is bucket b, the last slot is at or after the start (or never)."""
    series, bought, cancelled = [], [], []
    for r in seats:
        s = index.get(r["show_id"])
        key = keys.get((s, r["category"])) if s is not None else None
        if key is not None:
            series.append(key)
            bought.append(r["bought"])
            cancelled.append(np.nan if r["cancelled"] is None else r["cancelled"])
    series_a = np.array(series, dtype=np.int64)
    starts = starts_s[[k[0] for k in keys]][series_a] if len(series_a) else np.empty(0)
    slots = N_BUCKETS + 2
    out = []
    for when in (np.array(bought), np.array(cancelled)):
        before = starts - when if len(when) else np.empty(0)
        slot = np.searchsorted(-_EDGES_S, -np.nan_to_num(before, nan=-1.0), side="left")
        out.append(np.bincount(series_a * slots + slot, minlength=len(keys) * slots))
    return out[0].reshape(len(keys), slots), out[1].reshape(len(keys), slots)


def _recent(made: list[Mapping[str, Any]], key: str, ids: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Bookings with ``key`` equal to each of ``ids`` made in the POPULARITY_DAYS before each
    time in ``at`` (rows of ``ids`` by columns of ``at``)."""
    span = 1e11  # seconds, more than any epoch time here: one key range per id
    keys = np.sort(np.array([r[key] * span + r["at"] for r in made], dtype=np.float64))
    high = ids[:, None] * span + at
    low = high - POPULARITY_DAYS * 86400.0
    counts = np.searchsorted(keys, high, "left") - np.searchsorted(keys, low, "left")
    return np.asarray(counts, dtype=np.float64)


def _static_columns(shows: list[Mapping[str, Any]], s_of: np.ndarray) -> dict[str, np.ndarray]:
    holiday = np.zeros(len(shows))
    by_country: dict[str, list[int]] = {}
    for s, show in enumerate(shows):
        by_country.setdefault(show["country"] or "", []).append(s)
    for country, members in by_country.items():
        holiday[members] = holiday_distance(country, [shows[s]["local_date"] for s in members])
    column = {
        name: np.array([shows[s][name] for s in range(len(shows))], dtype=float)
        for name in ("weekday", "hour", "movie_age_days")
    }
    column["screen_seats"] = np.array([show["seat_count"] for show in shows], dtype=float)
    column["holiday_days"] = holiday
    return {name: values[s_of] for name, values in column.items()}
