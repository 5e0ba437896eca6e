"""Scheduler figures: what a status update costs as the cluster grows, reconciling known tasks after
failover, and the engine's cost per offer cycle.

Runs the real :class:`es_framework.core.engine.Engine` (state written as JSON to an in-memory store,
so serialisation is counted but ZooKeeper's round trip is not) on a cluster of N running nodes:

- per update: one status update at a time on a cluster that is already reconciled: an unchanged
  one (a duplicate TASK_RUNNING, as every health report is) and a changed one (health flips), the
  latter with the state write and without it (the engine's own share: a store that keeps the state
  object and serialises nothing);
- reconcile: re-registration after failover, then one reconciliation answer per known task
  (all unchanged, as after a clean failover) and, separately, the same with every node's state
  changing, batched as the driver hands them over (one write) and one at a time (one write each;
  above 2,000 nodes measured over the first answers and scaled to N, which the figure's label says);
- offer cycle: one OFFERS event with a batch of offers while one node is missing (one launch,
  the rest declined) and while none is (all declined);
- bytes of state written for one changed update (after the engine's first write, only the cluster
  part and the changed node's entry, as ZooKeeper's layout 2 stores them).

Usage: ``python3 benchmarks/scheduler_bench.py [--quick] [--json] [--sizes 1000,10000]``
(about 2 min; ``--quick``: N = 100 and no per-update figures, 1 s). ``--json`` adds ``ratio.update.unchanged`` and
``ratio.update.changed_no_write``: the per-update cost at the largest N over that at the smallest.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from es_framework.config import resolve_config  # noqa: E402
from es_framework.core.engine import Engine  # noqa: E402
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState  # noqa: E402
from es_framework.core.state_changes import StateChanges  # noqa: E402
from es_framework.core.state_document import state_to_json  # noqa: E402
from identity.naming import volume_names  # noqa: E402
from identity.task_ids import task_id_for  # noqa: E402
from strategies import strategy_for  # noqa: E402


class MemoryStore:
    def __init__(self, document: dict[str, Any] | None) -> None:
        self.document = document
        self.version = 0 if document else -1
        self.bytes_written = 0

    def load(self) -> tuple[dict[str, Any] | None, int]:
        return self.document, self.version

    def save(self, document: dict[str, Any], version: int) -> int:
        # Serialise as the real store does, so that cost is measured.
        text = json.dumps(document)
        self.bytes_written += len(text.encode("utf-8"))
        self.document = json.loads(text)
        self.version += 1
        return self.version

    def save_changes(self, changes: StateChanges, version: int) -> int:
        # As ZooKeeper's layout 2 writes it: the cluster part and each changed node's entry (the
        # document kept for ``load`` is not updated: the engines here load once, before writing).
        texts = [json.dumps(changes.cluster), *(json.dumps(entry) for entry in changes.entries.values())]
        self.bytes_written += sum(len(text.encode("utf-8")) for text in texts)
        self.version += 1
        return self.version


def cluster_document(nodes: int, missing: int) -> dict[str, Any]:
    records = {}
    for node_id in range(1, nodes - missing + 1):
        records[node_id] = NodeRecord(
            node_id=node_id,
            task_id=task_id_for("elasticsearch", node_id, f"{node_id:032x}"),
            agent_id=f"agent-{node_id}",
            hostname=f"host{node_id}.example.com",
            http_port=31000,
            transport_port=31001,
            state=TaskState.RUNNING,
            seen_running=True,
            volumes=volume_names("elasticsearch", node_id),
        )
    return state_to_json(ClusterState(desired_nodes=nodes, nodes=records, framework_id="fw-bench"))


def offer(n: int) -> dict[str, Any]:
    def scalar(name: str, value: float) -> dict[str, Any]:
        return {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}

    return {
        "id": {"value": f"offer-{n}"},
        "agent_id": {"value": f"spare-agent-{n}"},
        "hostname": f"spare{n}.example.com",
        "resources": [
            scalar("cpus", 8),
            scalar("mem", 32768),
            scalar("disk", 100000),
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}, "role": "*"},
        ],
    }


class NoWriteEngine(Engine):
    """The engine without its state write: the engine's own share of an update."""

    def _persist(self, state: ClusterState) -> bool:
        self.state = state
        return True


def engine_for(nodes: int, missing: int, kind: type[Engine] = Engine) -> Engine:
    config = resolve_config({"externalVolumeDriver": "rexray", "elasticsearchNodes": str(nodes)})
    return kind(config, MemoryStore(cluster_document(nodes, missing)), clock=time.time, strategy=strategy_for(config))


def reconciled(nodes: int, kind: type[Engine] = Engine) -> Engine:
    """An engine whose cluster is registered and reconciled (every node RUNNING, seen healthy)."""
    engine = engine_for(nodes, 0, kind)
    engine.on_registered("fw-bench")
    engine.on_updates(reconcile_answers(engine, "TASK_RUNNING"))
    return engine


