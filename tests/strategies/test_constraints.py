"""Placement rules: every constraint operator (Marathon's semantics), nodes per agent, the storage
attribute, the spread over zones and zonal volumes."""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.config.constraints import constraint
from es_framework.core.cluster_view import ClusterView, ValueCounts, value_counts
from es_framework.core.evaluation import EvaluationContext, Verdict
from es_framework.core.node_state import ClusterState
from es_framework.core.offers import parse_offer
from strategies import strategy_for
from strategies.constraints import check_constraint, group_by
from tests.harness.builders import config
from tests.strategies.placement import cycle, placed_offer

EMPTY = ValueCounts()


def counts(*placed: str | None) -> ValueCounts:
    return value_counts(enumerate(placed, start=1))


def check(text: str, value: str | None, placed: ValueCounts = EMPTY) -> tuple[bool, str]:
    field, op, *rest = text.split(":", 2)
    finding = check_constraint(constraint(field, op, rest[0] if rest else None), value, placed)
    return finding.passed, finding.reason


def judge(raw: dict[str, Any], view: ClusterView | None = None, **flags: str) -> Verdict:
    cfg = config(**flags)
    view = view or ClusterView(desired_nodes=3)
    context = EvaluationContext(view.present_nodes + 1 if view.missing_nodes else None)
    return strategy_for(cfg).evaluate(parse_offer(raw), view, cfg, context)


# --- every operator -------------------------------------------------------------------------------


def test_like_and_unlike_match_the_whole_value() -> None:
    assert check("rack:LIKE:rack-[1-3]", "rack-2") == (True, "rack-2 matches rack-[1-3]")
    assert check("rack:LIKE:rack-[1-3]", "rack-22") == (False, "rack-22 does not match rack-[1-3]")
    assert check("rack:LIKE:rack", "rack-1")[0] is False  # a full match, not a search
    assert check("rack:UNLIKE:rack-[7-9]", "rack-8") == (False, "rack-8 matches rack-[7-9]")
    assert check("rack:UNLIKE:rack-[7-9]", "rack-1") == (True, "rack-1 does not match rack-[7-9]")


def test_a_missing_attribute_passes_unlike_only() -> None:
    for op in ("LIKE:.*", "IS:x", "UNIQUE", "CLUSTER", "GROUP_BY", "MAX_PER:2", "CLUSTER:x"):
        assert check(f"rack:{op}", None) == (False, "the agent has no attribute rack"), op
    assert check("rack:UNLIKE:x", None) == (True, "the agent has no attribute rack, which UNLIKE accepts")


def test_is_compares_text_and_scalars_to_the_thousandth() -> None:
    assert check("rack:IS:rack-1", "rack-1") == (True, "rack-1 is rack-1")
    assert check("rack:IS:rack-1", "rack-2") == (False, "rack-2 is not rack-1")
    assert check("level:IS:0.80", "0.8")[0]
    assert check("level:IS:0.8001", "0.8")[0]
    assert not check("level:IS:0.81", "0.8")[0]


def test_unique_and_max_per_count_nodes_per_value() -> None:
    placed = counts("r1", "r1", "r2", None)
    assert check("rack:UNIQUE", "r3", placed) == (True, "r3 has no node")
    assert check("rack:UNIQUE", "r2", placed) == (False, "r2 already has 1 node")
    assert check("rack:MAX_PER:2", "r2", placed) == (True, "r2 has 1 node, at most 2")
    assert check("rack:MAX_PER:2", "r1", placed) == (False, "r1 has 2 nodes, at most 2")
    assert check("rack:MAX_PER:1", "r9", placed)[0]


def test_cluster_with_and_without_a_value() -> None:
    assert check("rack:CLUSTER:r1", "r1")[0] and not check("rack:CLUSTER:r1", "r2")[0]
    assert check("rack:CLUSTER", "r5") == (True, "r5: the first node picks the value all others follow")
    # Without a value, the value of the lowest node id that has one (Marathon: the first placed).
    placed = value_counts([(4, "r2"), (2, "r1"), (1, None)])
    assert check("rack:CLUSTER", "r1", placed) == (True, "r1 is the cluster's value")
    assert check("rack:CLUSTER", "r2", placed) == (False, "r2 is not r1 (node 2's)")


