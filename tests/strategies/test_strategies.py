from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from strategies import EXTERNAL, NORMAL, Verdict, strategy_for
from tests.harness.builders import config, offer, ports, scalar

EMPTY = ClusterView(desired_nodes=3)


def judge(raw: dict[str, Any], view: ClusterView = EMPTY, /, **flags: str) -> Verdict:
    cfg = config(**flags)
    return strategy_for(cfg).evaluate(parse_offer(raw), view, cfg)


def test_strategy_selection() -> None:
    assert strategy_for(config()) is NORMAL
    assert strategy_for(config(externalVolumeDriver="rexray")) is EXTERNAL
    assert [r.name for r in NORMAL.rules] == [
        "cluster_full",
        "agent_has_node",
        "gpu_agent",
        "cpus",
        "mem",
        "ports",
        "disk",
    ]
    assert [r.name for r in EXTERNAL.rules] == ["cluster_full", "agent_has_node", "gpu_agent", "cpus", "mem", "ports"]
    assert NORMAL.uses_local_disk and not EXTERNAL.uses_local_disk


@pytest.mark.parametrize("driver", [{}, {"externalVolumeDriver": "rexray"}])
def test_a_good_offer_is_accepted(driver: dict[str, str]) -> None:
    verdict = judge(offer(1), **driver)
    assert verdict.accepted and verdict.rule is None
    assert (verdict.offer_id, verdict.agent_id, verdict.hostname) == ("offer-1", "agent-1-S0", "agent1.example.com")
    assert "every rule passed" in verdict.reason
    assert "accept" in str(verdict)


def test_cluster_full() -> None:
    view = ClusterView(desired_nodes=3, present_nodes=3)
    verdict = judge(offer(1), view)
    assert (verdict.accepted, verdict.rule) == (False, "cluster_full")
    assert verdict.reason == "cluster size fulfilled: 3 of 3 nodes present"
    assert judge(offer(1), ClusterView(desired_nodes=3, present_nodes=2)).accepted
    # A scale-down in progress (more present than desired) also declines.
    assert judge(offer(1), ClusterView(desired_nodes=1, present_nodes=2)).rule == "cluster_full"


def test_agent_already_running_a_node_by_agent_id_or_hostname() -> None:
    by_agent = ClusterView(desired_nodes=3, present_nodes=1, nodes_by_agent=MappingProxyType({"agent-1-S0": 1}))
    verdict = judge(offer(1), by_agent)
    assert (verdict.accepted, verdict.rule) == (False, "agent_has_node")
    assert "already runs node 1 of cluster mesos-ha" in verdict.reason
    # An agent that re-registered with a new id is still the same host.
    by_host = ClusterView(
        desired_nodes=3, present_nodes=1, nodes_by_hostname=MappingProxyType({"agent1.example.com": 2})
    )
    assert judge(offer(1, agent_id="agent-1-S7"), by_host).rule == "agent_has_node"
    assert judge(offer(2), by_agent).accepted


def test_gpu_agents_are_declined_unless_allowed() -> None:
    raw = offer(1, extra=(scalar("gpus", 2),))
    verdict = judge(raw)
    assert (verdict.accepted, verdict.rule) == (False, "gpu_agent")
    assert "2 GPUs" in verdict.reason and "--allowGpuAgents" in verdict.reason
    assert judge(raw, allowGpuAgents="true").accepted
    assert judge(offer(1, extra=(scalar("gpus", 0),))).accepted


@pytest.mark.parametrize(
    ("raw", "rule", "reason"),
    [
        (offer(cpus=0.5), "cpus", "not enough cpus: 0.5 offered, 1 needed"),
        (offer(mem=2047), "mem", "not enough mem: 2047 MB offered, 2048 MB needed"),
        (offer(port_ranges=()), "ports", "not enough ports: 2 port(s) needed from the offer, offered: none"),
        (offer(port_ranges=((31000, 31000),)), "ports", "offered: 31000"),
        (offer(disk=1023.5), "disk", "not enough disk: 1023.5 MB offered, 1024 MB needed"),
    ],
)
def test_resource_rules_decline_with_reason(raw: dict[str, Any], rule: str, reason: str) -> None:
    verdict = judge(raw)
    assert (verdict.accepted, verdict.rule) == (False, rule)
    assert reason in verdict.reason
    assert f"decline ({rule})" in str(verdict)


