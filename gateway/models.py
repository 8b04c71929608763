"""The models as the gateway sees them: three calls with budgets, each with its rules.

``Models`` holds a ``serve.client.ModelCall`` per model (recommender 100 ms, pricing 100 ms,
fraud 50 ms by default). With models off (``ModelsConfig.enabled`` false, or no config), every
call answers from its fallback at once, and says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from gateway import keys
from serve.client import ModelCall


@dataclass(frozen=True)
class ModelsConfig:
    enabled: bool = True
    recommender_budget_s: float = 0.1
    pricing_budget_s: float = 0.1
    fraud_budget_s: float = 0.05
    # The pricing experiment: its name and the share of users in the dynamic arm.
    pricing_experiment: str = "pricing-1"
    pricing_dynamic_share: float = 0.5
    quote_ttl_s: int = 600
    # Whether checkout runs the fraud check; fraud scores at or above these ask for a step-up,
    # or refuse the checkout.
    fraud_check: bool = True
    fraud_verify_at: float = 0.5
    fraud_block_at: float = 0.8
    # Where the trained models are (for the ops listing); None: not listed.
    models_dir: str | None = None


class Models:
    def __init__(self, config: ModelsConfig) -> None:
        from gateway.ops.monitoring_stats import Monitor

        self.config = config
        # What this process counts of the models, for monitoring (gateway.ops.monitoring).
        self.monitor = Monitor()
        on = config.enabled
        seen = self.monitor.observe_call
        self.recommender = ModelCall(
            "recommender",
            "recommender",
            "recommend",
            config.recommender_budget_s,
            key="items",
            enabled=on,
            observer=seen,
        )
        self.pricing = ModelCall(
            "pricing",
            "pricing",
            "quote",
            config.pricing_budget_s,
            key="decisions",
            enabled=on,
            observer=seen,
        )
        self.fraud = ModelCall(
            "fraud",
            "fraud",
            "score",
            config.fraud_budget_s,
            key="verdict",
            enabled=on,
            observer=seen,
        )

    def calls(self) -> tuple[ModelCall, ...]:
        return (self.recommender, self.pricing, self.fraud)


async def models_ctx(app: web.Application) -> AsyncIterator[None]:
    from gateway.fraudcheck import FraudCheck
    from gateway.ops.experiments_registry import experiments_of
    from gateway.pricing import Pricing
    from gateway.views.recommend import playing_cache

    gateway = app[keys.CONFIG]
    models = app[keys.MODELS] = Models(gateway.models or ModelsConfig(enabled=False))
    app[keys.RECOMMEND_PLAYING] = playing_cache(app[keys.POOL])
    app[keys.EXPERIMENTS] = experiments = experiments_of(app)
    app[keys.PRICING] = Pricing(
        app[keys.POOL], app[keys.ENGINE], models, gateway.jwt_secret, experiments
    )
    app[keys.FRAUD] = FraudCheck(app[keys.POOL], app[keys.REDIS], models, gateway)
    yield
