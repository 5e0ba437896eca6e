"""End-to-end scale figures: the real ``es-framework`` process, real ZooKeeper and the development
master with N fake agents (fake executors: no processes, no loopback addresses), N nodes.

- ``launch_s``: from the scheduler's start until the master has N running tasks;
- ``rss_mb``: the scheduler process's resident memory (``VmRSS``) once all N run and it has settled,
  and its peak (``VmHWM``);
- ``failover_*``: the scheduler is SIGKILLed and started again: seconds from the new process's start
  until it leads (``leading cluster``), and until it has loaded the state and sent its
  reconciliation request (``reconciling N known task(s)``), as its log timestamps say;
- ``reconciled_s``: until the master's framework is subscribed again with N running tasks (what the
  operator sees).

Usage: ``python3 benchmarks/cluster_scale.py [--nodes 10000] [--json]`` from the repository root with
the development set-up (``bash scripts/setup.sh --dev``) and ZooKeeper installed (Debian ``zookeeper``).
A development tool's benchmark: the development master is Python too and shares the machine's CPUs,
so the figures are an upper bound of what the scheduler itself costs.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from es_framework.dev.devcluster import AgentSpec, DevMaster  # noqa: E402
from es_framework.dev.devcluster.executors import FakeExecutorBackend  # noqa: E402
from es_framework.dev.ports import free_port  # noqa: E402
from es_framework.dev.zookeeper import ZooKeeperServer  # noqa: E402

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def agents(n: int) -> list[AgentSpec]:
    """N agents with room for one node each; distinct ids and host names, one shared loopback IP."""
    return [AgentSpec(id=f"scale{i}-S0", hostname=f"scale-agent-{i}", cpus=2.0, mem=4096.0) for i in range(1, n + 1)]


def memory_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = (line.split(":", 1) for line in status.splitlines())
    return {k: int(v.split()[0]) for k, v in fields if k in ("VmRSS", "VmHWM")}


def running(master: DevMaster) -> int:
    return master.task_states().get("TASK_RUNNING", 0)


def log_time(log: Path, text: str, after: float) -> float | None:
    """The wall-clock time of the first line containing ``text`` (None if none yet)."""
    for line in log.read_text(errors="replace").splitlines():
        if text in line and (m := _STAMP.match(line)):
            stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if stamp >= after - 1:
                return stamp
    return None


def wait(what: str, predicate: Any, timeout: float, step: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(step)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--logs", type=Path, help="copy the schedulers' logs into this directory")
    args = parser.parse_args()
    n = args.nodes
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="es-mesos-scale-") as tmp:
        work = Path(tmp)
        zookeeper = ZooKeeperServer(work / "zk")
        zookeeper.start()
        master = DevMaster(agents(n), backend=FakeExecutorBackend(healthy=True))
        master.start()
        command = [
            sys.executable,
            "-m",
            "es_framework",
            "--mesosMaster",
            master.address,
            "--frameworkStateUrl",
            f"zk://{zookeeper.hosts}",
            "--elasticsearchClusterName",
            "scale",
            "--elasticsearchNodes",
            str(n),
            "--externalVolumeDriver",
            "rexray",
            "--elasticsearchMasterNodes",
            "3",
            "--webUiPort",
            str(free_port()),
            "--insecureApi",  # the benchmark sends the API nothing; without a token it must opt out
            "true",
        ]
        process: subprocess.Popen[bytes] | None = None
        try:
            log = work / "scheduler-1.log"
            started = time.time()
            with log.open("wb") as out:
                process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            wait(f"{n} running tasks", lambda: running(master) >= n, args.timeout, 1.0)
            figures["launch_s"] = round(time.time() - started, 1)
            time.sleep(5)  # health reports and the monitor's first rounds
            memory = memory_kb(process.pid)
            figures["rss_mb"] = round(memory["VmRSS"] / 1024, 1)
            figures["rss_peak_mb"] = round(memory["VmHWM"] / 1024, 1)

            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            log = work / "scheduler-2.log"
            started = time.time()
            with log.open("wb") as out:
                process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            led = wait("the new scheduler to lead", lambda: log_time(log, "leading cluster", started), 120)
            sent = wait("its reconciliation", lambda: log_time(log, "known task(s), then all tasks", started), 300)
            figures["failover_lead_s"] = round(led - started, 2)
            figures["failover_reconcile_s"] = round(sent - started, 2)
            figures["failover_reconcile_after_lead_s"] = round(sent - led, 2)
            wait(f"{n} running tasks again", lambda: running(master) >= n, args.timeout, 1.0)
            figures["reconciled_s"] = round(time.time() - started, 1)
            time.sleep(5)
            memory = memory_kb(process.pid)
            figures["rss_after_failover_mb"] = round(memory["VmRSS"] / 1024, 1)
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            master.stop()
            zookeeper.stop()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for path in work.glob("scheduler-*.log"):
                    shutil.copy(path, args.logs / path.name)
    environment = {"python": platform.python_version(), "machine": platform.machine(), "nodes": n}
    if args.json:
        print(json.dumps({"environment": environment, "figures": figures}))
    else:
        print(f"# {environment}")
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
