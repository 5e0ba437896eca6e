from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from es_framework.config import Config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.evaluation import EvaluationContext, RuleOutcome, Verdict
from es_framework.core.failures import Backoff, FailureKind
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState, record_launch
from es_framework.core.offers import Offer, offers_from_document, parse_offer
from es_framework.core.plan import (
    AGENT_FULL_REFUSE_S,
    LONG_REFUSE_S,
    MAX_LAUNCHES_PER_CYCLE,
    SHORT_REFUSE_S,
    plan_offer_cycle,
    plan_offers,
    surplus_refuse_seconds,
)
from identity import node_id_from_task_id, task_id_for
from strategies import EXTERNAL, strategy_for
from tests.harness.builders import EXAMPLE_EXTERNAL_DECLINES, EXAMPLE_OFFERS, config, offer


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{next(numbers):032x}"


# --- the dry run ------------------------------------------------------------------------------------


def test_example_offers_external_strategy() -> None:
    raw = offers_from_document(json.loads(EXAMPLE_OFFERS.read_text()))
    steps = plan_offers(raw, cfg := config(externalVolumeDriver="rexray"), strategy=strategy_for(cfg))
    placed = [(s.offer_id, s.node_id, s.volumes) for s in steps if s.accepted]
    assert placed == [
        ("offer-1", 1, ("elasticsearch1config", "elasticsearch1data")),
        ("offer-3", 2, ("elasticsearch2config", "elasticsearch2data")),
        ("offer-6", 3, ("elasticsearch3config", "elasticsearch3data")),
    ]
    assert {s.offer_id: s.rule for s in steps if not s.accepted} == EXAMPLE_EXTERNAL_DECLINES
    for step in steps:
        if step.task_info is not None:
            assert node_id_from_task_id(step.task_info["task_id"]["value"], "elasticsearch") == step.node_id


def test_example_offers_normal_strategy_checks_disk() -> None:
    raw = offers_from_document(json.loads(EXAMPLE_OFFERS.read_text()))
    steps = plan_offers(raw, cfg := config(), strategy=strategy_for(cfg))
    assert [s.node_id for s in steps if s.node_id] == [1, 2, 3]
    assert {s.offer_id: s.rule for s in steps if not s.accepted}["offer-6"] == "disk"
    assert all(s.volumes is None for s in steps)


def test_taken_ids_are_skipped_and_count_as_present() -> None:
    steps = plan_offers(
        [offer(i) for i in range(1, 5)],
        config(elasticsearchNodes="5"),
        taken_ids=[1, 3],
        strategy=strategy_for(config(elasticsearchNodes="5")),
    )
    assert [s.node_id for s in steps] == [2, 4, 5, None]
    assert steps[3].rule == "cluster_full"
    task_ids = {s.task_info["task_id"]["value"] for s in steps if s.task_info}
    assert len(task_ids) == 3


def test_malformed_offer_is_reported_and_the_rest_still_judged() -> None:
    steps = plan_offers([{"id": {"value": "bad"}}, offer(2)], cfg := config(), strategy=strategy_for(cfg))
    assert steps[0].rule == "malformed" and "agent_id" in steps[0].reason
    assert steps[0].node_id is None and not steps[0].accepted
    assert steps[1].node_id == 1


# --- the scheduler's offer cycle ---------------------------------------------------------------------


def test_cycle_records_each_launch_before_it_is_sent() -> None:
    cfg = config(externalVolumeDriver="rexray")
    offers = [parse_offer(offer(i)) for i in range(1, 5)]
    plan = plan_offer_cycle(
        ClusterState(desired_nodes=3), offers, cfg, now=100.0, new_launch_id=counter_ids(), strategy=strategy_for(cfg)
    )
    assert [launch.record.node_id for launch in plan.launches] == [1, 2, 3]
    for launch in plan.launches:
        record = plan.state.nodes[launch.record.node_id]
        assert record == launch.record
        assert record.state is TaskState.LAUNCHING
        assert record.task_id == launch.task_info["task_id"]["value"]
        assert record.agent_id == launch.offer.agent_id == launch.task_info["agent_id"]["value"]
        assert (record.http_port, record.transport_port) == (31000, 31001)
        assert record.volumes == (f"elasticsearch{record.node_id}config", f"elasticsearch{record.node_id}data")
        assert record.updated_at == 100.0
    assert [(d.offer.id, d.rule, d.refuse_seconds) for d in plan.declines] == [
        ("offer-4", "cluster_full", LONG_REFUSE_S)
    ]
    assert not plan.wants_offers