def test_external_strategy_never_looks_at_disk() -> None:
    assert judge(offer(disk=0), externalVolumeDriver="rexray").accepted
    assert judge(
        offer(resources=[scalar("cpus", 2), scalar("mem", 4096), ports((1, 9))]), externalVolumeDriver="rexray"
    ).accepted
    assert judge(offer(disk=0)).rule == "disk"


def test_fixed_ports_must_be_offered() -> None:
    assert judge(offer(port_ranges=((9200, 9200), (9300, 9300))), elasticsearchPorts="9200,9300").accepted
    verdict = judge(offer(port_ranges=((31000, 32000),)), elasticsearchPorts="9200,9300")
    assert verdict.rule == "ports" and "HTTP port 9200 is not offered (offered: 31000-32000)" in verdict.reason
    verdict = judge(offer(port_ranges=((9200, 9200),)), elasticsearchPorts="9200,9300")
    assert "transport port 9300 is not offered" in verdict.reason


def test_first_failing_rule_declines() -> None:
    # Short of everything, on an agent that already has a node, in a full cluster: the first rule wins.
    raw = offer(1, cpus=0.1, mem=1, disk=1, port_ranges=())
    full = ClusterView(desired_nodes=1, present_nodes=1, nodes_by_agent=MappingProxyType({"agent-1-S0": 1}))
    assert judge(raw, full).rule == "cluster_full"
    assert (
        judge(raw, ClusterView(desired_nodes=2, present_nodes=1, nodes_by_agent=full.nodes_by_agent)).rule
        == "agent_has_node"
    )
    assert judge(raw).rule == "cpus"
    assert judge(offer(cpus=1, mem=1, disk=1, port_ranges=())).rule == "mem"
    assert judge(offer(disk=1, port_ranges=())).rule == "ports"


def test_resources_of_other_roles_do_not_count() -> None:
    raw = offer(
        resources=[
            scalar("cpus", 8, "other", allocation_role="es"),
            scalar("cpus", 0.5, allocation_role="es"),
            scalar("mem", 8192, allocation_role="es"),
            scalar("disk", 8192, allocation_role="es"),
            ports((31000, 32000), allocation_role="es"),
        ]
    )
    verdict = judge(raw, frameworkRole="es")
    assert verdict.rule == "cpus" and "0.5 offered" in verdict.reason
    raw["resources"][0] = scalar("cpus", 8, "es", allocation_role="es")
    assert judge(raw, frameworkRole="es").accepted


def test_custom_resources_and_attributes_are_ignored() -> None:
    raw = offer(extra=({"name": "network_bandwidth", "type": "SCALAR", "scalar": {"value": 1000}},))
    raw["attributes"] = [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]
    assert judge(raw).accepted


class _NoScanMapping(Mapping[str, int]):
    """Membership and lookup only: iterating (a scan over the cluster) fails the test."""

    def __init__(self, data: dict[str, int]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> int:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a rule scanned every node")

    def __len__(self) -> int:
        raise AssertionError("a rule counted every node")


@pytest.mark.parametrize("driver", [{}, {"externalVolumeDriver": "rexray"}])
def test_verdicts_never_scan_the_cluster(driver: dict[str, str]) -> None:
    nodes = {f"agent-{i}": i for i in range(1, 10_001)}
    hosts = {f"host{i}": i for i in range(1, 10_001)}
    view = ClusterView(
        desired_nodes=10_001,
        present_nodes=10_000,
        nodes_by_agent=_NoScanMapping(nodes),
        nodes_by_hostname=_NoScanMapping(hosts),
    )
    assert judge(offer(20_000), view, **driver).accepted
    assert judge(offer(1, agent_id="agent-5", hostname="elsewhere"), view, **driver).rule == "agent_has_node"
    assert judge(offer(1, agent_id="new", hostname="host9"), view, **driver).rule == "agent_has_node"
