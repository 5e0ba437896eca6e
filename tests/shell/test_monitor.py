"""The cluster monitor: health for the API, and draining leaving nodes one at a time through the
disruption planner (the real engine, its ledger persisted in a memory store), against a scripted
Elasticsearch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from es_framework.core.disruption import Kind
from es_framework.core.disruption_seen import Observation as PlannerView
from es_framework.core.engine import Engine
from es_framework.core.engine_commands import PlannerRound
from es_framework.core.node_state import ClusterState
from es_framework.core.state_document import state_from_json
from es_framework.shell.es_client import ElasticsearchError
from es_framework.shell.monitor import ClusterMonitor, MonitorClient
from tests.core.test_engine import FW, MemoryStore, launched, make, status
from tests.core.test_node_state import running
from tests.harness.builders import config


def name(i: int) -> str:
    return f"{FW}{i}"


@dataclass
class FakeElasticsearch:
    """What a cluster answers; records what the monitor changed."""

    shards: dict[str, int] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    voting: tuple[str, ...] = ()
    unassigned: int = 0
    down: bool = False
    #: Break one answer: "health" (no relocating count), "shards" (not a list), "nodes" (an error).
    broken: str | None = None
    joined: tuple[str, ...] = tuple(name(i) for i in range(1, 10))
    calls: list[tuple[str, Any]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    #: Every exclusion list set, in order.
    exclusions_set: list[tuple[str, ...]] = field(default_factory=list)
    #: Called before each change, e.g. to check the ledger is already stored.
    before_change: Any = None

    def client(self, address: str, password: str | None) -> MonitorClient:
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
        answer = {
            "status": "yellow" if self.es.unassigned else "green",
            "number_of_nodes": 3,
            "active_shards": 6,
            "unassigned_shards": self.es.unassigned,
            "relocating_shards": 0,
            "initializing_shards": 0,
        }
        if self.es.broken == "health":
            del answer["relocating_shards"]
        return answer

    def shard_rows(self) -> Any:
        self._up()
        if self.es.broken == "shards":
            return {"error": "not a list"}
        rows: list[dict[str, str | None]] = [
            {"index": f"i-{node}", "shard": str(k), "prirep": "p", "state": "STARTED", "node": node}
            for node, count in self.es.shards.items()
            for k in range(count)
        ]
        rows += [
            {"index": "u", "shard": str(k), "prirep": "r", "state": "UNASSIGNED", "node": None}
            for k in range(self.es.unassigned)
        ]
        return rows

    def node_rows(self) -> Any:
        self._up()
        if self.es.broken == "nodes":
            raise ElasticsearchError("GET /_cat/nodes: HTTP 503")
        return [{"name": n, "master": "*" if n == name(1) else "-"} for n in self.es.joined]

    def excluded_names(self) -> tuple[str, ...]:
        return self.es.excluded

    # The reads of restarts (tests/shell/test_monitor_restarts.py scripts them): no shutdown registered.
    def node_ids(self) -> dict[str, str]:
        self._up()
        return {n: f"id-{n}" for n in self.es.joined}

    def allocation_enable(self) -> str | None:
        return None

    def shutdown_records(self) -> tuple[()]:
        return ()

    def voting_exclusions(self) -> tuple[str, ...]:
        return self.es.voting

    def _change(self, call: tuple[str, Any]) -> None:
        if self.es.before_change is not None:
            self.es.before_change(call)
        self.es.calls.append(call)

    def set_excluded_names(self, names: tuple[str, ...]) -> None:
        self._change(("exclude", names))
        self.es.excluded = names
        self.es.exclusions_set.append(names)

    def add_voting_exclusions(self, names: tuple[str, ...]) -> None:
        self._change(("vote", names))
        self.es.voting = (*self.es.voting, *names)

    def clear_voting_exclusions(self) -> None:
        self._change(("clear", ()))
        self.es.voting = ()

    def allocation_explain(self) -> str:
        return "the shard cannot be allocated to the same node on which a copy of the shard already exists"

    def close(self) -> None:
        pass


class Cluster:
    """A real engine with ``n`` running nodes scaled to ``desired``, and a monitor wired to it the
    way the scheduler wires them (stop and plan as engine commands)."""

    def __init__(self, n: int, desired: int, store: MemoryStore | None = None, **flags: str) -> None:
        self.es = FakeElasticsearch()
        self.stopped: list[int] = []
        self.engine, self.store, self.clock = make(store, elasticsearchNodes=str(n), **flags)
        self.tasks: dict[int, str] = {}
        if store is None:
            self.tasks = launched(self.engine, *range(1, n + 1))
            for node_id, task_id in self.tasks.items():
                self.engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
            self.engine.set_desired_nodes(desired, copies_needed=None)
        else:
            self.tasks = {i: r.task_id for i, r in self.engine.state.nodes.items()}
        self.rounds: list[PlannerRound] = []
        self.monitor = self.new_monitor(self.engine)

    def new_monitor(self, engine: Engine, **kwargs: Any) -> ClusterMonitor:
        def stop(node_id: int) -> None:
            self.stopped.append(node_id)
            engine.stop_drained(node_id)

        def plan(seen: PlannerView, adopt: frozenset[int], ready: frozenset[int]) -> PlannerRound:
            result, _ = engine.plan_disruptions(seen, adopt=adopt, ready=ready)
            self.rounds.append(result)
            return result

        return ClusterMonitor(
            engine.config,
            lambda: engine.state,
            stop,
            clock=self.clock,
            client_factory=self.es.client,
            plan=plan,
            **kwargs,
        )

    def killed(self, node_id: int) -> None:
        """Mesos reports the stopped task killed: its id is freed."""
        self.engine.on_updates([status(self.tasks[node_id], "TASK_KILLED", f"agent-{node_id}-S0")])

    def ours_excluded(self) -> list[str]:
        return [n for n in self.es.excluded if n.startswith(FW)]

    def drain(self) -> dict[int, tuple[str, str | None]]:
        return {d.node_id: (d.status, d.predicate) for d in self.monitor.view.drain}


# --- health ------------------------------------------------------------------------------------------


def test_health_comes_from_a_node_that_stays() -> None:
    c = Cluster(3, 2)
    c.monitor.check_once()
    assert c.monitor.view.health == "green" and "3 nodes" in c.monitor.view.health_detail
    assert c.es.asked[0].startswith("agent1.example.com:")
    c.es.down = True
    c.monitor.check_once()
    assert c.monitor.view.health == "unknown" and "connection refused" in c.monitor.view.health_detail


def test_no_running_node_no_answer() -> None:
    mon = ClusterMonitor(config(), lambda: ClusterState(desired_nodes=3), lambda n: None)
    assert mon.check_once() is False
    assert mon.view.health == "unknown" and mon.view.health_detail == "no running node to ask"


# --- one at a time -----------------------------------------------------------------------------------


def test_a_drain_excludes_waits_stops_and_cleans_up() -> None:
    c = Cluster(3, 2)
    c.es.shards = {name(1): 2, name(3): 2}
    assert c.monitor.check_once() is True
    # Node 3 is master-eligible: excluded from allocation and from the voting configuration.
    assert ("exclude", (name(3),)) in c.es.calls and ("vote", (name(3),)) in c.es.calls
    assert c.stopped == [] and c.monitor.view.drain[0].shards_left == 2 and c.drain() == {3: ("draining", None)}
    # Shards moved away, but one is unassigned elsewhere: still not stopped.
    c.es.shards, c.es.unassigned = {name(1): 4}, 1
    c.monitor.check_once()
    assert c.stopped == [] and c.drain() == {3: ("waiting", None)}
    c.es.unassigned = 0
    c.monitor.check_once()
    assert c.stopped == [3]
    c.killed(3)
    # The node is gone from the state: the framework's names leave the lists, the ledger is settled.
    assert c.monitor.check_once() is False
    assert c.es.excluded == () and ("clear", ()) in c.es.calls and c.monitor.view.drain == ()
    assert dict(c.engine.state.disruptions) == {} and state_from_json(c.store.document, FW).disruptions == {}
    calls = len(c.es.calls)
    c.monitor.check_once()
    assert len(c.es.calls) == calls  # nothing more to clean


def test_scale_down_5_to_3_drains_node_5_then_node_4_never_two_at_once() -> None:
    c = Cluster(5, 3)
    c.es.shards = {name(i): 2 for i in range(1, 6)}

    def ledger_first(call: tuple[str, Any]) -> None:
        # The planner's start is stored before Elasticsearch is changed for it.
        if call[0] == "exclude":
            stored = state_from_json(c.store.document, FW).disruptions
            assert all(int(n.removeprefix(FW)) in stored for n in call[1] if n.startswith(FW))

    c.es.before_change = ledger_first
    c.monitor.check_once()
    assert c.ours_excluded() == [name(5)]
    assert c.drain() == {4: ("waiting", "one_action_at_a_time"), 5: ("draining", None)}
    c.monitor.check_once()
    (held,) = [d for d in c.monitor.view.drain if d.node_id == 4]
    assert held.predicate == "max_unavailable" and held.status == "waiting" and held.shards_left is None
    assert held.reason == ("max_unavailable: node 5 is already draining for scale-down: 1 of maxUnavailable 1 in use")
    assert c.ours_excluded() == [name(5)] and c.stopped == []
    # Node 5 empties and stops; node 4 still waits while node 5's task is being killed.
    c.es.shards = {name(i): 2 for i in range(1, 5)} | {name(1): 4}
    c.monitor.check_once()
    assert c.stopped == [5] and c.ours_excluded() == [name(5)]
    c.monitor.check_once()
    assert c.ours_excluded() == [name(5)] and c.drain()[4] == ("waiting", "max_unavailable")
    c.killed(5)
    # Its task ended: the ledger entry goes, node 4 is admitted and becomes the only exclusion.
    c.monitor.check_once()
    assert c.ours_excluded() == [name(4)] and set(c.engine.state.disruptions) == {4}
    assert c.drain() == {4: ("draining", None)}
    c.es.shards = {name(1): 5, name(2): 3, name(3): 2}
    c.monitor.check_once()
    assert c.stopped == [5, 4]
    c.killed(4)
    assert c.monitor.check_once() is False
    assert c.es.excluded == () and dict(c.engine.state.disruptions) == {}
    # Never two of our names at once, and never a voting exclusion (no master left).
    assert all(len([n for n in e if n.startswith(FW)]) <= 1 for e in c.es.exclusions_set)
    assert not any(call[0] == "vote" for call in c.es.calls)
    starts = [r.decision.start.node_id for r in c.rounds if r.decision.start is not None]
    assert starts == [5, 4]


def test_max_unavailable_2_drains_two_leaving_nodes_together() -> None:
    c = Cluster(5, 3, maxUnavailable="2")
    c.es.shards = {name(4): 1, name(5): 1}
    c.monitor.check_once()
    c.monitor.check_once()
    assert c.ours_excluded() == [name(4), name(5)]
    assert c.drain() == {4: ("draining", None), 5: ("draining", None)}


def test_a_leaving_node_that_never_started_stops_at_once() -> None:
    c = Cluster(3, 3)
    # Scaled up, launched, and scaled down again before the task ran.
    c.engine.set_desired_nodes(4, copies_needed=None)
    c.tasks |= launched(c.engine, 4)
    c.engine.set_desired_nodes(3, copies_needed=None)
    c.monitor.check_once()
    # Admitted at once (it disrupts nothing) and stopped; it is excluded too, as before the planner.
    assert c.stopped == [4] and set(c.engine.state.disruptions) == {4}


# --- fail closed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["health", "shards", "nodes"])
def test_an_unreadable_answer_admits_nothing_changes_nothing_and_says_why(broken: str) -> None:
    c = Cluster(5, 3)
    c.es.broken = broken
    c.monitor.check_once()
    c.monitor.check_once()
    assert c.es.calls == [] and c.stopped == [] and dict(c.engine.state.disruptions) == {}
    assert c.drain() == {4: ("waiting", "elasticsearch_answered"), 5: ("waiting", "elasticsearch_answered")}
    assert "not safe" in c.monitor.view.drain[0].reason
    c.es.broken = None
    c.monitor.check_once()
    assert c.ours_excluded() == [name(5)]


def test_an_admitted_drain_is_not_stopped_while_elasticsearch_cannot_be_read() -> None:
    c = Cluster(4, 3)
    c.es.shards = {name(4): 1}
    c.monitor.check_once()
    c.es.shards, c.es.broken = {}, "shards"
    c.monitor.check_once()
    assert c.stopped == [] and c.drain() == {4: ("waiting", "elasticsearch_answered")}


def test_a_planner_that_cannot_run_drains_nothing() -> None:
    c = Cluster(5, 3)
    c.engine.may_act = False  # the engine refuses (503): its state is in doubt
    c.monitor.check_once()
    assert c.es.calls == [] and c.stopped == []
    assert c.drain() == {4: ("waiting", "planner"), 5: ("waiting", "planner")}
    assert "the planner did not run" in c.monitor.view.drain[0].reason


def test_without_a_planner_nothing_is_drained() -> None:
    c = Cluster(5, 3)
    mon = ClusterMonitor(c.engine.config, lambda: c.engine.state, c.stopped.append, client_factory=c.es.client)
    mon.check_once()
    assert c.es.calls == [] and {d.predicate for d in mon.view.drain} == {"planner"}


# --- leaders -----------------------------------------------------------------------------------------


def test_a_new_leader_continues_from_the_stored_ledger() -> None:
    c = Cluster(5, 3)
    c.es.shards = {name(5): 2, name(4): 2}
    c.monitor.check_once()
    assert set(c.engine.state.disruptions) == {5}
    # Another scheduler takes over from the stored state: node 5 stays the one drained.
    follower = Cluster(5, 3, store=MemoryStore(c.store.document))
    follower.es = c.es
    follower.monitor = follower.new_monitor(follower.engine)
    follower.monitor.check_once()
    assert set(follower.engine.state.disruptions) == {5} and c.ours_excluded() == [name(5)]
    assert follower.drain() == {4: ("waiting", "max_unavailable"), 5: ("draining", None)}


def test_a_drain_begun_without_the_planner_is_taken_over_not_restarted() -> None:
    c = Cluster(5, 3)
    c.es.excluded = ("other", name(4), name(5))  # an earlier release excluded both at once
    c.es.shards = {name(4): 1, name(5): 1}
    c.monitor.check_once()
    ledger = c.engine.state.disruptions
    assert set(ledger) == {4, 5} and all(e.kind is Kind.SCALE_DOWN and e.started_at for e in ledger.values())
    assert c.es.calls == []  # nothing re-excluded or dropped
    assert c.drain() == {4: ("draining", None), 5: ("draining", None)}


def test_scaling_back_up_ends_the_drain() -> None:
    c = Cluster(5, 4)
    c.es.shards = {name(5): 2}
    c.monitor.check_once()
    assert set(c.engine.state.disruptions) == {5} and c.ours_excluded() == [name(5)]
    c.engine.set_desired_nodes(5, copies_needed=None)
    c.monitor.check_once()
    assert dict(c.engine.state.disruptions) == {} and c.ours_excluded() == []


def test_a_drain_without_progress_is_reported_stalled_with_the_reason() -> None:
    c = Cluster(3, 2)
    c.es.shards = {name(3): 1}
    c.monitor.check_once()
    c.clock.now += 61
    c.monitor.check_once()
    (drain,) = c.monitor.view.drain
    assert drain.status == "stalled" and "same node" in drain.reason and "no progress for 61s" in drain.reason


def test_a_scheduler_that_does_not_lead_changes_nothing_in_elasticsearch() -> None:
    c = Cluster(3, 2)
    c.es.shards = {name(3): 2}
    leading = [False]
    mon = c.new_monitor(c.engine, may_act=lambda: leading[0])
    mon.check_once()
    # Health is still read, but no exclusion is set, nothing planned or stopped from a state that may be stale.
    assert mon.view.health == "green" and c.es.calls == [] and c.stopped == [] and c.rounds == []
    leading[0] = True
    mon.check_once()
    assert ("exclude", (name(3),)) in c.es.calls


def test_health_only_with_nothing_leaving_and_no_leftovers() -> None:
    state = [replace(running(1, 2, 3), desired_nodes=3)]
    es = FakeElasticsearch()
    rounds: list[int] = []

    def plan(seen: PlannerView, adopt: frozenset[int], ready: frozenset[int]) -> PlannerRound:
        raise AssertionError("not asked when nothing leaves")

    mon = ClusterMonitor(config(), lambda: state[0], lambda n: None, client_factory=es.client, plan=plan)
    mon._cleanup_pending = False
    mon._records_pending = False
    assert mon.check_once() is False and rounds == [] and es.calls == []
