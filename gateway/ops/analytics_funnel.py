"""The funnel steps a gateway sees first-hand, counted in memory per show and added to
Postgres every few seconds by an unleased job (``gateway.ops.analytics.flush_funnel``):

    counts = app[keys.FUNNEL]
    counts.seatmap_view(show_id)        # a seat-map read or a websocket connect
    counts.admitted(show_id, 3)         # three visitors let out of a waiting room
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from gateway import keys


class FunnelCounts:
    def __init__(self) -> None:
        self._views: Counter[int] = Counter()
        self._admitted: Counter[int] = Counter()

    def seatmap_view(self, show_id: int) -> None:
        self._views[show_id] += 1

    def admitted(self, show_id: int, count: int) -> None:
        if count > 0:
            self._admitted[show_id] += count

    def take(self) -> dict[int, tuple[int, int]]:
        """What was counted since the last take: ``{show_id: (views, admissions)}``."""
        taken = {
            show: (self._views[show], self._admitted[show])
            for show in self._views.keys() | self._admitted.keys()
        }
        self._views, self._admitted = Counter(), Counter()
        return taken

    def put_back(self, taken: dict[int, tuple[int, int]]) -> None:
        """Count again what a failed flush took, for the next one."""
        for show, (views, admissions) in taken.items():
            self._views[show] += views
            self._admitted[show] += admissions


def count_view(app: web.Application, show_id: int) -> None:
    """Count a seat-map view of ``show_id`` (nothing when the app keeps no counts)."""
    counts = app.get(keys.FUNNEL)
    if counts is not None:
        counts.seatmap_view(show_id)


def count_admitted(app: web.Application, show_id: int, count: int) -> None:
    counts = app.get(keys.FUNNEL)
    if counts is not None:
        counts.admitted(show_id, count)
