"""Where the CPU goes while a scenario runs (the driver's side): the cores each group of
processes kept busy, sampled about once a second with psutil.

    sampler = CpuSampler({"gateway": [pid], "show hosts": [...]}, locust_pid=pid)
    sampler.tick()                  # the first one only sets the counters
    sample = sampler.tick()         # {"t": ..., "cores": {"gateway": 0.93, ...}, "machine": 1.9}

Groups: those given (their children too); ``locust`` (the load's own process); ``ray (other)``
(every other descendant of this process: Ray's GCS, raylet, the directory, idle workers);
``postgres`` (the backends serving our processes' connections, found by their client port in
the backend's title) and ``postgres (other)`` (its background processes and everyone else's
backends); ``redis`` (the whole server); ``driver`` (this process); ``other`` (the rest of the
machine's busy time: on a shared machine, other people's work).
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

DATABASE_PORT = 5432
LOCUST, RAY, POSTGRES, POSTGRES_OTHER, REDIS, DRIVER, OTHER = (
    "locust",
    "ray (other)",
    "postgres",
    "postgres (other)",
    "redis",
    "driver",
    "other",
)
_CLIENT_PORT = re.compile(r"\((\d+)\)")


def busy_seconds() -> float:
    """CPU time the whole machine has been busy (all cores, all processes) since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class CpuSampler:
    """Cores busy per group between one ``tick`` and the next."""

    def __init__(
        self,
        groups: Mapping[str, Sequence[int]],
        *,
        locust_pid: int | None = None,
        database_port: int = DATABASE_PORT,
    ) -> None:
        self._groups = {name: set(pids) for name, pids in groups.items()}
        if locust_pid is not None:
            self._groups[LOCUST] = {locust_pid}
        self._database_port = database_port
        self._me = os.getpid()
        self._last: dict[int, float] = {}
        self._processes: dict[int, psutil.Process] = {}
        self._at = time.monotonic()
        self._busy = busy_seconds()

    def tick(self) -> dict[str, Any]:
        """Cores per group since the last tick, and the machine's busy cores."""
        now, busy = time.monotonic(), busy_seconds()
        span = max(1e-6, now - self._at)
        used: dict[str, float] = defaultdict(float)
        seen: dict[int, float] = {}
        for pid, group in self._membership().items():
            cpu = self._cpu(pid)
            if cpu is None:
                continue
            seen[pid] = cpu
            if pid in self._last:
                used[group] += max(0.0, cpu - self._last[pid])
        machine = max(0.0, busy - self._busy)
        cores = {group: round(seconds / span, 3) for group, seconds in sorted(used.items())}
        cores[OTHER] = round(max(0.0, machine - sum(used.values())) / span, 3)
        self._last, self._at, self._busy = seen, now, busy
        return {"t": time.time(), "cores": cores, "machine": round(machine / span, 3)}

    def _cpu(self, pid: int) -> float | None:
        try:
            process = self._processes.get(pid) or psutil.Process(pid)
            self._processes[pid] = process
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._processes.pop(pid, None)
            return None
        return float(times.user + times.system)

    def _membership(self) -> dict[int, str]:
        """Every process we count, and its group, as things stand now."""
        parents: dict[int, int] = {}
        names: dict[int, str] = {}
        for process in psutil.process_iter(["ppid", "name"]):
            parents[process.pid] = process.info["ppid"] or 0
            names[process.pid] = process.info["name"] or ""
        children: dict[int, list[int]] = defaultdict(list)
        for pid, parent in parents.items():
            children[parent].append(pid)

        def family(root: int) -> list[int]:
            out, todo = [], [root]
            while todo:
                pid = todo.pop()
                out.append(pid)
                todo.extend(children.get(pid, ()))
            return out

        member: dict[int, str] = {}
        for group, pids in self._groups.items():
            for root in pids:
                for pid in family(root):
                    member.setdefault(pid, group)
        for pid in family(self._me):
            member.setdefault(pid, RAY)
        member[self._me] = DRIVER
        ours = self._database_clients(set(member))
        for pid, name in names.items():
            if name == "postgres":
                member[pid] = POSTGRES if self._client_port(pid) in ours else POSTGRES_OTHER
            elif name.startswith("redis-server"):
                member[pid] = REDIS
        return member

    def _database_clients(self, pids: set[int]) -> set[int]:
        """Local ports of our processes' connections to Postgres."""
        try:
            connections = psutil.net_connections(kind="tcp")
        except psutil.AccessDenied:
            return set()
        return {
            c.laddr.port
            for c in connections
            if c.pid in pids and c.raddr and c.raddr.port == self._database_port
        }

    def _client_port(self, pid: int) -> int | None:
        """The client port in a Postgres backend's title ("… 127.0.0.1(33936) idle")."""
        try:
            title = " ".join(psutil.Process(pid).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        match = _CLIENT_PORT.search(title)
        return int(match[1]) if match else None


def mean_cores(samples: Sequence[Mapping[str, Any]], since: float, until: float) -> dict[str, Any]:
    """Average cores per group over the samples taken in [since, until], and the machine's."""
    inside = [s for s in samples if since <= s["t"] <= until]
    if not inside:
        return {"cores": {}, "machine": 0.0, "samples": 0}
    groups = sorted({g for s in inside for g in s["cores"]})
    cores = {g: round(sum(s["cores"].get(g, 0.0) for s in inside) / len(inside), 3) for g in groups}
    machine = round(sum(s["machine"] for s in inside) / len(inside), 3)
    return {"cores": cores, "machine": machine, "samples": len(inside)}
