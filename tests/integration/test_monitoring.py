"""Model monitoring through the gateway: what a process records is flushed into Postgres, the
alert job opens an alert once while its condition holds and resolves it when it clears (drift
of an input feature, latency, error rate, a stale model, a CTR drop), and the endpoints answer
ops only. Models are off: counts are recorded the way the fraud check, pricing and the
recommendations record them, and the serving versions are artifacts written here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway import keys
from gateway.app import create_app
from gateway.models import ModelsConfig
from gateway.ops import monitoring
from gateway.ops.config import OpsConfig
from ml.artifacts import ArtifactStore, Gate
from ml.drift import write_reference
from ml.fraud.features import FEATURES, CheckoutFeatures
from storage import monitoring as store
from tests.gateway_support import gateway_config, make_account
from tests.integration.shows import make_show

OPS = OpsConfig(drift_min_samples=500, monitoring_min_calls=100, ctr_min_impressions=500)


def checkouts(seed: int, n: int) -> list[CheckoutFeatures]:
    """Ordinary customers' checkouts: few holds, a few minutes to pay, accounts of all ages."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        holds = 1 + int(rng.expovariate(1.5))
        rows.append(
            CheckoutFeatures(
                holds_account_1h=holds,
                holds_account_24h=holds + int(rng.expovariate(1.0)),
                bookings_account_24h=int(rng.expovariate(2.0)),
                holds_device_1h=holds,
                holds_ip_1h=holds + int(rng.expovariate(0.8)),
                failed_payments_account_24h=int(rng.random() < 0.05),
                failed_payments_device_24h=int(rng.random() < 0.05),
                accounts_device_24h=1,
                accounts_ip_24h=1 + int(rng.expovariate(1.2)),
                card_distance_km=-1.0 if rng.random() < 0.2 else rng.expovariate(1 / 40),
                seats_unbought_account_7d=int(rng.expovariate(1.0)),
                hold_to_pay_s=rng.lognormvariate(4.4, 0.6),
                seats_in_hold=1 + int(rng.expovariate(0.7)),
                account_age_days=rng.expovariate(1 / 300),
            )
        )
    return rows


def _artifact(root: Path, kind: str, *, reference: Any = None, age_days: float = 0.0) -> str:
    """A committed artifact of ``kind`` that passed its gate (no model in it: monitoring reads
    only its meta and reference), trained ``age_days`` ago."""
    with ArtifactStore(root).draft(kind) as draft:
        if reference is not None:
            write_reference(draft.path, reference)
        artifact = draft.commit(metrics={}, gate=Gate(True, "test"), data={})
    if age_days:
        meta_path = artifact.path / "meta.json"
        meta = json.loads(meta_path.read_text())
        at = dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days)
        meta["created_at"] = at.isoformat(timespec="seconds")
        meta_path.write_text(json.dumps(meta))
    return artifact.version


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    from ml.fraud.train import input_reference

    training = np.array([row.as_vector() for row in checkouts(1, 4000)])
    _artifact(tmp_path, "fraud", reference=input_reference(training))
    _artifact(tmp_path, "pricing")  # trained before references were kept
    return tmp_path


class NoShows:
    """The show engine, unused here (no Ray needed)."""

    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("no seat maps in these tests")

    async def execute(self, show_id: int, command: Any) -> Any:
        raise AssertionError("no seat changes in these tests")


@pytest.fixture
async def app_client(
    aiohttp_client: Any, database_url: str, schema: str, redis_url: str, models_dir: Path
) -> Any:
    monitoring._serving_cache.clear()
    config = gateway_config(
        database_url,
        schema,
        redis_url,
        models=ModelsConfig(enabled=False, fraud_check=False, models_dir=str(models_dir)),
        ops=OPS,
    )
    return await aiohttp_client(create_app(config, engine=NoShows()))


