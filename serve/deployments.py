"""One Ray Serve deployment per model: it loads the newest artifact that passed its gate.

Each replica keeps one model in memory and looks for a newer passing version every
``reload_s`` seconds, so ``seatserver train`` followed by nothing else puts a new model into
service. Every method takes a list of calls: a gateway sends whatever arrived while its last
request was in flight as one request (``serve.client.ModelCall``), and ``@serve.batch`` joins
the requests of several gateways that arrive within a couple of milliseconds. Pricing and
fraud then make one vectorized predict call for all of them; recommendations fold each user
in and query the index one by one, but pay Serve's per-request cost once per batch.

A replica is healthy when it holds a model; ``deploy`` only deploys kinds that have one, and
the gateway falls back to its rules for the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve

from ml.artifacts import Artifact, ArtifactStore

log = logging.getLogger(__name__)

#: Serve application name of each model kind; each application holds one deployment.
APPS = {"recommender": "recommender", "pricing": "pricing", "fraud": "fraud"}
BATCH_WAIT_S = 0.002
# Replicas log warnings and errors, not a line per request (Serve's access log at INFO).
QUIET = {"log_level": "WARNING", "enable_access_log": False}


@dataclass(frozen=True)
class Scaling:
    """Replicas per deployment: autoscaled between ``min_replicas`` and ``max_replicas`` on
    requests in flight per replica."""

    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 8.0

    def autoscaling_config(self) -> dict[str, Any]:
        return {
            "min_replicas": self.min_replicas,
            "initial_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": 5.0,
            "downscale_delay_s": 60.0,
        }


class _Replica:
    """What every model replica does: load the newest passing artifact, reload when a newer
    one appears, report health."""

    kind = ""

    def __init__(self, models_dir: str, reload_s: float = 30.0) -> None:
        _limit_threads()
        self._store = ArtifactStore(Path(models_dir))
        self._reload_s = reload_s
        self._checked = 0.0
        self.model: Any = None
        self.version: str | None = None
        self._refresh()
        if self.model is None:
            raise RuntimeError(f"no {self.kind} model has passed its evaluation gate")

    def load(self, artifact: Artifact) -> Any:
        raise NotImplementedError

    def _refresh(self) -> None:
        self._checked = time.monotonic()
        artifact = self._store.latest(self.kind)
        if artifact is None or artifact.version == self.version:
            return
        try:
            self.model = self.load(artifact)
        except Exception:  # a broken new version never replaces a working one
            log.exception("%s model %s failed to load", self.kind, artifact.version)
            return
        self.version = artifact.version
        log.info("%s model %s loaded", self.kind, artifact.version)

    def current(self) -> Any:
        if time.monotonic() - self._checked >= self._reload_s:
            self._refresh()
        return self.model

    def check_health(self) -> None:
        if self.model is None:
            raise RuntimeError(f"{self.kind}: no model loaded")

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version}


class RecommenderReplica(_Replica):
    kind = "recommender"

    def load(self, artifact: Artifact) -> Any:
        from ml.recommender.serving import RecommenderModel

        return RecommenderModel.load(artifact)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=BATCH_WAIT_S)
    async def recommend(self, requests: list[list[Any]]) -> list[dict[str, Any]]:
        """Each request: a gateway's calls, each ``(history, candidates, k)``, or
        ``(history, candidates, k, True)`` for items that also say the booked movie most like
        each: ``[movie, score, booked movie, similarity]`` (see ``RecommenderModel.explain``)."""
        model = self.current()
        return _each(
            requests,
            lambda calls: [_recommended(model, *call) for call in calls],
            "items",
            self.version,
        )


def _recommended(
    model: Any, history: Any, candidates: Any, k: int, explain: bool = False
) -> list[list[Any]]:
    items = [[int(i), float(s)] for i, s in model.recommend(history, candidates, k)]
    if explain and items:
        for item, nearest in zip(items, model.explain(history, [i for i, _ in items]), strict=True):
            item.extend(nearest)
    return items


class PricingReplica(_Replica):
    kind = "pricing"

    def load(self, artifact: Artifact) -> Any:
        from ml.pricing.serving import PricingModel

        return PricingModel.load(artifact)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=BATCH_WAIT_S)
    async def quote(self, requests: list[list[Any]]) -> list[dict[str, Any]]:
        """Each request: a gateway's calls, each ``(QuoteRequest,)``; one predict for all."""
        model = self.current()
        return _each(
            requests, lambda calls: model.quote([c[0] for c in calls]), "decisions", self.version
        )

    async def forecast(self, calls: list[Any]) -> dict[str, Any]:
        """Each call: ``(list of ForecastRequest,)``, a batch of shows from the forecast job;
        one predict for all of them, in a thread (a batch takes far longer than a quote)."""
        model = self.current()
        flat = [request for call in calls for request in call[0]]
        done = await asyncio.to_thread(model.forecast, flat)
        out, at = [], 0
        for call in calls:
            out.append(done[at : at + len(call[0])])
            at += len(call[0])
        return {"forecasts": out, "version": self.version}


