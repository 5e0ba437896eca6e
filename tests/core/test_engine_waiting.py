"""Issue 15: scaling past what the agents can hold says which node waits and why no offer fits.

Five nodes on four agents: node 5 waits; the engine names it, counts the declines since it started
waiting by first failing rule, puts that in the progress line, and logs it once per change of
(waiting ids, top reason), not per offer. Also: a demo node's "Elasticsearch answers on …" is
said as "demo node answers on …" in the events.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from es_framework.contract import NodeReport
from es_framework.core.engine_stats import (
    DeclineCounts,
    Waiting,
    agents_full,
    missing_ids,
    node_message,
    runs_demo_node,
)
from es_framework.core.node_state import ClusterState
from tests.core.test_engine import launched, make, status
from tests.harness.builders import config, offer

WAITING_LINE = "node 5 waiting for an offer"


def waiting_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.getMessage().startswith(WAITING_LINE)
    ]


def test_the_node_beyond_the_agents_waits_with_its_decline_reasons(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.core.engine")
    engine, _, clock = make(elasticsearchNodes="5")
    tasks = launched(engine, 1, 2, 3, 4)
    assert sorted(tasks) == [1, 2, 3, 4]
    waiting = engine.declines.waiting
    assert waiting is not None and (waiting.node_ids, waiting.missing, dict(waiting.reasons)) == ((5,), 1, {})
    started = waiting.since

    # The four agents offer again and again: each is declined, node 5 still waits.
    clock.now += 5
    for _ in range(3):
        engine.on_offers([offer(n) for n in (1, 2, 3, 4)])
    waiting = engine.declines.waiting
    assert waiting is not None and waiting.node_ids == (5,) and waiting.since == started
    assert dict(waiting.reasons) == {"agent_has_node": 12}
    assert waiting.top == "agent_has_node"
    assert "agent_has_node 12" in waiting.sentence()
    # Logged when node 5 started waiting, and when its top reason became known: not per offer.
    assert len(waiting_lines(caplog)) == 2
    assert "agent_has_node 4 (last: this agent already runs node 4" in waiting_lines(caplog)[1]

    # The progress line names it, with the reasons by count.
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("1/5 nodes running")]
    assert progress and progress[-1].endswith(
        "node 5 waiting for an offer: declined offers by first failing rule: agent_has_node 12 (last: "
        + waiting.last_reasons["agent_has_node"]
        + ")"
    )

    # A small agent declined for mem: counted, but the top reason is the same: no new line.
    engine.on_offers([offer(5, mem=512)])
    waiting = engine.declines.waiting
    assert waiting is not None and dict(waiting.reasons) == {"agent_has_node": 12, "mem": 1}
    assert len(waiting_lines(caplog)) == 2

    # Scaling back to what the agents hold: nobody waits any more.
    engine.set_desired_nodes(4, copies_needed=None)
    assert engine.declines.waiting is None


def test_a_new_set_of_missing_ids_counts_afresh() -> None:
    engine, _, clock = make(elasticsearchNodes="5")
    launched(engine, 1, 2, 3, 4)
    engine.on_offers([offer(1)])
    assert engine.declines.waiting is not None and engine.declines.waiting.reasons
    clock.now += 10
    engine.set_desired_nodes(7, copies_needed=None)
    waiting = engine.declines.waiting
    full = "no offer fits: all 4 known agent(s) run 1 node(s) each already (--maxNodesPerAgent 1)"
    assert waiting == Waiting((5, 6, 7), 3, clock.now, no_offer=full + "; add agents or raise --maxNodesPerAgent")
    assert waiting.sentence().startswith("nodes 5, 6, 7 waiting for an offer: " + full)


def test_missing_ids_are_bounded_and_cheap_when_none_is_missing() -> None:
    assert missing_ids(ClusterState(desired_nodes=0)) == ()
    assert missing_ids(ClusterState(desired_nodes=10_000)) == tuple(range(1, 21))
    counts = DeclineCounts()
    assert counts.track(ClusterState(desired_nodes=30), 1.0) is not None
    assert counts.waiting is not None and counts.waiting.ids_text().endswith("19, 20 and 10 more")
    assert counts.waiting.why() == "no offer has come since"
    # The same state again says nothing new.
    counts.add("cpus", "not enough cpus")
    assert counts.track(ClusterState(desired_nodes=0), 2.0) is None and counts.waiting is None


def test_no_offer_comes_when_every_agent_holds_its_node(caplog: pytest.LogCaptureFixture) -> None:
    # Local mode: each agent has room for one node, so a busy agent offers nothing at all.
    caplog.set_level(logging.INFO, logger="es_framework.core.engine")
    engine, _, _ = make(elasticsearchNodes="2")
    launched(engine, 1, 2)
    engine.set_desired_nodes(3, copies_needed=None)
    assert (
        "node 3 waiting for an offer: no offer fits: all 2 known agent(s) run 1 node(s) each already "
        "(--maxNodesPerAgent 1); add agents or raise --maxNodesPerAgent"
    ) in caplog.text
    # A third agent that could take it, but has not offered yet: no such claim.
    assert agents_full(engine.state, ["agent-1-S0", "agent-2-S0", "agent-3-S0"], 1) is None
    assert agents_full(engine.state, [], 2) is None


def test_demo_nodes_say_demo_node_in_their_events() -> None:
    engine, _, _ = make(mesosMaster="local", elasticsearchNodes="1")
    tasks = launched(engine, 1)
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0", message="Elasticsearch answers on 127.0.0.1:31000"))
    said = [e.message for e in engine.events if e.node_id == 1]
    assert any(m.endswith("— demo node answers on 127.0.0.1:31000") for m in said), said
    assert not any("Elasticsearch answers on" in m for m in said)


def test_which_nodes_run_the_demo_node(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "elasticsearch").write_text("")
    assert runs_demo_node(config(mesosMaster="local"))
    assert not runs_demo_node(config(mesosMaster="local", elasticsearchBinaryUrl=str(tmp_path)))
    assert not runs_demo_node(config())
    assert runs_demo_node(config(), NodeReport(version="8.x-demo"))
    assert not runs_demo_node(config(), NodeReport(version="8.13.4"))
    assert node_message("Elasticsearch answers on h:1", True) == "demo node answers on h:1"
    assert node_message("Elasticsearch answers on h:1", False) == "Elasticsearch answers on h:1"
