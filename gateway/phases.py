"""Where a request's time goes, phase by phase, for the few endpoints worth it (a hold, the
seat map): ``seatserver_request_phase_seconds{view, phase}``.

A ``Stopwatch`` in a context variable lives for one request. Code on the request's path calls
``lap(phase)`` as it leaves a phase: the time since the previous lap is the phase's. What no
lap names ends in the phase of the next lap, and the tail after the last one is ``rest``; so
the phases of a request add up to its time in the endpoint's handler (the middleware's few
microseconds aside). A lap costs a ``perf_counter()`` and a dict entry; a request of an
endpoint not timed has no stopwatch and a lap is one context-variable read.

The phases of ``POST /shows/{id}/holds``, in order::

    auth         the access token (``require_user``)
    input        path, query and body read and validated
    rate_limit   the caller's buckets (``_pay_limit``: Redis)
    idempotency  the key's claim and its stored answer (``store.begin`` + ``store.finish``)
    show_info    the show's details (cached)
    admission    a flash sale's admission token (Redis)
    pricing      the quote's prices (or fresh ones)
    host_lane    waiting in the show host's lane behind the call in flight (DESIGN rule 8)
    host_call    the Ray call that carried the command: there and back, the host's decision
                 and event loop, and this event loop's turn to wake the request
    fraud        the hold's risk signals (Redis)
    view         the rest of the view (its answer's dict)
    respond      the answer's JSON
    audit        the audit row (audited endpoints only)
    rest         what is left

The host's own decision time is ``seatserver_show_decision_seconds`` (polled from the hosts):
``host_call`` well above it is time spent getting to the host and back, not deciding.

    async def view(call):
        details = await call.app[keys.SHOW_INFO](show_id)
        phases.lap("show_info")
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from actors import ShowClient
from gateway import metrics

# The views whose requests are timed by phase (their names label the histogram).
TIMED = frozenset({"create_hold", "seatmap"})
REST = "rest"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CURRENT: contextvars.ContextVar[Stopwatch | None] = contextvars.ContextVar(
    "seatserver_phases", default=None
)
_SERIES: dict[tuple[str, str], Any] = {}


class Stopwatch:
    """One request's time by phase (seconds)."""

    __slots__ = ("last", "spent")

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.spent: dict[str, float] = {}

    def lap(self, phase: str, at: float | None = None) -> None:
        """The time from the previous lap to ``at`` (default: now) was ``phase``'s."""
        now = time.perf_counter() if at is None else max(at, self.last)
        self.spent[phase] = self.spent.get(phase, 0.0) + (now - self.last)
        self.last = now


def lap(phase: str, at: float | None = None) -> None:
    """Close ``phase`` of the request under way (nothing when it is not timed)."""
    watch = _CURRENT.get()
    if watch is not None:
        watch.lap(phase, at)


def timed(view: str, handler: Handler, *, tail: str = REST) -> Handler:
    """``handler`` timed by phase when ``view`` is one of ``TIMED`` (else itself); the time
    after the last lap goes to ``tail``."""
    if view not in TIMED:
        return handler

    async def phased(request: web.Request) -> web.StreamResponse:
        watch = Stopwatch()
        token = _CURRENT.set(watch)
        try:
            return await handler(request)
        finally:
            watch.lap(tail)
            _CURRENT.reset(token)
            observe(view, watch.spent)

    phased.__name__ = getattr(handler, "__name__", view)
    return phased


def observe(view: str, spent: dict[str, float]) -> None:
    for phase, seconds in spent.items():
        series = _SERIES.get((view, phase))
        if series is None:  # labels() costs a lock and a tuple per call: keep the children
            series = _SERIES[view, phase] = metrics.PHASE_SECONDS.labels(view, phase)
        series.observe(seconds)


def _left_lane(sent_at: float) -> None:
    lap("host_lane", sent_at)


ShowClient.on_sent = _left_lane
