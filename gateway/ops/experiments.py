"""Experiments for ops: list them, read one with its results, create one, stop one.

An experiment is a row (``storage.experiments``): arms with shares, decided per user by a
stable hash (``gateway.ops.experiments_registry``). The pricing experiment the settings name is
created on first use. Stopping puts everyone in the arm the operator chose from then on; every
gateway applies it within ``OpsConfig.experiments_cache_s``. Quotes already given keep their
price. Stopping again with the same arm answers the same; with another arm, 409.

Jobs: ``experiments.exposures`` (every gateway, every few seconds) writes the exposures this
process buffered; ``experiments.results`` (once across gateways, every minute) recomputes each
running experiment's results per arm (and a stopped one's for a day after its stop).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.endpoint import Call, Endpoint
from gateway.errors import Conflict, ValidationFailed
from gateway.ops import experiments_report as report
from gateway.ops import experiments_schemas as s
from gateway.ops.config import OpsConfig
from gateway.ops.jobs import Job
from storage import experiments as store

API = "/api/v1"
OPS = ("admin",)
FLUSH_S = 2.0
RESULTS_S = 60.0
KEEP_STOPPED = dt.timedelta(days=1)  # a stopped experiment's results still settle meanwhile


def _ops_config(app: web.Application) -> OpsConfig:
    return app[keys.CONFIG].ops or OpsConfig()


async def _known(app: web.Application) -> None:
    """Make sure the pricing experiment has its row (it is created on first use)."""
    registry = app[keys.EXPERIMENTS]
    await registry.get(registry.pricing_name)


async def list_experiments(call: Call) -> dict[str, Any]:
    await _known(call.app)
    async with call.app[keys.POOL].acquire() as conn:
        found = await store.list_experiments(conn)
    return {"experiments": [report.experiment_out(e) for e in found]}


async def get_experiment(call: Call) -> dict[str, Any]:
    await _known(call.app)
    async with call.app[keys.POOL].acquire() as conn:
        experiment = await store.get(conn, call.path.name)
        rows = await store.results(conn, experiment.name)
    min_visitors = _ops_config(call.app).experiments_min_visitors
    return report.detail_out(experiment, rows, min_visitors=min_visitors)


async def create_experiment(call: Call) -> dict[str, Any]:
    body: s.ExperimentIn = call.body
    arms = tuple((a.arm, a.share) for a in body.arms)
    await _known(call.app)  # the pricing experiment's name is taken by its own row
    async with call.app[keys.POOL].acquire() as conn:
        created = await store.create(
            conn, body.name, kind=body.kind, arms=arms, description=body.description
        )
    call.app[keys.EXPERIMENTS].forget(created.name)  # a cached "unknown" no longer holds
    return report.experiment_out(created)


async def stop_experiment(call: Call) -> dict[str, Any]:
    name, arm = call.path.name, call.body.arm
    await _known(call.app)
    async with call.app[keys.POOL].acquire() as conn:
        experiment = await store.get(conn, name)
        if arm not in experiment.arm_names:
            raise ValidationFailed(
                "the experiment has no such arm", {"arm": arm, "arms": list(experiment.arm_names)}
            )
        stopped = await store.stop(conn, name, arm=arm, by=call.user.user_id)
    if stopped.final_arm != arm:
        raise Conflict(
            "the experiment was already stopped with another arm",
            {"name": name, "final_arm": stopped.final_arm},
        )
    call.app[keys.EXPERIMENTS].forget(name)  # this gateway at once, the others within the cache
    return report.experiment_out(stopped)


async def flush_exposures(app: web.Application) -> None:
    await app[keys.EXPERIMENTS].flush()


async def materialize_results(app: web.Application) -> None:
    now = dt.datetime.now(dt.UTC)
    async with app[keys.POOL].acquire() as conn:
        for experiment in await store.list_experiments(conn):
            stopped = experiment.stopped_at
            if stopped is None or now - stopped < KEEP_STOPPED:
                await store.materialize_results(conn, experiment.name)


def _e(method: str, path: str, view: Any, summary: str, **kw: Any) -> Endpoint:
    return Endpoint(method, API + path, view, summary, "experiments", auth=OPS, **kw)


ENDPOINTS: tuple[Endpoint, ...] = (
    _e(
        "GET",
        "/admin/experiments",
        list_experiments,
        "The experiments, running and stopped (ops)",
        response=s.ExperimentsOut,
        idempotency="none",
        errors=(401, 403),
    ),
    _e(
        "POST",
        "/admin/experiments",
        create_experiment,
        "Start an experiment: arms with shares, decided per user by a stable hash (ops)",
        body=s.ExperimentIn,
        response=s.ExperimentOut,
        status=201,
        errors=(401, 403, 409, 422),
    ),
    _e(
        "GET",
        "/admin/experiments/{name}",
        get_experiment,
        "An experiment with its results per currency and arm: conversion, revenue per "
        "visitor, lift against control and significance tests (ops)",
        path_model=s.ExperimentPath,
        response=s.ExperimentDetailOut,
        idempotency="none",
        errors=(401, 403, 404, 422),
    ),
    _e(
        "POST",
        "/admin/experiments/{name}/stop",
        stop_experiment,
        "Stop an experiment: everyone gets the chosen arm from now on (ops)",
        path_model=s.ExperimentPath,
        body=s.StopIn,
        response=s.ExperimentOut,
        errors=(401, 403, 404, 409, 422),
    ),
)
JOBS: tuple[Job, ...] = (
    Job("experiments.exposures", FLUSH_S, flush_exposures, leased=False),
    Job("experiments.results", RESULTS_S, materialize_results),
)
