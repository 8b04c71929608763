"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.endpoint import Call

CHECK_TIMEOUT_S = 1.0


async def live(call: Call) -> dict[str, Any]:
    """The process answers."""
    return {"status": "ok", "checks": {}}


async def ready(call: Call) -> web.Response:
    """Postgres, Redis and the show directory answer, and the process is not draining."""
    app = call.app
    checks: dict[str, str] = {}
    if not app[keys.READY]["ready"]:
        checks["gateway"] = "draining"
    for name, probe in (
        ("postgres", lambda: app[keys.POOL].fetchval("SELECT 1")),
        ("redis", lambda: app[keys.REDIS].ping()),
    ):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready
            checks[name] = f"failed: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    status = "ok" if ok else ("draining" if "gateway" in checks else "unavailable")
    return web.json_response({"status": status, "checks": checks}, status=200 if ok else 503)
