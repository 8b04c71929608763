"""Wiring: find or start Postgres, Redis and Ray as the settings say, and prepare the database.

>>> services = open_services(Settings())        # embedded servers when no URLs are set
>>> await prepare_database(services.database_url, "public", months_ahead=3, today=date.today(),
...                        keyring=Settings().keyring())
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import storage
from seatserver.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass
class Services:
    database_url: str
    redis_url: str | None
    embedded: list[storage.EmbeddedServer] = field(default_factory=list)

    def close(self) -> None:
        for server in reversed(self.embedded):
            server.stop()
        self.embedded.clear()


def open_services(settings: Settings, *, redis: bool = True) -> Services:
    """Postgres (and Redis) from the settings' URLs, else embedded under ``data_dir``."""
    embedded: list[storage.EmbeddedServer] = []
    database_url = settings.database_url
    if database_url is None:
        server = storage.start_postgres(settings.data_dir)
        embedded.append(server)
        database_url = server.url
    redis_url = settings.redis_url
    if redis and redis_url is None:
        server = storage.start_redis(settings.data_dir)
        embedded.append(server)
        redis_url = server.url
    return Services(database_url, redis_url, embedded)


async def prepare_database(
    database_url: str,
    schema: str,
    *,
    months_ahead: int,
    today: dt.date,
    keyring: storage.Keyring,
) -> list[int]:
    """Create the schema if needed, apply pending migrations, create booking partitions, and
    seal any email still in plain text (written before sealing began)."""
    conn = await storage.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
    conn = await storage.connect(database_url, schema=schema)
    try:
        applied = await storage.migrate(conn)
        await storage.ensure_partitions_ahead(conn, today, months_ahead=months_ahead)
        while await storage.reseal_users(conn, keyring=keyring, only_plain=True):
            pass
        return applied
    finally:
        await conn.close()


def run_server(main: Coroutine[Any, Any, T]) -> T:
    """Run a server's main coroutine on uvloop when it is installed (aiohttp serves about a
    third more requests a second on it), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def local_ray_environment() -> None:
    """Keep a local Ray on loopback and quiet: set before ``ray`` starts its processes."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to 127.0.0.1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Token auth on, explicitly, so that the processes that join (doctor, gateways) present the
    # token the first one stored in ~/.ray/auth_token.
    os.environ.setdefault("RAY_AUTH_MODE", "token")


def start_ray(settings: Settings) -> str:
    """Join ``settings.ray_address`` or start a local Ray on 127.0.0.1; returns its address."""
    if settings.ray_address is None:
        local_ray_environment()
    import ray

    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if settings.ray_address is None:
        kwargs["num_cpus"] = settings.ray_num_cpus
    context = ray.init(address=settings.ray_address, **kwargs)
    address: str = context.address_info["gcs_address"]
    if settings.ray_address is None and not address.startswith("127.0.0.1:"):
        ray.shutdown()
        raise RuntimeError(
            f"the local Ray bound {address}, not loopback; Ray was imported "
            "before local_ray_environment() ran"
        )
    log.info("Ray at %s", address)
    return address


def host_config(settings: Settings, database_url: str, redis_url: str | None) -> Any:
    """The plain values every show host gets."""
    from actors import HostConfig

    return HostConfig(
        database_url=database_url,
        schema=settings.database_schema,
        redis_url=redis_url,
        flush_interval_s=settings.flush_interval_ms / 1000,
        flush_batch_size=settings.flush_batch_size,
        idle_after_s=settings.show_idle_s,
        confirm_timeout_s=settings.confirm_timeout_s,
        hold_ttl_s=settings.hold_ttl_s,
        payment_ttl_s=settings.payment_ttl_s,
        max_hold_lifetime_s=settings.max_hold_lifetime_s,
        channel_prefix=settings.redis_prefix,
    )


