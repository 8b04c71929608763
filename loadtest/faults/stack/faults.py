"""A fault stack once open: its handles, the faults it can suffer (each returns a ``model.Fault``
once it is put back; they must not overlap), putting back what an interrupted fault left, and
closing, where every process it started is ended by its pid and every step is tried."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from loadtest import http
from loadtest.faults import model
from loadtest.faults.stack.options import FaultStackOptions
from loadtest.faults.stack.servers import (
    HOST,
    READY_TIMEOUT_S,
    RedisServer,
    reachable,
    stop_postgres,
)
from loadtest.locust.local import _webhook
from loadtest.locust.stack import Target
from payments.localstripe import free_port, register_webhook

SHUTDOWN_TIMEOUT_S = 30.0  # the directory's orderly end of its hosts


@dataclass
class FaultStack:
    """The stack, its handles, and the faults it can suffer (each returns a ``model.Fault``
    once it is put back; they must not overlap)."""

    options: FaultStackOptions
    plan: model.Plan = field(init=False, repr=False)  # set once the stack is open
    config: Any = None  # the gateways' GatewayConfig
    directory: Any = None
    postgres: Any = None  # storage.EmbeddedServer
    redis: RedisServer | None = None
    gateways: list[http.Server] = field(default_factory=list)
    target: Target = field(default_factory=lambda: Target("", {}, ""))  # url and closers
    ray_address: str = ""
    stripe_pid: int = 0
    _postgres_down: bool = False
    _webhook_lost: bool = False

    @property
    def show_ids(self) -> list[int]:
        """Every show the load reaches: those on sale, then the flash sale's."""
        return [*self.plan.shows, self.plan.flash_show]

    # -- the faults ------------------------------------------------------------------------

    async def kill_host(self, rng: Any) -> model.Fault:
        """SIGKILL the process of one show host (chosen by ``rng``; shared or dedicated);
        ended when the host Ray starts again answers."""
        hosts = await self.directory.hosts.remote()
        names = [h["name"] for h in (await self.directory.describe.remote())["hosts"]]
        index = rng.randrange(len(hosts))
        host, name = hosts[index], names[index]
        pid = (await _within(host.stats.remote(), READY_TIMEOUT_S))["pid"]
        started = time.time()
        os.kill(pid, signal.SIGKILL)
        new_pid = await _answers_again(host, pid)
        target = f"host {name} pid {pid}"
        return model.Fault("host_kill", started, time.time(), target, f"new pid {new_pid}")

    async def kill_gateway(self, rng: Any, down_s: float) -> model.Fault:
        """SIGKILL one gateway process (chosen by ``rng``) while the others keep serving on
        the shared port; after ``down_s`` a new one on that port; ended when it serves."""
        _check_seconds("down_s", down_s)
        index = rng.randrange(len(self.gateways))
        server = self.gateways[index]
        started = time.time()
        if server.process.exitcode is None:
            os.kill(server.pid, signal.SIGKILL)
        await asyncio.to_thread(server.process.join, http.STOP_TIMEOUT_S)
        await asyncio.sleep(down_s)
        new = await self._replace_gateway(index)
        target, detail = (
            f"{server.name} pid {server.pid}",
            f"down {down_s:.1f} s, new pid {new.pid}",
        )
        return model.Fault("gateway_kill", started, time.time(), target, detail)

    async def webhook_outage(self, seconds: float) -> model.Fault:
        """The provider's webhook deliveries go to a loopback port where nothing listens
        (each is lost: localstripe never retries) for ``seconds``; then to the gateways again."""
        _check_seconds("seconds", seconds)
        nowhere = f"http://{HOST}:{free_port()}/nowhere"
        payments = self.config.payments
        started = time.time()
        self._webhook_lost = True
        await register_webhook(
            payments.stripe_api_base, self.options.run, nowhere, payments.stripe_webhook_secret
        )
        await asyncio.sleep(seconds)
        await self._restore_webhook()
        detail = f"deliveries to {nowhere} for {seconds:.1f} s"
        return model.Fault("webhook_outage", started, time.time(), "localstripe webhook", detail)

    async def restart_postgres(self, down_s: float) -> model.Fault:
        """Stop the stack's Postgres (fast), wait ``down_s``, start it again; ended once it
        accepts connections."""
        _check_seconds("down_s", down_s)
        started = time.time()
        self._postgres_down = True
        await asyncio.to_thread(stop_postgres, self.postgres)
        await asyncio.sleep(down_s)
        await self._start_postgres()
        detail = f"stopped (fast) for {down_s:.1f} s"
        return model.Fault("postgres_restart", started, time.time(), "postgres", detail)

    async def restart_redis(self, down_s: float) -> model.Fault:
        """SIGKILL the stack's redis-server, wait ``down_s``, start it again on the same port
        and append-only file; ended once it answers PING."""
        _check_seconds("down_s", down_s)
        assert self.redis is not None
        started = time.time()
        pid = await asyncio.to_thread(self.redis.kill)
        await asyncio.sleep(down_s)
        await self.start_redis()
        target, detail = f"redis-server pid {pid}", f"down {down_s:.1f} s, new pid {self.redis_pid}"
        return model.Fault("redis_restart", started, time.time(), target, detail)

    async def process_groups(self) -> dict[str, list[int]]:
        """The stack's processes by group, as they are now (restarts change them)."""
        hosts = await self.directory.hosts.remote()
        host_pids = [(await _within(h.stats.remote(), READY_TIMEOUT_S))["pid"] for h in hosts]
        return {
            "gateway": [g.pid for g in self.gateways],
            "show hosts": host_pids,
            "localstripe": [self.stripe_pid],
            "redis-server": [] if self.redis_pid is None else [self.redis_pid],
            "postgres": [] if self._postgres_down else [self.postgres.handle.get_pid()],
        }

    async def restore(self) -> list[str]:
        """Put back whatever a fault left down (one interrupted halfway); what it put back."""
        done: list[str] = []
        if self._postgres_down:
            await self._start_postgres()
            done.append("postgres")
        if self.redis is not None and not self.redis.alive:
            await self.start_redis()
            done.append("redis")
        for index, server in enumerate(self.gateways):
            if not server.process.is_alive():
                await self._replace_gateway(index)
                done.append(server.name)
        if self._webhook_lost:
            await self._restore_webhook()
            done.append("webhook")
        return done

    # -- putting things back ---------------------------------------------------------------

    async def _start_postgres(self) -> None:
        await asyncio.to_thread(lambda: reachable(self.postgres).ensure_postgres_running())
        if self.postgres.handle.get_uri() != self.postgres.url:
            raise RuntimeError(f"Postgres came back elsewhere: {self.postgres.handle.get_uri()}")
        self._postgres_down = False

    async def start_redis(self) -> None:
        assert self.redis is not None
        self.redis.start()
        await self.redis.wait_ready()

    @property
    def redis_pid(self) -> int | None:
        return None if self.redis is None or self.redis.process is None else self.redis.process.pid

    async def _replace_gateway(self, index: int) -> http.Server:
        """A new gateway process on the shared port in place of the ended one at ``index``."""
        old = self.gateways[index]
        new = http.Server(old.name, self.config, self.ray_address, port=old.port)
        self.target.closers.append(new.stop)
        await asyncio.to_thread(new.start)  # answers once its app has started
        self.gateways[index] = new
        return new

    async def _restore_webhook(self) -> None:
        await _webhook(self.target, self.config, self.options.run)
        self._webhook_lost = False

    # -- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """End every process it started (by pid), the hosts and the directory, stop its
        Postgres, remove the work dir (unless kept); every step is tried."""
        await self.target.close()

    async def end_hosts(self) -> None:
        """Flush and end the hosts through the directory (Postgres up first, or the flush
        could not end), then end each host and the directory whatever happened."""
        import ray

        if self.directory is None:
            return
        hosts: list[Any] = []
        try:
            if self._postgres_down:
                await self._start_postgres()
            hosts = await _within(self.directory.hosts.remote(), 10.0)
            await _within(self.directory.shutdown.remote(), SHUTDOWN_TIMEOUT_S)
        finally:
            for actor in [*hosts, self.directory]:
                with contextlib.suppress(Exception):  # one already gone: the next
                    ray.kill(actor, no_restart=True)


async def _within(ref: Any, timeout_s: float) -> Any:
    """A Ray call's answer, or ``TimeoutError`` after ``timeout_s``."""
    return await asyncio.wait_for(ref, timeout_s)


async def _answers_again(host: Any, old_pid: int, timeout_s: float = READY_TIMEOUT_S) -> int:
    """Poll a killed host until a new process of it answers; its pid."""
    from ray.exceptions import RayError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid = int((await _within(host.stats.remote(), 5.0))["pid"])
            if pid != old_pid:
                return pid
        except (RayError, TimeoutError):
            pass  # still dead, or restarting
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the host killed as pid {old_pid} did not answer in {timeout_s:g} s")


def _check_seconds(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 600.0:
        raise ValueError(f"{name} must be 0..600 seconds, not {value!r}")