def test_group_by_prefers_values_without_nodes_then_the_smallest() -> None:
    assert group_by(counts(), "a", 0).passed
    # Marathon: a value with nodes passes while it has the fewest ...
    assert group_by(counts("a", "b"), "a", 0).passed
    assert group_by(counts("a", "b", "a"), "b", 0).passed
    assert group_by(counts("a", "b", "a"), "a", 0).reason == "a has 2 nodes, b only 1"
    # ... and at least `count` values have nodes: GROUP_BY:3 waits for a third value.
    assert group_by(counts("a", "b"), "a", 3).reason == "a has 1 node while 1 of 3 values have none yet"
    assert group_by(counts("a", "b"), "c", 3).passed
    # Values offered this cycle are expected too, and named.
    offered = counts("a").offered(["a", "b", "c"])
    assert group_by(offered, "a", 0).reason == "a has 1 node while 2 of 3 values have none yet (b, c)"
    assert group_by(offered, "c", 0).reason == "c has no node yet"
    # Nodes on agents without the field never take part.
    assert group_by(counts("a", None, None), "a", 0).passed


def test_every_type_of_attribute_is_compared_as_marathon_formats_it() -> None:
    attrs: dict[str, Any] = {"rack": "r1", "level": 2.50, "disks": {"ssd", "hdd"}, "slots": ((8, 9), (1, 3))}
    raw = placed_offer(1, attrs=attrs)
    constraints = "rack:IS:r1;level:IS:2.5;disks:IS:{hdd,ssd};slots:LIKE:\\[1-3,8-9\\]"
    verdict = judge(raw, constraints=constraints)
    assert verdict.accepted, verdict.explain()
    assert not judge(raw, constraints="disks:IS:{ssd,hdd}").accepted  # sorted, as Marathon writes a set


def test_hostname_is_a_field() -> None:
    assert judge(placed_offer(3), constraints="hostname:UNLIKE:agent3\\..*").rule == "constraints"
    assert judge(placed_offer(3), constraints="@hostname:LIKE:agent[0-9]\\.example\\.com").accepted
    view = ClusterView(
        desired_nodes=3,
        present_nodes=1,
        host_nodes=MappingProxyType({"h1": (1,)}),
        placement=MappingProxyType({"hostname": counts("h1")}),
    )
    verdict = judge(placed_offer(1, hostname="h1", agent_id="other"), view, constraints="hostname:UNIQUE")
    # agent_has_node (by hostname) declines first; the constraint's outcome is reported too.
    assert verdict.rule == "agent_has_node"
    assert [o.reason for o in verdict.failures if o.rule == "constraints"] == ["hostname:UNIQUE: h1 already has 1 node"]


def test_a_declined_offer_names_the_constraint_as_written_and_the_value() -> None:
    raw = placed_offer(1, attrs={"rack": "r7", "disk": "hdd"})
    verdict = judge(raw, constraints='[["rack", "UNLIKE", "r[7-9]"], ["disk", "IS", "ssd"]]')
    assert (verdict.accepted, verdict.rule) == (False, "constraints")
    assert verdict.reason == '["rack", "UNLIKE", "r[7-9]"]: r7 matches r[7-9]; ["disk", "IS", "ssd"]: hdd is not ssd'
    passing = judge(placed_offer(1, attrs={"rack": "r1"}), constraints="rack:UNLIKE:r[7-9];rack:MAX_PER:2")
    outcome = next(o for o in passing.outcomes if o.rule == "constraints")
    assert outcome.reason == "rack:UNLIKE:r[7-9]: r1 does not match r[7-9]; rack:MAX_PER:2: r1 has 0 nodes, at most 2"


# --- nodes per agent ------------------------------------------------------------------------------


def _with_nodes_on(agent: str, host: str, *ids: int) -> ClusterView:
    return ClusterView(
        desired_nodes=5,
        present_nodes=len(ids),
        agent_nodes=MappingProxyType({agent: ids}),
        host_nodes=MappingProxyType({host: ids}),
    )


def test_max_nodes_per_agent_relaxes_one_node_per_agent() -> None:
    raw = placed_offer(1)
    one = _with_nodes_on("agent-1-S0", "agent1.example.com", 1)
    two = _with_nodes_on("agent-1-S0", "agent1.example.com", 1, 4)
    ext = {"externalVolumeDriver": "rexray"}
    assert judge(raw, one, **ext).reason == "this agent already runs node 1 of cluster mesos-ha (one node per agent)"
    passed = judge(raw, one, maxNodesPerAgent="2", **ext)
    assert passed.accepted
    assert passed.outcomes[1].reason == "this agent runs node 1 of cluster mesos-ha, fewer than 2 (--maxNodesPerAgent)"
    verdict = judge(raw, two, maxNodesPerAgent="2", **ext)
    assert (verdict.rule, verdict.reason) == (
        "agent_has_node",
        "this agent already runs nodes 1, 4 of cluster mesos-ha (at most 2, --maxNodesPerAgent)",
    )
    # A host that re-registered under a new agent id still counts.
    moved = ClusterView(desired_nodes=5, present_nodes=2, host_nodes=MappingProxyType({"agent1.example.com": (1, 4)}))
    assert judge(placed_offer(1, agent_id="new-S1"), moved, maxNodesPerAgent="2", **ext).rule == "agent_has_node"
    # Local disk: nodes on one agent would share the data directory; the configuration refuses
    # --maxNodesPerAgent above 1 there (tests/config/test_cross_flag_rules.py).


