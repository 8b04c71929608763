"""The directory: which host runs which show (DESIGN rule 7).

Shows are spread over a fixed set of shared hosts by id. A flash-sale show gets a host of its
own, started and loaded before the sale opens; the shared host that had it disowns it first, so
a show never has two writers. Hosts are detached, restartable Ray actors with stable names: a
host that crashes is restarted by Ray and recovers each show from Postgres on its next use, and
a restarted directory finds the hosts again by name.

The directory places its hosts over the alive nodes itself, not by Ray's best effort. When
some node advertises the custom resource ``show_host`` (cluster.yaml's host nodes do), every
host takes one unit of it, so hosts run only on such nodes and at most that many on each;
otherwise (one machine, the tests) every alive node takes hosts. In the nodes' stable order
(by id) each new host goes to the node with room that runs the fewest of this directory's
hosts: the shared hosts round-robin, a flash-sale host to the least loaded node. A host is
pinned there by a *soft* node affinity: while the node lives (and has a unit free) the host
runs there; when the node is gone, Ray starts the host again on another node with room
(still asking for its unit), and its shows come back from Postgres on their next call (DESIGN
rule 6). Running hosts are not moved back when nodes join. With no node left with room the
host is left to Ray (``SPREAD``): it waits for a unit, and the autoscaler adds a node.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.host import HostConfig, ShowHost

log = logging.getLogger(__name__)

DIRECTORY_NAME = "seatserver-directory"
SHARED_PREFIX = "seatserver-host-"
DEDICATED_PREFIX = "seatserver-show-"
HOST_RESOURCE = "show_host"  # one unit a host, on the nodes that should run hosts
# Every host asks for this much of Ray's ``memory`` (bytes): Ray places an actor that asks for
# no resource at all on a random node, ignoring a soft node affinity.
HOST_MEMORY = 1 << 20


def host_resources(cluster: Mapping[str, float]) -> dict[str, float]:
    """What each host actor asks for, given the cluster's total resources: one
    ``HOST_RESOURCE`` when some node advertises it, else nothing beyond zero CPUs."""
    return {HOST_RESOURCE: 1.0} if cluster.get(HOST_RESOURCE, 0) > 0 else {}


def host_room(
    nodes: Iterable[Mapping[str, Any]], resources: Mapping[str, float]
) -> dict[str, float]:
    """The alive nodes (as ``ray.nodes()`` lists them) able to run a host that asks for
    ``resources``, in a stable order (by id), each with how many such hosts it holds in all
    (``inf`` when hosts ask for nothing)."""
    room: dict[str, float] = {}
    for node in sorted(nodes, key=lambda n: str(n["NodeID"])):
        total = node["Resources"]
        fits = min(
            (total.get(name, 0.0) // amount for name, amount in resources.items() if amount > 0),
            default=math.inf,
        )
        if node["Alive"] and fits >= 1:
            room[str(node["NodeID"])] = fits
    return room


def next_node(room: Mapping[str, float], placed: Iterable[str]) -> str | None:
    """The node for one more host, given the nodes of the hosts already ``placed``: of the
    nodes of ``room`` with room left, the one running the fewest, the first in order on a tie
    (so hosts placed one by one go round-robin); None when no node has room left.

    >>> next_node({"a": 2, "b": 1}, ["a", "b"])
    'a'
    """
    running = Counter(placed)
    free = [node for node, fits in room.items() if running[node] < fits]
    return min(free, key=lambda node: running[node], default=None)


class PlacedHost(ShowHost):
    """``ShowHost`` as the directory runs it. A shared host that Ray starts again (a crash, a
    lost node) first learns which shows have moved to hosts of their own meanwhile and refuses
    them, so a caller with an old address never makes it a second writer of such a show."""

    def __init__(self, name: str, config: HostConfig, namespace: str) -> None:
        super().__init__(name, config)
        self._namespace = namespace

    async def _moved_away(self) -> set[int]:
        if not self.name.startswith(SHARED_PREFIX):
            return set()
        return {
            int(entry["name"].removeprefix(DEDICATED_PREFIX))
            for entry in ray.util.list_named_actors(all_namespaces=True)
            if entry["namespace"] == self._namespace and entry["name"].startswith(DEDICATED_PREFIX)
        }


def host_actor(
    name: str,
    namespace: str,
    config: HostConfig,
    resources: Mapping[str, float] | None = None,
    node_id: str | None = None,
) -> Any:
    """Create (or find, as it runs) the named host actor on ``node_id`` by a soft affinity,
    or where Ray's ``SPREAD`` puts it when None (see the module's doc)."""
    strategy: Any = "SPREAD"
    if node_id is not None:
        # Soft: a node gone (or without the resources) lets Ray place the host elsewhere; spill:
        # so does a node whose units other hosts (another namespace's) hold, instead of waiting.
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=True, _spill_on_unavailable=True)
    return (
        ray.remote(PlacedHost)
        .options(
            name=name,
            namespace=namespace,
            get_if_exists=True,
            lifetime="detached",
            max_restarts=-1,
            max_task_retries=0,
            num_cpus=0,
            memory=HOST_MEMORY,
            resources=dict(resources or {}),
            scheduling_strategy=strategy,
            max_concurrency=1000,
        )
        .remote(name, config, namespace)
    )


class Directory:
    def __init__(
        self,
        config: HostConfig,
        *,
        shared_hosts: int,
        namespace: str,
        max_dedicated_hosts: int = 16,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        """``resources``: what each host asks for besides zero CPUs; None: ``host_resources``
        of the cluster as it is now."""
        if shared_hosts < 1:
            raise ValueError("at least one shared host is needed")
        self._config = config
        self._max_dedicated = max_dedicated_hosts
        self._namespace = namespace
        if resources is None:
            cluster = ray.cluster_resources()  # type: ignore[no-untyped-call]  # Ray's untyped
            resources = host_resources(cluster)
        self._resources = dict(resources)
        self._shared_hosts = shared_hosts
        self._placed: dict[str, str] = {}  # host name: the node this directory started it on
        self._shared = self._start_shared()
        self._dedicated: dict[int, Any] = self._find_dedicated()

    def _start_shared(self) -> list[Any]:
        room = host_room(ray.nodes(), self._resources)  # type: ignore[no-untyped-call]
        return [self._start_host(f"{SHARED_PREFIX}{i}", room) for i in range(self._shared_hosts)]

    def _start_host(self, name: str, room: Mapping[str, float]) -> Any:
        """Start (or find) a host on the node ``next_node`` picks; a host found running stays
        where it runs."""
        node = next_node(room, self._placed.values())
        if node is not None:
            self._placed[name] = node
        return host_actor(name, self._namespace, self._config, self._resources, node)

    def _find_dedicated(self) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for entry in ray.util.list_named_actors(all_namespaces=True):
            name = entry["name"]
            if entry["namespace"] == self._namespace and name.startswith(DEDICATED_PREFIX):
                found[int(name.removeprefix(DEDICATED_PREFIX))] = ray.get_actor(
                    name, namespace=self._namespace
                )
        return found

    def _shared_for(self, show_id: int) -> Any:
        if not self._shared:  # after a shutdown: gateways still ask, or ``up`` runs again
            self._shared = self._start_shared()
        return self._shared[show_id % len(self._shared)]

    async def host_for(self, show_id: int) -> Any:
        """The host that owns ``show_id`` now."""
        return self._dedicated.get(show_id) or self._shared_for(show_id)

    async def hosts(self) -> list[Any]:
        return [*self._shared, *self._dedicated.values()]

    async def describe(self) -> dict[str, Any]:
        """Its hosts by name, in the order of ``hosts()``: each one's kind ("shared" or
        "dedicated") and, for a dedicated host, its show (for metrics and ``seatserver
        status``)."""
        hosts: list[dict[str, Any]] = [
            {"name": f"{SHARED_PREFIX}{i}", "kind": "shared", "show_id": None}
            for i in range(len(self._shared))
        ]
        hosts += [
            {"name": f"{DEDICATED_PREFIX}{show_id}", "kind": "dedicated", "show_id": show_id}
            for show_id in self._dedicated
        ]
        return {
            "namespace": self._namespace,
            "hosts": hosts,
            "max_dedicated_hosts": self._max_dedicated,
        }

    async def prepare_flash_sale(self, show_id: int) -> str:
        """Give the show a host of its own and load it there; idempotent. Past
        ``max_dedicated_hosts`` (each is a process) the show stays on its shared host."""
        if show_id in self._dedicated:
            return f"{DEDICATED_PREFIX}{show_id}"
        if len(self._dedicated) >= self._max_dedicated:
            log.warning(
                "show %d stays on a shared host: %d dedicated hosts already run",
                show_id,
                len(self._dedicated),
            )
            return f"{SHARED_PREFIX}{show_id % self._shared_hosts}"
        await self._shared_for(show_id).disown.remote(show_id)
        name = f"{DEDICATED_PREFIX}{show_id}"
        room = host_room(ray.nodes(), self._resources)  # type: ignore[no-untyped-call]
        host = self._start_host(name, room)
        self._dedicated[show_id] = host
        await host.activate.remote(show_id)
        log.info("show %d has its own host %s", show_id, name)
        return name

    async def shutdown(self) -> None:
        """Flush and end every host (orderly stop, and test teardown); a later look-up
        starts the shared hosts again."""
        for host in await self.hosts():
            try:
                await host.flush.remote()
            except Exception as exc:  # a dead host has nothing left to flush
                log.warning("host flush at shutdown failed: %s", exc)
            ray.kill(host, no_restart=True)
        self._dedicated.clear()
        self._shared.clear()
        self._placed.clear()
        await self._names_released()

    async def _names_released(self, timeout_s: float = 10.0) -> None:
        """Wait until Ray has let go of the ended hosts' names, so that hosts started again
        under them are new ones (``get_if_exists`` would hand back one still dying)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            names = ray.util.list_named_actors(all_namespaces=True)
            if not any(
                e["namespace"] == self._namespace
                and e["name"].startswith((SHARED_PREFIX, DEDICATED_PREFIX))
                for e in names
            ):
                return
            await asyncio.sleep(0.05)
        log.warning("ended hosts still hold their names after %.0f s", timeout_s)


def start_directory(
    config: HostConfig,
    *,
    shared_hosts: int,
    namespace: str,
    max_dedicated_hosts: int = 16,
    resources: Mapping[str, float] | None = None,
) -> Any:
    """Create (or find) the directory actor of ``namespace``; ``resources`` as ``Directory``
    takes them."""
    return (
        ray.remote(Directory)
        .options(
            name=DIRECTORY_NAME,
            namespace=namespace,
            get_if_exists=True,
            lifetime="detached",
            max_restarts=-1,
            num_cpus=0,
        )
        .remote(
            config,
            shared_hosts=shared_hosts,
            namespace=namespace,
            max_dedicated_hosts=max_dedicated_hosts,
            resources=resources,
        )
    )


def find_directory(namespace: str) -> Any:
    return ray.get_actor(DIRECTORY_NAME, namespace=namespace)