async def _age(pool: Any, hours: float) -> None:
    """Everything recorded so far happened ``hours`` earlier."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE model_stats SET at = at - make_interval(secs => $1)", hours * 3600
        )


async def _alerts(pool: Any, state: str | None = None) -> list[store.Alert]:
    async with pool.acquire() as conn:
        return await store.list_alerts(conn, state=state)


def _open(alerts: list[store.Alert]) -> set[tuple[str, str]]:
    return {(a.kind, a.model) for a in alerts if a.state == "open"}


async def test_injected_drift_raises_the_drift_alert_and_a_clean_week_does_not(
    app_client: Any, pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_client.server.app
    monitor = app[keys.MODELS].monitor
    await monitoring.flush(app)  # learns the serving versions and their references
    assert "fraud" in monitor.references and "pricing" not in monitor.references

    clean = checkouts(2, 1500)  # another week of the same customers
    for row in clean:
        monitor.inputs("fraud", row.as_dict())  # as gateway.fraudcheck records each checkout
    await monitoring.flush(app)
    await monitoring.alerts(app)
    assert ("drift", "fraud") not in _open(await _alerts(pool))
    headers = await _ops(app, pool)
    report = await (await app_client.get("/api/v1/admin/models/monitoring", headers=headers)).json()
    fraud = next(m for m in report["models"] if m["model"] == "fraud")
    assert fraud["drift"]["reference"] and not fraud["drift"]["drifted"]
    psis = {name: f["psi"] for name, f in fraud["drift"]["features"].items()}
    assert set(psis) == set(FEATURES) and max(psis.values()) < 0.1, psis
    pricing = next(m for m in report["models"] if m["model"] == "pricing")
    assert not pricing["drift"]["reference"]
    assert "without an input reference" in pricing["drift"]["note"]

    await _age(pool, 48)  # that week is past; the next one pays in a tenth of the time
    for row in clean:
        shifted = dataclasses.replace(row, hold_to_pay_s=row.hold_to_pay_s / 10)
        monitor.inputs("fraud", shifted.as_dict())
    monitor.inputs("fraud", {})  # nothing known: nothing counted
    await monitoring.flush(app)
    with caplog.at_level(logging.WARNING, logger="gateway.ops.monitoring"):
        await monitoring.alerts(app)
        await monitoring.alerts(app)  # once per (kind, model) while it holds
    [alert] = [a for a in await _alerts(pool) if a.kind == "drift"]
    assert alert.model == "fraud" and alert.state == "open"
    assert set(alert.details["psi"]) == {"hold_to_pay_s"}
    assert alert.details["psi"]["hold_to_pay_s"] > 0.2
    opened = [r for r in caplog.records if "alert opened: drift on fraud" in r.getMessage()]
    assert len(opened) == 1
    metrics = await (await app_client.get("/metrics")).text()
    assert 'seatserver_alerts_open{kind="drift",model="fraud"} 1.0' in metrics
    assert 'seatserver_alerts_opened_total{kind="drift",model="fraud"}' in metrics

    await _age(pool, 48)  # a clean week again: the alert resolves
    for row in clean:
        monitor.inputs("fraud", row.as_dict())
    await monitoring.flush(app)
    await monitoring.alerts(app)
    [alert] = [a for a in await _alerts(pool) if a.kind == "drift"]
    assert alert.state == "resolved" and alert.resolved_at is not None


async def _ops(app: Any, pool: Any) -> dict[str, str]:
    return (await make_account(pool, app[keys.CONFIG], "admin")).headers


async def test_latency_and_error_alerts_open_once_and_resolve(app_client: Any, pool: Any) -> None:
    app = app_client.server.app
    monitor = app[keys.MODELS].monitor
    for _ in range(150):
        monitor.observe_call("pricing", "model", None, 0.35)  # slow
        monitor.observe_call("fraud", "model", None, 0.004)  # fast ...
    for _ in range(5):
        monitor.observe_call("fraud", "fallback", "timeout", None)  # ... but 3% time out
    for _ in range(50):
        monitor.observe_call("fraud", "fallback", "circuit_open", None)  # not errors
    monitor.observe_call("recommender", "model", None, 0.9)  # too few calls to judge
    await monitoring.flush(app)
    await monitoring.alerts(app)
    await monitoring.alerts(app)
    alerts = await _alerts(pool)
    assert _open(alerts) == {("latency", "pricing"), ("error_rate", "fraud")}
    assert len(alerts) == 2
    latency = next(a for a in alerts if a.kind == "latency")
    assert latency.details["p99_ms"] == 500.0 and latency.details["answers"] == 150
    errors = next(a for a in alerts if a.kind == "error_rate")
    assert errors.details["errors"] == 5 and errors.details["calls"] == 205

    headers = await _ops(app, pool)
    report = await (await app_client.get("/api/v1/admin/models/monitoring?minutes=30",
                                         headers=headers)).json()  # fmt: skip
    fraud = next(m for m in report["models"] if m["model"] == "fraud")
    assert fraud["latency_ms"] == {"p50": 5.0, "p95": 5.0, "p99": 5.0}
    assert fraud["fallbacks"] == {"timeout": 5, "circuit_open": 50}
    assert fraud["error_rate"] == pytest.approx(5 / 205, abs=1e-6)

    await _age(pool, 1)  # out of the 15 minutes judged, and nothing new: resolved
    await monitoring.alerts(app)
    assert _open(await _alerts(pool)) == set()
    assert {a.state for a in await _alerts(pool, "resolved")} == {"resolved"}


async def test_a_model_older_than_its_period_is_stale(
    app_client: Any, pool: Any, models_dir: Path
) -> None:
    app = app_client.server.app
    _artifact(models_dir, "recommender", age_days=8)  # retrained every 7 days
    await monitoring.alerts(app)
    alerts = await _alerts(pool)
    assert _open(alerts) == {("stale_model", "recommender")}
    assert alerts[0].details["retrain_days"] == 7.0 and alerts[0].details["age_days"] > 7.9
    time.sleep(1.1)  # versions are named by the second they were made in
    _artifact(models_dir, "recommender")  # retrained: the new version serves
    await monitoring.alerts(app)
    assert _open(await _alerts(pool)) == set()


async def test_click_through_and_conversion_are_counted(app_client: Any, pool: Any) -> None:
    app = app_client.server.app
    monitor = app[keys.MODELS].monitor
    show = await make_show(pool)
    customer = await make_account(pool, app[keys.CONFIG])
    async with pool.acquire() as conn:
        booked = await conn.fetchval("SELECT movie_id FROM shows WHERE id = $1", show)
        other = await conn.fetchval(
            """INSERT INTO movies (title, genres, runtime_min, certificate, language, release_date)
               VALUES ('Other', '{drama}', 90, 'PG', 'en', '2026-01-01') RETURNING id"""
        )
    now = dt.datetime.now(dt.UTC)
    monitor.recommended(customer.user_id, [booked, other], "model", now)  # as the view does
    monitor.recommended(None, [booked], "fallback", now)  # a visitor
    clicked = await app_client.post(
        "/api/v1/recommendations/clicks",
        json={"movie_id": booked, "source": "model"},
        headers=customer.headers,
    )
    assert clicked.status == 200 and (await clicked.json()) == {"recorded": True}
    anonymous = await app_client.post(
        "/api/v1/recommendations/clicks", json={"movie_id": booked, "source": "fallback"}
    )
    assert anonymous.status == 200
    for body in (
        {"movie_id": 0, "source": "model"},
        {"movie_id": booked, "source": "x"},
        {"movie_id": booked},
        {"movie_id": booked, "source": "model", "extra": 1},
    ):
        bad = await app_client.post("/api/v1/recommendations/clicks", json=body)
        assert bad.status == 422, body
    missing = await app_client.post(
        "/api/v1/recommendations/clicks", json={"movie_id": 2**40, "source": "model"}
    )
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    async with pool.acquire() as conn:  # the customer books the recommended movie
        await conn.execute(
            """INSERT INTO bookings (booking_id, show_date, show_id, user_id, seats, price_cents,
                                     status, confirmed_at)
               SELECT gen_random_uuid(), (starts_at AT TIME ZONE 'UTC')::date, id, $2, '{A5}',
                      1000, 'confirmed', now()
               FROM shows WHERE id = $1""",
            show,
            customer.user_id,
        )
    await monitoring.flush(app)
    await monitoring.conversions(app)
    await monitoring.conversions(app)  # counted once
    report = await (await app_client.get("/api/v1/admin/models/monitoring",
                                         headers=await _ops(app, pool))).json()  # fmt: skip
    recs = report["recommendations"]
    assert recs["last_24h"] == {
        "impressions": 3,
        "clicks": 2,
        "impressions_logged_in": 2,
        "conversions": 1,
        "ctr": pytest.approx(2 / 3, abs=1e-6),
        "conversion_rate": 0.5,
    }
    assert recs["by_source_last_24h"]["model"]["clicks"] == 1
    assert recs["by_day"][-1]["impressions"] == 3
    recommender = next(m for m in report["models"] if m["model"] == "recommender")
    assert recommender["version"] is None and not recommender["drift"]["reference"]


async def test_a_ctr_drop_raises_an_alert(app_client: Any, pool: Any) -> None:
    app = app_client.server.app
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    week = [(hour - dt.timedelta(days=d), 0, 1, "model", 1000, 100) for d in range(2, 8)]
    async with pool.acquire() as conn:  # 10% for a week
        await store.add_impressions(conn, week)
        await store.add_impressions(conn, [(hour, 0, 1, "model", 1000, 85)])
    await monitoring.alerts(app)
    assert ("ctr_drop", "recommender") not in _open(await _alerts(pool))  # down 15%: fine
    async with pool.acquire() as conn:
        await store.add_impressions(conn, [(hour, 0, 2, "model", 1000, 0)])  # 4.25% now
    await monitoring.alerts(app)
    [alert] = await _alerts(pool, "open")
    assert (alert.kind, alert.model) == ("ctr_drop", "recommender")
    assert alert.details["change"] == pytest.approx(-0.575, abs=1e-3)


async def test_the_endpoints_answer_ops_only_and_refuse_bad_input(
    app_client: Any, pool: Any
) -> None:
    app = app_client.server.app
    config = app[keys.CONFIG]
    ops = await make_account(pool, config, "admin")
    customer = await make_account(pool, config)
    theater = await make_show(pool)
    async with pool.acquire() as conn:
        theater_id = await conn.fetchval(
            "SELECT sc.theater_id FROM shows s JOIN screens sc ON sc.id = s.screen_id"
            " WHERE s.id = $1",
            theater,
        )
        alert_id = await store.open_alert(conn, "latency", "fraud", {"p99_ms": 300.0})
    staff = await make_account(pool, config, "theater_admin", (theater_id,))
    paths = [
        ("GET", "/api/v1/admin/models/monitoring"),
        ("GET", "/api/v1/admin/alerts"),
        ("POST", f"/api/v1/admin/alerts/{alert_id}/ack"),
    ]
    for method, path in paths:
        assert (await app_client.request(method, path)).status == 401
        for who in (customer, staff):
            resp = await app_client.request(method, path, headers=who.headers)
            assert resp.status == 403, (path, who.role)
    for query in ("minutes=0", "minutes=10081", "minutes=x"):
        resp = await app_client.get(f"/api/v1/admin/models/monitoring?{query}",
                                    headers=ops.headers)  # fmt: skip
        assert resp.status == 422, query
    for query in ("state=bogus", "limit=0", "limit=501"):
        resp = await app_client.get(f"/api/v1/admin/alerts?{query}", headers=ops.headers)
        assert resp.status == 422, query
    for bad, status in (("0", 422), ("abc", 422), (str(2**40), 404)):
        resp = await app_client.post(f"/api/v1/admin/alerts/{bad}/ack", headers=ops.headers)
        assert resp.status == status, bad
    listed = await (await app_client.get("/api/v1/admin/alerts", headers=ops.headers)).json()
    assert [a["id"] for a in listed["alerts"]] == [alert_id]
    acked = await app_client.post(f"/api/v1/admin/alerts/{alert_id}/ack", headers=ops.headers)
    body = await acked.json()
    assert acked.status == 200 and body["acked_by"] == ops.user_id and body["state"] == "open"
    everything = await (await app_client.get("/api/v1/admin/alerts?state=all&limit=5",
                                             headers=ops.headers)).json()  # fmt: skip
    assert len(everything["alerts"]) == 1
