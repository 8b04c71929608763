"""The Grafana dashboard is valid dashboard JSON, every query in it is valid PromQL (parsed and
type-checked by ``promql-parser``, Grafana's variables put in as Grafana does), and every metric
it queries is one the gateway exports (the names of this process's ``/metrics`` body once the
gateway is loaded; ``tests/integration/test_metrics.py`` checks them against a running
gateway's scrape too, with the label names the queries match and group on)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
# What Grafana puts in for its variables before Prometheus sees a query.
_GRAFANA = {"$__rate_interval": "1m", "$__interval": "15s", "$instance": ".*", "$__all": ".*"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL query of the dashboard's panels, as Prometheus receives it."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield _as_sent(target["expr"])


def _as_sent(expr: str) -> str:
    for variable in sorted(_GRAFANA, key=len, reverse=True):
        expr = expr.replace(variable, _GRAFANA[variable])
    return expr


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The series ``expr`` selects: (metric name, label names its matchers use); raises
    ``ValueError`` when it is not valid PromQL."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.append((node.name, {m.name for m in node.matchers.matchers} - {"__name__"}))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def grouping_labels(expr: str) -> set[str]:
    """The label names the query's aggregations group on (``by``) or drop (``without``)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            found.update(node.modifier.labels)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def queried_metrics(dashboard: dict[str, Any]) -> set[str]:
    """The seatserver metric names the dashboard's queries and variables select."""
    found = {name for expr in expressions(dashboard) for name, _ in selectors(expr)}
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        if text.startswith("label_values("):  # label_values(metric, label): Grafana's own
            found.add(text.removeprefix("label_values(").split(",")[0].strip())
    return {name for name in found if name.startswith("seatserver_")}


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
            assert target["refId"], panel["title"]
            chosen = selectors(_as_sent(target["expr"]))  # raises on invalid PromQL
            assert any(name.startswith("seatserver_") for name, _ in chosen), target["expr"]


def test_promql_mistakes_are_caught() -> None:
    for wrong in (
        "sum(rate(seatserver_show_events_total[1m])",  # unclosed
        "rate(seatserver_show_events_total)",  # rate of an instant vector
        "histogram_quantile(0.99, seatserver_hold_seconds_bucket[1m])",  # a range vector
    ):
        try:
            selectors(wrong)
        except ValueError:
            continue
        raise AssertionError(f"accepted: {wrong}")


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
