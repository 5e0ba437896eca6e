"""Driving the demo node's pure shard routing in tests: what the nodes would do between reroutes."""

from __future__ import annotations

from es_framework.dev.demo_es import routing
from es_framework.dev.demo_es.cluster_state import INITIALIZING, DemoClusterState, NodeInfo


def start_all(state: DemoClusterState, nodes: tuple[NodeInfo, ...], now: int = 0, rounds: int = 20) -> DemoClusterState:
    """Report every initializing or relocating copy started and reroute, until nothing changes."""
    for _ in range(rounds):
        before = state
        for (index, shard), group in state.shards.items():
            for copy in group.copies:
                if copy.state == INITIALIZING and copy.node:
                    state = routing.shard_started(state, index, shard, copy.node)
                if copy.relocating_node:
                    state = routing.shard_started(state, index, shard, copy.relocating_node)
        state = routing.reroute(state, nodes, now)
        if state == before:
            break
    return state
