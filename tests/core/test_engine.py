from __future__ import annotations

import copy
import itertools
import json
import logging
from typing import Any

import pytest

from es_framework.core.config_record import config_record
from es_framework.core.describe import describe
from es_framework.core.engine import Engine
from es_framework.core.engine_state import StoreConflictError
from es_framework.core.mesos_calls import Accept, Acknowledge, Call, Decline, Kill, Message, Reconcile, Revive, Suppress
from es_framework.core.node_state import TaskState
from es_framework.core.plan import LONG_REFUSE_S, SHORT_REFUSE_S
from es_framework.core.state_changes import StateChanges
from es_framework.core.state_document import state_from_json
from es_framework.core.state_layout import apply_changes, merge_document, split_document
from identity import node_id_from_task_id
from strategies import strategy_for
from tests.harness.builders import config, offer

FW = "elasticsearch"


class MemoryStore:
    """A store that records every write and can be told to fail."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = copy.deepcopy(document)
        self.version = 0
        self.writes: list[dict[str, Any]] = []
        self.fail_next: Exception | None = None
        #: The node entries of each incremental write (``save_changes``), in order.
        self.change_sets: list[dict[str, Any]] = []

    def load(self) -> tuple[dict[str, Any] | None, int]:
        return copy.deepcopy(self.document), self.version

    def save(self, document: dict[str, Any], version: int) -> int:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if version != self.version:
            raise StoreConflictError(f"version {version} != {self.version}")
        self.document = copy.deepcopy(document)
        self.version += 1
        self.writes.append(copy.deepcopy(document))
        return self.version

    def save_changes(self, changes: StateChanges, version: int) -> int:
        """As ZooKeeper's layout 2: the changed entries applied to what is stored must be exactly
        the whole new document (checked on every engine write of every test using this store)."""
        document = changes.document()
        if self.document is not None and version == self.version and self.fail_next is None:
            stored = split_document(self.document)
            if stored.split_fields == changes.split_fields:
                layout, _ = apply_changes(stored, changes.cluster, changes.entries)
                assert merge_document(layout) == document, "the changed entries do not say what the document does"
        self.change_sets.append(copy.deepcopy(changes.entries))
        return self.save(document, version)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(store: MemoryStore | None = None, **flags: str) -> tuple[Engine, MemoryStore, Clock]:
    store = store or MemoryStore()
    clock = Clock()
    numbers = itertools.count(1)
    engine = Engine(
        config(**flags),
        store,
        clock=clock,
        new_launch_id=lambda: f"{next(numbers):032x}",
        strategy=strategy_for(config(**flags)),
    )
    return engine, store, clock


def accepts(calls: list[Call]) -> list[Accept]:
    return [c for c in calls if isinstance(c, Accept)]


def status(task_id: str, state: str, agent: str, *, uuid: str | None = "dXVpZA==", **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": agent}, **extra}
    if uuid is not None:
        raw["uuid"] = uuid
    return raw


def launched(engine: Engine, *agents: int) -> dict[int, str]:
    """Launch one node per agent number; return node id -> task id."""
    task_ids = [a.task_infos[0]["task_id"]["value"] for a in accepts(engine.on_offers([offer(n) for n in agents]))]
    return {node_id_from_task_id(t, FW): t for t in task_ids}


def test_launch_is_persisted_before_it_is_returned() -> None:
    engine, store, _ = make(externalVolumeDriver="rexray")
    calls = engine.on_offers([offer(1), offer(2), offer(3), offer(4)])
    assert [a.offer_id for a in accepts(calls)] == ["offer-1", "offer-2", "offer-3"]
    assert len(store.writes) == 1
    stored = state_from_json(store.writes[0], FW)
    assert sorted(stored.nodes) == [1, 2, 3]
    assert all(r.state is TaskState.LAUNCHING for r in stored.nodes.values())
    stored_task_ids = {r.task_id for r in stored.nodes.values()}
    assert {a.task_infos[0]["task_id"]["value"] for a in accepts(calls)} == stored_task_ids
    assert Decline(("offer-4",), LONG_REFUSE_S) in calls
    assert calls[-1] == Suppress()


def test_a_failed_write_launches_nothing() -> None:
    engine, store, _ = make()
    store.fail_next = OSError("zookeeper connection loss")
    calls = engine.on_offers([offer(1), offer(2)])
    assert accepts(calls) == []
    assert calls == [Decline(("offer-1", "offer-2"), SHORT_REFUSE_S)]
    assert not engine.state.nodes
    # Next time it works.
    assert len(accepts(engine.on_offers([offer(1)]))) == 1


def test_a_conflicting_write_launches_nothing_and_rereads() -> None:
    engine, store, _ = make()
    # Another scheduler wrote node 1 meanwhile.
    other, _, _ = make(store)
    other.on_offers([offer(9)])
    calls = engine.on_offers([offer(1)])
    assert accepts(calls) == []
    assert sorted(engine.state.nodes) == [1]  # re-read
    retry = engine.on_offers([offer(1)])
    assert [a.task_infos[0]["name"] for a in accepts(retry)] == ["elasticsearch2"]


def test_status_is_persisted_before_it_is_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1)
    writes = len(store.writes)
    calls = engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    assert Acknowledge("agent-1-S0", tasks[1], "dXVpZA==") in calls
    assert len(store.writes) == writes + 1
    assert state_from_json(store.document, FW).nodes[1].state is TaskState.RUNNING


def test_after_its_first_write_the_engine_hands_the_store_only_the_changed_node() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1, 2, 3)  # a whole write: nothing written by this engine before
    assert store.change_sets == []
    engine.on_update(status(tasks[2], "TASK_RUNNING", "agent-2-S0"))
    assert [list(entries) for entries in store.change_sets] == [["2"]]
    assert state_from_json(store.document, FW).nodes[2].state is TaskState.RUNNING
    # After a failed write (its outcome unknown) the next write is whole again.
    store.fail_next = OSError("connection loss")
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    assert len(store.change_sets) == 2  # the failed attempt only
    engine.on_update(status(tasks[3], "TASK_RUNNING", "agent-3-S0"))
    assert list(store.change_sets[-1]) == ["3"]


def test_an_update_whose_write_fails_is_not_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1)
    store.fail_next = OSError("connection loss")
    assert engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0")) == []
    assert engine.state.nodes[1].state is TaskState.LAUNCHING
    # Mesos resends it; now it goes through.
    assert any(isinstance(c, Acknowledge) for c in engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0")))


def test_updates_without_uuid_are_not_acknowledged() -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1)
    calls = engine.on_update(status(tasks[1], "TASK_UNREACHABLE", "agent-1-S0", uuid=None))
    assert not any(isinstance(c, Acknowledge) for c in calls)


def test_while_the_store_is_unavailable_nothing_is_launched_freed_or_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1)
    engine.may_act = False
    writes = len(store.writes)
    assert engine.on_offers([offer(2)]) == [Decline(("offer-2",), SHORT_REFUSE_S)]
    assert engine.on_update(status(tasks[1], "TASK_FAILED", "agent-1-S0")) == []
    assert len(store.writes) == writes
    assert 1 in engine.state.nodes


def test_registration_reconciles_known_tasks_with_agent_ids_then_all() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1, 2)
    calls = engine.on_registered("fw-42")
    assert state_from_json(store.document, FW).framework_id == "fw-42"
    explicit, implicit = calls[0], calls[1]
    assert explicit == Reconcile(
        (
            {"task_id": {"value": tasks[1]}, "agent_id": {"value": "agent-1-S0"}},
            {"task_id": {"value": tasks[2]}, "agent_id": {"value": "agent-2-S0"}},
        )
    )
    assert implicit == Reconcile(())
    assert calls[2] == Revive()  # one node still missing


def test_registration_with_nothing_known_reconciles_implicitly_only() -> None:
    engine, _, _ = make()
    assert engine.on_registered("fw-1")[:1] == [Reconcile(())]


def test_restart_recovers_state_and_stored_count_wins(caplog: pytest.LogCaptureFixture) -> None:
    engine, store, _ = make(elasticsearchNodes="3")
    tasks = launched(engine, 1, 2, 3)
    restarted, _, _ = make(store, elasticsearchNodes="5")
    assert sorted(restarted.state.nodes) == [1, 2, 3]
    assert restarted.state.desired_nodes == 3
    assert "stored desired node count 3 wins over --elasticsearchNodes 5" in caplog.text
    # The ids recovered from state are never handed out again.
    assert accepts(restarted.on_offers([offer(7)])) == []
    assert {r.task_id for r in restarted.state.nodes.values()} == set(tasks.values())


def test_replacement_reuses_the_id_after_failure_with_backoff() -> None:
    engine, _, clock = make(externalVolumeDriver="rexray")
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_update(status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0"))
    calls = engine.on_update(
        status(tasks[2], "TASK_FAILED", "agent-2-S0", message="VolumeDriver.Mount: 503 Service Unavailable")
    )
    assert Revive() in calls
    assert 2 not in engine.state.nodes
    # Too soon: backing off.
    early = engine.on_offers([offer(5)])
    assert accepts(early) == [] and engine.declines.by_rule["backoff"] == 1
    clock.now += 6
    (accept,) = accepts(engine.on_offers([offer(5)]))
    task = accept.task_infos[0]
    assert task["name"] == "elasticsearch2"
    assert task["task_id"]["value"] != tasks[2]
    params = [p["value"] for p in task["executor"]["container"]["docker"]["parameters"] if p["key"] == "mount"]
    assert any("source=elasticsearch2data" in p for p in params)


def test_unreachable_node_is_not_replaced() -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_update(status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0"))
    engine.on_update(status(tasks[2], "TASK_UNREACHABLE", "agent-2-S0", uuid=None))
    assert accepts(engine.on_offers([offer(5)])) == []
    assert engine.declines.by_rule == {"cluster_full": 1}
    assert engine.state.view().present_nodes == 3


def test_a_decline_is_counted_under_its_first_failing_rule_and_explained_by_every_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, _, clock = make()
    launched(engine, 1, 2, 3)
    caplog.set_level(logging.DEBUG, logger="es_framework.core.engine")
    engine.on_offers([offer(1, mem=1)])
    assert engine.declines.by_rule == {"cluster_full": 1}
    assert engine.declines.last["cluster_full"] == ("cluster size fulfilled: 3 of 3 nodes present", clock.now)
    outcomes = engine.declines.explanations["cluster_full"]
    assert [(o.rule, o.passed) for o in outcomes if not o.passed] == [
        ("cluster_full", False),
        ("agent_has_node", False),
        ("mem", False),
    ]
    assert "cluster_full: cluster size fulfilled: 3 of 3 nodes present (also failing: agent_has_node, mem)" in (
        caplog.text
    )
    assert "FAILED mem: not enough mem: 1 MB offered, 2048 MB needed; passed ports:" in caplog.text
    # Declines no rule judged are counted with no explanation.
    engine.on_offers([{"id": {"value": "bad-offer"}}])
    assert engine.declines.explanations["malformed"] == ()


def test_a_second_live_task_for_a_node_id_is_killed_and_acknowledged() -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1)
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    stray = tasks[1][:-1] + ("0" if tasks[1][-1] != "0" else "1")
    calls = engine.on_update(status(stray, "TASK_RUNNING", "agent-9-S0"))
    assert Kill(stray, "agent-9-S0") in calls
    assert Acknowledge("agent-9-S0", stray, "dXVpZA==") in calls
    assert engine.state.nodes[1].task_id == tasks[1]


def test_malformed_input_changes_nothing() -> None:
    engine, store, _ = make()
    writes = len(store.writes)
    assert engine.on_update({"state": "TASK_RUNNING"}) == []
    assert engine.on_offers([{"id": {"value": "bad-offer"}}]) == [Decline(("bad-offer",), SHORT_REFUSE_S)]
    assert engine.on_offers([{"no": "id"}]) == []
    assert len(store.writes) == writes and not engine.state.nodes
    assert engine.declines.by_rule["malformed"] == 2


def test_suppress_and_revive_only_on_change() -> None:
    engine, _, _ = make(elasticsearchNodes="1")
    first = engine.on_offers([offer(1)])
    assert first[-1] == Suppress()
    task_id = accepts(first)[0].task_infos[0]["task_id"]["value"]
    assert not any(
        isinstance(c, (Suppress, Revive)) for c in engine.on_update(status(task_id, "TASK_RUNNING", "agent-1-S0"))
    )
    assert Revive() in engine.on_update(status(task_id, "TASK_KILLED", "agent-1-S0"))


# --- configuration fingerprint ---------------------------------------------------------------------


def test_the_first_registration_records_the_configuration() -> None:
    engine, store, _ = make()
    engine.on_registered("fw-1")
    assert store.document is not None
    assert store.document["config"] == config_record(engine.config)
    assert store.document["config_changes"] == []
    writes = len(store.writes)
    engine.on_registered("fw-1")  # a re-registration with the same configuration writes nothing
    assert len(store.writes) == writes


def test_the_node_count_is_not_part_of_the_fingerprint() -> None:
    assert config_record(config(elasticsearchNodes="3")) == config_record(config(elasticsearchNodes="5"))
    for flag, value in [
        ("elasticsearchDockerImage", "example/es:2"),
        ("elasticsearchCpu", "2"),
        ("elasticsearchRam", "4096"),
        ("elasticsearchDisk", "2048"),
        ("elasticsearchPorts", "9200,9300"),
        ("elasticsearchSettingsLocation", "https://example.com/elasticsearch.yml"),
        ("externalVolumeDriver", "rexray"),
    ]:
        assert config_record(config(**{flag: value}))["fingerprint"] != config_record(config())["fingerprint"], flag
    rexray = config_record(config(externalVolumeDriver="rexray"))["fingerprint"]
    sized = config_record(config(externalVolumeDriver="rexray", externalVolumeOptions="size=100"))["fingerprint"]
    assert rexray != sized


def test_a_changed_configuration_marks_the_nodes_outdated_and_restarts_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, store, _ = make()
    first.on_registered("fw-1")
    tasks = launched(first, 1, 2)
    first.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))

    second, _, clock = make(store, elasticsearchRam="4096")
    clock.now = 2000.0
    calls = second.on_registered("fw-1")
    assert not [c for c in calls if isinstance(c, (Kill, Accept))]
    stored = state_from_json(store.document, FW)
    assert all(r.outdated for r in stored.nodes.values())
    assert stored.config is not None and stored.config["fingerprint"] == config_record(second.config)["fingerprint"]
    (change,) = stored.config_changes
    assert change["changed"] == {"elasticsearchRam": [2048.0, 4096.0]}
    assert change["at"] == 2000.0 and change["outdated_nodes"] == [1, 2]
    assert change["from"] == config_record(first.config)["fingerprint"]
    for node_id, task_id in tasks.items():
        assert f"node {node_id} task {task_id}: launched with the earlier configuration" in caplog.text
    assert "--elasticsearchRam 2048.0 -> 4096.0" in caplog.text
    assert "outdated configuration: node(s) 1, 2" in describe(stored)

    # Node 2 fails: its replacement runs the new configuration and is not outdated; node 1 still is.
    second.on_update(status(tasks[2], "TASK_FAILED", "agent-2-S0"))
    clock.now += 600
    (launch,) = accepts(second.on_offers([offer(3)]))
    assert launch.task_infos[0]["name"] == "elasticsearch2"
    stored = state_from_json(store.document, FW)
    assert stored.nodes[1].outdated and not stored.nodes[2].outdated

    # The same new configuration again: nothing more is recorded.
    third, _, _ = make(store, elasticsearchRam="4096")
    third.on_registered("fw-1")
    assert len(state_from_json(store.document, FW).config_changes) == 1


# --- hostnames of adopted tasks ------------------------------------------------------------------------


def test_an_adopted_task_learns_its_hostname_from_an_offer_of_its_agent() -> None:
    engine, store, _ = make(elasticsearchNodes="2")
    task_id = f"{FW}-node1-{'a' * 32}"
    engine.on_update(status(task_id, "TASK_RUNNING", "agent-7-S0", uuid=None))
    assert engine.state.nodes[1].hostname == ""
    engine.on_offers([offer(7)])  # declined (the agent has node 1), but names the host
    assert engine.state.nodes[1].hostname == "agent7.example.com"
    assert state_from_json(store.document, FW).nodes[1].hostname == "agent7.example.com"
    # Once the agent is known, a task adopted there gets its hostname at once.
    engine.on_update(status(f"{FW}-node2-{'b' * 32}", "TASK_RUNNING", "agent-7-S0", uuid=None))
    assert engine.state.nodes[2].hostname == "agent7.example.com"


def test_a_launch_that_never_reached_mesos_is_relaunched_without_back_off() -> None:
    # The scheduler crashed between writing node 1's record and its ACCEPT; the next one reconciles.
    first, store, _ = make()
    tasks = launched(first, 1)
    engine, _, _ = make(store)
    answer = status(tasks[1], "TASK_GONE", "agent-1-S0", uuid=None, reason="REASON_RECONCILIATION")
    engine.on_update(answer)
    assert not engine.state.nodes
    (launch,) = accepts(engine.on_offers([offer(2)]))
    assert launch.task_infos[0]["name"] == "elasticsearch1"
    # A real failure is backed off.
    running = launch.task_infos[0]["task_id"]["value"]
    engine.on_update(status(running, "TASK_RUNNING", "agent-2-S0"))
    engine.on_update(status(running, "TASK_FAILED", "agent-2-S0", message="exit 1"))
    calls = engine.on_offers([offer(3)])
    assert not accepts(calls) and any(isinstance(c, Decline) for c in calls)


def test_a_launch_whose_offer_was_gone_is_relaunched_on_the_next_offer_without_back_off() -> None:
    engine, _, _ = make()
    engine.on_registered("fw-1")
    tasks = launched(engine, 1)
    # Mesos refused the launch: its offer had been rescinded (TASK_DROPPED, REASON_INVALID_OFFERS).
    engine.on_update(status(tasks[1], "TASK_DROPPED", "agent-1-S0", reason="REASON_INVALID_OFFERS"))
    assert engine.backoff.wait(1, 0.0) == 0.0 and 1 not in engine.backoff.failures
    (launch,) = accepts(engine.on_offers([offer(2)]))
    assert launch.task_infos[0]["name"] == "elasticsearch1"
    # A second drop in a row is not a crash loop either; any other failure still is.
    again = launch.task_infos[0]["task_id"]["value"]
    engine.on_update(status(again, "TASK_DROPPED", "agent-2-S0", reason="REASON_INVALID_OFFERS"))
    (launch,) = accepts(engine.on_offers([offer(3)]))
    failing = launch.task_infos[0]["task_id"]["value"]
    engine.on_update(status(failing, "TASK_FAILED", "agent-3-S0", message="exit 1"))
    assert not accepts(engine.on_offers([offer(4)]))


def test_the_new_state_fields_survive_a_round_trip_and_are_checked() -> None:
    from es_framework.core.node_state import NodeStateError
    from es_framework.core.state_document import state_to_json

    engine, store, _ = make(externalVolumeDriver="rexray")
    engine.on_registered("fw-1")
    launched(engine, 1)
    document = copy.deepcopy(store.document)
    assert document is not None
    document["nodes"][0]["outdated"] = True
    document["torn_down_at"] = 12.5
    document["config_changes"] = [{"at": 1.0, "from": "a", "to": "b", "changed": {}}]
    state = state_from_json(document, FW)
    assert state.nodes[1].outdated and state.torn_down_at == 12.5 and len(state.config_changes) == 1
    assert state_to_json(state) == document
    # A document written before these fields existed reads as before.
    for key in ("config", "config_changes", "torn_down_at"):
        del document[key]
    del document["nodes"][0]["outdated"]
    old = state_from_json(document, FW)
    assert old.config is None and old.torn_down_at is None and not old.nodes[1].outdated
    for key, bad in [("torn_down_at", "yesterday"), ("config", {"values": {}}), ("config_changes", [1])]:
        with pytest.raises(NodeStateError, match=key):
            state_from_json({**document, key: bad}, FW)


def test_a_batch_of_updates_is_written_once_then_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1, 2, 3)
    writes = len(store.writes)
    batch = [status(t, "TASK_RUNNING", f"agent-{n}-S0", uuid=f"u{n}") for n, t in tasks.items()]
    calls = engine.on_updates(batch)
    assert len(store.writes) == writes + 1
    assert [c for c in calls if isinstance(c, Acknowledge)] == [
        Acknowledge(f"agent-{n}-S0", t, f"u{n}") for n, t in tasks.items()
    ]
    assert all(r.state is TaskState.RUNNING for r in engine.state.nodes.values())


def test_a_batch_whose_write_fails_is_not_acknowledged_at_all() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1, 2)
    store.fail_next = OSError("connection loss")
    batch = [status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()]
    assert engine.on_updates([*batch, {"garbage": 1}]) == []
    assert all(r.state is TaskState.LAUNCHING for r in engine.state.nodes.values())


def _messages(calls: list[Call]) -> list[Message]:
    return [c for c in calls if isinstance(c, Message)]


def test_seed_hosts_reach_running_nodes_as_versioned_messages() -> None:
    engine, _, clock = make()
    tasks = launched(engine, 1, 2, 3)
    sent: list[Message] = []
    for n, t in tasks.items():
        sent += _messages(engine.on_update(status(t, "TASK_RUNNING", f"agent-{n}-S0", uuid=f"u{n}")))
    # Seeds were known from the launches on; each node is told once, when it runs.
    assert [m.agent_id for m in sent] == ["agent-1-S0", "agent-2-S0", "agent-3-S0"]
    assert sent[0].executor_id == f"elasticsearch-executor-node1-{tasks[1].rsplit('-', 1)[1]}"
    payload = json.loads(sent[0].data)
    assert payload["seed_hosts"] == [f"agent{n}.example.com:31001" for n in (1, 2, 3)]
    version = payload["version"]
    assert version >= int(clock.now * 1000)
    # Nothing new: nothing sent. Re-registration: the same version again.
    assert _messages(engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0", uuid="again"))) == []
    resent = _messages(engine.on_registered("fw-1"))
    assert len(resent) == 3 and json.loads(resent[0].data)["version"] == version
    # Node 3 fails: nodes 1 and 2 learn it is gone. It comes back on another agent: they learn its
    # new address at once, and the new node 3 gets the same version when it runs.
    failed = _messages(engine.on_update(status(tasks[3], "TASK_FAILED", "agent-3-S0", uuid="f")))
    assert [m.agent_id for m in failed] == ["agent-1-S0", "agent-2-S0"]
    assert json.loads(failed[0].data)["seed_hosts"] == ["agent1.example.com:31001", "agent2.example.com:31001"]
    clock.now += 10
    launch_calls = engine.on_offers([offer(7)])
    (accept,) = accepts(launch_calls)
    relaunch = _messages(launch_calls)
    assert [m.agent_id for m in relaunch] == ["agent-1-S0", "agent-2-S0"]
    newer = json.loads(relaunch[0].data)
    assert newer["version"] > version
    assert newer["seed_hosts"] == ["agent1.example.com:31001", "agent2.example.com:31001", "agent7.example.com:31001"]
    new_task = accept.task_infos[0]["task_id"]["value"]
    running = _messages(engine.on_update(status(new_task, "TASK_RUNNING", "agent-7-S0", uuid="n")))
    assert [m.agent_id for m in running] == ["agent-7-S0"]
    assert json.loads(running[0].data) == newer


def test_url_credentials_never_reach_the_stored_configuration() -> None:
    flags = {
        "frameworkUseDocker": "false",
        "elasticsearchBinaryUrl": "https://deploy:hunter2@artifacts.example.com/es.tar.gz",
    }
    record = config_record(config(**flags))
    assert record["values"]["elasticsearchBinaryUrl"] == "https://****@artifacts.example.com/es.tar.gz"
    assert "hunter2" not in json.dumps(record)


def test_an_agent_configuration_failure_is_an_error_once_then_info_while_it_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.core.engine")
    engine, _, clock = make()
    refused = "Failed to launch container: Volumes in ContainerInfo is not supported"
    for attempt in range(3):
        (accept,) = accepts(engine.on_offers([offer(1)]))
        task_id = accept.task_infos[0]["task_id"]["value"]
        engine.on_update(
            status(task_id, "TASK_FAILED", "agent-1-S0", reason="REASON_CONTAINER_LAUNCH_FAILED", message=refused)
        )
        clock.now += 400 * (attempt + 1)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "failed" in r.getMessage()]
    assert [level for level, _ in lines] == [logging.ERROR, logging.INFO, logging.INFO]
    assert "agent_config" in lines[0][1] and "isolation" in lines[0][1]
    assert "reported above" in lines[1][1]


def test_a_repeated_task_running_is_logged_at_debug_and_a_change_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="es_framework.core.engine")
    engine, _, _ = make()
    tasks = launched(engine, 1)
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "TASK_RUNNING" in r.getMessage()]
    assert [level for level, _ in lines] == [logging.INFO, logging.DEBUG]
    assert "duplicate TASK_RUNNING" in lines[1][1]
