"""A stack of its own on loopback for the load (the driver's side).

    target = await open_local(StackOptions(database_url=..., redis_url=...), say)  # Ray is up

A schema of the run's own filled with the demo data (``scale``, small) and customers made
straight in Postgres with the gateway's keyring (one cheap password hash shared, access tokens
signed with the gateway's secret); the show hosts on the local Ray, every show on sale
activated before the runs begin (warm, as a day's traffic leaves them); a local Stripe
(localstripe) with its webhook; ``gateways`` gateway processes sharing one port; one show put
in a flash sale through the admin API. Closing ends every process by its pid and drops the
schema and the run's Redis keys, also after a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
import time
from typing import Any

from loadtest import http
from loadtest.engines import create_schema
from loadtest.flash_sale_stack import RATE_LIMITS
from loadtest.locust.scenarios import API
from loadtest.locust.stack import Say, StackOptions, Target, base_plan, bulk, open_flash_sale

DEMO_SEED = 7
WARM_CONCURRENCY = 32
MIN_SEATS = 100  # shows the funnel books on have at least this many seats
TOKEN_TTL_S = 6 * 3600  # the customers' access tokens outlive the longest run


async def open_local(options: StackOptions, say: Say) -> Target:
    """The whole stack on loopback, for ``options.run``; Ray must be up in this process."""
    import ray

    import actors
    import storage
    from gateway import GatewayConfig

    config = GatewayConfig(
        database_url=options.database_url,
        redis_url=options.redis_url,
        database_schema=f"{options.run}_gateway",
        jwt_secret=secrets.token_urlsafe(32),
        keyring=storage.Keyring.parse("loadtest:" + storage.new_key()),
        ray_namespace=f"{options.run}_gateway",
        redis_prefix=f"{options.run}:",
        access_token_ttl_s=TOKEN_TTL_S,
        argon2_time_cost=1,  # the customers log in often; their one hash is made cheap
        argon2_memory_kib=1024,
    )
    target = Target("", {}, "")
    directory: list[Any] = []
    target.closers.append(lambda: http._teardown(config, directory[0] if directory else None))
    try:
        began = time.monotonic()
        await create_schema(options.database_url, config.database_schema)
        plan = await _fill(config, options)
        say(
            f"demo data (scale {options.scale:g}) and {len(plan['accounts'])} + "
            f"{len(plan['flash_accounts'])} customers in {time.monotonic() - began:.1f} s"
        )
        host_config = actors.HostConfig(
            database_url=options.database_url,
            schema=config.database_schema,
            redis_url=options.redis_url,
            channel_prefix=config.redis_prefix,
        )
        directory.append(
            actors.start_directory(host_config, shared_hosts=2, namespace=config.ray_namespace)
        )
        began, warm = time.monotonic(), plan.pop("warm")
        if options.warm_up:
            await _warm_up(directory[0], warm)
            say(f"{len(warm)} shows warmed up (activated) in {time.monotonic() - began:.1f} s")
        config, stripe_pid = await _payments(target, config, options)
        gateways = _start_gateways(target, config, options.gateways)
        target.url = gateways[0].url
        target.metrics_url = target.url if options.gateways == 1 else None
        await _webhook(target, config, options.run)
        await open_flash_sale(target.url, plan, options)
        target.plan = plan
        target.description = (
            f"local stack: {options.gateways} gateway process(es), 2 shared show hosts on a "
            f"local Ray, Postgres and Redis on 127.0.0.1, localstripe; demo data scale "
            f"{options.scale:g}, shows warmed up; models off (rules answer), search by TF-IDF"
        )
        gateway_pids = [g.pid for g in gateways]

        async def groups() -> dict[str, list[int]]:
            hosts = await directory[0].hosts.remote()
            host_pids = [(await h.stats.remote())["pid"] for h in hosts]
            return {"gateway": gateway_pids, "show hosts": host_pids, "localstripe": [stripe_pid]}

        target.groups = groups
        say(
            f"gateway pid(s) {gateway_pids} at {target.url}; localstripe pid {stripe_pid}; "
            f"Ray at {ray.get_runtime_context().gcs_address}"
        )
    except BaseException:
        await target.close()
        raise
    return target


async def _fill(config: Any, options: StackOptions) -> dict[str, Any]:
    """Demo data, customers and an admin in the schema; the plan's accounts, shows and days."""
    import storage
    from gateway.auth import Auth

    conn = await storage.connect(options.database_url, schema=config.database_schema)
    try:
        await storage.generate_demo_data(
            conn,
            scale=options.scale,
            seed=DEMO_SEED,
            today=dt.date.today(),
            progress=False,
            keyring=config.keyring,
        )
        shows, days = await _pick_shows(conn, options.watched_shows)
        warm = await conn.fetch(
            "SELECT id FROM shows WHERE status IN ('on_sale', 'flash_sale') AND starts_at > now()"
        )
    finally:
        await conn.close()
    auth = Auth(config, None, None)
    password = secrets.token_urlsafe(12)
    hashed = await auth.hash_password(password)
    pool = await storage.create_pool(
        options.database_url, schema=config.database_schema, min_size=1, max_size=4
    )
    try:
        total = options.accounts + options.flash_accounts
        made = await bulk(
            [_user(pool, config, hashed, f"{options.run}-c{i}@example.com") for i in range(total)]
        )
        admin = await _user(pool, config, hashed, f"{options.run}-ops@example.com", role="admin")
    finally:
        await pool.close()
    accounts = [
        {
            "email": f"{options.run}-c{i}@example.com",
            "password": password,
            "token": auth.access_token(user),
        }
        for i, user in enumerate(made)
    ]
    plan = base_plan(days)
    plan.update(shows)
    plan["accounts"] = accounts[: options.accounts]
    plan["flash_accounts"] = accounts[options.accounts :]
    plan["admin_token"] = auth.access_token(admin)
    plan["warm"] = [r["id"] for r in warm]  # not for locust: the driver warms them up
    return plan