def test_a_cycle_places_up_to_n_nodes_on_one_agent() -> None:
    cfg = config(externalVolumeDriver="rexray", maxNodesPerAgent="2", elasticsearchNodes="5")
    raws = [placed_offer(i, agent_id="agent-1-S0", hostname="agent1.example.com") for i in range(1, 4)]
    plan = cycle(ClusterState(desired_nodes=5), raws, cfg)
    assert [launch.record.node_id for launch in plan.launches] == [1, 2]
    assert [d.rule for d in plan.declines] == ["agent_has_node"]


# --- the storage attribute ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "flag", "accepted", "reason"),
    [
        ({"rexray": "true"}, "rexray:true", True, "the agent has rexray=true (--externalVolumeAttribute rexray:true)"),
        (
            {"rexray": "false"},
            "rexray:true",
            False,
            "the agent has rexray=false: it cannot attach rexray volumes (--externalVolumeAttribute rexray:true)",
        ),
        (
            {},
            "rexray:true",
            False,
            "the agent has no attribute rexray: it cannot attach rexray volumes",
        ),
        ({"scaleio": "row8~pool-hdd"}, "scaleio:row8~pool-hdd", True, "the agent has scaleio=row8~pool-hdd"),
        ({"rexray": "yes"}, "rexray", True, "the agent has rexray=yes (--externalVolumeAttribute rexray)"),
        ({}, "rexray", False, "the agent has no attribute rexray"),
    ],
)
def test_agents_without_the_storage_attribute_never_get_a_node(
    attrs: dict[str, Any], flag: str, accepted: bool, reason: str
) -> None:
    verdict = judge(placed_offer(1, attrs=attrs), externalVolumeDriver="rexray", externalVolumeAttribute=flag)
    outcome = next(o for o in verdict.outcomes if o.rule == "volume_attribute")
    assert (verdict.accepted, outcome.passed) == (accepted, accepted)
    assert reason in outcome.reason
    if not accepted:
        assert verdict.rule == "volume_attribute"


# --- zones ----------------------------------------------------------------------------------------


def test_zone_spread_applies_once_zones_are_known() -> None:
    assert "zone_spread" not in [o.rule for o in judge(placed_offer(1, zone="a")).outcomes]
    view = ClusterView(desired_nodes=4, present_nodes=2, zones=counts("a", "b"))
    assert judge(placed_offer(1, zone="a"), view).accepted
    view = ClusterView(desired_nodes=4, present_nodes=3, zones=counts("a", "b", "a"))
    verdict = judge(placed_offer(1, zone="a"), view)
    assert (verdict.rule, verdict.reason) == ("zone_spread", "zone a has 2 nodes, b only 1")
    # An agent without a zone gets no node while zones are in use (awareness would give it no shard).
    verdict = judge(placed_offer(1), view)
    assert verdict.rule == "zone_spread" and "the agent has no zone (fault domain)" in verdict.reason
    # --zoneAttribute names the attribute that holds the zone.
    verdict = judge(placed_offer(1, attrs={"dc": "b"}, zone="a"), view, zoneAttribute="dc")
    assert verdict.accepted, verdict.explain()


def test_a_cycle_spreads_nodes_over_the_zones_its_offers_bring() -> None:
    raws = [placed_offer(i, zone="a") for i in range(1, 5)] + [placed_offer(i, zone="b") for i in range(5, 7)]
    plan = cycle(ClusterState(desired_nodes=4), raws, config(elasticsearchNodes="4"))
    assert Counter(launch.record.zone for launch in plan.launches) == {"a": 2, "b": 2}
    # One cycle: offers declined while another zone had fewer nodes get a second look.
    assert sorted(launch.offer.id for launch in plan.launches) == ["offer-1", "offer-2", "offer-5", "offer-6"]
    declined = {d.offer.id: d.reason for d in plan.declines}
    assert declined["offer-3"] == "cluster size fulfilled: 4 of 4 nodes present"


