"""The plain values the gateway needs; built by the composition root from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GatewayConfig:
    database_url: str
    redis_url: str
    database_schema: str = "public"
    jwt_secret: str = "dev-only-insecure-secret-change-me"
    # The ``storage.Keyring`` that seals emails and phone numbers (required to start).
    keyring: Any = None
    # Ray namespace where the show directory runs.
    ray_namespace: str = "seatserver"
    # Prefix of every Redis key the gateway writes (tests give each their own).
    redis_prefix: str = "seatserver:"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 86400
    idempotency_ttl_s: int = 86400
    db_pool_min: int = 2
    db_pool_max: int = 10
    # Hold lifetime the actors use (reported to clients, bounds idempotency of holds).
    hold_ttl_s: float = 300.0
    # Websockets: heartbeat interval, and the most messages queued for one slow client.
    ws_heartbeat_s: float = 15.0
    ws_queue_limit: int = 256
    # Graceful shutdown: how long open websockets get to close.
    shutdown_grace_s: float = 5.0
    # Largest request body accepted, in bytes.
    max_body_bytes: int = 256 * 1024
    # Argon2 cost parameters (tests lower them to keep the suite fast).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Rate limits (a ``gateway.ratelimit.RateLimits``; None: unlimited), and how many trusted
    # proxies in front of the gateway append to X-Forwarded-For (0: the peer is the client).
    rate_limits: Any = None
    forwarded_hops: int = 0
    # The waiting room: a place without a heartbeat for this long drops out of the line; coming
    # back within the grace period gets it back; the serving counter ticks this often and
    # queue websockets are told where they stand this often.
    queue_place_ttl_s: float = 60.0
    queue_return_grace_s: float = 600.0
    queue_tick_s: float = 0.2
    queue_push_s: float = 1.0
    # Payments (a ``payments.PaymentsConfig``); None: checkout answers 503 payments_disabled.
    payments: Any = None
    # The models (a ``gateway.models.ModelsConfig``); None: every answer comes from the rules.
    models: Any = None
    # Whether this process runs the periodic operator jobs (rollups, forecasts, experiment
    # results, model monitoring); each runs once per interval across all gateways.
    jobs_enabled: bool = False
    # Operator analytics, forecasts, experiments and monitoring (a ``gateway.ops.OpsConfig``).
    ops: Any = None
    # A bearer token ``GET /metrics`` asks for (None: the metrics are open to anyone who
    # reaches the port; keep it off public networks then).
    metrics_token: str | None = None
    # Natural-language search (a ``gateway.search.SearchConfig``); None: TF-IDF ranking only.
    search: Any = None
    # The booking assistant (a ``gateway.assistant.AssistantConfig``); None: its defaults.
    assistant: Any = None
