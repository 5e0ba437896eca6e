"""Replacement latency: the scheduler's share of replacing a node whose executor was killed.

Runs the development cluster of local mode (``es_framework/dev/local.py``): the development Mesos
master in this process, executors as real processes running the demo Elasticsearch node, and the
production scheduler (``run_scheduler``, pymesos, the file state store) in a thread. Once every node
runs and reported healthy, it SIGKILLs one node's executor, N times in turn, and reads the times off
the master (one clock, ``time.time``): the events it sent (its event log) and the calls it received
(``handle_call`` wrapped).

For each replacement:

- **failure → ACCEPT**: the master sends the node's ``TASK_FAILED`` → it receives the ACCEPT that
  relaunches that node id;
- **failure → RUNNING**: the same → it sends the new task's ``TASK_RUNNING`` (the demo node answers);
- **scheduler's share**: the time the scheduler held the ball: ``TASK_FAILED`` sent → REVIVE
  received (the update read, the state written, REVIVE sent), plus the accepted offer sent →
  ACCEPT received (the offer judged, the launch written first). The master's allocation after the
  REVIVE and the executor's start are not the scheduler's;
- **share of failure → RUNNING**: the scheduler's share over failure → RUNNING.

The agent's detection of the exit comes before ``TASK_FAILED`` and is in none of them. The
scheduler shares its process (and the GIL) with the development master here, so its share is, if
anything, overstated.

Usage: ``python3 benchmarks/replacement.py [--quick] [--json] [--repeat N]`` (about 1 s per
replacement after a 10 s start; ``--quick`` does 3).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# pymesos installs a SIGINT handler when imported, which only the main thread may do; the scheduler
# runs in a thread here, so it is imported first.
import pymesos  # noqa: E402, F401

from es_framework.config import resolve_config  # noqa: E402
from es_framework.core.failures import HEALTHY_AFTER_S  # noqa: E402
from es_framework.dev.devcluster import DevMaster  # noqa: E402
from es_framework.dev.local import run_local  # noqa: E402
from es_framework.dev.ports import free_port  # noqa: E402

FW = "elasticsearch"
NODES = 3
#: Seconds between a replacement and the next kill (of another node).
SETTLE_S = 1.0


def node_of(task_id: str) -> int | None:
    prefix = f"{FW}-node"
    if not task_id.startswith(prefix):
        return None
    head = task_id[len(prefix) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


class Recorder:
    """The calls the master received, with when (``time.time``, as its event log)."""

    def __init__(self, master: DevMaster) -> None:
        self.calls: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        original = master.handle_call

        def recording(call: object, stream_id: str | None) -> None:
            if isinstance(call, dict):
                with self._lock:
                    self.calls.append((time.time(), call))
            original(call, stream_id)

        master.handle_call = recording  # type: ignore[method-assign]

    def since(self, when: float) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [(t, c) for t, c in self.calls if t >= when]


def events_since(master: DevMaster, when: float) -> list[tuple[float, dict[str, Any]]]:
    with master._lock:  # the event log's own lock; a development-tool benchmark may read it
        return [(t, e) for t, _, e in master._state.event_log if t >= when]


def updates(events: list[tuple[float, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    return [(t, e["update"]["status"]) for t, e in events if e.get("type") == "UPDATE"]


@dataclass(frozen=True)
class Replacement:
    node_id: int
    to_accept: float
    to_running: float
    scheduler: float
    revived: bool
    #: The accepted offer sent → ACCEPT received (the scheduler's second part).
    offer_to_accept: float

    @property
    def share(self) -> float:
        return self.scheduler / self.to_running


#: Set once the scheduler's thread is running; the waits give up when it has ended.
RUNNER: list[threading.Thread] = []


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if RUNNER and not RUNNER[0].is_alive():
            raise SystemExit(f"benchmark aborted: the scheduler stopped while waiting for {what}")
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise SystemExit(f"benchmark aborted: no {what} within {timeout:.0f}s")


def ready_task(master: DevMaster, node_id: int, since: float) -> str | None:
    """Node ``node_id``'s live task once it had a healthy period (the scheduler's rule: its executor
    last reported it healthy, or it has run :data:`HEALTHY_AFTER_S`), so its failure is no crash loop."""
    live = [
        e["task_id"] for e in master.state()["executors"] if e["exit_code"] is None and node_of(e["task_id"]) == node_id
    ]
    if not live:
        return None
    (task_id,) = live
    healthy, first_running = False, None
    for t, s in updates(events_since(master, since)):
        if s["task_id"]["value"] == task_id and s["state"] == "TASK_RUNNING":
            first_running = first_running if first_running is not None else t
            healthy = s.get("healthy", healthy) is True
    if first_running is None:
        return None
    return task_id if healthy or time.time() - first_running > HEALTHY_AFTER_S + 1 else None


def replace_once(master: DevMaster, recorder: Recorder, node_id: int, task_id: str) -> Replacement:
    (executor,) = [e for e in master.state()["executors"] if e["task_id"] == task_id]
    killed_at = time.time()
    os.kill(executor["pid"], signal.SIGKILL)

    def running() -> tuple[float, str] | None:
        for t, s in updates(events_since(master, killed_at)):
            new = s["task_id"]["value"]
            if s["state"] == "TASK_RUNNING" and new != task_id and node_of(new) == node_id:
                return t, new
        return None

    running_at, new_task = wait_for(f"replacement of node {node_id}", running, 60)
    events = events_since(master, killed_at)
    (failed_at,) = [t for t, s in updates(events) if s["task_id"]["value"] == task_id and s["state"] == "TASK_FAILED"][
        :1
    ]
    calls = recorder.since(failed_at)
    accept_at, offer_ids = next(
        (t, {o["value"] for o in c["accept"]["offer_ids"]})
        for t, c in calls
        if c.get("type") == "ACCEPT"
        and any(
            i["task_id"]["value"] == new_task
            for op in c["accept"].get("operations", [])
            for i in op.get("launch", {}).get("task_infos", [])
        )
    )
    offered_at = next(
        t
        for t, e in events
        if e.get("type") == "OFFERS" and {o["id"]["value"] for o in e["offers"]["offers"]} & offer_ids
    )
    revive_at = next((t for t, c in calls if c.get("type") == "REVIVE" and t <= offered_at), None)
    # Without a REVIVE (offers were not suppressed) the scheduler's part before the offer is nil:
    # it waited for the master's next allocation, which is the master's share.
    scheduler = (accept_at - offered_at) + ((revive_at - failed_at) if revive_at is not None else 0.0)
    return Replacement(
        node_id, accept_at - failed_at, running_at - failed_at, scheduler, revive_at is not None, accept_at - offered_at
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 replacements (CI smoke test)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeat", type=int, default=None, help="replacements (default 20, --quick 3)")
    parser.add_argument("--verbose", action="store_true", help="log the scheduler and the master at INFO")
    args = parser.parse_args(argv)
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 20)
    if repeat < 1:
        parser.error("--repeat: at least 1")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(name)s %(message)s")

    began = time.monotonic()
    results: list[Replacement] = []
    with tempfile.TemporaryDirectory(prefix="es-mesos-replacement-") as workdir:
        config = resolve_config(
            {
                "mesosMaster": "local",
                "localAgents": str(NODES),
                "elasticsearchNodes": str(NODES),
                "localWorkDir": workdir,
                "webUiPort": str(free_port()),
            }
        )
        stop = threading.Event()
        started: list[DevMaster] = []
        runner = threading.Thread(
            target=run_local, args=(config, stop), kwargs={"on_started": started.append}, daemon=True
        )
        runner.start()
        RUNNER.append(runner)
        try:
            master = wait_for("development master", lambda: started[0] if started else None, 30)
            recorder = Recorder(master)
            start = time.time()
            for n in range(repeat):
                node_id = 1 + n % NODES
                task_id = wait_for(f"node {node_id} healthy", partial(ready_task, master, node_id, start), 120)
                results.append(replace_once(master, recorder, node_id, task_id))
                time.sleep(SETTLE_S)
        finally:
            stop.set()
            runner.join(timeout=30)

    to_accept = [r.to_accept for r in results]
    to_running = [r.to_running for r in results]
    share = [r.scheduler for r in results]
    percent = [100 * r.share for r in results]
    figures = [
        (
            "accept_median_ms",
            "failure update sent → ACCEPT received, median",
            1000 * statistics.median(to_accept),
            "ms",
        ),
        ("accept_p95_ms", "failure update sent → ACCEPT received, p95", 1000 * percentile(to_accept, 0.95), "ms"),
        (
            "running_median_ms",
            "failure update sent → TASK_RUNNING sent, median",
            1000 * statistics.median(to_running),
            "ms",
        ),
        ("running_p95_ms", "failure update sent → TASK_RUNNING sent, p95", 1000 * percentile(to_running, 0.95), "ms"),
        (
            "scheduler_median_ms",
            "scheduler's share (update → REVIVE, offer → ACCEPT), median",
            1000 * statistics.median(share),
            "ms",
        ),
        ("scheduler_p95_ms", "scheduler's share, p95", 1000 * percentile(share, 0.95), "ms"),
        (
            "offer_to_accept_median_ms",
            "of which offer sent → ACCEPT received, median",
            1000 * statistics.median(r.offer_to_accept for r in results),
            "ms",
        ),
        ("share_median_pct", "scheduler's share of failure → RUNNING, median", statistics.median(percent), "%"),
        ("share_p95_pct", "scheduler's share of failure → RUNNING, p95", percentile(percent, 0.95), "%"),
        ("revived", "replacements whose failure was followed by a REVIVE", sum(r.revived for r in results), "count"),
    ]
    environment = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "replacements": len(results),
    }
    runtime = time.monotonic() - began
    if args.json:
        print(
            json.dumps(
                {
                    "environment": environment,
                    "mode": "quick" if args.quick else "full",
                    "statistic": "median and p95 over replacements",
                    "figures": [
                        {"key": k, "label": label, "value": round(v, 3), "unit": u} for k, label, v, u in figures
                    ],
                    "runtime_s": round(runtime, 1),
                },
                indent=2,
            )
        )
    else:
        print(f"CPython {environment['python']}, {environment['cpus']} CPUs, {environment['platform']}")
        print(f"{len(results)} replacements of a node whose executor was SIGKILLed (development cluster, demo node)")
        for _, label, value, unit in figures:
            print(f"  {label}: {value:.1f} {unit}" if unit != "count" else f"  {label}: {value:.0f}")
        print(f"({runtime:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
