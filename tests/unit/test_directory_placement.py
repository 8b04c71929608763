"""Where the directory places its hosts, decided from a node table as ``ray.nodes()`` gives it
(no Ray needed: the placement is plain arithmetic; ``test_cluster_failover.py`` checks it on
two real nodes)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from actors.directory import HOST_RESOURCE, host_resources, host_room, next_node


def node(node_id: str, alive: bool = True, **resources: float) -> dict[str, Any]:
    return {"NodeID": node_id, "Alive": alive, "Resources": {"CPU": 2.0, **resources}}


def place(room: dict[str, float], hosts: int) -> list[str | None]:
    placed: list[str] = []
    chosen: list[str | None] = []
    for _ in range(hosts):
        target = next_node(room, placed)
        chosen.append(target)
        if target is not None:
            placed.append(target)
    return chosen


def test_hosts_that_ask_for_nothing_go_round_robin_over_every_alive_node_in_id_order() -> None:
    nodes = [node("c"), node("a"), node("d", alive=False), node("b")]
    room = host_room(nodes, {})
    assert list(room) == ["a", "b", "c"]
    assert place(room, 7) == ["a", "b", "c", "a", "b", "c", "a"]


def test_with_show_host_only_its_nodes_take_hosts_and_no_more_than_their_units() -> None:
    nodes = [
        node("head", **{HOST_RESOURCE: 4.0}),
        node("hosts", **{HOST_RESOURCE: 12.0}),
        node("models", serve=8.0),
    ]
    cluster = {HOST_RESOURCE: 16.0, "serve": 8.0}
    room = host_room(nodes, host_resources(cluster))
    assert room == {"head": 4.0, "hosts": 12.0}
    chosen = place(room, 17)
    assert chosen[:8] == ["head", "hosts"] * 4
    assert Counter(chosen) == {"head": 4, "hosts": 12, None: 1}  # the last one: no unit left


def test_a_flash_sale_host_goes_to_the_node_running_the_fewest() -> None:
    room = host_room([node("a"), node("b"), node("c")], {})
    assert next_node(room, ["a", "b", "c", "a", "c"]) == "b"
    assert next_node(room, ["a", "b", "c", "gone", "gone"]) == "a"  # a lost node's do not count


def test_no_node_able_to_run_a_host_leaves_it_to_ray() -> None:
    assert host_room([node("a", alive=False)], {}) == {}
    assert host_room([node("a")], {HOST_RESOURCE: 1.0}) == {}
    assert next_node({}, []) is None
