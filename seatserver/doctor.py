"""``seatserver doctor``: is each service reachable, and if not, what to do about it."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

import storage
from seatserver.bootstrap import local_ray_environment
from seatserver.runtime import read_runtime
from seatserver.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Targets:
    database_url: str | None
    redis_url: str | None
    ray_address: str | None
    schema: str
    source: str
    http_url: str | None = None


def find_targets(settings: Settings) -> Targets:
    """Settings' URLs first, then those of the instance ``seatserver up`` runs in data_dir."""
    runtime = read_runtime(settings.data_dir)
    if runtime is None:
        return Targets(
            settings.database_url,
            settings.redis_url,
            settings.ray_address,
            settings.database_schema,
            "settings",
        )
    return Targets(
        settings.database_url or runtime.database_url,
        settings.redis_url or runtime.redis_url,
        settings.ray_address or runtime.ray_address,
        settings.database_schema if settings.database_url else runtime.database_schema,
        f"settings and the running instance (pid {runtime.pid})",
        runtime.http_url,
    )


_NOT_RUNNING = "start it with `seatserver up`, or set {var} to a running server"


async def check_postgres(url: str | None, schema: str) -> Check:
    if url is None:
        return Check(
            "postgres",
            False,
            "the embedded Postgres is not running",
            _NOT_RUNNING.format(var="SEATSERVER_DATABASE_URL"),
        )
    try:
        conn = await storage.connect(url, schema=schema, timeout=5)
    except storage.DatabaseUnavailable as exc:
        return Check(
            "postgres",
            False,
            str(exc),
            "check that Postgres runs and SEATSERVER_DATABASE_URL is right",
        )
    try:
        version = await conn.fetchval("SHOW server_version")
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations") if exists else 0
    finally:
        await conn.close()
    pending = len(storage.load_migrations()) - applied
    if pending:
        return Check(
            "postgres",
            False,
            f"PostgreSQL {version}, {pending} migrations pending",
            "run `seatserver migrate`",
        )
    return Check("postgres", True, f"PostgreSQL {version}, schema {schema!r} up to date")


async def check_redis(url: str | None) -> Check:
    if url is None:
        return Check(
            "redis",
            False,
            "the embedded Redis is not running",
            _NOT_RUNNING.format(var="SEATSERVER_REDIS_URL"),
        )
    try:
        client = await storage.create_redis(url)
    except storage.RedisUnavailable as exc:
        return Check(
            "redis", False, str(exc), "check that Redis runs and SEATSERVER_REDIS_URL is right"
        )
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return Check("redis", True, f"Redis {info.get('redis_version', '?')} at {url}")


def check_ray(address: str | None) -> Check:
    if address is None:
        return Check(
            "ray",
            False,
            "no local Ray is running",
            _NOT_RUNNING.format(var="SEATSERVER_RAY_ADDRESS"),
        )
    if not address.startswith("ray://") and address != "auto":
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
        except (OSError, ValueError) as exc:
            return Check(
                "ray",
                False,
                f"cannot reach Ray's GCS at {address}: {exc}",
                "start the cluster (`ray up cluster.yaml`) or fix SEATSERVER_RAY_ADDRESS",
            )
    local_ray_environment()
    import ray

    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        cpus = ray.cluster_resources().get("CPU", 0)
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    except Exception as exc:  # ray raises many kinds when it cannot join
        return Check(
            "ray",
            False,
            f"cannot join Ray at {address}: {exc}",
            "check SEATSERVER_RAY_ADDRESS and that this Ray version matches",
        )
    finally:
        ray.shutdown()
    return Check("ray", True, f"Ray at {address}: {nodes} node(s), {cpus:g} CPUs")


async def check_gateway(url: str) -> Check:
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url}/api/v1/ready") as resp,
        ):
            body = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check("gateway", False, f"{url} does not answer: {exc}", "restart `seatserver up`")
    if resp.status != 200:
        return Check("gateway", False, f"{url} is not ready: {body}", "see the log of `up`")
    return Check("gateway", True, f"gateway at {url} ready")


def run_checks(settings: Settings) -> tuple[Targets, list[Check]]:
    targets = find_targets(settings)

    async def services() -> list[Check]:
        found = [
            await check_postgres(targets.database_url, targets.schema),
            await check_redis(targets.redis_url),
        ]
        if targets.http_url is not None:
            found.append(await check_gateway(targets.http_url))
        return found

    checks = asyncio.run(services())
    checks.append(check_ray(targets.ray_address))
    return targets, checks
