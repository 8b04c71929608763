"""Opening a fault stack: its own Postgres (migrated, filled) and redis-server, the show hosts on
the caller's Ray, localstripe, the gateway processes on one port and the flash sale, in that
order and each with the settings the run needs; a failure halfway closes what was started."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import shutil
import time
from typing import Any

from loadtest.faults import model
from loadtest.faults.stack.catalog import People, fill
from loadtest.faults.stack.faults import FaultStack
from loadtest.faults.stack.options import FaultStackOptions
from loadtest.faults.stack.servers import RedisServer, end_postgres
from loadtest.flash_sale_stack import RATE_LIMITS
from loadtest.locust.local import TOKEN_TTL_S, _payments, _start_gateways, _webhook
from loadtest.locust.stack import Say, StackOptions, open_flash_sale

SETTLE_AFTER_S = 3.0  # the reconciler settles what a lost webhook left after this long
RECONCILE_INTERVAL_S = 1.0  # each gateway's reconciler runs this often


async def open_fault_stack(options: FaultStackOptions, say: Say) -> FaultStack:
    """The whole stack on loopback for ``options.run``; Ray must be up in this process."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("start Ray in this process first (ray.init): the show hosts run there")
    work = options.work_dir
    if work.exists() and (not work.is_dir() or any(work.iterdir())):
        raise ValueError(f"work_dir {work} must be absent or an empty directory")
    work.mkdir(parents=True, exist_ok=True)
    stack = FaultStack(options)
    if not options.keep_work_dir:
        stack.target.closers.append(lambda: shutil.rmtree(work, ignore_errors=True))
    try:
        await _open(stack, say)
    except BaseException:
        await stack.close()
        raise
    return stack


async def _open(stack: FaultStack, say: Say) -> None:
    o, began = stack.options, time.monotonic()
    people = await _start_stores(stack)
    say(f"own Postgres and redis-server, catalog and accounts in {time.monotonic() - began:.1f} s")
    await _start_engine(stack, people)
    began = time.monotonic()
    await _start_front(stack, people)
    stack.plan = _plan(stack, people)
    stack.target.groups = stack.process_groups
    stack.target.description = (
        f"fault stack {o.run}: {o.gateways} gateway process(es), 2 shared show hosts and one "
        f"for the flash sale, own Postgres and redis-server, localstripe"
    )
    say(
        f"gateways {[g.pid for g in stack.gateways]} at {stack.target.url} up in "
        f"{time.monotonic() - began:.1f} s; flash sale open on show {people.flash_show}"
    )


async def _start_stores(stack: FaultStack) -> People:
    """Postgres (migrated, filled) and Redis of the stack's own, and the gateways' config."""
    import storage

    o = stack.options
    stack.postgres = await asyncio.to_thread(storage.start_postgres, o.work_dir)
    stack.target.closers.append(lambda: end_postgres(stack.postgres))
    stack.redis = RedisServer(o.work_dir / "redis")
    stack.target.closers.append(stack.redis.stop)
    await stack.start_redis()
    stack.config = _gateway_config(stack.postgres.url, stack.redis.url, o)
    return await fill(stack.config, o)


async def _start_engine(stack: FaultStack, people: People) -> None:
    """The directory and its hosts on the caller's Ray, the flash sale's show on a host of its
    own (before anyone asks for it), every show loaded."""
    import ray

    import actors

    stack.ray_address = ray.get_runtime_context().gcs_address
    host_config = _host_config(stack.config, stack.options)
    namespace = stack.config.ray_namespace
    stack.directory = actors.start_directory(host_config, shared_hosts=2, namespace=namespace)
    stack.target.closers.append(stack.end_hosts)
    await stack.directory.prepare_flash_sale.remote(people.flash_show)
    client = actors.ShowClient(stack.directory)
    await asyncio.gather(*(client.snapshot(show) for show in [*people.shows, people.flash_show]))


async def _start_front(stack: FaultStack, people: People) -> None:
    """localstripe, the gateways on one port, the webhook, the flash sale opened through the
    admin API by its theater's admin."""
    view = _view(stack)
    stack.config, stack.stripe_pid = await _payments(stack.target, stack.config, view)
    stack.config = _quick_settling(stack.config)
    count = stack.options.gateways
    stack.gateways = await asyncio.to_thread(_start_gateways, stack.target, stack.config, count)
    stack.target.url = stack.gateways[0].url
    await _webhook(stack.target, stack.config, stack.options.run)
    sale = {"flash_show": people.flash_show, "admin_token": people.admins[1].account.token}
    await open_flash_sale(stack.target.url, sale, view)


def _gateway_config(database_url: str, redis_url: str, o: FaultStackOptions) -> Any:
    import storage
    from gateway import GatewayConfig

    return GatewayConfig(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=secrets.token_urlsafe(32),
        keyring=storage.Keyring.parse("faults:" + storage.new_key()),
        ray_namespace=f"{o.run}_gateway",
        redis_prefix=f"{o.run}:",
        access_token_ttl_s=TOKEN_TTL_S,
        hold_ttl_s=o.hold_ttl_s,
        argon2_time_cost=1,  # one cheap hash shared by every account
        argon2_memory_kib=1024,
    )


def _host_config(config: Any, o: FaultStackOptions) -> Any:
    import actors

    return actors.HostConfig(
        database_url=config.database_url,
        schema=config.database_schema,
        redis_url=config.redis_url,
        channel_prefix=config.redis_prefix,
        hold_ttl_s=o.hold_ttl_s,
        payment_ttl_s=o.payment_ttl_s,
        max_hold_lifetime_s=o.hold_ttl_s + o.payment_ttl_s,
    )


def _view(stack: FaultStack) -> StackOptions:
    """The options ``loadtest.locust`` pieces read, for this stack."""
    o = stack.options
    return StackOptions(
        database_url=stack.config.database_url,
        redis_url=stack.config.redis_url,
        accounts=o.customers,
        flash_accounts=o.visitors,
        gateways=o.gateways,
        admission_per_min=o.admission_per_min,
        run=o.run,
    )


def _quick_settling(config: Any) -> Any:
    """Payments that the reconciler settles within the run (a lost webhook, a crash); and no
    per-user hold limit: a few accounts stand for many customers here, each holding far more
    often than a person would (the limiter's 429s would read as outages)."""
    from gateway.rates import RateLimits

    payments = dataclasses.replace(
        config.payments, settle_after_s=SETTLE_AFTER_S, reconcile_interval_s=RECONCILE_INTERVAL_S
    )
    limits = RateLimits.parse({**RATE_LIMITS, "hold_user": "off"})
    return dataclasses.replace(config, payments=payments, rate_limits=limits)


def _plan(stack: FaultStack, people: People) -> model.Plan:
    from seatserver.bootstrap import LOCAL_STRIPE_PUBLISHABLE_KEY

    config = stack.config
    return model.Plan(
        url=stack.target.url,
        provider_url=config.payments.stripe_api_base,
        publishable_key=LOCAL_STRIPE_PUBLISHABLE_KEY,
        customers=people.customers,
        visitors=people.visitors,
        shows=people.shows,
        flash_show=people.flash_show,
        hold_ttl_s=stack.options.hold_ttl_s,
        theater_admins=people.admins,
        database_url=config.database_url,
        schema=config.database_schema,
        jwt_secret=config.jwt_secret,
        webhook_secret=config.payments.stripe_webhook_secret,
    )
