"""Implicit feedback as arrays: who interacted with what, and when.

One interaction is kept per (user, item) pair, with its *latest* timestamp: implicit feedback
says "interested", and a second booking of the same movie adds no new item to learn from, while
its date is the freshest evidence of that interest (the leave-one-out test item is then the
movie a user most recently turned to).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

BOOKINGS_SQL = """
SELECT b.user_id, s.movie_id, extract(epoch FROM b.confirmed_at)::bigint AS ts
FROM bookings b JOIN shows s ON s.id = b.show_id
"""


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays ``users``, ``items`` (dense indices) and ``times`` (epoch seconds), and the
    external ids behind each index (``user_ids[u]``, ``item_ids[i]``).

    Subsets made with ``subset`` share the id maps, so indices mean the same in every split.
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_triples(cls, triples: Iterable[tuple[int, int, int | float]]) -> Interactions:
        """Build from (user_id, item_id, timestamp) triples; duplicates keep the latest time.

        >>> Interactions.from_triples([(7, 100, 5), (7, 101, 6), (8, 100, 9)]).n_items
        2
        """
        rows = np.array(list(triples), dtype=np.int64).reshape(-1, 3)
        if len(rows) == 0:
            raise ValueError("no interactions to learn from")
        user_ids, users = np.unique(rows[:, 0], return_inverse=True)
        item_ids, items = np.unique(rows[:, 1], return_inverse=True)
        times = rows[:, 2]
        # Latest first within each pair, then keep the first row of every pair.
        order = np.lexsort((-times, items, users))
        users, items, times = users[order], items[order], times[order]
        first = np.ones(len(users), dtype=bool)
        first[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
        return cls(users[first], items[first], times[first], user_ids, item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The interactions where ``mask`` holds, with the same id maps."""
        return Interactions(
            self.users[mask], self.items[mask], self.times[mask], self.user_ids, self.item_ids
        )

    def user_index(self) -> dict[int, int]:
        return {int(u): n for n, u in enumerate(self.user_ids)}

    def item_index(self) -> dict[int, int]:
        return {int(i): n for n, i in enumerate(self.item_ids)}

    def matrix(self) -> sparse.csr_matrix:
        """The binary user × item matrix."""
        data = np.ones(len(self.users), dtype=np.float32)
        shape = (self.n_users, self.n_items)
        return sparse.csr_matrix((data, (self.users, self.items)), shape=shape)

    def item_counts(self) -> np.ndarray:
        """Interactions per item index (its popularity)."""
        return np.bincount(self.items, minlength=self.n_items)

    def summary(self) -> dict[str, Any]:
        """Counts and the time span, for an artifact's ``data``."""
        first, last = (
            dt.datetime.fromtimestamp(int(t), dt.UTC).isoformat()
            for t in (self.times.min(), self.times.max())
        )
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self),
            "span": [first, last],
        }


async def load_bookings(conn: Any) -> Interactions:
    """Every booking, confirmed or cancelled (both show interest in the movie), as a
    (user, movie, confirmed_at) interaction. Users with a single interaction still train the
    item side but cannot be evaluated."""
    rows: list[Mapping[str, Any]] = await conn.fetch(BOOKINGS_SQL)
    if not rows:
        raise ValueError("there are no bookings to train the recommender on")
    return Interactions.from_triples((r["user_id"], r["movie_id"], r["ts"]) for r in rows)
