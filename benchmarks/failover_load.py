"""A new leader's start at N nodes, against a real ZooKeeper, in a fresh process: how long from
holding the leader lock to the reconciliation request, and the process's RSS afterwards.

The parent starts ZooKeeper (as the tests do: es_framework/dev/zookeeper.py), writes a cluster of N
running nodes with their volume sets through the production store (layout 2: one ``cluster``
znode, one ``nodes/<id>`` znode per node) and lets a first leader register once, so that the stored
configuration record matches and the failover is a clean one (nothing to write). Then, for each
repeat, a fresh Python process (``--child``) imports what the scheduler imports, connects, takes the
leader lock and does exactly what ``es_framework.app.run.run_scheduler`` and the driver shell do
until the reconciliation request goes out, phase by phase:

- ``read``: :meth:`ZooKeeperStateStore.read` (the cluster znode, the children, N node znodes with
  pipelined asynchronous reads, decoding and the count/digest checks), through ``EngineStore.load``;
- ``engine``: the rest of ``Engine(...)``: decoding the document into a ``ClusterState`` and the
  engine's views;
- ``shell``: ``check_state_startable`` and the driver shell (``SchedulerShell``) built over the engine;
- ``registered``: ``Engine.on_registered`` (what SUBSCRIBED runs: the configuration record, the
  reconcile call of every known task, pending kills, offer interest, the seed-host messages), whose
  calls the shell then sends, the reconcile first.

The Mesos round trip of the subscription itself is not in these figures (``cluster_scale.py``
measures the whole failover end to end, with a development master, in about 30 min at 10,000).
RSS is the child's ``VmRSS`` after the load and ``VmHWM`` (peak), and ``imports``, the RSS before
the lock is taken, says how much of it is the interpreter and the code.

Usage: ``python3 benchmarks/failover_load.py [--nodes N] [--repeats R] [--quick] [--json]``
(``--quick``: 200 nodes, one repeat; N = 10,000 takes about a minute).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from state_store import cluster_state  # noqa: E402  (this directory: the same N records as the store benchmark)

from es_framework.app.run import load_engine  # noqa: E402
from es_framework.app.startup import check_state_startable  # noqa: E402
from es_framework.app.store import EngineStore  # noqa: E402
from es_framework.config import resolve_config  # noqa: E402
from es_framework.core.engine import Engine  # noqa: E402
from es_framework.core.mesos_calls import Reconcile  # noqa: E402
from es_framework.core.state_document import state_to_json  # noqa: E402
from es_framework.dev.zookeeper import ZooKeeperServer, zookeeper_problem  # noqa: E402
from es_framework.shell.driver import SchedulerShell  # noqa: E402
from es_framework.shell.memory import release_free_memory  # noqa: E402
from es_framework.shell.state_store import StoredState, ZooKeeperStateStore, open_state_store  # noqa: E402
from strategies import strategy_for  # noqa: E402

FRAMEWORK = "elasticsearch"  # the task ids of state_store.cluster_state name it
FRAMEWORK_ID = "fw-bench"
#: The flags of both leaders (the same configuration record: a clean failover).
FLAGS = {"externalVolumeDriver": "rexray", "frameworkName": FRAMEWORK}


def rss_kb() -> tuple[int, int]:
    """This process's resident set and its peak (``VmRSS``, ``VmHWM``), in KB."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def child(hosts: str, cluster: str, nodes: int, profile: str | None, trace: bool) -> dict[str, Any]:
    """One new leader, timed phase by phase (see the module docstring). Runs in its own process."""
    logging.basicConfig(level=logging.WARNING)
    config = resolve_config({**FLAGS, "elasticsearchClusterName": cluster, "elasticsearchNodes": str(nodes)})
    store = open_state_store(f"zk://{hosts}", framework_name=FRAMEWORK, cluster_name=cluster, session_timeout_ms=10_000)
    assert isinstance(store, ZooKeeperStateStore)
    store.start(timeout=10)
    imports_rss, _ = rss_kb()
    assert store.acquire_leadership(timeout=10)
    marks: dict[str, float] = {}

    read = store.read

    def timed_read() -> StoredState | None:
        stored = read()
        marks["read"] = time.perf_counter()
        return stored

    store.read = timed_read  # type: ignore[method-assign]

    if trace:
        tracemalloc.start()
    profiler = None
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
    led, led_cpu = time.perf_counter(), time.process_time()
    engine = load_engine(config, store)
    marks["engine"] = time.perf_counter()
    check_state_startable(engine.config, engine.state)
    shell = SchedulerShell(config, engine, lock=store)
    marks["shell"] = time.perf_counter()
    calls = engine.on_registered(FRAMEWORK_ID)
    marks["registered"] = time.perf_counter()
    cpu = time.process_time() - led_cpu
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    if trace:
        snapshot = tracemalloc.take_snapshot()
        for stat in snapshot.statistics("lineno")[:25]:
            print(stat, file=sys.stderr)
    reconciled = [call for call in calls if isinstance(call, Reconcile) and call.tasks]
    assert len(engine.state.nodes) == nodes, len(engine.state.nodes)
    assert reconciled and len(reconciled[0].tasks) == nodes, "the reconcile call names every task"
    rss, peak = rss_kb()
    del calls, reconciled
    gc.collect()
    release_free_memory()
    trimmed, _ = rss_kb()
    result = {
        "trimmed_kb": trimmed,
        "read_s": marks["read"] - led,
        "engine_s": marks["engine"] - marks["read"],
        "shell_s": marks["shell"] - marks["engine"],
        "registered_s": marks["registered"] - marks["shell"],
        "total_s": marks["registered"] - led,
        "cpu_s": cpu,
        "rss_kb": rss,
        "peak_kb": peak,
        "imports_kb": imports_rss,
    }
    del shell
    store.close()
    return result


