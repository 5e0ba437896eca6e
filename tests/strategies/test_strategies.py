from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from es_framework.core.cluster_view import ClusterView
from es_framework.core.evaluation import EvaluationContext, RuleOutcome
from es_framework.core.failures import Backoff, FailureKind
from es_framework.core.node_state import Pin
from es_framework.core.offers import parse_offer
from strategies import EXTERNAL, NORMAL, Verdict, strategy_for
from strategies.rules import Enough, enough_cpus, enough_disk, enough_mem
from tests.harness.builders import config, offer, ports, scalar

EMPTY = ClusterView(desired_nodes=3)


def judge(
    raw: dict[str, Any], view: ClusterView = EMPTY, context: EvaluationContext | None = None, /, **flags: str
) -> Verdict:
    """The verdict, with the node id the offer cycle would give when none is said: the next one."""
    cfg = config(**flags)
    if context is None:
        context = EvaluationContext(view.present_nodes + 1 if view.missing_nodes else None)
    return strategy_for(cfg).evaluate(parse_offer(raw), view, cfg, context)


def test_strategy_selection() -> None:
    assert strategy_for(config()) is NORMAL
    assert strategy_for(config(externalVolumeDriver="rexray")) is EXTERNAL
    assert [r.name for r in NORMAL.rules] == [
        "cluster_full",
        "agent_check",
        "agent_has_node",
        "constraints",
        "zone_spread",
        "gpu_agent",
        "cpus",
        "mem",
        "ports",
        "disk",
        "pinned",
        "volume_zone",
        "backoff",
    ]
    assert [r.name for r in EXTERNAL.rules] == [
        "cluster_full",
        "agent_check",
        "agent_has_node",
        "volume_attribute",
        "constraints",
        "zone_spread",
        "gpu_agent",
        "cpus",
        "mem",
        "ports",
        "pinned",
        "volume_zone",
        "backoff",
    ]
    assert NORMAL.uses_local_disk and not EXTERNAL.uses_local_disk


def test_placement_rules_are_reported_only_where_they_apply() -> None:
    # No constraint, no storage attribute, no zone known: the verdict lists what it always did.
    assert [o.rule for o in judge(offer(1)).outcomes] == [
        "cluster_full",
        "agent_has_node",
        "gpu_agent",
        "cpus",
        "mem",
        "ports",
        "disk",
        "pinned",
        "backoff",
    ]
    assert [o.rule for o in judge(offer(1), externalVolumeDriver="rexray").outcomes] == [
        "cluster_full",
        "agent_has_node",
        "gpu_agent",
        "cpus",
        "mem",
        "ports",
        "pinned",
        "backoff",
    ]


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


# --- every rule's outcome ------------------------------------------------------------------------------


def test_every_rule_is_evaluated_and_reported_in_order() -> None:
    # Short of everything, on an agent that already has a node, in a full cluster.
    raw = offer(1, cpus=0.1, mem=1, disk=1, port_ranges=())
    full = ClusterView(desired_nodes=1, present_nodes=1, nodes_by_agent=MappingProxyType({"agent-1-S0": 1}))
    verdict = judge(raw, full)
    assert [(o.rule, o.passed) for o in verdict.outcomes] == [
        ("cluster_full", False),
        ("agent_has_node", False),
        ("gpu_agent", True),
        ("cpus", False),
        ("mem", False),
        ("ports", False),
        ("disk", False),
        ("pinned", True),
        ("backoff", True),
    ]
    # The counted rule and reason are the first failing one's, as before every rule was reported.
    first = verdict.failures[0]
    assert (
        (verdict.rule, verdict.reason)
        == (first.rule, first.reason)
        == (
            "cluster_full",
            "cluster size fulfilled: 1 of 1 nodes present",
        )
    )
    assert [o.rule for o in verdict.failures] == ["cluster_full", "agent_has_node", "cpus", "mem", "ports", "disk"]
    assert verdict.outcomes[3].reason == "not enough cpus: 0.1 offered, 1 needed"
    assert verdict.outcomes[7].reason == "no missing node is pinned to another agent"
    assert verdict.outcomes[8].reason == "no node id to launch, so none to hold back"
    assert str(verdict.outcomes[0]) == "FAILED cluster_full: cluster size fulfilled: 1 of 1 nodes present"
    assert verdict.explain().split("; ")[2] == "passed gpu_agent: agent offers no GPUs"


def test_an_accepted_offer_says_how_it_passed_each_rule() -> None:
    verdict = judge(offer(1, cpus=2, mem=4096, extra=(scalar("gpus", 1),)), allowGpuAgents="true")
    assert verdict.accepted and verdict.failures == ()
    assert verdict.outcomes == (
        RuleOutcome("cluster_full", True, "3 of 3 nodes missing"),
        RuleOutcome("agent_has_node", True, "no node of cluster mesos-ha on this agent or host"),
        RuleOutcome("gpu_agent", True, "agent offers 1 GPUs; allowed by --allowGpuAgents"),
        RuleOutcome("cpus", True, "enough cpus: 2 offered, 1 needed"),
        RuleOutcome("mem", True, "enough mem: 4096 MB offered, 2048 MB needed"),
        RuleOutcome("ports", True, "HTTP port 31000 and transport port 31001 are offered"),
        RuleOutcome("disk", True, "enough disk: 20000 MB offered, 1024 MB needed"),
        RuleOutcome("pinned", True, "node 1 would launch here"),
        RuleOutcome("backoff", True, "node 1 has not failed lately"),
    )


def test_cpus_mem_and_disk_are_one_rule_shape() -> None:
    assert all(isinstance(check, Enough) for check in (enough_cpus, enough_mem, enough_disk))
    checks = {rule.name: rule.check for rule in NORMAL.rules}
    assert (checks["cpus"], checks["mem"], checks["disk"]) == (enough_cpus, enough_mem, enough_disk)


def test_a_missing_node_pinned_to_another_agent_is_not_launched_here() -> None:
    pins = MappingProxyType({2: Pin("agent-9-S0", 60.0)})
    view = ClusterView(desired_nodes=2, present_nodes=1)
    verdict = judge(offer(1), view, EvaluationContext(None, pins, now=10.0))
    assert (verdict.accepted, verdict.rule) == (False, "pinned")
    assert verdict.reason == "node 2 restarts in place on agent agent-9-S0 (until 60)"
    # Its own agent gets it.
    verdict = judge(offer(9), view, EvaluationContext(2, pins, now=10.0))
    assert verdict.accepted and verdict.outcomes[-2].reason == "node 2 restarts in place on this agent"


def test_a_node_waiting_after_failures_is_not_launched_yet() -> None:
    backoff = Backoff().failed(1, FailureKind.IMAGE, "no such image", now=0).failed(1, FailureKind.IMAGE, "", now=0)
    early = judge(offer(1), EMPTY, EvaluationContext(1, backoff=backoff, now=4.0))
    assert (early.accepted, early.rule) == (False, "backoff")
    assert early.reason.startswith("node 1 failed 2 time(s) in a row (image: the agent could not find or pull")
    assert early.reason.endswith("; next launch in 6s")
    later = judge(offer(1), EMPTY, EvaluationContext(1, backoff=backoff, now=10.0))
    assert later.accepted and later.outcomes[-1].reason.endswith("; its back-off is over")
