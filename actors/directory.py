"""The directory: which host runs which show (DESIGN rule 7).

Shows are spread over a fixed set of shared hosts by id. A flash-sale show gets a host of its
own, started and loaded before the sale opens; the shared host that had it disowns it first, so
a show never has two writers. Hosts are detached, restartable Ray actors with stable names: a
host that crashes is restarted by Ray and recovers each show from Postgres on its next use, and
a restarted directory finds the hosts again by name.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

from actors.host import HostConfig, ShowHost

log = logging.getLogger(__name__)

DIRECTORY_NAME = "seatserver-directory"
SHARED_PREFIX = "seatserver-host-"
DEDICATED_PREFIX = "seatserver-show-"


def host_actor(name: str, namespace: str, config: HostConfig) -> Any:
    """Create (or find) the named host actor."""
    return (
        ray.remote(ShowHost)
        .options(
            name=name,
            namespace=namespace,
            get_if_exists=True,
            lifetime="detached",
            max_restarts=-1,
            max_task_retries=0,
            num_cpus=0,
            max_concurrency=1000,
        )
        .remote(name, config)
    )


class Directory:
    def __init__(
        self,
        config: HostConfig,
        *,
        shared_hosts: int,
        namespace: str,
        max_dedicated_hosts: int = 16,
    ) -> None:
        if shared_hosts < 1:
            raise ValueError("at least one shared host is needed")
        self._config = config
        self._max_dedicated = max_dedicated_hosts
        self._namespace = namespace
        self._shared = [
            host_actor(f"{SHARED_PREFIX}{i}", namespace, config) for i in range(shared_hosts)
        ]
        self._dedicated: dict[int, Any] = self._find_dedicated()

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
        return self._shared[show_id % len(self._shared)]

    async def host_for(self, show_id: int) -> Any:
        """The host that owns ``show_id`` now."""
        return self._dedicated.get(show_id) or self._shared_for(show_id)

    async def hosts(self) -> list[Any]:
        return [*self._shared, *self._dedicated.values()]

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
            return f"{SHARED_PREFIX}{show_id % len(self._shared)}"
        await self._shared_for(show_id).disown.remote(show_id)
        name = f"{DEDICATED_PREFIX}{show_id}"
        host = host_actor(name, self._namespace, self._config)
        self._dedicated[show_id] = host
        await host.activate.remote(show_id)
        log.info("show %d has its own host %s", show_id, name)
        return name

    async def shutdown(self) -> None:
        """Flush and end every host (orderly stop, and test teardown)."""
        for host in await self.hosts():
            try:
                await host.flush.remote()
            except Exception as exc:  # a dead host has nothing left to flush
                log.warning("host flush at shutdown failed: %s", exc)
            ray.kill(host, no_restart=True)
        self._dedicated.clear()
        self._shared.clear()


def start_directory(
    config: HostConfig, *, shared_hosts: int, namespace: str, max_dedicated_hosts: int = 16
) -> Any:
    """Create (or find) the directory actor of ``namespace``."""
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
        )
    )


def find_directory(namespace: str) -> Any:
    return ray.get_actor(DIRECTORY_NAME, namespace=namespace)