def per_update(engine: Engine, healthy: bool | None, count: int) -> float:
    """Seconds per status update, over ``count`` updates spread over the cluster, one at a time."""
    records = list(engine.state.nodes.values())
    step = max(1, len(records) // count)
    updates = [
        {
            "task_id": {"value": r.task_id},
            "agent_id": {"value": r.agent_id},
            "state": "TASK_RUNNING",
            **({} if healthy is None else {"healthy": healthy}),
        }
        for r in records[::step][:count]
    ]
    gc.disable()
    try:
        start = time.perf_counter()
        for update in updates:
            engine.on_update(update)
        return (time.perf_counter() - start) / len(updates)
    finally:
        gc.enable()


def best(repeat: int, setup: Callable[[], Any], run: Callable[[Any], None]) -> float:
    times = []
    for _ in range(repeat):
        subject = setup()
        start = time.perf_counter()
        run(subject)
        times.append(time.perf_counter() - start)
    return min(times)


def reconcile_answers(engine: Engine, state: str) -> list[dict[str, Any]]:
    return [
        {
            "task_id": {"value": r.task_id},
            "agent_id": {"value": r.agent_id},
            "state": state,
            "reason": "REASON_RECONCILIATION",
        }
        for r in engine.state.nodes.values()
    ]


def run_offers(offers: list[dict[str, Any]], engine: Engine) -> None:
    engine.on_offers(offers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--sizes", help="running nodes, comma-separated (default 1000,10000)")
    args = parser.parse_args()
    sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else (100,) if args.quick else (1000, 10000)
    # Reconciliation is slow enough at 1,000 nodes that one run is a fair figure.
    repeat = 1
    batch = 20
    figures: list[dict[str, Any]] = []

    def add(key: str, label: str, value: float, unit: str) -> None:
        figures.append({"key": key, "label": label, "value": value, "unit": unit})

    for nodes in sizes:
        count = min(nodes, 200)
        engine = reconciled(nodes)
        add(
            f"update.n{nodes}.unchanged",
            f"[N={nodes:,}] one status update, unchanged (duplicate TASK_RUNNING), per update",
            per_update(engine, None, count) * 1000,
            "ms",
        )
        store = engine._store
        assert isinstance(store, MemoryStore)
        written = store.bytes_written
        add(
            f"update.n{nodes}.changed",
            f"[N={nodes:,}] one status update, changed (health flips), with the state write, per update",
            per_update(engine, False, count) * 1000,
            "ms",
        )
        add(
            f"write.n{nodes}.bytes_per_changed_update",
            f"[N={nodes:,}] bytes of state written for one changed update (cluster part + its node)",
            (store.bytes_written - written) / count,
            "bytes",
        )
        add(
            f"update.n{nodes}.changed_no_write",
            f"[N={nodes:,}] one status update, changed, the engine's share (no state write), per update",
            per_update(reconciled(nodes, NoWriteEngine), False, count) * 1000,
            "ms",
        )

        def failover_unchanged(engine: Engine) -> None:
            engine.on_registered("fw-bench")
            for answer in reconcile_answers(engine, "TASK_RUNNING"):
                engine.on_update(answer)

        # One write of the whole document per answer: beyond 2,000 nodes that is many minutes, so the
        # first answers are timed and the figure scaled to N.
        sample = min(nodes, 2000 if nodes <= 2000 else 200)

        def failover_changed_one_by_one(engine: Engine, sample: int = sample) -> None:
            engine.on_registered("fw-bench")
            for answer in reconcile_answers(engine, "TASK_UNREACHABLE")[:sample]:
                engine.on_update(answer)

        seconds = best(repeat, partial(engine_for, nodes, 0), failover_unchanged)
        add(
            f"reconcile.n{nodes}.unchanged",
            f"[N={nodes:,}] reconcile after failover, states unchanged",
            seconds * 1000,
            "ms",
        )

        def failover_changed_batched(engine: Engine) -> None:
            engine.on_registered("fw-bench")
            engine.on_updates(reconcile_answers(engine, "TASK_UNREACHABLE"))

        seconds = best(repeat, partial(engine_for, nodes, 0), failover_changed_batched)
        add(
            f"reconcile.n{nodes}.changed",
            f"[N={nodes:,}] reconcile after failover, every state changes, answers batched (one write)",
            seconds * 1000,
            "ms",
        )
        seconds = best(repeat, partial(engine_for, nodes, 0), failover_changed_one_by_one)
        scaled = f", {sample:,} answers timed, scaled to {nodes:,}" if sample < nodes else ""
        add(
            f"reconcile.n{nodes}.changed_unbatched",
            f"[N={nodes:,}] the same, one answer at a time (one write each{scaled})",
            seconds * 1000 * nodes / sample,
            "ms",
        )

        offers = [offer(i) for i in range(batch)]
        seconds = best(repeat * 5, partial(engine_for, nodes, 1), partial(run_offers, offers))
        add(
            f"offers.n{nodes}.one_launch",
            f"[N={nodes:,}] offer cycle of {batch} offers, 1 node missing (1 launch + write, {batch - 1} declines)",
            seconds * 1000,
            "ms",
        )
        seconds = best(repeat * 5, partial(engine_for, nodes, 0), partial(run_offers, offers))
        add(
            f"offers.n{nodes}.complete",
            f"[N={nodes:,}] offer cycle of {batch} offers, cluster complete ({batch} declines)",
            seconds * 1000,
            "ms",
        )

    if len(sizes) > 1:
        by_key = {figure["key"]: figure["value"] for figure in figures}
        low, high = min(sizes), max(sizes)
        for what in ("unchanged", "changed_no_write"):
            add(
                f"ratio.update.{what}",
                f"per-update cost ({what}), N={high:,} over N={low:,} (flat: <= 2)",
                by_key[f"update.n{high}.{what}"] / by_key[f"update.n{low}.{what}"],
                "x",
            )
    if args.json:
        print(
            json.dumps(
                {"python": platform.python_version(), "machine": platform.machine(), "figures": figures}, indent=2
            )
        )
    else:
        print(f"Python {platform.python_version()} on {platform.machine()} ({platform.system()})")
        for figure in figures:
            digits = 3 if abs(figure["value"]) < 10 else 1
            print(f"{figure['label']:<100} {figure['value']:>12.{digits}f} {figure['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
