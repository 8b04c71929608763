"""The Grafana dashboard is valid dashboard JSON, and every metric it queries is one the
gateway exports (the names of this process's ``/metrics`` body once the gateway is loaded;
``tests/integration/test_metrics.py`` checks them against a running gateway's scrape too)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
_METRIC = re.compile(r"\bseatserver_[A-Za-z0-9_]+")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queried_metrics(dashboard: dict[str, Any]) -> set[str]:
    """The seatserver metric names in the dashboard's queries (a crude read of PromQL)."""
    found: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.update(_METRIC.findall(target["expr"]))
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found.update(_METRIC.findall(text))
    return found


def exported_names(exposition: str) -> set[str]:
    """Every series name a ``/metrics`` body offers, with or without samples yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        suffixes = _SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
        names.update(sample.name for sample in family.samples)
    return names


def test_the_dashboard_is_grafana_dashboard_json() -> None:
    dashboard = load_dashboard()
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"].count("(") == target["expr"].count(")")
            assert _METRIC.search(target["expr"]), target["expr"]


def test_the_dashboard_covers_the_figures_ops_watch() -> None:
    queried = queried_metrics(load_dashboard())
    for name in (
        "seatserver_http_requests_total",
        "seatserver_http_request_duration_seconds_bucket",
        "seatserver_hold_seconds_bucket",
        "seatserver_show_events_total",
        "seatserver_payments_total",
        "seatserver_bookings_total",
        "seatserver_writebehind_flush_lag_seconds_bucket",
        "seatserver_writebehind_flush_events_bucket",
        "seatserver_host_active_shows",
        "seatserver_websocket_clients",
        "seatserver_queue_waiting",
        "seatserver_queue_admitted_total",
        "seatserver_model_call_seconds_bucket",
        "seatserver_model_answers_total",
    ):
        assert name in queried, name


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    import gateway.app  # noqa: F401  (defines the gateway's metrics)
    import payments.saga  # noqa: F401  (its counters)

    exported = exported_names(generate_latest(REGISTRY).decode())
    missing = queried_metrics(load_dashboard()) - exported
    assert not missing, sorted(missing)