def test_spreading_never_waits_for_a_zone_whose_agents_cannot_host_a_node() -> None:
    small = placed_offer(9, zone="c", mem=64)
    raws = [small] + [placed_offer(i, zone="a") for i in range(1, 4)]
    plan = cycle(ClusterState(desired_nodes=3), raws, config())
    assert len(plan.launches) == 3
    small_decline = next(d for d in plan.declines if d.offer.id == "offer-9")
    # Judged last (it could never host a node), so the full cluster declines it first; mem fails too.
    assert small_decline.rule == "cluster_full"
    assert "mem" in [o.rule for o in small_decline.verdict.failures]


def test_an_offer_that_cannot_host_takes_no_turn_in_the_spread() -> None:
    """Offers from zone a that a constraint refuses must not push zone b's offers behind them."""
    raws = [placed_offer(1, zone="a", attrs={"rack": "r1"}), placed_offer(2, zone="a", attrs={"rack": "r1"})]
    raws += [placed_offer(3, zone="b", attrs={"rack": "r2"}), placed_offer(4, zone="a", attrs={"rack": "r2"})]
    raws += [placed_offer(5, zone="b", attrs={"rack": "r2"}), placed_offer(6, zone="a", attrs={"rack": "r2"})]
    plan = cycle(ClusterState(desired_nodes=4), raws, config(constraints="rack:UNLIKE:r1"))
    assert sorted(launch.offer.id for launch in plan.launches) == ["offer-3", "offer-4", "offer-5", "offer-6"]


@settings(deadline=None, database=None, max_examples=60)
@given(
    values=st.integers(2, 4),
    nodes=st.integers(1, 9),
    expected=st.sampled_from(["", ":2", ":3"]),
    order=st.randoms(use_true_random=False),
)
def test_group_by_never_lets_counts_differ_by_more_than_one(values: int, nodes: int, expected: str, order: Any) -> None:
    """Offers from every value in every cycle, in any order: counts per value stay within one."""
    cfg = config(
        elasticsearchNodes=str(nodes),
        externalVolumeDriver="rexray",
        maxNodesPerAgent="9",
        constraints=f"rack:GROUP_BY{expected}",
    )
    state = ClusterState(desired_nodes=nodes)
    for round_ in range(nodes + 1):
        raws = [
            placed_offer(10 * round_ + v, attrs={"rack": f"r{v}"}, agent_id=f"a{v}", hostname=f"h{v}")
            for v in range(values)
        ]
        order.shuffle(raws)
        state = cycle(state, raws, cfg).state
        per_value = Counter(r.attributes["rack"] for r in state.nodes.values())
        assert max(per_value.values()) - min(per_value.get(f"r{v}", 0) for v in range(values)) <= 1, per_value
    want = int(expected[1:] or 0)
    # GROUP_BY:n with fewer values offered waits for the n-th after one node per value (Marathon's docs).
    assert len(state.nodes) == (nodes if want <= values else min(nodes, values))


def test_zonal_volumes_bring_a_replacement_back_to_its_zone() -> None:
    cfg = config(externalVolumeDriver="rexray", elasticsearchNodes="3")
    first = cycle(
        ClusterState(desired_nodes=3),
        [placed_offer(1, zone="a"), placed_offer(2, zone="b"), placed_offer(3, zone="c")],
        cfg,
    )
    assert {launch.record.node_id: launch.record.zone for launch in first.launches} == {1: "a", 2: "b", 3: "c"}
    # Node 2's task is gone; its volumes stay in zone b.
    nodes = dict(first.state.nodes)
    del nodes[2]
    state = first.state.with_nodes(nodes)
    assert state.volumes[2].last_zone == "b"
    elsewhere = cycle(state, [placed_offer(7, zone="a")], cfg)
    assert elsewhere.launches == ()
    decline = elsewhere.declines[0]
    assert decline.rule in ("agent_has_node", "zone_spread", "volume_zone")
    outcome = next(o for o in decline.outcomes if o.rule == "volume_zone")
    assert outcome.reason == "node 2's volumes are in zone b, not a"
    back = cycle(state, [placed_offer(7, zone="a"), placed_offer(8, zone="b")], cfg)
    assert [(launch.record.node_id, launch.record.zone) for launch in back.launches] == [(2, "b")]
    assert next(o for o in back.launches[0].verdict.outcomes if o.rule == "zone_spread").reason == (
        "node 2 returns to zone b, where its volumes are"
    )
