"""The cluster monitor's maintenance moves against a scripted Elasticsearch and the real engine, with
local disk: the node on the agent under maintenance is excluded from allocation (the operator's own
exclusions kept), stopped only once it holds no shard, its id is free for another agent, the inverse
offer held meanwhile is accepted as its task ends, and its name leaves the exclusion list when the
move is over."""

from __future__ import annotations

from typing import Any

from es_framework.core.disruption_seen import Observation as PlannerView
from es_framework.core.engine_commands import PlannerRound
from es_framework.core.maintenance import REFUSE_S
from es_framework.core.mesos_calls import AnswerInverseOffers, Call, Kill
from es_framework.shell.monitor import ClusterMonitor
from tests.core.test_engine import FW, status
from tests.core.test_engine_maintenance import inverse_soon, three_running
from tests.shell.test_monitor_restarts import FakeClient, ShutdownElasticsearch, name


class DrainingElasticsearch(ShutdownElasticsearch):
    """Adds the allocation exclusion and a shard list: node ``n`` holds ``shards[n]`` copies."""

    def __init__(self) -> None:
        super().__init__()
        self.excluded: tuple[str, ...] = ("someone-else",)
        self.shards: dict[int, int] = {1: 1, 2: 1, 3: 2}

    def client(self, address: str, password: str | None) -> Any:
        return DrainingClient(self)


class DrainingClient(FakeClient):
    es: DrainingElasticsearch

    def shard_rows(self) -> Any:
        return [
            {"index": "books", "shard": str(n * 10 + k), "prirep": "p", "state": "STARTED", "node": name(n)}
            for n, count in sorted(self.es.shards.items())
            for k in range(count)
        ]

    def excluded_names(self) -> tuple[str, ...]:
        return self.es.excluded

    def set_excluded_names(self, names: tuple[str, ...]) -> None:
        self.es.calls.append(("exclude", ",".join(names)))
        self.es.excluded = names


def test_a_local_disk_node_is_drained_by_exclusion_then_stopped_and_its_name_released() -> None:
    engine, _, clock, tasks = three_running()
    es = DrainingElasticsearch()
    answered: list[Call] = []

    def plan(seen: PlannerView, adopt: frozenset[int], ready: frozenset[int]) -> PlannerRound:
        result, calls = engine.plan_disruptions(seen, adopt=adopt, ready=ready)
        for call in calls:
            assert isinstance(call, Kill)
            es.joined.discard(3)
            es.shards.pop(3, None)
            answered.extend(engine.on_updates([status(call.task_id, "TASK_KILLED", "agent-3-S0")]))
        return result

    monitor = ClusterMonitor(
        engine.config, lambda: engine.state, lambda n: None, clock=clock, client_factory=es.client, plan=plan
    )
    assert engine.on_inverse_offers([inverse_soon(21, "agent-3-S0", clock)]) == []  # held
    monitor.check_once()  # admitted (remove), excluded
    assert engine.state.disruptions[3].started_at is not None
    assert es.excluded == ("someone-else", name(3))
    monitor.check_once()  # two shards still there: not stopped
    assert 3 in engine.state.nodes and engine.state.nodes[3].stopping is None
    es.shards = {1: 2, 2: 2, 3: 0}  # Elasticsearch moved them away
    monitor.check_once()  # empty: stopped; its id is free for another agent
    assert 3 not in engine.state.nodes
    assert AnswerInverseOffers(("master-O21",), True, REFUSE_S) in answered
    monitor.check_once()  # the move is over: the name leaves the exclusion list
    assert engine.state.disruptions == {}
    assert list(es.excluded) == ["someone-else"]
    assert [c for c in es.calls if c[0] == "exclude"] == [
        ("exclude", f"someone-else,{FW}3"),
        ("exclude", "someone-else"),
    ]
    assert tasks[3] not in {r.task_id for r in engine.state.nodes.values()}