def start_engine(settings: Settings, services: Services) -> Any:
    """The directory of show hosts (created, or found when it already runs)."""
    from actors import start_directory

    config = host_config(settings, services.database_url, services.redis_url)
    return start_directory(
        config,
        shared_hosts=settings.shared_hosts,
        namespace=settings.ray_namespace,
        max_dedicated_hosts=settings.max_dedicated_hosts,
    )


LOCAL_STRIPE_SECRET_KEY = "sk_test_seatserver_local"
LOCAL_STRIPE_PUBLISHABLE_KEY = "pk_test_seatserver_local"


def payments_config(
    settings: Settings,
    *,
    local_stripe_url: str | None = None,
    local_webhook_secret: str | None = None,
    reconcile: bool = True,
) -> Any:
    """Stripe as the settings name it, or the local Stripe ``up`` runs; None if neither."""
    from payments import PaymentsConfig

    common: dict[str, Any] = {
        "max_attempts": settings.payment_max_attempts,
        "settle_after_s": settings.payment_settle_after_s,
        "refund_policy": settings.refund_policy,
        "breaker_failures": settings.breaker_failures,
        "breaker_reset_s": settings.breaker_reset_s,
        "reconcile_interval_s": settings.reconcile_interval_s if reconcile else 0.0,
    }
    if settings.stripe_api_key is not None:
        assert settings.stripe_webhook_secret and settings.stripe_publishable_key
        return PaymentsConfig(
            stripe_api_key=settings.stripe_api_key,
            stripe_webhook_secret=settings.stripe_webhook_secret,
            stripe_publishable_key=settings.stripe_publishable_key,
            stripe_api_base=settings.stripe_api_base,
            **common,
        )
    if local_stripe_url is None or local_webhook_secret is None:
        return None
    return PaymentsConfig(
        stripe_api_key=LOCAL_STRIPE_SECRET_KEY,
        stripe_webhook_secret=local_webhook_secret,
        stripe_publishable_key=LOCAL_STRIPE_PUBLISHABLE_KEY,
        stripe_api_base=local_stripe_url,
        stripe_js_base=local_stripe_url,
        **common,
    )


def _assistant_config(settings: Settings) -> Any:
    from gateway.assistant.config import AssistantConfig
    from gateway.rates import Rate

    return AssistantConfig(
        anthropic_api_key=settings.anthropic_api_key,
        anthropic_base_url=settings.anthropic_base_url,
        small_model=settings.assistant_small_model,
        large_model=settings.assistant_large_model,
        large_after_turns=settings.assistant_large_after_turns,
        timeout_s=settings.assistant_timeout_s,
        conversation_ttl_s=settings.assistant_conversation_ttl_min * 60,
        rate_user=Rate.parse(settings.rate_chat_user),
        rate_ip=Rate.parse(settings.rate_chat_ip),
    )