class FraudReplica(_Replica):
    kind = "fraud"

    def load(self, artifact: Artifact) -> Any:
        from ml.fraud.serving import FraudModel

        return FraudModel.load(artifact)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=BATCH_WAIT_S)
    async def score(self, requests: list[list[Any]]) -> list[dict[str, Any]]:
        """Each request: a gateway's calls, each ``(CheckoutFeatures,)``; one forest pass."""
        model = self.current()
        return _each(
            requests, lambda calls: model.score([c[0] for c in calls]), "verdict", self.version
        )


def _each(
    requests: list[list[Any]], work: Any, key: str, version: str | None
) -> list[dict[str, Any]]:
    """``work`` over every call of every request at once, the answers split back per
    request."""
    flat = [call for calls in requests for call in calls]
    answers = list(work(flat))
    out, at = [], 0
    for calls in requests:
        out.append({key: answers[at : at + len(calls)], "version": version})
        at += len(calls)
    return out


REPLICAS: dict[str, type[_Replica]] = {
    "recommender": RecommenderReplica,
    "pricing": PricingReplica,
    "fraud": FraudReplica,
}


def _limit_threads() -> None:
    """One replica, one core's worth of math: replicas share the machine with show hosts."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def application(kind: str, models_dir: Path, scaling: Scaling, reload_s: float = 30.0) -> Any:
    """The Serve application of one model kind."""
    deployment = serve.deployment(
        REPLICAS[kind],
        name=kind,
        autoscaling_config=scaling.autoscaling_config(),
        max_ongoing_requests=64,
        ray_actor_options={"num_cpus": 0},
        health_check_period_s=5.0,
        health_check_timeout_s=10.0,
        graceful_shutdown_timeout_s=5.0,
        logging_config=QUIET,
    )
    return deployment.bind(str(models_dir), reload_s)


def deploy(
    models_dir: Path,
    scaling: Scaling | None = None,
    *,
    kinds: tuple[str, ...] = tuple(APPS),
    reload_s: float = 30.0,
) -> dict[str, str | None]:
    """Deploy a Serve application for each kind that has a model that passed its gate (Serve
    with no HTTP proxy: the gateway calls through handles). Returns the version deployed per
    kind, None where there was none to deploy."""
    store = ArtifactStore(models_dir)
    serve.start(proxy_location="Disabled")
    deployed: dict[str, str | None] = {}
    for kind in kinds:
        artifact = store.latest(kind)
        deployed[kind] = artifact.version if artifact else None
        if artifact is None:
            continue
        serve.run(
            application(kind, models_dir, scaling or Scaling(), reload_s),
            name=APPS[kind],
            route_prefix=None,
        )
    return deployed


def undeploy(kinds: tuple[str, ...] = tuple(APPS)) -> None:
    for kind in kinds:
        try:
            serve.delete(APPS[kind])
        except Exception:  # not deployed
            log.debug("no %s application to delete", kind)


# The search: sentence embeddings need no training, so the deployment runs whenever the
# weights package is installed (``ml.search.available()``).
SEARCH_APP = "search"  # application and deployment name (gateway.search.SEARCH_APP)


class SearchReplica:
    """Ranks movies by the similarity of a query to their texts. Movie texts are embedded once
    (cached by content, so a catalog change embeds only what changed; ``index`` warms the
    cache) and the queries of a batch are embedded together, in a thread."""

    def __init__(self) -> None:
        _limit_threads()
        from ml.search import MODEL_NAME, Encoder

        self.encoder = Encoder.load()
        self.version = MODEL_NAME

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=BATCH_WAIT_S)
    async def rank(self, requests: list[list[Any]]) -> list[dict[str, Any]]:
        """Each request: a gateway's calls, each ``(query, {movie id: text})``; answers the
        cosine of the query with each text, in order."""
        flat = [(call[0], call[1]) for calls in requests for call in calls]
        scores = await asyncio.to_thread(self.encoder.similarities_many, flat)
        out, at = [], 0
        for calls in requests:
            out.append({"scores": scores[at : at + len(calls)], "version": self.version})
            at += len(calls)
        return out

    async def index(self, calls: list[Any]) -> dict[str, Any]:
        """Each call: ``({movie id: text},)``; embeds the texts not cached yet."""
        done = [
            await asyncio.to_thread(self.encoder.index, list(call[0].values())) for call in calls
        ]
        return {"indexed": done, "version": self.version}

    def check_health(self) -> None:
        if self.encoder is None:
            raise RuntimeError("search: no encoder loaded")


def search_application(scaling: Scaling | None = None) -> Any:
    deployment = serve.deployment(
        SearchReplica,
        name=SEARCH_APP,
        autoscaling_config=(scaling or Scaling()).autoscaling_config(),
        max_ongoing_requests=64,
        ray_actor_options={"num_cpus": 0},
        health_check_period_s=5.0,
        health_check_timeout_s=10.0,
        graceful_shutdown_timeout_s=5.0,
        logging_config=QUIET,
    )
    return deployment.bind()


def deploy_search(scaling: Scaling | None = None) -> bool:
    """Deploy the search application when the weights are installed; whether it was."""
    from ml.search import available

    if not available():
        return False
    serve.start(proxy_location="Disabled")
    serve.run(search_application(scaling), name=SEARCH_APP, route_prefix=None)
    return True


def undeploy_search() -> None:
    try:
        serve.delete(SEARCH_APP)
    except Exception:  # not deployed
        log.debug("no search application to delete")