def prepare(hosts: str, cluster: str, nodes: int) -> None:
    """Write N running nodes through the production store and register once as a first leader."""
    store = open_state_store(f"zk://{hosts}", framework_name=FRAMEWORK, cluster_name=cluster, session_timeout_ms=10_000)
    assert isinstance(store, ZooKeeperStateStore)
    store.start(timeout=10)
    try:
        assert store.acquire_leadership(timeout=10)
        store.create(state_to_json(cluster_state(nodes)))
        config = resolve_config({**FLAGS, "elasticsearchClusterName": cluster, "elasticsearchNodes": str(nodes)})
        engine = Engine(config, EngineStore(store), clock=time.time, strategy=strategy_for(config))
        engine.on_registered(FRAMEWORK_ID)  # records the configuration: the failovers write nothing
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10_000, help="running nodes in the state (default 10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="new leaders, each a fresh process (default 3)")
    parser.add_argument("--quick", action="store_true", help="200 nodes, one repeat (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the first new leader into FILE")
    parser.add_argument("--tracemalloc", action="store_true", help="print where the first new leader's memory is")
    parser.add_argument("--zookeeper", metavar="HOSTS", help="use this ZooKeeper (host:port) instead of starting one")
    parser.add_argument("--child", metavar="HOSTS", help=argparse.SUPPRESS)
    parser.add_argument("--cluster", default="failover", help=argparse.SUPPRESS)
    args = parser.parse_args()
    nodes = 200 if args.quick else args.nodes
    repeats = 1 if args.quick else args.repeats
    if nodes < 1 or repeats < 1:
        parser.error("--nodes and --repeats must be at least 1")
    if args.child:
        print(json.dumps(child(args.child, args.cluster, nodes, args.profile, args.tracemalloc)))
        return 0

    runs: list[dict[str, Any]] = []
    cluster = f"failover-{uuid.uuid4().hex[:8]}"

    def measure(hosts: str) -> float:
        started = time.perf_counter()
        prepare(hosts, cluster, nodes)
        written_s = time.perf_counter() - started
        for number in range(repeats):
            command = [sys.executable, str(Path(__file__).resolve()), "--child", hosts, "--cluster", cluster]
            command += ["--nodes", str(nodes)]
            if args.profile and number == 0:
                command += ["--profile", args.profile]
            if args.tracemalloc and number == 0:
                command += ["--tracemalloc"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0 or (args.tracemalloc and number == 0):
                print(done.stderr, file=sys.stderr)
            if done.returncode != 0:
                raise SystemExit(1)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        return written_s

    if args.zookeeper:
        written_s = measure(args.zookeeper)
    else:
        problem = zookeeper_problem()
        if problem:
            print(f"cannot run: {problem}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="esm-bench-failover-") as workdir:
            server = ZooKeeperServer(Path(workdir))
            server.start()
            try:
                written_s = measure(server.hosts)
            finally:
                server.stop()

    def best(name: str) -> float:
        return float(min(run[name] for run in runs))

    n = f"n{nodes}"
    figures = [
        ("total", "lock held → reconcile built (all phases)", best("total_s"), "s"),
        ("cpu", "  CPU of the process (all threads) meanwhile", best("cpu_s"), "s"),
        ("read", "  read: cluster znode + N node znodes, decoded and checked", best("read_s"), "s"),
        ("engine", "  engine: document → ClusterState, the engine's views", best("engine_s"), "s"),
        ("shell", "  shell: startable check, driver shell", best("shell_s"), "s"),
        ("registered", "  registered: on_registered (reconcile, kills, seeds)", best("registered_s"), "s"),
        ("rss", "RSS after the load", max(run["rss_kb"] for run in runs) / 1024, "MB"),
        (
            "trimmed_rss",
            "RSS once the reconcile call is sent and dropped (gc.collect, malloc_trim)",
            max(run["trimmed_kb"] for run in runs) / 1024,
            "MB",
        ),
        ("peak_rss", "peak RSS (VmHWM)", max(run["peak_kb"] for run in runs) / 1024, "MB"),
        (
            "imports_rss",
            "RSS before the lock (interpreter, code, client)",
            max(run["imports_kb"] for run in runs) / 1024,
            "MB",
        ),
        ("prepare", "writing the state and a first registration (parent, once)", written_s, "s"),
    ]
    report = [
        {"key": f"failover.{n}.{key}", "label": f"[N={nodes:,}] {label}", "value": round(value, 3), "unit": unit}
        for key, label, value, unit in figures
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "repeats": repeats,
                    "figures": report,
                },
                indent=2,
            )
        )
    else:
        print(f"Python {platform.python_version()} on {platform.machine()}, ZooKeeper on 127.0.0.1, best of {repeats}")
        for figure in report:
            print(f"{figure['label']:<80} {figure['value']:>10.3f} {figure['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
