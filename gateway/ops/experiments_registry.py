"""Which arm a user is in, for any experiment, and who was exposed to which arm.

    arm = await app[keys.EXPERIMENTS].arm("pricing-1", user_id, currency="USD")

``assign`` puts a user in an arm by a stable hash of the experiment's name and the user's id,
walking the arms' shares in order: a second experiment is a row in ``experiments``, not code.
For the pricing experiment (arms ``dynamic`` then ``control``) it agrees with
``ml.pricing.arms.assign_arm``, so users keep the arm they had before experiments were rows.

``Experiments`` reads each experiment with a short cache (``experiments_cache_s``: every gateway
applies a stop within that time, with no Postgres round trip per request); the pricing
experiment is created from the settings on first use. A stopped experiment answers its final arm
to everyone and exposes no one. Each first decision for a user is buffered in memory and written
by ``flush`` (an unleased job in every gateway), never on the request path.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from gateway.showinfo import TtlCache
from ml.pricing.arms import hash_point
from storage import experiments as store

log = logging.getLogger(__name__)

MAX_PENDING = 100_000  # exposures buffered between flushes; beyond, new ones wait for the next
MAX_SEEN = 200_000  # users already flushed, remembered so they are not written again


def assign(name: str, user_id: int, arms: Sequence[tuple[str, float]]) -> str:
    """The arm of ``user_id`` in experiment ``name``: the point sha256("name:user") in [0, 1)
    falls in one arm's share, the arms laid end to end in order.

    >>> assign("pricing-1", 42, [("dynamic", 0.5), ("control", 0.5)]) in ("dynamic", "control")
    True
    """
    if not arms:
        raise ValueError("an experiment needs arms")
    point = hash_point(name, user_id)
    edge = 0.0
    for arm, share in arms:
        edge += share
        if point < edge:
            return arm
    return arms[-1][0]  # rounding: the shares sum to 1 within a float's error


def pricing_arms(dynamic_share: float) -> store.Arms:
    return (("dynamic", dynamic_share), ("control", 1.0 - dynamic_share))


class Experiments:
    def __init__(
        self, pool: Any, *, cache_s: float, pricing_name: str, dynamic_share: float
    ) -> None:
        self._pool = pool
        self.pricing_name = pricing_name
        self._pricing_arms = pricing_arms(dynamic_share)
        self._cache: TtlCache[store.Experiment | None] = TtlCache(self._load, cache_s)
        self._last: dict[str, store.Experiment | None] = {}
        self._pending: dict[tuple[str, int], store.Exposure] = {}
        self._seen: set[tuple[str, int]] = set()

    async def get(self, name: str) -> store.Experiment | None:
        """``name`` as this gateway last read it (at most ``cache_s`` old); None if unknown."""
        return await self._cache(name)

    def forget(self, name: str) -> None:
        self._cache.forget(name)

    async def arm(self, name: str, user_id: int, *, currency: str = "") -> str | None:
        """The arm ``user_id`` sees in ``name`` now, recorded as an exposure the first time;
        None for an experiment that does not exist."""
        experiment = await self.get(name)
        if experiment is None:
            return None
        if experiment.status == "stopped":
            return experiment.final_arm
        arm = assign(experiment.name, user_id, experiment.arms)
        key = (name, user_id)
        new = key not in self._seen and key not in self._pending
        if new and len(self._pending) < MAX_PENDING:
            now = dt.datetime.now(dt.UTC)
            self._pending[key] = store.Exposure(name, user_id, arm, currency, now)
        return arm

    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write the buffered exposures (the first of each user stands); how many were new.
        On failure they go back to the buffer for the next flush."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        try:
            async with self._pool.acquire() as conn:
                written = await store.record_exposures(conn, list(batch.values()))
        except BaseException:
            for key, exposure in batch.items():
                if len(self._pending) < MAX_PENDING:
                    self._pending.setdefault(key, exposure)
            raise
        if len(self._seen) + len(batch) > MAX_SEEN:
            self._seen.clear()
        self._seen.update(batch)
        return written

    async def _load(self, name: str) -> store.Experiment | None:
        try:
            async with self._pool.acquire() as conn:
                found = await store.find(conn, name)
                if found is None and name == self.pricing_name:
                    found = await store.ensure(
                        conn,
                        name,
                        kind="pricing",
                        arms=self._pricing_arms,
                        description="Price table (control) against the pricing model (dynamic)",
                    )
        except Exception:  # Postgres away: keep to what we knew, quotes must go on
            if name in self._last:
                log.warning("experiment %s: kept the last known state", name, exc_info=True)
                return self._last[name]
            if name != self.pricing_name:
                raise
            log.warning("experiment %s: assigned from the settings", name, exc_info=True)
            return self._fallback(name)
        self._last[name] = found
        return found

    def _fallback(self, name: str) -> store.Experiment:
        now = dt.datetime.now(dt.UTC)
        return store.Experiment(
            name, "pricing", self._pricing_arms, "running", "", now, None, None, None
        )


def experiments_of(app: Any) -> Experiments:
    """The registry of a gateway app, from its config (the pricing experiment's name and share
    from ``ModelsConfig``, the cache time from ``OpsConfig``)."""
    from gateway import keys
    from gateway.models import ModelsConfig
    from gateway.ops.config import OpsConfig

    gateway = app[keys.CONFIG]
    models = gateway.models or ModelsConfig(enabled=False)
    ops = gateway.ops or OpsConfig()
    return Experiments(
        app[keys.POOL],
        cache_s=ops.experiments_cache_s,
        pricing_name=models.pricing_experiment,
        dynamic_share=models.pricing_dynamic_share,
    )
