"""``/metrics`` of a gateway on real Postgres, Redis and Ray: requests by route template,
hold latency, websocket clients, the show hosts' figures polled from their processes, the
dashboard's names; and the request id on the log records of a request, in the gateway and in
the show host's process."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from actors import JsonFormatter
from gateway.app import create_app
from gateway.metrics import HOST_STATS
from storage import flash_sales
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, make_show
from tests.unit.test_dashboard import (
    TARGET_LABELS,
    exported_names,
    expressions,
    grouping_labels,
    load_dashboard,
    queried_metrics,
    selectors,
)

HOLDS = "/api/v1/shows/{show_id}/holds"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _logged(request: web.Request) -> web.Response:
    logging.getLogger("gateway.test").warning("inside the request")
    return web.json_response({})


@pytest.fixture
async def client(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    app = create_app(config, engine=engine.client)
    app.router.add_get("/test/logged", _logged)
    yield await aiohttp_client(app)
    keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def alice(pool: Any, config: Any) -> Account:
    return await make_account(pool, config)


async def _scrape(client: Any) -> tuple[str, Samples]:
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def _labels(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(ls) for (n, ls), _ in samples.items() if n == name]


async def _polled_until_flushed(client: Any, show: int) -> None:
    stats = client.app[HOST_STATS]
    deadline = time.monotonic() + 10
    while True:
        await stats.poll()
        described = [h["stats"] for h in stats.hosts.values() if h["stats"]]
        if any(d["flushes"] and d["active_shows"] for d in described):
            return
        assert time.monotonic() < deadline, described
        await asyncio.sleep(0.1)


async def test_metrics_of_requests_holds_sockets_and_hosts(
    client: Any, pool: Any, alice: Account
) -> None:
    show = await make_show(pool)
    _, before = await _scrape(client)
    holds = f"/api/v1/shows/{show}/holds"
    resp = await client.post(holds, json={"seats": ["C5", "C6"]}, headers=alice.headers | new_key())
    assert resp.status == 201, await resp.text()
    hold = (await resp.json())["hold_id"]
    taken = await client.post(holds, json={"seats": ["C6"]}, headers=alice.headers | new_key())
    assert taken.status == 409
    assert (await client.get("/api/v1/no/such/route")).status == 404
    ws = await client.ws_connect(f"/ws/shows/{show}")
    assert (await ws.receive_json())["type"] == "snapshot"
    _, during = await _scrape(client)
    await ws.close()
    gone = await client.delete(f"{holds}/{hold}", headers=alice.headers | new_key())
    assert gone.status == 200
    await _polled_until_flushed(client, show)
    text, after = await _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    post = {"route": HOLDS, "method": "POST"}
    assert grew("seatserver_http_requests_total", **post, status="201") == 1
    assert grew("seatserver_http_requests_total", **post, status="409") == 1
    assert grew("seatserver_http_requests_total", route="other", status="404") == 1
    assert grew("seatserver_http_request_duration_seconds_count", **post) == 2
    assert not any(_raw_path(labels) for labels in _labels(after, "seatserver_http_requests_total"))
    assert grew("seatserver_hold_seconds_count", mode="seats", outcome="held") == 1
    assert grew("seatserver_hold_seconds_count", mode="seats", outcome="refused") == 1
    seatmap = {"kind": "seatmap"}
    assert _value(during, "seatserver_websocket_clients", **seatmap) == (
        _value(before, "seatserver_websocket_clients", **seatmap) + 1
    )
    assert _value(after, "seatserver_websocket_clients", **seatmap) == _value(
        before, "seatserver_websocket_clients", **seatmap
    )

    # The host that runs the show, polled from its own process.
    assert _value(after, "seatserver_hosts", kind="shared") == 2
    assert _value(after, "seatserver_host_up") == 2
    assert _value(after, "seatserver_host_active_shows", kind="shared") >= 1
    assert _value(after, "seatserver_show_events_total", event="hold_placed") == 1
    assert _value(after, "seatserver_show_events_total", event="hold_released") == 1
    assert _value(after, "seatserver_show_commands_total", command="hold_seats", outcome="ok") == 1
    refused = {"command": "hold_seats", "outcome": "seat_unavailable"}
    assert _value(after, "seatserver_show_commands_total", **refused) == 1
    assert _value(after, "seatserver_show_decision_seconds_count", command="hold_seats") == 2
    assert _value(after, "seatserver_writebehind_flush_lag_seconds_count") >= 1
    assert _value(after, "seatserver_writebehind_flush_events_sum") >= 1
    nodes = {labels["node"] for labels in _labels(after, "seatserver_host_active_shows")}
    assert nodes and "unknown" not in nodes

    # Every metric the dashboard queries is in this scrape, and every label it matches or
    # groups on is one the series it selects carry (as far as this scrape has samples).
    missing = queried_metrics(load_dashboard()) - exported_names(text)
    assert not missing, sorted(missing)
    assert not _unknown_labels(after), _unknown_labels(after)


def _unknown_labels(samples: Samples) -> list[tuple[str, list[str]]]:
    """Queries of the dashboard using labels that none of the series they select carry."""
    carried: dict[str, set[str]] = {}
    for name, labels in samples:
        carried.setdefault(name, set()).update(label for label, _ in labels)
    unknown = []
    for expr in expressions(load_dashboard()):
        chosen = [(n, used) for n, used in selectors(expr) if n in carried]
        if not chosen:
            continue
        labels = set().union(*(carried[n] for n, _ in chosen)) | TARGET_LABELS
        used = set().union(*(u for _, u in chosen)) | grouping_labels(expr)
        if used - labels:
            unknown.append((expr, sorted(used - labels)))
    return unknown


def _raw_path(labels: frozenset[tuple[str, str]] | dict[str, str]) -> bool:
    """Whether a route label carries a raw path (a number where the template has a name)."""
    route = dict(labels).get("route", "")
    return any(part.isdigit() for part in route.split("/"))


async def test_a_request_id_follows_the_request_into_the_gateway_and_host_logs(
    client: Any, pool: Any, alice: Account, engine: Engine
) -> None:
    # In the gateway: a record logged while the request runs carries its id.
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("gateway.test")
    logger.addHandler(handler)
    try:
        resp = await client.get("/test/logged", headers={"X-Request-Id": "req-gateway-1"})
        assert resp.status == 200 and resp.headers["X-Request-Id"] == "req-gateway-1"
        generated = await client.get("/test/logged")
        logger.warning("after the request")
    finally:
        logger.removeHandler(handler)
    records = [json.loads(line) for line in lines]
    assert records[0]["request_id"] == "req-gateway-1"
    assert records[0]["message"] == "inside the request"
    assert records[1]["request_id"] == generated.headers["X-Request-Id"]
    assert records[2]["request_id"] is None

    # In the show host's process: the first hold on a show loads it there, and the host's
    # record of that names the request.
    show = await make_show(pool)
    rid = f"req-{uuid.uuid4().hex[:12]}"
    headers = alice.headers | new_key() | {"X-Request-Id": rid}
    resp = await client.post(f"/api/v1/shows/{show}/holds", json={"count": 2}, headers=headers)
    assert resp.status == 201, await resp.text()
    host = await engine.directory.host_for.remote(show)
    pid = (await host.describe.remote())["pid"]
    found = await _host_records(pid, rid)
    assert any(f"activated show {show}" in r["message"] for r in found), found
    assert all(r["request_id"] == rid and r["host"].startswith("seatserver-") for r in found)


async def _host_records(pid: int, request_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The JSON records naming ``request_id`` in the log of the Ray worker ``pid``."""
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for path in logs.glob(f"worker-*-{pid}.err"):
            for line in path.read_text(errors="replace").splitlines():
                if request_id in line and line.startswith("{"):
                    found.append(json.loads(line))
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_metrics_of_a_flash_sale_line(client: Any, pool: Any, alice: Account) -> None:
    show = await make_show(pool, status="flash_sale", name="line")
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn:
        await flash_sales.set_flash_sale(
            conn,
            show,
            queue_opens_at=now - dt.timedelta(minutes=2),
            sale_opens_at=now - dt.timedelta(minutes=1),
            admission_per_min=600,
            token_ttl_s=300,
            by=None,
            now=now,
        )
    ws = await client.ws_connect(f"/ws/shows/{show}/queue")
    await ws.send_json({"type": "auth", "access_token": alice.token})
    assert (await ws.receive_json())["type"] == "queue"
    joined = await client.post(f"/api/v1/shows/{show}/queue", headers=alice.headers | new_key())
    assert joined.status in (200, 201), await joined.text()
    deadline = time.monotonic() + 10
    while True:
        _, samples = await _scrape(client)
        if _value(samples, "seatserver_queue_admitted_total", show=str(show)) >= 1:
            break
        assert time.monotonic() < deadline, "no admission counted"
        await asyncio.sleep(0.2)
    assert ("seatserver_queue_waiting", frozenset({("show", str(show))})) in samples
    assert _value(samples, "seatserver_websocket_clients", kind="queue") >= 1
    await ws.close()


async def test_metrics_ask_for_their_token_when_one_is_set(
    aiohttp_client: Any, config: Any, engine: Engine
) -> None:
    token = "scrape-" + uuid.uuid4().hex
    client = await aiohttp_client(
        create_app(dataclasses.replace(config, metrics_token=token), engine=engine.client)
    )
    for headers in ({}, {"Authorization": "Bearer wrong-token-0000"}, {"Authorization": token}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"]["code"] == "metrics_token_required"
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200 and "seatserver_http_requests_total" in await resp.text()