def test_cycle_fills_the_lowest_free_id_and_sees_agents_in_use() -> None:
    state = plan_offer_cycle(
        ClusterState(desired_nodes=3), [parse_offer(offer(1))], cfg := config(), now=0, strategy=strategy_for(cfg)
    ).state
    # Two offers from the agent that already runs node 1, and one from a fresh agent.
    offers = [parse_offer(offer(1)), parse_offer(offer(1, agent_id="agent-1-S0")), parse_offer(offer(2))]
    plan = plan_offer_cycle(state, offers, cfg := config(), now=0, strategy=strategy_for(cfg))
    assert [launch.record.node_id for launch in plan.launches] == [2]
    # Its leftovers are of no use until node 1 leaves (which frees resources Mesos then offers anyway).
    assert [(d.rule, d.refuse_seconds) for d in plan.declines] == [
        ("agent_has_node", AGENT_FULL_REFUSE_S),
        ("agent_has_node", AGENT_FULL_REFUSE_S),
    ]
    assert plan.wants_offers


def test_seed_hosts_reach_later_launches_in_the_same_cycle() -> None:
    plan = plan_offer_cycle(
        ClusterState(desired_nodes=3),
        [parse_offer(offer(i)) for i in (1, 2)],
        config(),
        now=0,
        strategy=strategy_for(config()),
    )
    env = {v["name"]: v["value"] for v in plan.launches[1].task_info["executor"]["command"]["environment"]["variables"]}
    assert env["ELASTICSEARCH_SEED_HOSTS"] == "agent1.example.com:31001"


def test_a_failing_node_backs_off_and_nothing_else_takes_its_place() -> None:
    state = ClusterState(desired_nodes=3)
    for node_id in (1, 3):
        state = record_launch(state, _record(node_id))
    # Node 2 is missing; it failed twice just now, so the next try is 10 s away.
    backoff = Backoff().failed(2, FailureKind.VOLUME, "503", now=0).failed(2, FailureKind.VOLUME, "503", now=0)
    plan = plan_offer_cycle(
        state, [parse_offer(offer(7))], cfg := config(), now=4.0, backoff=backoff, strategy=strategy_for(cfg)
    )
    assert plan.launches == ()
    (decline,) = plan.declines
    assert decline.rule == "backoff"
    assert "node 2 failed 2 time(s) in a row (volume" in decline.reason and "next launch in 6s" in decline.reason
    assert decline.refuse_seconds == 6.0
    # The back-off is a rule of the verdict like the others: every other rule passed.
    assert decline.verdict.failures == (RuleOutcome("backoff", False, decline.reason),)
    assert decline.outcomes[-2] == RuleOutcome("pinned", True, "node 2 would launch here")
    assert sorted(plan.state.nodes) == [1, 3]
    later = plan_offer_cycle(
        state, [parse_offer(offer(7))], cfg := config(), now=10.0, backoff=backoff, strategy=strategy_for(cfg)
    )
    assert [launch.record.node_id for launch in later.launches] == [2]


def test_recorded_launch_is_a_present_node() -> None:
    state = plan_offer_cycle(
        ClusterState(desired_nodes=1), [parse_offer(offer(1))], cfg := config(), now=0, strategy=strategy_for(cfg)
    ).state
    again = plan_offer_cycle(state, [parse_offer(offer(2))], cfg := config(), now=1, strategy=strategy_for(cfg))
    assert again.launches == () and again.declines[0].rule == "cluster_full"


def test_cycle_does_not_mutate_its_input_state() -> None:
    state = record_launch(ClusterState(desired_nodes=3), _record(5))
    before = dict(state.nodes)
    plan = plan_offer_cycle(state, [parse_offer(offer(1))], cfg := config(), now=0, strategy=strategy_for(cfg))
    assert dict(state.nodes) == before
    assert sorted(plan.state.nodes) == [1, 5]


def _record(node_id: int) -> NodeRecord:
    return NodeRecord(node_id, task_id_for("elasticsearch", node_id, "a" * 32), f"agent-{node_id}", f"h{node_id}", 1, 2)