def gateway_config(
    settings: Settings, database_url: str, redis_url: str, payments: Any = None
) -> Any:
    """The plain values a gateway process gets."""
    from gateway import GatewayConfig
    from gateway.models import ModelsConfig
    from gateway.ops.config import OpsConfig
    from gateway.rates import RateLimits

    return GatewayConfig(
        payments=payments,
        jobs_enabled=True,
        ops=OpsConfig(
            analytics_rollup_chunk=settings.analytics_rollup_chunk,
            analytics_rollup_budget_s=settings.analytics_rollup_budget_s,
            experiments_cache_s=settings.experiments_cache_s,
            experiments_min_visitors=settings.experiments_min_visitors,
            alert_latency_p99_ms=settings.alert_latency_p99_ms,
            alert_error_rate=settings.alert_error_rate,
            alert_ctr_drop=settings.alert_ctr_drop,
            alert_drift_psi=settings.alert_drift_psi,
            drift_min_samples=settings.drift_min_samples,
            drift_window_minutes=settings.drift_window_minutes,
            retrain_recommender_days=settings.retrain_recommender_days,
            retrain_pricing_days=settings.retrain_pricing_days,
            retrain_fraud_days=settings.retrain_fraud_days,
            forecasts_days=settings.forecasts_days,
            forecasts_stale_s=settings.forecasts_stale_s,
            forecasts_max_per_run=settings.forecasts_max_per_run,
            forecasts_batch=settings.forecasts_batch,
            forecasts_budget_s=settings.forecasts_budget_s,
        ),
        models=ModelsConfig(
            enabled=settings.models_enabled,
            recommender_budget_s=settings.recommender_budget_ms / 1000,
            pricing_budget_s=settings.pricing_budget_ms / 1000,
            fraud_budget_s=settings.fraud_budget_ms / 1000,
            pricing_experiment=settings.pricing_experiment,
            pricing_dynamic_share=settings.pricing_dynamic_share,
            quote_ttl_s=settings.quote_ttl_s,
            fraud_check=settings.fraud_check,
            fraud_verify_at=settings.fraud_verify_at,
            fraud_block_at=settings.fraud_block_at,
            models_dir=str(settings.models_path),
        ),
        rate_limits=RateLimits.parse(settings.rate_limits()),
        assistant=_assistant_config(settings),
        search=_search_config(settings),
        forwarded_hops=settings.forwarded_hops,
        metrics_token=settings.metrics_token,
        queue_place_ttl_s=settings.queue_place_ttl_s,
        queue_return_grace_s=settings.queue_return_grace_s,
        database_url=database_url,
        redis_url=redis_url,
        database_schema=settings.database_schema,
        jwt_secret=settings.jwt_secret,
        keyring=settings.keyring(),
        ray_namespace=settings.ray_namespace,
        redis_prefix=settings.redis_prefix,
        access_token_ttl_s=settings.access_token_ttl_s,
        refresh_token_ttl_s=settings.refresh_token_ttl_s,
        db_pool_min=settings.db_pool_min,
        db_pool_max=settings.db_pool_max,
        hold_ttl_s=settings.hold_ttl_s,
        ws_heartbeat_s=settings.ws_heartbeat_s,
        ws_queue_limit=settings.ws_queue_limit,
    )


async def start_gateway(config: Any, host: str, port: int) -> tuple[Any, str]:
    """Serve the gateway on ``host:port`` in this event loop; returns (runner, its URL)."""
    from aiohttp import web

    from gateway import create_app
    from gateway.logsafe import AccessLogger, install_log_hygiene

    install_log_hygiene()  # no personal data in the logs (gateway.logsafe)
    runner = web.AppRunner(
        create_app(config),
        shutdown_timeout=config.shutdown_grace_s,
        access_log_class=AccessLogger,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = runner.addresses
    bound_port = sockets[0][1] if sockets else port
    return runner, f"http://{host}:{bound_port}"


def _search_config(settings: Settings) -> Any:
    from gateway.search import SearchConfig

    return SearchConfig(
        embeddings=settings.search_embeddings,
        embedding_budget_s=settings.search_budget_s,
        catalog_ttl_s=settings.search_catalog_ttl_s,
        horizon_days=settings.search_horizon_days,
    )


def deploy_search(settings: Settings) -> bool:
    """The search's embedding deployment, when the weights are installed and the search is
    to use them (it needs no training); whether it was deployed."""
    if not settings.search_embeddings:
        return False
    from serve.deployments import Scaling
    from serve.deployments import deploy_search as deploy

    return deploy(Scaling(max_replicas=settings.model_max_replicas))


def deploy_models(
    settings: Settings, kinds: tuple[str, ...] = ("recommender", "pricing", "fraud")
) -> dict[str, str | None]:
    """The Serve deployments of every model (of ``kinds``) that has a version that passed its
    gate; the version deployed per kind, None where there is none."""
    from serve.deployments import Scaling, deploy

    scaling = Scaling(max_replicas=settings.model_max_replicas)
    return deploy(settings.models_path, scaling, kinds=kinds)


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
