"""Typed keys of the application state (``app[KEY]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.config import GatewayConfig

if TYPE_CHECKING:
    from gateway.auth import Auth
    from gateway.fanout import Fanout
    from gateway.idempotency import Idempotency

CONFIG = web.AppKey("config", GatewayConfig)
POOL = web.AppKey("pool", Any)  # asyncpg pool
REDIS = web.AppKey("redis", Any)  # redis.asyncio client
ENGINE = web.AppKey("engine", Any)  # actors.ShowClient (or anything with execute/snapshot)
AUTH: web.AppKey[Auth] = web.AppKey("auth")
KEYRING = web.AppKey("keyring", Any)  # storage.Keyring: seals and opens personal data
IDEMPOTENCY: web.AppKey[Idempotency] = web.AppKey("idempotency")
FANOUT: web.AppKey[Fanout] = web.AppKey("fanout")
SOCKETS = web.AppKey("sockets", set)  # open websockets, closed on shutdown
# async (show_id) -> storage.ShowDetails, cached for a few seconds
SHOW_INFO = web.AppKey("show_info", Any)
READY = web.AppKey("ready", dict)  # {"ready": bool}: readiness flips off when draining
# gateway.waitingroom.WaitingRoom, gateway.ratelimit.Limiter, gateway.queue_ws.QueueHub
WAITING_ROOM = web.AppKey("waiting_room", Any)
LIMITER = web.AppKey("limiter", Any)
QUEUE_HUB = web.AppKey("queue_hub", Any)
MODELS = web.AppKey("models", Any)  # gateway.models.Models
# (city_id, days, hour) -> what plays there (gateway.views.recommend.playing_cache)
RECOMMEND_PLAYING = web.AppKey("recommend_playing", Any)
# gateway.pricing.Pricing, gateway.fraudcheck.FraudCheck
PRICING = web.AppKey("pricing", Any)
FRAUD = web.AppKey("fraud", Any)
SAGA = web.AppKey("saga", Any)  # payments.Saga, or None when payments are not configured
# gateway.ops.analytics_funnel.FunnelCounts: seat-map views and admissions not yet flushed
FUNNEL = web.AppKey("funnel", Any)
# gateway.ops.experiments_registry.Experiments: arms by cached experiment, buffered exposures
EXPERIMENTS = web.AppKey("experiments", Any)
# gateway.search.SearchService: the parser's catalog, the filters, the ranking
SEARCH = web.AppKey("search", Any)
# gateway.assistant.engine.ChatEngine; the chat's gateway.ratelimit.Limiter (absent: unlimited)
ASSISTANT = web.AppKey("assistant", Any)
ASSISTANT_LIMITER = web.AppKey("assistant_limiter", Any)

# Per-request storage.
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Any)  # gateway.auth.Principal | None, once read
RAW_BODY = web.RequestKey("raw_body", bytes)
