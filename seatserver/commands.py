"""What each ``seatserver`` subcommand does, given the settings and its parsed flags."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import sys
import time
from typing import Any

import storage
from seatserver import bootstrap
from seatserver.doctor import run_checks
from seatserver.runtime import Runtime, clear_runtime, write_runtime
from seatserver.settings import Settings

PARTITION_CHECK_INTERVAL_S = 6 * 3600
FLASH_SALE_CHECK_INTERVAL_S = 30


def _say(message: str) -> None:
    print(f"seatserver: {message}", file=sys.stderr, flush=True)


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap.open_services(settings, redis=False)
    try:
        applied = asyncio.run(
            bootstrap.prepare_database(
                services.database_url,
                settings.database_schema,
                months_ahead=settings.partitions_ahead_months,
                today=dt.date.today(),
                keyring=settings.keyring(),
            )
        )
    finally:
        services.close()
    _say(f"applied migrations {applied}" if applied else "database is up to date")
    return 0


async def _load_demo(
    database_url: str,
    settings: Settings,
    *,
    scale: float,
    seed: int,
    today: dt.date,
    replace: bool,
    progress: bool,
) -> object:
    conn = await storage.connect(database_url, schema=settings.database_schema)
    try:
        return await storage.generate_demo_data(
            conn,
            scale=scale,
            seed=seed,
            today=today,
            replace=replace,
            progress=progress,
            keyring=settings.keyring(),
        )
    finally:
        await conn.close()


def demo_data(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap.open_services(settings, redis=False)
    today = args.today or dt.date.today()
    try:
        asyncio.run(
            bootstrap.prepare_database(
                services.database_url,
                settings.database_schema,
                months_ahead=settings.partitions_ahead_months,
                today=today,
                keyring=settings.keyring(),
            )
        )
        started = time.monotonic()
        report = asyncio.run(
            _load_demo(
                services.database_url,
                settings,
                scale=args.scale,
                seed=settings.demo_seed if args.seed is None else args.seed,
                today=today,
                replace=args.replace,
                progress=not args.no_progress,
            )
        )
    except storage.CatalogError as exc:
        _say(f"{exc.code}: {exc}")
        return 1
    finally:
        services.close()
    _say(f"demo data loaded in {time.monotonic() - started:.1f} s: {report}")
    return 0


def doctor(settings: Settings, args: argparse.Namespace) -> int:
    targets, checks = run_checks(settings)
    print(f"checking the services named by {targets.source}")
    for check in checks:
        print(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"         fix: {check.fix}")
    failed = [c.name for c in checks if not c.ok]
    print("all good" if not failed else f"{len(failed)} problem(s): {', '.join(failed)}")
    return 1 if failed else 0


async def _database_is_empty(database_url: str, schema: str) -> bool:
    conn = await storage.connect(database_url, schema=schema)
    try:
        return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM theaters)")
    finally:
        await conn.close()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(
    settings: Settings, services: bootstrap.Services, directory: Any, on_gateway: Any
) -> None:
    """Run until SIGINT/SIGTERM: the local Stripe and mail catcher (development), the gateway
    with its reconciler, the outbox's mail worker; keep booking partitions created ahead, give
    upcoming flash sales their own hosts."""
    from actors.flash import prepare_flash_sales

    stop = _stop_event()
    database_url = services.database_url
    assert services.redis_url is not None
    async with contextlib.AsyncExitStack() as stack:
        local = await stack.enter_async_context(_local_stand_ins(settings))
        config = bootstrap.gateway_config(
            settings,
            database_url,
            services.redis_url,
            bootstrap.payments_config(
                settings,
                local_stripe_url=local.get("stripe_url"),
                local_webhook_secret=local.get("webhook_secret"),
            ),
        )
        runner, url = await bootstrap.start_gateway(config, settings.http_host, settings.http_port)
        stack.push_async_callback(runner.cleanup)  # readiness off, websockets closed, drained
        if "stripe_url" in local:
            from payments.localstripe import register_webhook

            await register_webhook(
                local["stripe_url"],
                "seatserver",
                url + "/api/v1/payments/webhook",
                local["webhook_secret"],
            )
        pool = await storage.create_pool(database_url, schema=settings.database_schema, max_size=3)
        stack.push_async_callback(pool.close)
        mailer = asyncio.create_task(
            _send_mail(settings, pool, stop, local.get("smtp_port"), local)
        )
        models = asyncio.create_task(_serve_models(settings, stop))
        on_gateway(url, local)
        lead = dt.timedelta(seconds=settings.flash_sale_lead_s)
        last_partitions = -PARTITION_CHECK_INTERVAL_S
        announced: set[int] = set()
        try:
            while not stop.is_set():
                if time.monotonic() - last_partitions >= PARTITION_CHECK_INTERVAL_S:
                    async with pool.acquire() as conn:
                        await storage.ensure_partitions_ahead(
                            conn, dt.date.today(), months_ahead=settings.partitions_ahead_months
                        )
                    last_partitions = time.monotonic()
                prepared = await prepare_flash_sales(pool, directory, dt.datetime.now(dt.UTC), lead)
                if new := sorted(set(prepared) - announced):
                    _say(f"flash sales prepared: shows {new}")
                    announced.update(new)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FLASH_SALE_CHECK_INTERVAL_S)
        finally:
            stop.set()
            await mailer
            await models
            await directory.shutdown.remote()


async def _serve_models(settings: Settings, stop: asyncio.Event) -> None:
    """Deploy the models that have a passing version; train the others one by one in a
    process of their own (the rules answer meanwhile), deploying each that passes."""
    try:
        deployed = await asyncio.to_thread(bootstrap.deploy_models, settings)
    except Exception as exc:  # the models are an extra: the booking path never needs them
        _say(f"models: could not deploy ({exc}); the rules answer")
        return
    for kind, version in deployed.items():
        if version:
            _say(f"models: {kind} {version} serving")
    try:
        if await asyncio.to_thread(bootstrap.deploy_search, settings):
            _say("models: search embeddings serving")
    except Exception as exc:  # the search ranks with TF-IDF without it
        _say(f"models: search embeddings not deployed ({exc}); TF-IDF ranks")
    missing = [kind for kind, version in deployed.items() if version is None]
    if not (missing and settings.train_missing_models):
        return
    for kind in missing:
        if stop.is_set():
            return
        _say(f"models: training {kind} (none has passed its gate yet; the rules answer meanwhile)")
        command = [sys.executable, "-m", "seatserver.cli", "train", kind]
        command += ["--data-dir", str(settings.data_dir), "--no-progress"]
        process = await asyncio.create_subprocess_exec(*command)
        waiting = asyncio.create_task(stop.wait())
        finished = asyncio.create_task(process.wait())
        await asyncio.wait({waiting, finished}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not finished.done():  # stopping: end the training we started
            process.terminate()
            await finished
            return
        if finished.result() != 0:
            _say(f"models: {kind} did not train to its gate; the rules keep answering")
            continue
        try:
            await asyncio.to_thread(bootstrap.deploy_models, settings, (kind,))
        except Exception as exc:
            _say(f"models: could not deploy {kind} ({exc})")
            continue
        _say(f"models: {kind} trained and serving")


@contextlib.asynccontextmanager
async def _local_stand_ins(settings: Settings) -> Any:
    """In development, with no Stripe key or SMTP host set: a local Stripe (localstripe) and a
    mail catcher, both on loopback; yields what the rest needs to reach them."""
    import secrets

    found: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        if settings.stripe_api_key is None:
            from payments.localstripe import start_localstripe

            local = await start_localstripe(
                port=settings.localstripe_port, state=settings.data_dir / "localstripe.pickle"
            )
            stack.callback(local.stop)
            await local.wait_ready()
            found["stripe_url"] = local.url
            found["webhook_secret"] = "whsec_" + secrets.token_hex(24)
            _say(f"payments: local Stripe at {local.url} (test card 4242 4242 4242 4242)")
        if settings.smtp_host is None:
            from notifications.catcher import start_catcher

            mail_dir = settings.data_dir / "mail"
            catcher = await start_catcher(mail_dir, port=settings.mail_catcher_port)
            stack.push_async_callback(catcher.stop)
            found["smtp_port"] = catcher.port
            _say(f"mail: caught at smtp://127.0.0.1:{catcher.port}, kept in {mail_dir}")
        development = settings.environment == "development"
        if development and settings.twilio_account_sid is None:
            from notifications.catchers import start_local_sms

            sms = await start_local_sms(settings.data_dir, settings.sms_catcher_port)
            stack.push_async_callback(sms.catcher.stop)
            found["sms"] = sms.config
            _say(f"sms: a local Twilio at {sms.catcher.url} catches texts, kept in {sms.record}")
        if development and settings.fcm_service_account_file is None:
            from notifications.catchers import start_local_push

            push = await start_local_push(settings.data_dir, settings.push_catcher_port)
            stack.push_async_callback(push.catcher.stop)
            found["push"] = push.config
            _say(f"push: a local FCM at {push.catcher.url} catches pushes, kept in {push.record}")
        yield found


async def _send_mail(
    settings: Settings,
    pool: Any,
    stop: asyncio.Event,
    catcher_port: int | None,
    local: dict[str, Any] | None = None,
) -> None:
    """The outbox's notifications worker until ``stop``: email, and texts and pushes where
    they are set up (or caught locally)."""
    from notifications.smtp import EmailNotifier, SmtpConfig
    from notifications.worker import OutboxWorker

    if catcher_port is not None:
        smtp = SmtpConfig(
            host="127.0.0.1", port=catcher_port, starttls=False, mail_from=settings.mail_from
        )
    else:
        assert settings.smtp_host is not None
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            mail_from=settings.mail_from,
        )
    notifiers = [EmailNotifier(smtp), *_text_and_push(settings, local or {})]
    worker = OutboxWorker(
        pool,
        notifiers,
        keyring=settings.keyring(),
        reminder_lead_s=settings.reminder_lead_min * 60.0,
    )
    try:
        await worker.run(stop)
    finally:
        await worker.close()


def _text_and_push(settings: Settings, local: dict[str, Any]) -> list[Any]:
    """The SMS and push notifiers the settings (or the local stand-ins) provide."""
    from notifications.push import FcmConfig, FcmNotifier, ServiceAccount
    from notifications.sms import TwilioConfig, TwilioNotifier

    found: list[Any] = []
    sms = local.get("sms")
    if settings.twilio_account_sid is not None:
        assert settings.twilio_auth_token is not None
        sms = TwilioConfig(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            api_base=settings.twilio_api_base,
        )
    if sms is not None:
        found.append(TwilioNotifier(sms))
    push = local.get("push")
    if settings.fcm_service_account_file is not None:
        account = ServiceAccount.from_file(settings.fcm_service_account_file)
        push = FcmConfig(
            account, project_id=settings.fcm_project_id, api_base=settings.fcm_api_base
        )
    if push is not None:
        found.append(FcmNotifier(push))
    return found


def up(settings: Settings, args: argparse.Namespace) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = bootstrap.open_services(settings)
    try:
        today = dt.date.today()
        applied = asyncio.run(
            bootstrap.prepare_database(
                services.database_url,
                settings.database_schema,
                months_ahead=settings.partitions_ahead_months,
                today=today,
                keyring=settings.keyring(),
            )
        )
        _say(f"migrations applied: {applied or 'none pending'}")
        empty = asyncio.run(_database_is_empty(services.database_url, settings.database_schema))
        if empty and not args.no_demo_data:
            _say(f"empty database: loading demo data (scale {args.demo_scale})")
            asyncio.run(
                _load_demo(
                    services.database_url,
                    settings,
                    scale=args.demo_scale,
                    seed=settings.demo_seed if args.seed is None else args.seed,
                    today=today,
                    replace=False,
                    progress=True,
                )
            )
        ray_address = bootstrap.start_ray(settings)
        directory = bootstrap.start_engine(settings, services)
        assert services.redis_url is not None
        redis_url = services.redis_url

        def announce(url: str, local: dict[str, Any]) -> None:
            write_runtime(
                settings.data_dir,
                Runtime(
                    pid=os.getpid(),
                    database_url=services.database_url,
                    database_schema=settings.database_schema,
                    redis_url=redis_url,
                    ray_address=ray_address,
                    http_url=url,
                    local_stripe_url=local.get("stripe_url"),
                    local_webhook_secret=local.get("webhook_secret"),
                    smtp_port=local.get("smtp_port"),
                ),
            )
            _say(f"up: Postgres {services.database_url}, Redis {redis_url}, Ray {ray_address}")
            _say(f"gateway: {url}  (open it in a browser; Ctrl-C to stop)")

        bootstrap.run_server(_serve(settings, services, directory, announce))
        _say("stopping")
        return 0
    finally:
        clear_runtime(settings.data_dir, os.getpid())
        bootstrap.stop_ray()
        services.close()


def gateway(settings: Settings, args: argparse.Namespace) -> int:
    """One more gateway process, joined to the instance ``up`` runs (or to the servers and Ray
    cluster the settings name)."""
    from seatserver.runtime import read_runtime

    runtime = read_runtime(settings.data_dir)
    database_url = settings.database_url or (runtime.database_url if runtime else None)
    redis_url = settings.redis_url or (runtime.redis_url if runtime else None)
    ray_address = settings.ray_address or (runtime.ray_address if runtime else None)
    if not (database_url and redis_url and ray_address):
        _say(
            "no running instance found: start `seatserver up` first, or set "
            "SEATSERVER_DATABASE_URL, SEATSERVER_REDIS_URL and SEATSERVER_RAY_ADDRESS"
        )
        return 1
    settings = settings.model_copy(update={"ray_address": ray_address})
    bootstrap.start_ray(settings)
    config = bootstrap.gateway_config(
        settings,
        database_url,
        redis_url,
        bootstrap.payments_config(
            settings,
            local_stripe_url=runtime.local_stripe_url if runtime else None,
            local_webhook_secret=runtime.local_webhook_secret if runtime else None,
            reconcile=False,  # the instance `up` runs reconciles
        ),
    )

    async def serve() -> None:
        stop = _stop_event()
        runner, url = await bootstrap.start_gateway(config, args.host, args.port)
        _say(f"gateway: {url}")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        bootstrap.run_server(serve())
    finally:
        bootstrap.stop_ray()
    return 0
