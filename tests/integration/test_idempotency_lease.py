"""An Idempotency-Key's claim is a lease: renewed while its request runs, however long; lapsed
soon after its process died, so the customer's retry runs instead of being told for a minute
that the first request is "still running"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from gateway.errors import Conflict
from gateway.idempotency import Idempotency

LEASE_S = 1


async def test_a_running_request_keeps_its_claim_past_the_lease(redis: Any) -> None:
    store = Idempotency(redis, redis.prefix, 60, pending_ttl_s=LEASE_S)
    other = Idempotency(redis, redis.prefix, 60, pending_ttl_s=LEASE_S)  # another gateway
    assert await store.begin("user:1", "k", "fp") is None
    await asyncio.sleep(LEASE_S * 2.5)  # the request is still running: renewed meanwhile
    with pytest.raises(Conflict) as refused:
        await other.begin("user:1", "k", "fp")
    assert refused.value.code == "idempotency_request_in_progress"
    await store.finish("user:1", "k", "fp", web.json_response({"ok": 1}, status=201))
    replay = await other.begin("user:1", "k", "fp")
    assert replay is not None and replay.status == 201


async def test_a_dead_process_claim_lapses_and_the_retry_runs(redis: Any) -> None:
    dead = Idempotency(redis, redis.prefix, 60, pending_ttl_s=LEASE_S)
    assert await dead.begin("user:1", "k", "fp") is None
    assert dead._renewer is not None
    dead._renewer.cancel()  # the process is gone: nothing renews its claim
    retry = Idempotency(redis, redis.prefix, 60, pending_ttl_s=LEASE_S)
    with pytest.raises(Conflict):
        await retry.begin("user:1", "k", "fp")
    await asyncio.sleep(LEASE_S + 0.3)
    assert await retry.begin("user:1", "k", "fp") is None  # the retry claims it and runs
    retry.let_go("user:1", "k")
    await asyncio.sleep(LEASE_S + 0.3)
    assert await redis.get(retry._name("user:1", "k")) is None  # let go: lapsed, not renewed
