"""The cluster monitor: health for the API, and draining leaving nodes, against a scripted Elasticsearch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from es_framework.core.drain import Observation
from es_framework.core.node_state import ClusterState
from es_framework.shell.es_client import ElasticsearchClient, ElasticsearchError
from es_framework.shell.monitor import ClusterMonitor
from tests.core.test_node_state import running
from tests.harness.builders import config


@dataclass
class FakeElasticsearch:
    """What a cluster answers; records what the monitor changed."""

    shards: dict[str, int] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    voting: tuple[str, ...] = ()
    unassigned: int = 0
    down: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def client(self, address: str, password: str | None) -> ElasticsearchClient:
        self.asked.append(address)
        return FakeClient(self)  # type: ignore[return-value]


class FakeClient:
    def __init__(self, es: FakeElasticsearch) -> None:
        self.es = es

    def _up(self) -> None:
        if self.es.down:
            raise ElasticsearchError("connection refused")

    def health(self) -> dict[str, Any]:
        self._up()
        status = "yellow" if self.es.unassigned else "green"
        return {"status": status, "number_of_nodes": 3, "active_shards": 6, "unassigned_shards": self.es.unassigned}

    def observe(self) -> Observation:
        self._up()
        return Observation(dict(self.es.shards), self.es.unassigned, 0, 0, self.es.excluded, self.es.voting)

    def set_excluded_names(self, names: tuple[str, ...]) -> None:
        self.es.calls.append(("exclude", names))
        self.es.excluded = names

    def add_voting_exclusions(self, names: tuple[str, ...]) -> None:
        self.es.calls.append(("vote", names))
        self.es.voting = (*self.es.voting, *names)

    def clear_voting_exclusions(self) -> None:
        self.es.calls.append(("clear", ()))
        self.es.voting = ()

    def allocation_explain(self) -> str:
        return "the shard cannot be allocated to the same node on which a copy of the shard already exists"

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def monitor(state: list[ClusterState], es: FakeElasticsearch, stopped: list[int], clock: Clock) -> ClusterMonitor:
    return ClusterMonitor(config(), lambda: state[0], stopped.append, clock=clock, client_factory=es.client)


def test_health_comes_from_a_node_that_stays() -> None:
    es, stopped, clock = FakeElasticsearch(), list[int](), Clock()
    state = [replace(running(1, 2, 3), desired_nodes=2)]
    mon = monitor(state, es, stopped, clock)
    mon.check_once()
    assert mon.view.health == "green" and "3 nodes" in mon.view.health_detail
    assert es.asked[0] == "host1:31000"
    es.down = True
    mon.check_once()
    assert mon.view.health == "unknown" and "connection refused" in mon.view.health_detail


def test_no_running_node_no_answer() -> None:
    mon = monitor([ClusterState(desired_nodes=3)], FakeElasticsearch(), [], Clock())
    assert mon.check_once() is False
    assert mon.view.health == "unknown" and mon.view.health_detail == "no running node to ask"


def test_a_drain_excludes_waits_stops_and_cleans_up() -> None:
    es, stopped, clock = FakeElasticsearch(shards={"elasticsearch1": 2, "elasticsearch3": 2}), list[int](), Clock()
    state = [replace(running(1, 2, 3), desired_nodes=2)]
    mon = monitor(state, es, stopped, clock)
    assert mon.check_once() is True
    assert ("exclude", ("elasticsearch3",)) in es.calls and ("vote", ("elasticsearch3",)) in es.calls
    assert stopped == [] and mon.view.drain[0].shards_left == 2 and mon.view.drain[0].status == "draining"
    # Shards moved away, but one is unassigned elsewhere: still not stopped.
    es.shards, es.unassigned = {"elasticsearch1": 4}, 1
    mon.check_once()
    assert stopped == [] and mon.view.drain[0].status == "waiting"
    es.unassigned = 0
    mon.check_once()
    assert stopped == [3]
    # The node is gone from the state: the framework's names leave the lists.
    state[0] = replace(state[0], nodes={i: r for i, r in state[0].nodes.items() if i != 3})
    assert mon.check_once() is False
    assert es.excluded == () and ("clear", ()) in es.calls and mon.view.drain == ()
    calls = len(es.calls)
    mon.check_once()
    assert len(es.calls) == calls  # nothing more to clean


def test_a_drain_without_progress_is_reported_stalled_with_the_reason() -> None:
    es, stopped, clock = FakeElasticsearch(shards={"elasticsearch3": 1}), list[int](), Clock()
    mon = monitor([replace(running(1, 2, 3), desired_nodes=2)], es, stopped, clock)
    mon.check_once()
    clock.now += 61
    mon.check_once()
    (drain,) = mon.view.drain
    assert drain.status == "stalled" and "same node" in drain.reason and "no progress for 61s" in drain.reason


def test_a_scheduler_that_does_not_lead_changes_nothing_in_elasticsearch() -> None:
    es, stopped, clock = FakeElasticsearch(shards={"elasticsearch3": 2}), list[int](), Clock()
    leading = [False]
    state = [replace(running(1, 2, 3), desired_nodes=2)]
    mon = ClusterMonitor(
        config(), lambda: state[0], stopped.append, clock=clock, client_factory=es.client, may_act=lambda: leading[0]
    )
    mon.check_once()
    # Health is still read, but no exclusion is set and nothing is stopped from a state that may be stale.
    assert mon.view.health == "green" and es.calls == [] and stopped == []
    leading[0] = True
    mon.check_once()
    assert ("exclude", ("elasticsearch3",)) in es.calls
