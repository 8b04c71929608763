"""cluster.yaml: a launcher file Ray accepts, with the ports and resources the project uses,
every key commented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.directory import HOST_RESOURCE, host_resources

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"
KEY = re.compile(r"^\s*([A-Za-z_][\w]*):")  # a mapping key (quoted paths are mount entries)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CLUSTER_YAML.read_text())
    return loaded


def test_rays_schema_accepts_it_as_written_and_with_its_defaults(config: dict[str, Any]) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(config)
    validate_config(prepare_config(config))


def test_head_listens_on_6390_and_keeps_the_dashboard_on_loopback(config: dict[str, Any]) -> None:
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    assert "--port=6390" in head and "$RAY_HEAD_IP:6390" in worker
    assert "6379" not in head + worker
    assert "--dashboard-host=127.0.0.1" in head
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in worker


def test_host_nodes_advertise_the_resource_hosts_ask_for(config: dict[str, Any]) -> None:
    types = config["available_node_types"]
    assert types["hosts"]["resources"][HOST_RESOURCE] > 0
    assert types[config["head_node_type"]]["resources"][HOST_RESOURCE] > 0
    for name, kind in types.items():
        if name != config["head_node_type"]:
            assert 0 <= kind["min_workers"] <= kind["max_workers"] <= config["max_workers"]


def test_hosts_ask_for_the_resource_only_where_some_node_has_it() -> None:
    assert host_resources({"CPU": 2.0, "memory": 1e9}) == {}
    assert host_resources({"CPU": 2.0, HOST_RESOURCE: 16.0}) == {HOST_RESOURCE: 1.0}


def test_every_key_is_commented() -> None:
    lines = CLUSTER_YAML.read_text().splitlines()
    uncommented = []
    for number, line in enumerate(lines):
        if not KEY.match(line) or "#" in line:
            continue
        above = next((p.strip() for p in reversed(lines[:number]) if p.strip()), "")
        if not above.startswith("#"):
            uncommented.append(f"{number + 1}: {line.strip()}")
    assert not uncommented, uncommented
