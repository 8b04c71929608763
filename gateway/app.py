"""The gateway application: ``create_app(config)`` wires pools, Redis, the show engine, auth,
idempotency, rate limits, the waiting room, the seat-map fan-out, the API routes, the
websockets and the web page.

    app = create_app(GatewayConfig(database_url=..., redis_url=...))
    web.run_app(app, host="127.0.0.1", port=8080)

Stateless: everything a request needs is in Postgres, Redis or the show actors, so any number
of gateway processes can run behind a load balancer. On shutdown readiness turns off first,
then open websockets are closed with 1001 so clients reconnect elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

import storage
from gateway import keys, middlewares, ops
from gateway.auth import Auth
from gateway.config import GatewayConfig
from gateway.endpoint import error_response, handle
from gateway.errors import Unauthorized
from gateway.idempotency import Idempotency
from gateway.openapi import document
from gateway.ops.analytics_funnel import FunnelCounts
from gateway.routes import API, ENDPOINTS
from gateway.showinfo import ShowInfo

log = logging.getLogger("gateway")
STATIC = Path(__file__).parent / "static"


def create_app(
    config: GatewayConfig, *, engine: Any = None, provider: Any = None
) -> web.Application:
    """The aiohttp application. ``engine`` (a ``ShowClient``) is found through Ray's named
    directory in ``config.ray_namespace`` when not given; ``provider`` (a payment provider) is
    built from ``config.payments`` when not given."""
    from gateway.assistant import assistant_ctx, chat_socket
    from gateway.metrics import metrics_ctx
    from gateway.models import models_ctx
    from gateway.queue_ws import queue_ctx, queue_socket
    from gateway.search import search_ctx
    from gateway.ws import fanout_ctx, show_socket

    app = web.Application(
        middlewares=[middlewares.envelope],
        client_max_size=config.max_body_bytes,
    )
    app[keys.CONFIG] = config
    app[keys.SOCKETS] = set()
    app[keys.READY] = {"ready": False}
    app[keys.FUNNEL] = FunnelCounts()
    app.cleanup_ctx.append(_storage_ctx)
    app.cleanup_ctx.append(_engine_ctx(engine))
    app.cleanup_ctx.append(metrics_ctx)  # the show hosts' figures, polled for /metrics
    app.cleanup_ctx.append(queue_ctx)
    app.cleanup_ctx.append(fanout_ctx)
    app.cleanup_ctx.append(models_ctx)
    app.cleanup_ctx.append(_payments_ctx(provider))
    app.cleanup_ctx.append(ops.jobs_ctx(ops.JOBS))
    app.cleanup_ctx.append(search_ctx)
    app.cleanup_ctx.append(assistant_ctx)
    app.on_startup.append(_mark_ready)
    app.on_shutdown.append(_drain)
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, handle(endpoint), name=endpoint.name)
    spec = json.dumps(document(ENDPOINTS)).encode()

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_get(API + "/openapi.json", openapi, name="openapi")
    app.router.add_get("/metrics", _metrics, name="metrics")
    app.router.add_get("/ws/shows/{show_id}", show_socket, name="show_socket")
    app.router.add_get("/ws/shows/{show_id}/queue", queue_socket, name="queue_socket")
    app.router.add_get("/ws/chat", chat_socket, name="chat_socket")
    if (STATIC / "index.html").exists():
        app.router.add_get("/", _index, name="index")
        app.router.add_get("/ops", _ops_page, name="ops_page")
        app.router.add_static("/static/", STATIC, name="static", append_version=True)
    return app


async def _metrics(request: web.Request) -> web.Response:
    """This process's counters in the Prometheus text format, with the show hosts' latest
    figures (``gateway.metrics``); only for the bearer of ``metrics_token`` when it is set
    (401 ``metrics_token_required``)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    token = request.app[keys.CONFIG].metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error_response(
                Unauthorized(
                    "send the metrics token as 'Authorization: Bearer <token>'",
                    code="metrics_token_required",
                )
            )
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _ops_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "ops.html", headers={"Cache-Control": "no-cache"})


async def _storage_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    if config.keyring is None:
        raise ValueError("GatewayConfig.keyring is not set: personal data cannot be sealed")
    app[keys.KEYRING] = config.keyring
    pool = await storage.create_pool(
        config.database_url,
        schema=config.database_schema,
        min_size=config.db_pool_min,
        max_size=config.db_pool_max,
    )
    redis = await storage.create_redis(config.redis_url)
    app[keys.POOL] = pool
    app[keys.REDIS] = redis
    auth = app[keys.AUTH] = Auth(config, pool, redis)
    await auth.start()
    app[keys.IDEMPOTENCY] = Idempotency(redis, config.redis_prefix, config.idempotency_ttl_s)
    app[keys.SHOW_INFO] = ShowInfo(pool)
    yield
    await auth.close()
    await redis.aclose()
    await pool.close()


def _engine_ctx(engine: Any) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if engine is not None:
            app[keys.ENGINE] = engine
        else:
            from actors import ShowClient, find_directory

            app[keys.ENGINE] = ShowClient(find_directory(app[keys.CONFIG].ray_namespace))
        yield

    return ctx


def _payments_ctx(provider: Any) -> Any:
    """The booking saga on the configured provider, and (if configured) its reconciler."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        import payments

        settings = app[keys.CONFIG].payments
        if settings is None:
            app[keys.SAGA] = None
            yield
            return
        chosen = provider if provider is not None else payments.build_provider(settings)
        saga = payments.build_saga(settings, app[keys.POOL], app[keys.ENGINE], chosen)
        app[keys.SAGA] = saga
        stop = asyncio.Event()
        task = None
        if settings.reconcile_interval_s > 0:
            task = asyncio.create_task(
                payments.run_reconciler(saga, stop, interval_s=settings.reconcile_interval_s)
            )
        yield
        stop.set()
        if task is not None:
            await task
        if provider is None:
            await chosen.close()

    return ctx


async def _mark_ready(app: web.Application) -> None:
    app[keys.READY]["ready"] = True


async def _drain(app: web.Application) -> None:
    """Readiness off, then close every websocket with 1001 within the grace period."""
    app[keys.READY]["ready"] = False
    sockets = list(app[keys.SOCKETS])
    if not sockets:
        return
    log.info("closing %d websockets", len(sockets))
    closing = [
        ws.close(code=1001, message=b"server shutting down") for ws in sockets if not ws.closed
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*closing, return_exceptions=True), app[keys.CONFIG].shutdown_grace_s
        )
