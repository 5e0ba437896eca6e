"""The cluster monitor carries out the operator's queued replace with local disk (shutdown type
``remove``) against a scripted Elasticsearch and the real engine: admitted by the planner, excluded
from allocation (the operator's own exclusions kept), stopped only once it holds no shard, its id free
to launch again, and its name out of the exclusion list once the replace is over."""

from __future__ import annotations

from es_framework.core.disruption_ledger import Kind, ShutdownType
from es_framework.core.disruption_seen import Observation as PlannerView
from es_framework.core.engine_commands import PlannerRound
from es_framework.core.mesos_calls import Kill
from es_framework.shell.monitor import ClusterMonitor
from tests.core.test_engine import FW, status
from tests.core.test_engine_maintenance import three_running
from tests.shell.test_monitor_maintenance import DrainingElasticsearch
from tests.shell.test_monitor_restarts import name


def test_a_queued_local_disk_replace_is_drained_by_exclusion_then_stopped() -> None:
    engine, _, clock, tasks = three_running()
    es = DrainingElasticsearch()
    killed: list[str] = []

    def plan(seen: PlannerView, adopt: frozenset[int], ready: frozenset[int]) -> PlannerRound:
        result, calls = engine.plan_disruptions(seen, adopt=adopt, ready=ready)
        for call in calls:
            assert isinstance(call, Kill)
            killed.append(call.task_id)
            es.joined.discard(3)
            es.shards.pop(3, None)
            engine.on_updates([status(call.task_id, "TASK_KILLED", "agent-3-S0")])
        return result

    monitor = ClusterMonitor(
        engine.config, lambda: engine.state, lambda n: None, clock=clock, client_factory=es.client, plan=plan
    )
    engine.request_replace(3)
    monitor.check_once()  # admitted (remove), excluded
    entry = engine.state.disruptions[3]
    assert (entry.kind, entry.shutdown) == (Kind.REPLACE, ShutdownType.REMOVE) and entry.started_at is not None
    assert es.excluded == ("someone-else", name(3))
    monitor.check_once()  # two shards still there: not stopped
    assert killed == [] and engine.state.nodes[3].stopping is None
    es.shards = {1: 2, 2: 2, 3: 0}  # Elasticsearch moved them away
    monitor.check_once()  # empty: stopped, its id free to launch again
    assert killed == [tasks[3]] and 3 not in engine.state.nodes
    monitor.check_once()  # the replace is over: the name leaves the exclusion list
    assert engine.state.disruptions == {}
    assert list(es.excluded) == ["someone-else"]
    assert [c for c in es.calls if c[0] == "exclude"] == [
        ("exclude", f"someone-else,{FW}3"),
        ("exclude", "someone-else"),
    ]
