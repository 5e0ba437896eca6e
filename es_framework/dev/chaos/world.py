"""The system the chaos runner breaks: a real ZooKeeper, the development master in this process (fake
executors, or in ``process`` mode real executor processes running demo Elasticsearch nodes) and two
real scheduler processes (``python -m es_framework``, the production command) on
one state, one leading and one waiting for the lock.

Everything the faults and checks need is here: starting and signalling schedulers, the leader's
REST API, snapshots of the master (live tasks, the attachment ledger) and of the stored state (read
as a scheduler that does not lead reads it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from es_framework.dev.chaos.invariants import LiveTask, StoredNode, TaskLife
from es_framework.dev.chaos.observe import CallRecorder, LockWatcher
from es_framework.dev.devcluster import AgentSpec, DevMaster, FakeExecutorBackend, ProcessExecutorBackend
from es_framework.dev.devcluster.loopback_agents import loopback_agent
from es_framework.dev.devcluster.tasks import TERMINAL_STATES
from es_framework.dev.ports import free_port
from es_framework.dev.zookeeper import ZooKeeperServer
from es_framework.shell.state_store import ZooKeeperStateStore, open_state_store
from identity.task_ids import try_node_id_from_task_id

logger = logging.getLogger(__name__)

FRAMEWORK = "elasticsearch"
#: The scheduler's ZooKeeper session for the run (``--zookeeperMesosTimeout``): short, so that a
#: paused or SIGKILLed leader loses the lock in seconds rather than in the production default
#: (20 s). ZooKeeper grants sessions of 2 to 20 ticks (``minSessionTimeout`` = 2 × ``tickTime``;
#: the runner's server ticks every 500 ms, so 1000 ms would be granted); 2000 ms keeps kazoo's
#: read timeout (2/3 of the session, 1.3 s) above the scheduling hiccups of a loaded 2-core machine.
SESSION_TIMEOUT_MS = 2000
#: A lock sample older than this does not tell who leads now (the watcher samples every 50 ms).
LOCK_SAMPLE_MAX_AGE_S = 0.5
#: The session of the runner's own reader of the stored state. Kazoo waits this long for the answer
#: to its connect request, and a ZooKeeper just started accepts connections a moment before it
#: answers them: with the 20 s default a read after a ``ZOOKEEPER_RESTART`` was seen stuck for 18 s,
#: holding up the convergence wait. The reader holds no lock, so a session it loses costs nothing.
READER_SESSION_TIMEOUT_MS = 1500


#: ``python -m es_framework`` (the production command), with every thread's stack written to its log
#: on SIGUSR2: when the cluster does not converge, the runner asks both schedulers where they are stuck.
DUMPABLE_SCHEDULER = (
    "import faulthandler, runpy, signal, sys; "
    "faulthandler.register(signal.SIGUSR2, all_threads=True); "
    "sys.argv[0] = 'es_framework'; "
    "runpy.run_module('es_framework', run_name='__main__', alter_sys=True)"
)


class QuickZooKeeper(ZooKeeperServer):
    """The development ZooKeeper with a JVM that starts sooner (``ZOOKEEPER_RESTART`` starts it
    again and again): C1 compiler only, serial GC, the class-data archive, no perf-data file. It
    saves about a fifth of the 1.1 s start on the development VM; the server is the same."""

    JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto", "-XX:-UsePerfData")

    def command(self) -> list[str]:
        java, *rest = super().command()
        return [java, *self.JVM_FLAGS, *rest]


@dataclass(frozen=True)
class WorldSpec:
    nodes: int = 3
    agents: int = 5
    session_timeout_ms: int = SESSION_TIMEOUT_MS
    workdir: Path | None = None
    #: ``fake`` (in-memory executors) or ``process`` (real executors running demo Elasticsearch nodes).
    mode: str = "fake"


#: What the real executors run as Elasticsearch in ``process`` mode: the demo node.
DEMO_COMMAND = f"{sys.executable} -m es_framework.dev.demo_es"


def agent_specs(count: int, mode: str = "fake") -> list[AgentSpec]:
    if mode == "process":
        # One demo node per agent, each on its own loopback address (127.0.0.n).
        return [loopback_agent(i) for i in range(1, count + 1)]
    return [
        AgentSpec(id=f"agent{i}-S0", hostname=f"agent{i}.example.com", cpus=4, mem=8192) for i in range(1, count + 1)
    ]


@dataclass
class SchedulerProcess:
    """One slot of a scheduler: restarted in place, each run with its own log."""

    name: str
    args: list[str]
    api_port: int
    log_dir: Path
    runs: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_MESOS_", "ESMESOS_"))}
        with (self.log_dir / f"{self.name}-{self.runs}.log").open("wb") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        logger.info("scheduler %s started (pid %d)", self.name, self.process.pid)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def exit_status(self) -> int | None:
        """The process's exit status once it has ended (``None`` while it runs or before its start)."""
        return self.process.poll() if self.process is not None else None

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def dump_stacks(self) -> None:
        """Every thread's stack into the scheduler's log (``faulthandler``, SIGUSR2)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGUSR2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        path = self.log_dir / f"{self.name}-{self.runs}.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class World:
    """ZooKeeper, the development master and two schedulers; :meth:`close` ends every process it started."""

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self._tmp = None if spec.workdir else tempfile.TemporaryDirectory(prefix="es-chaos-")
        self.workdir = spec.workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The schedulers run as in production, so with an API token; the faults' API calls send it.
        self.api_token = secrets.token_urlsafe(32)
        self.api_token_file = self.workdir / "api-token"
        self.api_token_file.write_text(self.api_token, encoding="utf-8")
        self.cluster = f"chaos-{uuid.uuid4().hex[:8]}"
        self.zookeeper = QuickZooKeeper(self.workdir / "zookeeper")
        # In process mode the agents run the real executor, and it the demo Elasticsearch node.
        self.processes: ProcessExecutorBackend | None = None
        if spec.mode == "process":
            self.processes = ProcessExecutorBackend(
                self.workdir / "agents", extra_env={"ELASTICSEARCH_COMMAND": DEMO_COMMAND}
            )
        # Fake executors report their node healthy with TASK_RUNNING, as the node executor does once its
        # Elasticsearch answers green or yellow: without it every killed node would be a crash loop
        # to the scheduler (5 s back-off, doubling), which no real cluster with a working
        # Elasticsearch shows and which would make the run mostly waiting.
        self.master = DevMaster(
            agent_specs(spec.agents, spec.mode),
            backend=self.processes or FakeExecutorBackend(healthy=True),
            heartbeat_interval=1.0,
            status_update_resend_interval=1.0,
        )
        self.schedulers: list[SchedulerProcess] = []
        self.desired = spec.nodes
        #: ``(since, desired)``: every desired node count of the run, from when (``time.monotonic``).
        self.desired_history: list[tuple[float, int]] = [(0.0, spec.nodes)]
        #: The id of the rollout the runner started last (invariant ``rollout_kept``).
        self.last_rollout: str | None = None
        self.gone_agents: set[str] = set()
        self.lock: LockWatcher | None = None
        self.calls: CallRecorder | None = None
        self._store: ZooKeeperStateStore | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.zookeeper.start()
        self.master.start()
        self.calls = CallRecorder(self.master, self.scheduler_pids)
        root = f"/{FRAMEWORK}/{self.cluster}"
        self.lock = LockWatcher(self.zookeeper.hosts, f"{root}/leader").start()
        for name in ("a", "b"):
            self.schedulers.append(self._scheduler(name))
        for scheduler in self.schedulers:
            scheduler.start()

    def _scheduler(self, name: str) -> SchedulerProcess:
        port = free_port()
        args = [
            sys.executable,
            "-c",
            DUMPABLE_SCHEDULER,
            "--mesosMaster",
            self.master.address,
            "--frameworkStateUrl",
            self.zookeeper.url,
            "--elasticsearchClusterName",
            self.cluster,
            "--elasticsearchNodes",
            str(self.spec.nodes),
            "--externalVolumeDriver",
            "rexray",
            "--elasticsearchNofile",
            "20000",
            "--zookeeperMesosTimeout",
            str(self.spec.session_timeout_ms),
            "--webUiPort",
            str(port),
            "--apiTokenFile",
            str(self.api_token_file),
            # Given: the default secures a new cluster, and the runner's own clients (documents.py) speak
            # plain HTTP without the cluster's CA and password.
            "--elasticsearchSecurity",
            "off",
        ]
        return SchedulerProcess(name, args, port, self.workdir)

    def close(self) -> None:
        for scheduler in self.schedulers:
            with contextlib.suppress(Exception):
                scheduler.kill()
        if self.lock is not None:
            self.lock.stop()
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
        with contextlib.suppress(Exception):
            self.master.stop()
        self.zookeeper.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ schedulers

    def scheduler_pids(self) -> list[int]:
        return [pid for s in self.schedulers if (pid := s.pid) is not None]

    def leader(self) -> SchedulerProcess | None:
        """The scheduler whose process holds the leader lock now (sampled)."""
        holder = self.lock.latest() if self.lock is not None else None
        return next((s for s in self.schedulers if holder is not None and s.pid == holder), None)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request to the leader's REST API; ``(0, reason)`` when there is no leader or it does not answer."""
        leader = self.leader()
        if leader is None:
            return 0, "no leader"
        try:
            answer = requests.request(
                method,
                f"http://127.0.0.1:{leader.api_port}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self.api_token}"},
                timeout=10,
            )
        except requests.RequestException as problem:
            return 0, str(problem)
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, answer.text

    # ------------------------------------------------------------------ snapshots

    def live_tasks(self) -> list[LiveTask]:
        state = self.master.state()
        reachable = {a["id"] for a in state["agents"] if a["status"] == "REACHABLE"}
        return [
            LiveTask(
                t["task_id"], try_node_id_from_task_id(t["task_id"], FRAMEWORK), t["state"], t["agent_id"] in reachable
            )
            for t in state["tasks"]
            if t["state"] not in TERMINAL_STATES
        ]

    def task_lives(self) -> list[TaskLife]:
        return [
            TaskLife(a.task_id, try_node_id_from_task_id(a.task_id, FRAMEWORK), a.volumes, a.attached_at, a.detached_at)
            for a in self.master.attachments()
        ]

    def stored_nodes(self) -> list[StoredNode] | None:
        """The stored state's nodes; ``None`` when it cannot be read now (ZooKeeper down)."""
        try:
            if self._store is None:
                store = open_state_store(
                    self.zookeeper.url,
                    framework_name=FRAMEWORK,
                    cluster_name=self.cluster,
                    session_timeout_ms=READER_SESSION_TIMEOUT_MS,
                )
                assert isinstance(store, ZooKeeperStateStore)
                store.start(timeout=10)
                self._store = store
            stored = self._store.read()
        except Exception as problem:  # the store is down during a ZooKeeper fault
            logger.debug("stored state unreadable: %s", problem)
            with contextlib.suppress(Exception):
                if self._store is not None:
                    self._store.close()
            self._store = None
            return None
        if stored is None:
            return []
        return [StoredNode(int(n["node_id"]), str(n["task_id"]), str(n["state"])) for n in stored.document["nodes"]]

    def subscribed(self) -> bool:
        """Someone leads and listens: a live scheduler process holds the lock (a fresh sample) and the
        framework's event stream is that process's. Not merely "the lock has a holder and the framework
        is connected": right after the leader's SIGKILL its znode lives on until its session expires and
        the master may not have seen its stream close yet, which passed for convergence, so the next
        fault landed in the failover."""
        frameworks = self.master.state()["frameworks"]
        if len(frameworks) != 1 or not frameworks[0]["connected"]:
            return False
        holder = self.lock.latest(max_age_s=LOCK_SAMPLE_MAX_AGE_S) if self.lock is not None else None
        if holder is None or holder not in self.scheduler_pids():
            return False
        stream = frameworks[0].get("stream_id")
        subscriber = self.calls.stream_pid(stream) if self.calls is not None and stream else None
        return subscriber == holder

    def set_desired(self, value: int) -> None:
        self.desired = value
        self.desired_history.append((time.monotonic(), value))

    def kill_task(self, task_id: str) -> None:
        """The node's executor dies: in ``process`` mode its process group (the executor and its
        Elasticsearch) is SIGKILLed and the agent reports ``TASK_FAILED`` as it sees the exit; with fake
        executors the executor reports ``TASK_FAILED``. ``LookupError`` or ``ValueError`` when the task
        is not live."""
        if self.processes is None:
            self.master.fail_task(task_id, message="chaos: Elasticsearch exited with code 137")
            return
        pids = [e.get("pid") for e in self.processes.state() if e["task_id"] == task_id and e["exit_code"] is None]
        if not pids or pids[0] is None:
            raise LookupError(f"task {task_id}: no executor process runs it")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pids[0]), signal.SIGKILL)
        # Until the agent has seen the exit (it looks every 0.1 s), so that the fault's effect is
        # in the master's view when the fault returns.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(t.task_id == task_id for t in self.live_tasks()):
            time.sleep(0.02)

    def kill_agent_processes(self, agent_id: str) -> None:
        """In ``process`` mode, every executor process of the agent dies (the machine is gone for
        good, so nothing it ran may keep running); nothing with fake executors."""
        if self.processes is None:
            return
        for executor in self.processes.state():
            if executor["agent_id"] == agent_id and executor["exit_code"] is None and executor.get("pid"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(executor["pid"]), signal.SIGKILL)

    def usable_agents(self) -> list[str]:
        return [a["id"] for a in self.master.state()["agents"] if a["status"] == "REACHABLE"]

    def running_by_agent(self) -> dict[str, list[tuple[int, str]]]:
        """Reachable agents' running node tasks: agent id → [(node id, task id)]."""
        out: dict[str, list[tuple[int, str]]] = {}
        for t in self.master.state()["tasks"]:
            node_id = try_node_id_from_task_id(t["task_id"], FRAMEWORK)
            if t["state"] == "TASK_RUNNING" and node_id is not None:
                out.setdefault(t["agent_id"], []).append((node_id, t["task_id"]))
        return out


def running_nodes(world: World) -> Sequence[tuple[int, str]]:
    """Running node tasks, ``(node id, task id)``, by node id."""
    return sorted(pair for pairs in world.running_by_agent().values() for pair in pairs)
