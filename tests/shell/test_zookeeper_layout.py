"""The per-node ZooKeeper layout against a real ZooKeeper (es_framework/shell/state_store/zookeeper_layout.py):
a write touches only the znodes of the nodes that changed, reads are consistent while writes race them,
conflicts and fencing still hold, and the state of release 0.1.0 (one ``state`` znode) is migrated,
also when the migration is interrupted midway."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from es_framework.core.state_document import state_from_json
from es_framework.shell.state_store import (
    LeadershipLostError,
    StateConflictError,
    StateCorruptError,
    zookeeper_layout,
)
from es_framework.shell.state_store.base import decode
from es_framework.shell.state_store.zookeeper_layout import StateTooLargeError
from tests.shell.conftest import StoreFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
V010_FORMED = json.loads((FIXTURES / "v0.1.0" / "state-formed.json").read_text())
SCHEMA3 = json.loads((FIXTURES / "schema3" / "state.json").read_text())


def document(nodes: int, generation: int = 0) -> dict[str, Any]:
    """A state-shaped document: node records in a list, volumes keyed by id, cluster fields."""
    return {
        "schema": 3,
        "framework_id": "fw-1",
        "desired_nodes": nodes,
        "generation": generation,
        "nodes": [{"node_id": n, "state": "TASK_RUNNING", "generation": generation} for n in range(1, nodes + 1)],
        "volumes": {str(n): {"driver": "rexray"} for n in range(1, nodes + 1)},
        "pins": {},
    }


def root(names: tuple[str, str]) -> str:
    return f"/{names[0]}/{names[1]}"


def stats(raw: KazooClient, names: tuple[str, str]) -> dict[str, tuple[int, int]]:
    """(version, mzxid) of the cluster znode and every node znode."""
    out = {"cluster": _stat(raw, f"{root(names)}/cluster")}
    for key in raw.get_children(f"{root(names)}/nodes"):
        out[key] = _stat(raw, f"{root(names)}/nodes/{key}")
    return out


def _stat(raw: KazooClient, path: str) -> tuple[int, int]:
    stat = raw.exists(path)
    assert stat is not None, path
    return stat.version, stat.mzxid


def legacy(raw: KazooClient, names: tuple[str, str], state: dict[str, Any], writes: int = 0) -> None:
    """Store ``state`` as release 0.1.0 did: one ``state`` znode (written ``writes`` more times)."""
    data = json.dumps({"schema": 1, "state": state}, sort_keys=True, separators=(",", ":")).encode()
    raw.create(f"{root(names)}/state", data, makepath=True)
    for _ in range(writes):
        raw.set(f"{root(names)}/state", data)


def test_a_write_of_one_changed_node_touches_one_node_znode(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    doc = document(5)
    store.create(doc)
    assert sorted(raw.get_children(f"{root(names)}/nodes"), key=int) == ["1", "2", "3", "4", "5"]
    before = stats(raw, names)

    doc["nodes"][2]["state"] = "TASK_KILLED"
    assert store.write(doc, 0).version == 1
    after = stats(raw, names)
    assert {k for k in after if after[k] != before[k]} == {"cluster", "3"}
    assert after["3"][0] == 1 and after["cluster"][0] == 1
    assert json.loads(raw.get(f"{root(names)}/nodes/3")[0]) == {
        "nodes": doc["nodes"][2],
        "volumes": {"driver": "rexray"},
    }

    # Unchanged: nothing is sent, the version stays.
    assert store.write(copy.deepcopy(doc), 1).version == 1
    assert stats(raw, names) == after

    # Only the cluster part: the cluster znode only.
    doc["desired_nodes"] = 6
    assert store.write(doc, 1).version == 2
    again = stats(raw, names)
    assert {k for k in again if again[k] != after[k]} == {"cluster"}

    # A node appears and another goes: one create, one delete.
    doc["nodes"].append({"node_id": 6, "state": "TASK_STAGING"})
    del doc["nodes"][0]
    del doc["volumes"]["1"]
    assert store.write(doc, 2).version == 3
    final = stats(raw, names)
    assert set(final) == {"cluster", "2", "3", "4", "5", "6"}
    assert {k for k in final if final.get(k) != again.get(k)} == {"cluster", "6"}
    fresh = make_store().read()
    assert fresh is not None and fresh.document == doc and fresh.version == 3


def test_two_writers_with_the_same_version_one_loses(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    first.create(document(3))
    a, b = first.read(), second.read()
    assert a is not None and b is not None and a.version == b.version == 0
    a.document["nodes"][0]["state"] = "TASK_FAILED"
    b.document["nodes"][1]["state"] = "TASK_FAILED"  # another node: only the version tells them apart
    assert second.write(b.document, 0).version == 1
    with pytest.raises(StateConflictError):
        first.write(a.document, 0)
    current = first.read()
    assert current is not None and current.document == b.document
    assert first.write(a.document, 1).version == 2  # the engine re-applies on what it re-read


def test_a_store_whose_lock_znode_is_gone_cannot_write(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    leader = make_store()
    assert leader.acquire_leadership(timeout=5)
    doc = document(3)
    leader.create(doc)
    before = stats(raw, names)
    # The lock znode goes while the client has not noticed (what a partition looks like from the
    # server): the fence inside the multi refuses the write, and nothing of it is applied.
    lock = raw.get_children(f"{root(names)}/leader")
    raw.delete(f"{root(names)}/leader/{lock[0]}")
    doc["nodes"][0]["state"] = "TASK_LOST"
    with pytest.raises(LeadershipLostError, match="lock znode"):
        leader.write(doc, 0)
    assert stats(raw, names) == before


def test_reads_never_see_half_a_write(make_store: StoreFactory) -> None:
    writer, reader = make_store(), make_store()
    writer.create(document(20))
    stop = threading.Event()
    errors: list[BaseException] = []

    def write_forever() -> None:
        version, generation = 0, 0
        try:
            while not stop.is_set():
                generation += 1
                doc = document(20 if generation % 3 else 17, generation)  # nodes change, some go and come back
                version = writer.write(doc, version).version
                # A busy scheduler's cadence of batches, not a tight loop: a read must fit between two
                # writes (it retries with jitter), and on two loaded cores 20 ms was not always enough.
                time.sleep(0.1)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write_forever)
    thread.start()
    try:
        for _ in range(60):
            state = reader.read()
            assert state is not None
            doc = state.document
            assert {n["generation"] for n in doc["nodes"]} == {doc["generation"]}, "a read mixed two writes"
            assert len(doc["nodes"]) == doc["desired_nodes"]
    finally:
        stop.set()
        thread.join(30)
    assert errors == []


def test_a_write_between_the_cluster_znode_and_the_node_znodes_is_seen_and_read_again(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader = make_store(), make_store()
    writer.create(document(5))
    listed = reader.layout._children
    calls: list[int] = []

    def list_then_write() -> tuple[list[str], int | None]:
        # The reader has the cluster znode at version 0; a write lands before it reads the nodes.
        calls.append(1)
        if len(calls) == 1:
            writer.write(document(4, generation=1), 0)
        return listed()

    monkeypatch.setattr(reader.layout, "_children", list_then_write)
    state = reader.read()
    assert state is not None and state.version == 1 and state.document == document(4, generation=1)
    assert len(calls) == 2


def test_a_node_znode_removed_by_hand_is_corruption(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store = make_store()
    store.create(document(3))
    raw.delete(f"{root(names)}/nodes/2")
    with pytest.raises(StateCorruptError, match="holds 2 node znodes"):
        make_store().read()


def test_a_newer_layout_is_refused(make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]) -> None:
    store = make_store()
    store.create(document(1))
    data = json.loads(raw.get(f"{root(names)}/cluster")[0])
    raw.set(f"{root(names)}/cluster", json.dumps({**data, "layout": 3}).encode())
    with pytest.raises(StateCorruptError, match="newer es-mesos"):
        store.read()


def test_a_write_whose_atomic_part_is_too_large_for_one_request_is_refused_before_anything_is_sent(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    doc = document(30)
    store.create(doc)
    before = stats(raw, names)
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 2_000)
    # New node ids (launches) reserve ids: they go with the cluster znode, in one request.
    doc["nodes"] += [{"node_id": n, "state": "LAUNCHING", "generation": 0} for n in range(31, 61)]
    with pytest.raises(StateTooLargeError, match="must be written together with the cluster znode"):
        store.write(doc, 0)
    assert stats(raw, names) == before
    # A task that changes (the same id held by another task) is as atomic as a launch.
    doc = document(30)
    for node in doc["nodes"]:
        node["task_id"] = f"elasticsearch{node['node_id']}.other"
    with pytest.raises(StateTooLargeError):
        store.write(doc, 0)
    assert stats(raw, names) == before


@pytest.mark.parametrize("state", [V010_FORMED, SCHEMA3], ids=["v0.1.0", "schema3"])
def test_the_leader_migrates_the_single_document_of_0_1_0(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], state: dict[str, Any]
) -> None:
    legacy(raw, names, state, writes=6)
    # A store that does not lead reads the old layout and changes nothing.
    bystander = make_store()
    seen = bystander.read()
    assert seen is not None and seen.document == state and seen.version == 6
    assert raw.exists(f"{root(names)}/cluster") is None

    leader = make_store()
    assert leader.acquire_leadership(timeout=5)
    migrated = leader.read()
    assert migrated is not None and migrated.document == state
    assert migrated.version == 7  # versions keep growing across the migration
    ids = sorted(raw.get_children(f"{root(names)}/nodes"), key=int)
    assert ids == sorted(
        {str(n["node_id"]) for n in state["nodes"]} | set(state["pins"]) | set(state.get("volumes", {})), key=int
    )
    # 0.1.0 started by mistake refuses the tombstone instead of starting a new cluster.
    with pytest.raises(StateCorruptError, match="newer es-mesos"):
        decode(raw.get(f"{root(names)}/state")[0], "state")
    # The bystander's compare-and-set on the old document now fails; the engine reads the state back.
    with pytest.raises(StateConflictError):
        bystander.write(state, 6)
    assert state_from_json(make_store().read().document, "elasticsearch") == state_from_json(state, "elasticsearch")  # type: ignore[union-attr]
    written = copy.deepcopy(state)
    written["desired_nodes"] = 5
    assert leader.write(written, 7).version == 8


def test_an_interrupted_migration_is_finished_by_the_next_leader(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy(raw, names, SCHEMA3, writes=2)
    old_bytes = raw.get(f"{root(names)}/state")[0]
    # A stray node znode from an earlier attempt that the document does not have: it must go.
    raw.create(f"{root(names)}/nodes/99", b"{}", makepath=True)
    # Small requests force the migration into steps (one node znode per step here).
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 1_500)

    class CrashError(Exception):
        pass

    def crash_after(step: int) -> None:
        if step == 2:
            raise CrashError

    first = make_store()
    assert first.acquire_leadership(timeout=5)
    first.layout.after_install_step = crash_after
    with pytest.raises(CrashError):
        first.read()
    # Midway: node znodes written, no cluster znode, the old document untouched.
    assert raw.exists(f"{root(names)}/cluster") is None
    assert raw.get(f"{root(names)}/state")[0] == old_bytes
    assert len(raw.get_children(f"{root(names)}/nodes")) >= 2
    assert make_store().read().document == SCHEMA3  # type: ignore[union-attr]  # still read from layout 1
    first.close()

    second = make_store()
    assert second.acquire_leadership(timeout=5)
    state = second.read()
    assert state is not None and state.document == SCHEMA3 and state.version == 3
    assert sorted(raw.get_children(f"{root(names)}/nodes"), key=int) == ["1", "2", "3", "4"]
    assert json.loads(raw.get(f"{root(names)}/state")[0])["moved_to"] == f"{root(names)}/cluster"


def test_a_large_first_document_is_created_in_steps(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 3_000)
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    doc = document(40)
    assert store.create(doc).version == 0
    assert make_store().read().document == doc  # type: ignore[union-attr]
    with pytest.raises(StateConflictError, match="exists already"):
        make_store().create(document(1))


def test_a_leader_that_read_layout_1_before_leading_migrates_on_its_first_write(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    legacy(raw, names, V010_FORMED)
    store = make_store()
    seen = store.read()
    assert seen is not None and seen.version == 0
    assert store.acquire_leadership(timeout=5)
    changed = copy.deepcopy(V010_FORMED)
    changed["nodes"][0]["state"] = "TASK_KILLED"
    assert store.write(changed, 0).version == 1
    assert raw.exists(f"{root(names)}/cluster") is not None
    assert make_store().read().document == changed  # type: ignore[union-attr]


def test_delete_removes_every_znode_of_the_state(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    store.create(document(4))
    store.delete()
    assert store.read() is None
    for path in ("cluster", "state", "nodes"):
        assert raw.exists(f"{root(names)}/{path}") is None, path
    assert store.create(document(2)).version == 0


# --- a write too large for one request: several fenced multis, the cluster znode last ---------------


def realistic(nodes: int) -> dict[str, Any]:
    """A document shaped like ``state_to_json``'s, with records and volume sets of realistic size
    (about 1 KB a node), so that rewriting every node does not fit in one request."""
    fw = "elasticsearch"
    return {
        "schema": 3,
        "framework_id": "0a1b2c3d-4e5f-6789-abcd-ef0123456789-0001",
        "desired_nodes": nodes,
        "nodes": [
            {
                "node_id": n,
                "task_id": f"{fw}{n}.{uuid.UUID(int=n)}",
                "agent_id": f"0a1b2c3d-4e5f-6789-abcd-ef0123456789-S{n}",
                "hostname": f"agent{n}.dc1.example.com",
                "http_port": 31000 + n % 1000,
                "transport_port": 32000 + n % 1000,
                "state": "TASK_RUNNING",
                "seen_running": True,
                "volumes": [f"{fw}{n}config", f"{fw}{n}data"],
                "needs_operator": False,
                "last_reason": "REASON_RECONCILIATION",
                "last_message": "Reconciliation: Latest task state",
                "updated_at": 1_700_000_000.0 + n,
                "outdated": False,
                "healthy": True,
                "started_at": 1_700_000_000.0,
                "cluster_uuid": "kZ3xq9VbQ0mN4iYv2l8dTw",
                "version": "8.13.4",
                "stopping": None,
                "zone": f"zone-{n % 3}",
                "attributes": {"rack": f"r{n % 40}", "zone": f"zone-{n % 3}"},
            }
            for n in range(1, nodes + 1)
        ],
        "config": {"fingerprint": "00112233aabbccdd", "values": {"elasticsearchCpu": 1.0}},
        "config_changes": [],
        "torn_down_at": None,
        "bootstrap_masters": [],
        "cluster_uuid": "kZ3xq9VbQ0mN4iYv2l8dTw",
        "pins": {},
        "volumes": {
            str(n): {
                "driver": "rexray",
                "volumes": [
                    {"name": f"{fw}{n}config", "role": "config", "profile": None, "options": [["size", "1"]]},
                    {"name": f"{fw}{n}data", "role": "data", "profile": None, "options": [["size", "100"]]},
                ],
                "first_launched_at": 1_700_000_000.0,
                "last_agent_id": f"0a1b2c3d-4e5f-6789-abcd-ef0123456789-S{n}",
                "last_hostname": f"agent{n}.dc1.example.com",
                "last_launched_at": 1_700_000_000.0,
                "last_zone": f"zone-{n % 3}",
                "removed_at": None,
            }
            for n in range(1, nodes + 1)
        },
        "volume_removals": {},
    }


def reconfigured(doc: dict[str, Any]) -> dict[str, Any]:
    """What ``record_configuration`` writes for a changed configuration: every record ``outdated``,
    the new configuration and the change in the cluster part."""
    new = copy.deepcopy(doc)
    for node in new["nodes"]:
        node["outdated"] = True
    new["config"] = {"fingerprint": "ffeeddccbbaa9988", "values": {"elasticsearchCpu": 2.0}}
    new["config_changes"] = [{"at": 1.0, "from": "00112233aabbccdd", "to": "ffeeddccbbaa9988"}]
    new["generation"] = doc.get("generation", 0) + 1
    return new


class CrashError(Exception):
    pass


def cluster_part(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("nodes", "volumes", "pins")}


def test_a_2500_node_document_whose_every_node_changes_is_written_and_read_back(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    doc = realistic(2500)
    assert store.create(doc).version == 0
    new = reconfigured(doc)
    entry_bytes = sum(len(json.dumps({"nodes": n})) for n in new["nodes"])
    assert entry_bytes > zookeeper_layout.MAX_TRANSACTION_BYTES  # one request could not hold it
    steps: list[int] = []
    store.layout.after_write_step = steps.append
    assert store.write(new, 0).version == 1
    assert steps  # more than one multi
    assert _stat(raw, f"{root(names)}/cluster")[0] == 1
    assert {_stat(raw, f"{root(names)}/nodes/{k}")[0] for k in ("1", "1250", "2500")} == {1}
    fresh = make_store().read()
    assert fresh is not None and fresh.version == 1 and fresh.document == new
    # The store knows what it wrote: a next small write is one multi again.
    steps.clear()
    new["nodes"][9]["state"] = "TASK_KILLING"
    assert store.write(new, 1).version == 2 and steps == []
    assert make_store().read().document == new  # type: ignore[union-attr]


@pytest.mark.parametrize("crash_after", [1, 2])
def test_a_crash_between_steps_leaves_a_state_consistent_per_node_and_the_write_can_be_sent_again(
    make_store: StoreFactory,
    raw: KazooClient,
    names: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    crash_after: int,
) -> None:
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 3_000)
    writer = make_store()
    assert writer.acquire_leadership(timeout=5)
    old = document(40)
    writer.create(old)
    bystander = make_store()
    assert bystander.read().version == 0  # type: ignore[union-attr]  # it knows the state at version 0
    new = reconfigured(old)

    def crash(step: int) -> None:
        if step == crash_after:
            raise CrashError

    writer.layout.after_write_step = crash
    with pytest.raises(CrashError):
        writer.write(new, 0)

    # A reader (a new leader, `es-framework volumes`) sees version 0: the old cluster part, and each
    # record wholly old or wholly new, some of them new.
    seen = make_store().read()
    assert seen is not None and seen.version == 0
    assert cluster_part(seen.document) == cluster_part(old)
    assert seen.document["volumes"] == old["volumes"]
    fresh = [n for n, o, w in zip(seen.document["nodes"], old["nodes"], new["nodes"], strict=True) if n == w]
    assert all(n in (o, w) for n, o, w in zip(seen.document["nodes"], old["nodes"], new["nodes"], strict=True))
    assert 0 < len(fresh) < 40

    # A write based on what was read before the crash fails: node znodes changed under it.
    before = stats(raw, names)
    stale = copy.deepcopy(old)
    stale["desired_nodes"] = 41
    with pytest.raises(StateConflictError):
        bystander.write(stale, 0)
    assert stats(raw, names) == before

    # The writer's store forgot what it knew when its write failed: sent again from the same
    # version, the write reads the state first and completes.
    writer.layout.after_write_step = None
    assert writer.write(new, 0).version == 1
    assert make_store().read().document == new  # type: ignore[union-attr]
    # The bystander reads again and carries on from there.
    assert bystander.read().version == 1  # type: ignore[union-attr]
    stale = copy.deepcopy(new)
    stale["desired_nodes"] = 41
    assert bystander.write(stale, 1).version == 2


def test_a_new_leader_after_a_crash_between_steps_reads_the_mix_and_writes_on_it(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 3_000)
    first = make_store()
    assert first.acquire_leadership(timeout=5)
    old = document(40)
    first.create(old)

    def crash(step: int) -> None:
        raise CrashError

    first.layout.after_write_step = crash
    with pytest.raises(CrashError):
        first.write(reconfigured(old), 0)
    first.close()

    second = make_store()
    assert second.acquire_leadership(timeout=5)
    state = second.read()
    assert state is not None and state.version == 0 and state.document != old
    # The new leader records the configuration again (its own differs from the stored one).
    again = reconfigured(state.document)
    assert second.write(again, 0).version == 1
    final = make_store().read()
    assert final is not None and final.document == again
    assert all(n["outdated"] for n in final.document["nodes"])


@pytest.mark.parametrize("lost_after", [1, 2, 3])
def test_fencing_holds_in_every_step(
    make_store: StoreFactory,
    raw: KazooClient,
    names: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lost_after: int,
) -> None:
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 3_000)
    leader = make_store()
    assert leader.acquire_leadership(timeout=5)
    doc = document(40)
    leader.create(doc)
    before = stats(raw, names)
    at_loss: dict[str, tuple[int, int]] = {}

    def lose_lock(step: int) -> None:
        if step == lost_after:
            # The lock znode goes while the client has not noticed (a partition as the server sees it).
            (lock,) = raw.get_children(f"{root(names)}/leader")
            raw.delete(f"{root(names)}/leader/{lock}")
            at_loss.update(stats(raw, names))

    leader.layout.after_write_step = lose_lock
    with pytest.raises(LeadershipLostError, match="lock znode"):
        leader.write(reconfigured(doc), 0)
    assert at_loss, "the write had fewer steps than the test needs"
    # Nothing after the loss was applied; what came before it is there, and the cluster znode is not.
    assert stats(raw, names) == at_loss
    assert at_loss["cluster"] == before["cluster"]
    assert at_loss != before


def test_changes_that_reserve_free_or_retask_a_node_id_go_with_the_cluster_znode(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 3_000)
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    old = document(40)
    store.create(old)
    new = reconfigured(old)
    new["nodes"][0]["task_id"] = "elasticsearch1.other"  # another task for id 1
    new["nodes"][1]["cluster_uuid"] = "uuid-2"  # the cluster part learns the uuid from it
    new["nodes"][2]["stopping"] = "scale-down"
    del new["nodes"][3]  # id 4 freed (its volume set stays: a set of its znode)
    new["nodes"].append({"node_id": 41, "state": "LAUNCHING"})  # id 41 reserved
    new["volumes"]["41"] = {"driver": "rexray"}
    new["pins"]["5"] = {"agent_id": "a5", "until": 2.0}  # a pin for a held id
    atomic = {"1", "2", "3", "4", "5", "41"}
    midway: list[dict[str, tuple[int, int]]] = []
    store.layout.after_write_step = lambda step: midway.append(stats(raw, names))
    before = stats(raw, names)
    assert store.write(new, 0).version == 1
    assert midway
    for seen in midway:
        assert seen["cluster"] == before["cluster"]
        assert all(seen.get(k) == before.get(k) for k in atomic)
    assert set(midway[-1]) == set(before)  # no node znode created or deleted before the last step
    assert make_store().read().document == new  # type: ignore[union-attr]


def test_a_write_in_steps_from_a_stale_version_changes_nothing(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zookeeper_layout, "MAX_TRANSACTION_BYTES", 3_000)
    first, second = make_store(), make_store()
    old = document(40)
    first.create(old)
    assert second.read().version == 0  # type: ignore[union-attr]
    # Another store changes only the cluster part: the cluster znode moves, the ``nodes`` znode does not.
    moved = copy.deepcopy(old)
    moved["desired_nodes"] = 41
    assert first.write(moved, 0).version == 1
    before = stats(raw, names)
    with pytest.raises(StateConflictError):
        second.write(reconfigured(old), 0)  # its first step already checks the cluster znode
    assert stats(raw, names) == before