async def _warm_up(directory: Any, show_ids: list[int]) -> None:
    """Activate every show a customer can reach, as a day's traffic would have: the runs
    measure a warm server, not the first load of each show from Postgres."""
    import actors

    client = actors.ShowClient(directory)
    gate = asyncio.Semaphore(WARM_CONCURRENCY)

    async def one(show_id: int) -> None:
        async with gate:
            await client.snapshot(show_id)

    await asyncio.gather(*(one(show_id) for show_id in show_ids))


async def _user(pool: Any, config: Any, hashed: str, email: str, role: str = "customer") -> Any:
    import storage

    async with pool.acquire() as conn:
        return await storage.create_user(conn, email, hashed, keyring=config.keyring, role=role)


async def _pick_shows(conn: Any, watched: int) -> tuple[dict[str, Any], list[str]]:
    """Upcoming shows on sale with standard seats: the flash sale's one, the watched ones, the
    rest to book; and the local days they are on."""
    rows = await conn.fetch(
        """SELECT s.id, (s.starts_at AT TIME ZONE t.time_zone)::date AS day
             FROM shows s JOIN screens sc ON sc.id = s.screen_id
                          JOIN theaters t ON t.id = sc.theater_id
            WHERE s.status = 'on_sale' AND s.starts_at > now() + interval '3 hours'
              AND 'standard' = ANY (sc.categories) AND sc.seat_count >= $1
            ORDER BY s.starts_at, s.id""",
        MIN_SEATS,
    )
    ids = [r["id"] for r in rows]
    if len(ids) < watched + 10:
        raise RuntimeError(f"only {len(ids)} upcoming shows: give the demo data a larger scale")
    days = sorted({r["day"].isoformat() for r in rows})[:3]
    shows = {
        "flash_show": ids[0],
        "watched_shows": ids[1 : 1 + watched],
        "bookable_shows": ids[1 + watched :],
    }
    return shows, days


async def _payments(target: Target, config: Any, options: StackOptions) -> tuple[Any, int]:
    """localstripe, and the gateway's config with payments, rate limits, and no models."""
    from gateway.models import ModelsConfig
    from gateway.rates import RateLimits
    from payments import PaymentsConfig
    from payments.localstripe import start_localstripe
    from seatserver.bootstrap import LOCAL_STRIPE_PUBLISHABLE_KEY, LOCAL_STRIPE_SECRET_KEY

    stripe = await start_localstripe()
    target.closers.append(stripe.stop)
    await stripe.wait_ready()
    payments = PaymentsConfig(
        stripe_api_key=LOCAL_STRIPE_SECRET_KEY,
        stripe_webhook_secret="whsec_" + secrets.token_hex(24),
        stripe_publishable_key=LOCAL_STRIPE_PUBLISHABLE_KEY,
        stripe_api_base=stripe.url,
        stripe_js_base=stripe.url,
        reconcile_interval_s=0.0,
    )
    # Every customer comes from one address and one program: the fraud check would rightly
    # take them for an account farm, so the load runs without it (and without the models).
    config = dataclasses.replace(
        config,
        payments=payments,
        rate_limits=RateLimits.parse(RATE_LIMITS),
        models=ModelsConfig(enabled=False, fraud_check=False),
    )
    return config, stripe.process.pid


def _start_gateways(target: Target, config: Any, count: int) -> list[http.Server]:
    import ray

    address = ray.get_runtime_context().gcs_address
    gateways: list[http.Server] = []
    for i in range(count):
        port = gateways[0].port if gateways else 0  # the first one's port: shared
        server = http.Server(f"gateway-{i}", config, address, port=port)
        target.closers.append(server.stop)
        gateways.append(server.start())
    return gateways


async def _webhook(target: Target, config: Any, run: str) -> None:
    from payments.localstripe import register_webhook

    stripe_url = config.payments.stripe_api_base
    hook = target.url + API + "/payments/webhook"
    await register_webhook(stripe_url, run, hook, config.payments.stripe_webhook_secret)
