"""The cluster monitor's restarts against a scripted Elasticsearch with the node shutdown API and the
real engine: an operator's restart registers node shutdown ``restart``, stops the node once the
record is ``COMPLETE``, and clears the record once the node has rejoined — also when the node
rejoins only after the restart's ledger entry ended with its task (as a real Elasticsearch node,
slower to start than its task is to run, does) — and a record an earlier scheduler left is cleared."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from es_framework.contract import NodeReport
from es_framework.core.disruption_seen import Observation as PlannerView
from es_framework.core.engine import Engine
from es_framework.core.engine_commands import PlannerRound
from es_framework.core.mesos_calls import Kill
from es_framework.shell.monitor import ClusterMonitor, MonitorClient
from es_framework.shell.rollout_client import ShutdownRecord, named_shutdowns, restart_records_left
from tests.core.test_engine import FW, MemoryStore, launched, make, status

VERSION = "8.15.1"


def name(i: int) -> str:
    return f"{FW}{i}"


def es_id(i: int) -> str:
    return f"es-id-{i}"


def running_update(task_id: str, node_id: int) -> dict[str, Any]:
    report = NodeReport(cluster_uuid="uuid-1", version=VERSION, node_name=name(node_id)).encode()
    return status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0", data=base64.b64encode(report).decode("ascii"))


@dataclass
class ShutdownElasticsearch:
    """A green cluster of the ``joined`` node ids with the node shutdown API (Elasticsearch ids
    ``es-id-<n>``; ``restart`` is ``COMPLETE`` at once, as Elasticsearch reports it:
    TransportGetShutdownStatusAction, no shard moves for a restart)."""

    joined: set[int] = field(default_factory=lambda: {1, 2, 3})
    records: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: How many times GET _nodes/shutdown was read.
    reads: int = 0
    #: The node each round asked.
    asked: list[str] = field(default_factory=list)

    def client(self, address: str, password: str | None) -> MonitorClient:
        self.asked.append(address.split(".", maxsplit=1)[0])
        return FakeClient(self)  # type: ignore[return-value]


class FakeClient:
    def __init__(self, es: ShutdownElasticsearch) -> None:
        self.es = es

    def health(self) -> dict[str, Any]:
        return {
            "status": "green",
            "number_of_nodes": len(self.es.joined),
            "active_shards": 0,
            "unassigned_shards": 0,
            "relocating_shards": 0,
            "initializing_shards": 0,
        }

    def shard_rows(self) -> Any:
        return []

    def node_rows(self) -> Any:
        return [{"name": name(i), "master": "*" if i == min(self.es.joined) else "-"} for i in sorted(self.es.joined)]

    def node_ids(self) -> dict[str, str]:
        return {name(i): es_id(i) for i in self.es.joined}

    def allocation_enable(self) -> str | None:
        return None

    def shutdown_records(self) -> tuple[ShutdownRecord, ...]:
        self.es.reads += 1
        return tuple(ShutdownRecord(i, t, "complete") for i, t in sorted(self.es.records.items()))

    def shutdowns(self, ids: dict[str, str]) -> dict[str, tuple[str, str]]:
        return named_shutdowns(self.shutdown_records(), ids)

    def put_shutdown(self, node_id: str, reason: str) -> None:
        self.es.calls.append(("put", node_id))
        self.es.records[node_id] = "restart"

    def delete_shutdown(self, node_id: str) -> None:
        self.es.calls.append(("delete", node_id))
        self.es.records.pop(node_id, None)

    def put_settings(self, settings: dict[str, str | None]) -> None:
        self.es.calls.append(("settings", str(settings)))

    def flush(self) -> None:
        self.es.calls.append(("flush", ""))

    def excluded_names(self) -> tuple[str, ...]:
        return ()

    def voting_exclusions(self) -> tuple[str, ...]:
        return ()

    def close(self) -> None:
        pass


class Restarts:
    """Three running nodes of version 8.15.1 and a monitor wired to the engine as the scheduler wires
    them; the kills a planner round returns are carried out at once (TASK_KILLED)."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.es = ShutdownElasticsearch()
        self.engine, self.store, self.clock = make(store, elasticsearchNodes="3")
        self.tasks = launched(self.engine, 1, 2, 3) if store is None else {}
        for node_id, task_id in self.tasks.items():
            self.engine.on_updates([running_update(task_id, node_id)])
        self.killed: list[int] = []
        self.monitor = self.new_monitor(self.engine)

    def new_monitor(self, engine: Engine) -> ClusterMonitor:
        def plan(seen: PlannerView, adopt: frozenset[int], ready: frozenset[int]) -> PlannerRound:
            result, calls = engine.plan_disruptions(seen, adopt=adopt, ready=ready)
            for call in calls:
                assert isinstance(call, Kill)
                node_id = next(i for i, t in self.tasks.items() if t == call.task_id)
                self.killed.append(node_id)
                self.es.joined.discard(node_id)
                engine.on_updates([status(call.task_id, "TASK_KILLED", f"agent-{node_id}-S0")])
            return result

        monitor = ClusterMonitor(
            engine.config,
            lambda: engine.state,
            lambda n: None,
            clock=self.clock,
            client_factory=self.es.client,
            plan=plan,
        )
        monitor._cleanup_pending = False  # no scale-down here
        return monitor

    def relaunch(self, node_id: int) -> None:
        """The stopped node's new task runs (its Elasticsearch node has not joined yet)."""
        self.tasks.update(launched(self.engine, node_id))
        self.engine.on_updates([running_update(self.tasks[node_id], node_id)])