def test_every_declined_and_accepted_offer_carries_every_rules_outcome() -> None:
    raw = offers_from_document(json.loads(EXAMPLE_OFFERS.read_text()))
    cfg = config(externalVolumeDriver="rexray")
    steps = {s.offer_id: s for s in plan_offers(raw, cfg, strategy=strategy_for(cfg))}
    # The placement rules apply only with constraints, a storage attribute or zones, agent_check only
    # while an agent is blocked: none here.
    placement = {"volume_attribute", "constraints", "zone_spread", "volume_zone", "agent_check"}
    names = [rule.name for rule in EXTERNAL.rules if rule.name not in placement]
    for step in steps.values():
        assert [o.rule for o in step.outcomes] == names
        assert step.accepted == all(o.passed for o in step.outcomes)
    offer_2 = steps["offer-2"]
    assert [o.rule for o in offer_2.outcomes if not o.passed] == ["mem"]
    assert offer_2.outcomes[names.index("mem")].reason == offer_2.reason
    # A malformed offer was judged by no rule.
    cfg = config()
    assert plan_offers([{"id": {"value": "bad"}}], cfg, strategy=strategy_for(cfg))[0].outcomes == ()


def test_the_strategy_can_be_handed_in() -> None:
    class DeclineAll:
        name = "none"

        def evaluate(self, offer: Offer, view: ClusterView, config: Config, context: EvaluationContext) -> Verdict:
            outcome = RuleOutcome("closed", False, f"closed for node {context.node_id}")
            return Verdict(offer.id, offer.agent_id, offer.hostname, False, "closed", outcome.reason, (outcome,))

        def can_host(self, offer: Offer, config: Config) -> bool:
            return False

    plan = plan_offer_cycle(
        ClusterState(desired_nodes=3), [parse_offer(offer(1))], config(), now=0, strategy=DeclineAll()
    )
    assert plan.launches == ()
    assert [(d.rule, d.reason, d.refuse_seconds) for d in plan.declines] == [
        ("closed", "closed for node 1", SHORT_REFUSE_S)
    ]
    steps = plan_offers([offer(1)], config(), strategy=DeclineAll())
    assert (steps[0].rule, steps[0].accepted) == ("closed", False)


def test_one_offer_cycle_launches_at_most_the_cycle_limit() -> None:
    """The launches of one cycle go into one state write that must fit one ZooKeeper request."""
    cfg = config(externalVolumeDriver="rexray", elasticsearchNodes=str(MAX_LAUNCHES_PER_CYCLE + 5))
    offers = [parse_offer(offer(n)) for n in range(1, MAX_LAUNCHES_PER_CYCLE + 6)]
    plan = plan_offer_cycle(
        ClusterState(desired_nodes=MAX_LAUNCHES_PER_CYCLE + 5), offers, cfg, now=0, strategy=EXTERNAL
    )
    assert len(plan.launches) == MAX_LAUNCHES_PER_CYCLE
    assert [d.rule for d in plan.declines] == ["cycle_limit"] * 5
    assert {d.refuse_seconds for d in plan.declines} == {SHORT_REFUSE_S}  # the first surplus batch
    # The next cycle launches the rest.
    again = plan_offer_cycle(plan.state, offers[-5:], cfg, now=1, strategy=EXTERNAL)
    assert len(again.launches) == 5


def test_the_surplus_beyond_the_cycle_limit_comes_back_in_batches() -> None:
    """10,000 good offers in one cycle: 300 launch, the rest return 300 per SHORT_REFUSE_S (so later
    cycles meet a few hundred offers, not all of them again), never later than LONG_REFUSE_S."""
    n = 3 * MAX_LAUNCHES_PER_CYCLE + 10
    cfg = config(externalVolumeDriver="rexray", elasticsearchNodes=str(n))
    offers = [parse_offer(offer(i)) for i in range(1, n + 1)]
    plan = plan_offer_cycle(ClusterState(desired_nodes=n), offers, cfg, now=0, strategy=EXTERNAL)
    refuse = [d.refuse_seconds for d in plan.declines]
    assert len(plan.launches) == MAX_LAUNCHES_PER_CYCLE and len(refuse) == n - MAX_LAUNCHES_PER_CYCLE
    assert refuse == sorted(refuse)
    counts = {r: refuse.count(r) for r in refuse}
    assert counts == {
        SHORT_REFUSE_S: MAX_LAUNCHES_PER_CYCLE,
        2 * SHORT_REFUSE_S: MAX_LAUNCHES_PER_CYCLE,
        3 * SHORT_REFUSE_S: 10,
    }
    assert surplus_refuse_seconds(0) == SHORT_REFUSE_S
    assert surplus_refuse_seconds(10**6) == LONG_REFUSE_S
