"""The gateway's Prometheus metrics, and the show hosts' figures exported through it.

``GET /metrics`` on every gateway is the process's registry in the text format. What the
gateway itself counts is defined here (requests by route template, hold latency and its
phases, websocket clients, the waiting room's lines); the models (``serve.client``), alerts
(``gateway.ops.monitoring``), audit rows (``gateway.audit``) and payments (``payments.metrics``)
define theirs beside their code. Every name starts with ``seatserver_``; no label ever holds a
user id, a raw path or anything else without bound (a show id labels only flash-sale lines,
which are few and are dropped when they end).

The show hosts run in Ray processes of their own. A background task of each gateway
(``metrics_ctx``) asks the directory for its hosts and each host for ``describe()`` every
``POLL_S`` (one call per host, each within ``CALL_TIMEOUT_S``: never a call per seat
operation), and ``HostCollector`` exports the latest answers labelled by host and node::

    seatserver_show_events_total{host="seatserver-host-0",node="3f9a0c1b22d4",event="hold_placed"}

Every gateway exports every host's figures, so a query across gateways takes the ``max`` per
host before it adds hosts up: ``sum(max by (host) (rate(seatserver_show_events_total{event=
"hold_placed"}[1m])))``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

import payments.metrics  # noqa: F401  (the saga's counters: exported even before a payment)
from gateway import keys

log = logging.getLogger(__name__)

POLL_S = 5.0  # how often each gateway asks every host how it does
CALL_TIMEOUT_S = 2.0  # the most one of those calls may take
NODE_ID_CHARS = 12  # a Ray node id is shown by its first characters
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# -- what the gateway counts ------------------------------------------------------------------

REQUESTS = Counter(
    "seatserver_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "seatserver_http_request_duration_seconds",
    "Time to answer HTTP requests (websockets excluded), by route template and method",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)
HOLD_SECONDS = Histogram(
    "seatserver_hold_seconds",
    "Time the hold endpoint takes from its view's start to its answer (admission, pricing, "
    "the show actor), by mode (seats, best) and outcome (held, refused, failed)",
    ["mode", "outcome"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5),
)
PHASE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
    0.2, 0.3, 0.5, 1.0, 2.5,
)  # fmt: skip
PHASE_SECONDS = Histogram(
    "seatserver_request_phase_seconds",
    "Time a request of a timed view (create_hold, seatmap) spent in each phase (auth, "
    "rate_limit, idempotency, show_info, pricing, host_lane, host_call, fraud, ...; see "
    "gateway.phases)",
    ["view", "phase"],
    buckets=PHASE_BUCKETS,
)
WEBSOCKETS = Gauge(
    "seatserver_websocket_clients", "Open websockets, by kind (seatmap, queue)", ["kind"]
)
SEATMAP_SOCKETS = WEBSOCKETS.labels("seatmap")
QUEUE_SOCKETS = WEBSOCKETS.labels("queue")
QUEUE_WAITING = Gauge(
    "seatserver_queue_waiting",
    "Visitors waiting in a flash sale's line (the lines this gateway ticks; every gateway "
    "sees the same line: take the max per show)",
    ["show"],
)
QUEUE_ADMITTED = Counter(
    "seatserver_queue_admitted",
    "Visitors this gateway's ticks admitted from a flash sale's line (add up gateways)",
    ["show"],
)
QUEUE_EXPIRED = Counter(
    "seatserver_queue_expired",
    "Places this gateway's ticks dropped from a line for want of heartbeats",
    ["show"],
)

_REQUEST_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def route_of(request: web.Request) -> tuple[str, str]:
    """(route template, method) of a request; "other" for no route and odd methods."""
    resource = request.match_info.route.resource
    method = request.method if request.method in _METHODS else "other"
    return (resource.canonical if resource is not None else "other"), method


def observe_request(request: web.Request, status: int, seconds: float, *, timed: bool) -> None:
    """Count an answered request (and time it unless ``timed`` is False: a websocket)."""
    route, method = route_of(request)
    key = (route, method, status)
    series = _REQUEST_SERIES.get(key)
    if series is None:  # labels() costs a lock and a tuple per call: keep the children
        series = _REQUEST_SERIES[key] = (
            REQUESTS.labels(route, method, str(status)),
            REQUEST_SECONDS.labels(route, method),
        )
    series[0].inc()
    if timed:
        series[1].observe(seconds)


def queue_ticked(show_id: int, admitted: int, expired: int, waiting: int) -> None:
    """What one tick of a line did."""
    show = str(show_id)
    QUEUE_WAITING.labels(show).set(waiting)
    if admitted:
        QUEUE_ADMITTED.labels(show).inc(admitted)
    if expired:
        QUEUE_EXPIRED.labels(show).inc(expired)


def queue_forgotten(show_id: int) -> None:
    """This gateway no longer ticks the line: drop its series."""
    for metric in (QUEUE_WAITING, QUEUE_ADMITTED, QUEUE_EXPIRED):
        with contextlib.suppress(KeyError):
            metric.remove(str(show_id))


# -- the hosts' figures -----------------------------------------------------------------------


class HostStats:
    """The latest ``describe()`` of every host of one directory.

    ``hosts`` maps a host's name to ``{"kind", "show_id", "up", "stats"}`` (``stats``: its
    last answer, kept when a poll goes unanswered, with ``up`` False)."""

    def __init__(self, directory: Any, *, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._directory = directory
        self._timeout = timeout_s
        self.hosts: dict[str, dict[str, Any]] = {}
        self.polled_at: float | None = None  # time.time() of the last poll the directory answered
        self._warned = False

    async def poll(self) -> None:
        """Ask the directory for its hosts, then every host (at once) for ``describe()``."""
        described, handles = await asyncio.wait_for(
            asyncio.gather(self._directory.describe.remote(), self._directory.hosts.remote()),
            self._timeout,
        )
        entries = described["hosts"]
        answers = await asyncio.gather(*(self._describe(h) for h in handles[: len(entries)]))
        hosts: dict[str, dict[str, Any]] = {}
        for entry, answer in zip(entries, answers, strict=False):
            known = self.hosts.get(entry["name"], {})
            hosts[entry["name"]] = {
                "kind": entry["kind"],
                "show_id": entry["show_id"],
                "up": answer is not None,
                "stats": answer if answer is not None else known.get("stats"),
            }
        self.hosts = hosts
        self.polled_at = time.time()

    async def _describe(self, host: Any) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = await asyncio.wait_for(host.describe.remote(), self._timeout)
        except Exception as exc:  # a host restarting or gone: marked down until it answers
            log.debug("a host did not describe itself: %s", exc)
            return None
        return answer

    async def run(self, interval_s: float = POLL_S) -> None:
        """Poll every ``interval_s`` until cancelled."""
        while True:
            try:
                await self.poll()
                self._warned = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the directory away: the figures age, the gauge says so
                if not self._warned:
                    log.warning("host figures not polled: %s", exc)
                    self._warned = True
            await asyncio.sleep(interval_s)


def node_label(node_id: str | None) -> str:
    return node_id[:NODE_ID_CHARS] if node_id else "unknown"


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """``HoldSeats`` → ``hold_seats``."""
    return _CAMEL.sub("_", name).lower()


def _histogram(family: HistogramMetricFamily, labels: list[str], exported: Any) -> None:
    if not exported:
        return
    buckets = [
        (repr(float(bound)), count)
        for bound, count in zip(exported["bounds"], exported["counts"], strict=False)
    ]
    buckets.append(("+Inf", exported["count"]))
    family.add_metric(labels, buckets, exported["sum"])


class HostCollector(Collector):
    """Exports the latest figures of the hosts every registered ``HostStats`` polled."""

    def __init__(self) -> None:
        self.sources: weakref.WeakSet[HostStats] = weakref.WeakSet()

    def describe(self) -> list[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        kinds: dict[str, int] = {"shared": 0, "dedicated": 0}
        ages: list[float] = []
        for source in list(self.sources):
            if source.polled_at is not None:
                ages.append(time.time() - source.polled_at)
            for name, entry in source.hosts.items():
                kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
                stats = entry["stats"]
                if stats is not None:
                    self._add(families, name, entry, stats)
        for kind, count in kinds.items():
            families["hosts"].add_metric([kind], count)
        if ages:
            families["age"].add_metric([], min(ages))
        yield from families.values()

    @staticmethod
    def _add(
        families: dict[str, Any], name: str, entry: dict[str, Any], stats: dict[str, Any]
    ) -> None:
        node = node_label(stats.get("node_id"))
        hn = [name, node]
        families["up"].add_metric([*hn, entry["kind"]], 1 if entry["up"] else 0)
        families["active"].add_metric([*hn, entry["kind"]], stats["active_shows"])
        families["holding"].add_metric(hn, stats["holding_shows"])
        families["calls"].add_metric(hn, stats["calls"])
        _histogram(families["call_commands"], hn, stats["call_commands"])
        for command, outcome, count in stats["commands"]:
            families["commands"].add_metric([*hn, snake(command), outcome], count)
        for command, exported in stats["decisions"].items():
            _histogram(families["decisions"], [*hn, snake(command)], exported)
        for event, count in stats["events"].items():
            families["events"].add_metric([*hn, event], count)
        families["backlog"].add_metric(hn, stats["backlog"])
        families["lag"].add_metric(hn, stats["lag_s"])
        families["failing"].add_metric(hn, stats["flush_failures"])
        families["flushes"].add_metric(hn, stats["flushes"])
        families["written"].add_metric(hn, stats["events_written"])
        _histogram(families["flush_lag"], hn, stats["flush_lag"])
        _histogram(families["flush_events"], hn, stats["flush_events"])

    @staticmethod
    def _families() -> dict[str, Any]:
        hn = ["host", "node"]
        g, c, h = GaugeMetricFamily, CounterMetricFamily, HistogramMetricFamily
        return {
            "hosts": g("seatserver_hosts", "Show hosts of the directory, by kind", labels=["kind"]),
            "age": g(
                "seatserver_host_stats_age_seconds",
                "Seconds since this gateway last polled the hosts' figures",
            ),
            "up": g(
                "seatserver_host_up",
                "Whether the host answered the last poll (1) or not (0)",
                labels=[*hn, "kind"],
            ),
            "active": g(
                "seatserver_host_active_shows",
                "Shows active (in memory) on the host; kind: shared or dedicated (a hot show)",
                labels=[*hn, "kind"],
            ),
            "holding": g(
                "seatserver_host_holding_shows", "Shows with live holds on the host", labels=hn
            ),
            "calls": c("seatserver_host_calls", "Batched calls the host answered", labels=hn),
            "call_commands": h(
                "seatserver_host_call_commands", "Commands per batched call", labels=hn
            ),
            "commands": c(
                "seatserver_show_commands",
                "Commands the host applied, by command and outcome (ok or the error's code)",
                labels=[*hn, "command", "outcome"],
            ),
            "decisions": h(
                "seatserver_show_decision_seconds",
                "Time one command's decision takes inside the host",
                labels=[*hn, "command"],
            ),
            "events": c(
                "seatserver_show_events",
                "Events the shows recorded (hold_placed, hold_released, hold_expired, "
                "booking_confirmed, booking_cancelled, ...)",
                labels=[*hn, "event"],
            ),
            "backlog": g(
                "seatserver_writebehind_backlog_events",
                "Events waiting for the write-behind's next flush",
                labels=hn,
            ),
            "lag": g(
                "seatserver_writebehind_lag_seconds",
                "Age of the oldest event not yet committed (0 with none)",
                labels=hn,
            ),
            "failing": g(
                "seatserver_writebehind_failing_flushes",
                "Flush attempts failed in a row (Postgres unreachable)",
                labels=hn,
            ),
            "flushes": c("seatserver_writebehind_flushes", "Flushes committed", labels=hn),
            "written": c(
                "seatserver_writebehind_events_written", "Events committed by flushes", labels=hn
            ),
            "flush_lag": h(
                "seatserver_writebehind_flush_lag_seconds",
                "Time from the decision of each flush's oldest event to its commit",
                labels=hn,
            ),
            "flush_events": h(
                "seatserver_writebehind_flush_events", "Events per committed flush", labels=hn
            ),
        }


COLLECTOR = HostCollector()
REGISTRY.register(COLLECTOR)

HOST_STATS = web.AppKey("host_stats", HostStats)  # absent when the engine has no directory


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Poll the hosts of the engine's directory for ``/metrics`` while the app runs."""
    directory = getattr(app[keys.ENGINE], "directory", None)
    if directory is None:  # an engine of a test's own, with no hosts to ask
        yield
        return
    stats = app[HOST_STATS] = HostStats(directory)
    COLLECTOR.sources.add(stats)
    task = asyncio.create_task(stats.run(), name="host-metrics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        COLLECTOR.sources.discard(stats)
