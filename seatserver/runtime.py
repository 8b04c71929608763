"""The running instance's address book: ``up`` writes where its servers are, ``doctor`` and
other local commands read it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "runtime.json"


@dataclass(frozen=True)
class Runtime:
    pid: int
    database_url: str
    database_schema: str
    redis_url: str
    ray_address: str
    http_url: str | None = None
    # The local Stripe `up` runs (development), for the other processes that join.
    local_stripe_url: str | None = None
    local_webhook_secret: str | None = None
    smtp_port: int | None = None


def write_runtime(data_dir: Path, runtime: Runtime) -> Path:
    path = data_dir / FILE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(runtime), indent=2))
    tmp.replace(path)
    return path


def read_runtime(data_dir: Path) -> Runtime | None:
    """The live instance's runtime, or None when none runs (a stale file is ignored)."""
    path = data_dir / FILE_NAME
    try:
        runtime = Runtime(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return runtime if _alive(runtime.pid) else None


def clear_runtime(data_dir: Path, pid: int) -> None:
    path = data_dir / FILE_NAME
    current = read_runtime(data_dir)
    if current is None or current.pid == pid:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