def test_a_restart_record_is_cleared_when_the_node_rejoins_after_its_ledger_entry_ended() -> None:
    c = Restarts()
    c.monitor.check_once()  # the first round finds no record: the monitor goes back to health only
    c.engine.request_restart(2)
    c.monitor.check_once()  # admitted, and node shutdown restart registered
    assert c.es.calls == [("put", es_id(2))] and c.killed == []
    c.monitor.check_once()  # COMPLETE: prepared, stopped
    assert c.killed == [2]
    c.relaunch(2)
    c.monitor.check_once()  # the old task ended: the ledger entry leaves; node 2 not back in the cluster yet
    assert c.engine.state.disruptions == {} and c.es.records == {es_id(2): "restart"}
    c.es.joined.add(2)  # Elasticsearch on node 2 has started and joined
    c.monitor.check_once()
    assert c.es.records == {} and c.es.calls[-1] == ("delete", es_id(2))
    reads = c.es.reads
    c.monitor.check_once()  # read once more, nothing left: health only from now on
    c.monitor.check_once()
    assert c.es.reads == reads + 1


def test_a_restart_record_left_by_an_earlier_scheduler_is_cleared() -> None:
    c = Restarts()
    c.es.records = {es_id(3): "restart", "foreign-id": "remove"}
    c.monitor.check_once()
    assert c.es.records == {"foreign-id": "remove"} and c.es.calls == [("delete", es_id(3))]


def test_which_records_may_still_be_ours_to_clear() -> None:
    ids = {name(1): es_id(1), "other": "other-id"}
    assert not restart_records_left([], ids, FW)
    assert restart_records_left([ShutdownRecord(es_id(1), "restart", "complete")], ids, FW)
    # A node not in the cluster may be ours, restarting: looked at again until it is back.
    assert restart_records_left([ShutdownRecord("away", "restart", "complete")], ids, FW)
    assert not restart_records_left([ShutdownRecord("other-id", "restart", "complete")], ids, FW)
    assert not restart_records_left([ShutdownRecord(es_id(1), "remove", "complete")], ids, FW)


def test_the_monitor_asks_a_node_that_is_not_being_restarted() -> None:
    c = Restarts()
    c.monitor.check_once()
    assert c.es.asked[-1] == "agent1"
    c.engine.request_restart(1)
    c.monitor.check_once()  # admitted in this round (asked node 1), registered
    c.monitor.check_once()  # stopped
    assert c.killed == [1] and c.es.asked[-1] == "agent2"
    c.relaunch(1)
    c.monitor.check_once()  # node 1's new task runs; its restart ends in this round: not asked yet
    c.es.joined.add(1)
    c.monitor.check_once()
    assert c.es.asked[-3:] == ["agent2", "agent2", "agent1"]
