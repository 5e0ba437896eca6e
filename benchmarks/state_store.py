"""State store figures against a real ZooKeeper (started as the tests start it: es_framework/dev/zookeeper.py).

With N node records (``state_to_json`` of a cluster of N running nodes with their volume sets), in
the per-node layout (one ``cluster`` znode, one ``nodes/<id>`` znode per node id):

- failover load: a new store (a new leader) reads the whole state: cluster znode, children, N node
  znodes with pipelined asynchronous reads (best of 3);
- one status update: a write where one node record changed (one multi: the lock check, one node
  znode, the cluster znode), per write, and the bytes it sends;
- an unchanged write (nothing is sent);
- the largest znode written;
- the migration of release 0.1.0's single document at the largest size it could hold (about 1,500
  nodes under its 1 MB limit).

Usage: ``python3 benchmarks/state_store.py [--nodes N] [--quick] [--json]`` (needs java and the
ZooKeeper jars, like the tests; about 30 s at N = 5,000, ``--quick`` a few seconds).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kazoo.client import KazooClient  # noqa: E402

from es_framework.app.store import EngineStore  # noqa: E402
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState  # noqa: E402
from es_framework.core.state_changes import state_changes  # noqa: E402
from es_framework.core.state_document import state_to_json  # noqa: E402
from es_framework.core.volumes import VolumeSet, VolumeSpec  # noqa: E402
from es_framework.dev.zookeeper import ZooKeeperServer, zookeeper_problem  # noqa: E402
from es_framework.shell.state_store import ZooKeeperStateStore, open_state_store  # noqa: E402
from identity.naming import volume_names  # noqa: E402
from identity.task_ids import task_id_for  # noqa: E402


def cluster_document(nodes: int) -> dict[str, Any]:
    return state_to_json(cluster_state(nodes))


def cluster_state(nodes: int) -> ClusterState:
    records, volumes = {}, {}
    for node_id in range(1, nodes + 1):
        config_name, data_name = volume_names("elasticsearch", node_id)
        records[node_id] = NodeRecord(
            node_id=node_id,
            task_id=task_id_for("elasticsearch", node_id, f"{node_id:032x}"),
            agent_id=f"0b7a5c1e-3f1d-4a55-9e0e-{node_id:012d}-S{node_id % 7}",
            hostname=f"agent{node_id}.dc1.example.com",
            http_port=31000 + node_id % 900,
            transport_port=31001 + node_id % 900,
            state=TaskState.RUNNING,
            seen_running=True,
            volumes=(config_name, data_name),
            updated_at=1_800_000_000.0 + node_id,
            healthy=True,
            started_at=1_799_999_000.0 + node_id,
            cluster_uuid="benchClusterUuid000001",
            version="8.15.3",
            zone=f"zone-{node_id % 3}",
        )
        volumes[node_id] = VolumeSet(
            node_id,
            "rexray",
            VolumeSpec(config_name, "config"),
            VolumeSpec(data_name, "data", "fast", (("size", "100"),)),
            first_launched_at=1_799_999_000.0 + node_id,
            last_agent_id=records[node_id].agent_id,
            last_hostname=records[node_id].hostname,
            last_launched_at=1_799_999_000.0 + node_id,
            last_zone=f"zone-{node_id % 3}",
        )
    return ClusterState(
        desired_nodes=nodes,
        nodes=records,
        framework_id="fw-bench",
        bootstrap_masters=(),
        cluster_uuid="benchClusterUuid000001",
        volumes=volumes,
    )


def store_for(server: ZooKeeperServer, cluster: str) -> ZooKeeperStateStore:
    store = open_state_store(server.url, framework_name="bench", cluster_name=cluster, session_timeout_ms=10_000)
    assert isinstance(store, ZooKeeperStateStore)
    store.start(timeout=10)
    return store


def largest_znode(client: KazooClient, root: str) -> int:
    sizes = [client.exists(f"{root}/cluster").dataLength]
    for key in client.get_children(f"{root}/nodes"):
        sizes.append(client.exists(f"{root}/nodes/{key}").dataLength)
    return int(max(sizes))


def engine_writes(store: ZooKeeperStateStore, nodes: int, writes: int, add: Callable[..., None]) -> None:
    """One status update's write as the engine makes it, CPU (process time) and wall time per write:
    the whole document (``state_to_json`` + ``EngineStore.save``: split and compare everything)
    against only the changed node (``state_changes`` + ``EngineStore.save_changes``)."""
    engine_store = EngineStore(store)
    state = cluster_state(nodes)
    version = engine_store.save(state_to_json(state), engine_store.load()[1])
    ids = sorted(state.nodes)

    def run(incremental: bool) -> tuple[float, float]:
        nonlocal state, version
        gc.disable()
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(writes):
            node_id = ids[i % nodes]
            record = state.nodes[node_id]
            new = state.with_node(node_id, replace(record, updated_at=(record.updated_at or 0.0) + 1.0))
            if incremental:
                version = engine_store.save_changes(state_changes(state, new), version)
            else:
                version = engine_store.save(state_to_json(new), version)
            state = new
        gc.enable()
        return (time.process_time() - cpu) / writes * 1000, (time.perf_counter() - wall) / writes * 1000

    for incremental, name, label in (
        (False, "whole", "the whole document"),
        (True, "changes", "only the changed node"),
    ):
        cpu, wall = run(incremental)
        add(f"engine_write_{name}_cpu.n{nodes}", f"[N={nodes:,}] engine write of one update, {label}: CPU", cpu, "ms")
        add(
            f"engine_write_{name}_wall.n{nodes}", f"[N={nodes:,}] engine write of one update, {label}: wall", wall, "ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000, help="node records in the state (default 5,000)")
    parser.add_argument("--quick", action="store_true", help="300 nodes and fewer writes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    problem = zookeeper_problem()
    if problem:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 2
    nodes = 300 if args.quick else args.nodes
    if nodes < 2:
        parser.error("--nodes must be at least 2")
    writes = 50 if args.quick else 300
    figures: list[dict[str, Any]] = []

    def add(key: str, label: str, value: float, unit: str) -> None:
        figures.append({"key": key, "label": label, "value": value, "unit": unit})

    with tempfile.TemporaryDirectory(prefix="esm-bench-zk-") as workdir:
        server = ZooKeeperServer(Path(workdir))
        server.start()
        raw = KazooClient(server.hosts)
        raw.start(10)
        try:
            document = cluster_document(nodes)
            leader = store_for(server, "load")
            assert leader.acquire_leadership(timeout=10)
            started = time.perf_counter()
            leader.create(document)
            add(f"create.n{nodes}", f"[N={nodes:,}] first write of the whole state", time.perf_counter() - started, "s")

            loads = []
            for _ in range(3):
                fresh = store_for(server, "load")
                started = time.perf_counter()
                state = fresh.read()
                loads.append(time.perf_counter() - started)
                assert state is not None and state.document == document
                fresh.close()
            add(
                f"load.n{nodes}", f"[N={nodes:,}] failover load (a new store reads everything)", min(loads) * 1000, "ms"
            )

            current = leader.read()
            assert current is not None
            version = current.version
            changed = copy.deepcopy(document)
            started = time.perf_counter()
            for i in range(writes):
                changed["nodes"][i % nodes]["updated_at"] += 1.0
                version = leader.write(changed, version).version
            per_write = (time.perf_counter() - started) / writes
            add(f"write_one.n{nodes}", f"[N={nodes:,}] write with one node changed", per_write * 1000, "ms")
            root = leader.root
            one_node = raw.exists(f"{root}/nodes/1").dataLength
            cluster_bytes = raw.exists(f"{root}/cluster").dataLength
            add(
                f"write_one_bytes.n{nodes}",
                f"[N={nodes:,}] bytes sent by that write (one node znode + the cluster znode)",
                one_node + cluster_bytes,
                "bytes",
            )
            started = time.perf_counter()
            for _ in range(writes):
                leader.write(changed, version)
            add(
                f"write_unchanged.n{nodes}",
                f"[N={nodes:,}] unchanged write (nothing sent)",
                (time.perf_counter() - started) / writes * 1000,
                "ms",
            )
            engine_writes(leader, nodes, writes, add)
            add(f"largest_znode.n{nodes}", f"[N={nodes:,}] largest znode", largest_znode(raw, root), "bytes")
            leader.close()

            # Release 0.1.0's single document at about its largest, migrated by the first leader.
            legacy_nodes = min(nodes, 300 if args.quick else 1500)
            old = cluster_document(legacy_nodes)
            del old["volumes"]  # 0.1.0 had no volume inventory
            data = json.dumps({"schema": 1, "state": old}, sort_keys=True, separators=(",", ":")).encode()
            raw.create("/bench/migrate/state", data, makepath=True)
            migrating = store_for(server, "migrate")
            assert migrating.acquire_leadership(timeout=10)
            started = time.perf_counter()
            migrated = migrating.read()
            add(
                f"migrate.n{legacy_nodes}",
                f"[N={legacy_nodes:,}] migration of a 0.1.0 document of {len(data):,} bytes",
                time.perf_counter() - started,
                "s",
            )
            assert migrated is not None and migrated.document == old
            migrating.close()
        finally:
            raw.stop()
            raw.close()
            server.stop()

    if args.json:
        print(
            json.dumps(
                {"python": platform.python_version(), "machine": platform.machine(), "figures": figures}, indent=2
            )
        )
    else:
        print(
            f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), ZooKeeper on 127.0.0.1"
        )
        for figure in figures:
            print(f"{figure['label']:<80} {figure['value']:>12.1f} {figure['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
