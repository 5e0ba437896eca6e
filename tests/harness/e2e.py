"""The end-to-end harness: the real ``es-framework`` process against the development master and a real
ZooKeeper (fixtures in ``conftest.py``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from es_framework.dev.devcluster import AgentSpec, DevMaster
from es_framework.dev.ports import free_port
from es_framework.dev.scheduler import TEST_HOOKS_ENABLE_VALUE, TEST_HOOKS_ENABLE_VAR
from es_framework.dev.zookeeper import ZooKeeperServer
from es_framework.shell.state_store import ZooKeeperStateStore, open_state_store
from identity import node_id_from_task_id

ROOT = Path(__file__).resolve().parents[2]
FW = "elasticsearch"


def agents(count: int) -> list[AgentSpec]:
    return [
        AgentSpec(id=f"agent{i}-S0", hostname=f"agent{i}.example.com", cpus=4, mem=8192) for i in range(1, count + 1)
    ]


@contextlib.contextmanager
def dev_master(count: int = 4) -> Iterator[DevMaster]:
    dev = DevMaster(agents(count), heartbeat_interval=1.0, status_update_resend_interval=1.0).start()
    try:
        yield dev
    finally:
        dev.stop()


#: What runs the scheduler: ``es-framework`` itself, or with test hooks the same command with them armed.
PRODUCTION = "es_framework"
WITH_HOOKS = "es_framework.dev.scheduler"


class Scheduler:
    """One ``es-framework`` process (``python -m es_framework.dev.scheduler`` when the test arms hooks);
    its log is kept for the failure message."""

    def __init__(
        self,
        master: DevMaster,
        zookeeper: ZooKeeperServer,
        cluster: str,
        log_dir: Path,
        nodes: int = 3,
        *,
        driver: str | None = "rexray",
        extra: Sequence[str] = (),
        security: str | None = "off",
    ) -> None:
        """``security``: the ``--elasticsearchSecurity`` given (None: not given, so a new cluster gets
        the default, auto). ``off`` unless a test asks otherwise: most tests' agents run simulated or
        demo nodes for behaviours that do not depend on TLS. Given in ``extra``, that one is used."""
        self.cluster = cluster
        #: The production command line (``self.flags`` are its flags).
        self.args = [
            sys.executable,
            "-m",
            PRODUCTION,
            "--mesosMaster",
            master.address,
            "--frameworkStateUrl",
            f"zk://{zookeeper.hosts}",
            "--elasticsearchClusterName",
            cluster,
            "--elasticsearchNodes",
            str(nodes),
            *(("--externalVolumeDriver", driver) if driver else ()),
            "--elasticsearchNofile",
            "20000",
            "--zookeeperMesosTimeout",
            "4000",
            "--webUiPort",
            str(free_port()),
            # Outside local mode es-framework refuses to start without an API token: a test that
            # sends no token opts out (one that gives --apiTokenFile in ``extra`` sends it).
            *(() if "--apiTokenFile" in extra else ("--insecureApi", "true")),
            *(("--elasticsearchSecurity", security) if security and "--elasticsearchSecurity" not in extra else ()),
            *extra,
        ]
        self.log_dir = log_dir
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        """The scheduler's REST API base URL."""
        return f"http://127.0.0.1:{self.args[self.args.index('--webUiPort') + 1]}"

    @property
    def flags(self) -> list[str]:
        """The flags of ``es-framework``, without the command that runs it."""
        return self.args[3:]

    @staticmethod
    def _python(hooks: Mapping[str, str] | None) -> list[str]:
        return [sys.executable, "-m", WITH_HOOKS if hooks else PRODUCTION]

    def start(self, hooks: Mapping[str, str] | None = None) -> None:
        """Start the scheduler; ``hooks`` are test hook variables (``ESMESOS_TEST_CRASH_AT``, ...)."""
        self.runs += 1
        log = open(self.log_dir / f"scheduler-{self.runs}.log", "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [*self._python(hooks), *self.flags], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_env(hooks)
        )
        log.close()

    def run(self, *command: str, hooks: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``es-framework <command> <the same flags>`` to completion (e.g. ``teardown``)."""
        return subprocess.run(
            [*self._python(hooks), *command, *self.flags],
            check=False,
            cwd=ROOT,
            env=_env(hooks),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def signal(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout=20)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("scheduler-*.log")))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _env(hooks: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_MESOS_", "ESMESOS_"))}
    if hooks:
        env.update(hooks)
        env[TEST_HOOKS_ENABLE_VAR] = TEST_HOOKS_ENABLE_VALUE
    return env


def new_cluster_name() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def wait_for(what: str, predicate: Callable[[], Any], scheduler: Scheduler, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n--- scheduler log ---\n{scheduler.log()[-6000:]}")
        time.sleep(0.2)


def running_tasks(master: DevMaster) -> dict[int, dict[str, Any]]:
    tasks = [t for t in master.state()["tasks"] if t["state"] == "TASK_RUNNING"]
    return {node_id_from_task_id(t["task_id"], FW): t for t in tasks}


def three_running(master: DevMaster) -> dict[int, dict[str, Any]] | None:
    tasks = running_tasks(master)
    return tasks if sorted(tasks) == [1, 2, 3] else None


def wait_replaced(
    master: DevMaster, scheduler: Scheduler, node_id: int, old_task_id: str, timeout: float = 40.0
) -> dict[int, dict[str, Any]]:
    """Wait until nodes 1, 2, 3 run and ``node_id`` runs as a task other than ``old_task_id``."""
    replaced: dict[int, dict[str, Any]] = wait_for(
        f"node {node_id} replaced",
        lambda: (t := three_running(master)) and t[node_id]["task_id"] != old_task_id and t,
        scheduler,
        timeout=timeout,
    )
    return replaced


def stored_state(zookeeper: ZooKeeperServer, cluster: str) -> dict[str, Any]:
    """The scheduler's state document, read through the state store as a scheduler that does not
    lead reads it (whatever the layout: the cluster znode and one znode per node, or 0.1.0's one
    ``state`` znode; it never migrates). Fails when there is no state."""
    store = open_state_store(zookeeper.url, framework_name=FW, cluster_name=cluster)
    assert isinstance(store, ZooKeeperStateStore)
    store.start(timeout=10)
    try:
        stored = store.read()
    finally:
        store.close()
    assert stored is not None, f"no state stored for {FW}/{cluster}"
    return stored.document


@dataclass(frozen=True)
class RecordedCall:
    """A scheduler call the development master took: when (monotonic), its type and its ``Mesos-Stream-Id``
    (a SUBSCRIBE has none; ``stream_id`` is then the stream the master opened for it)."""

    at: float
    type: str
    stream_id: str | None


class MasterCalls:
    """Records every scheduler call an in-process development master takes (SUBSCRIBE included), by
    wrapping its ``subscribe`` and ``handle_call`` on the instance; the master itself is unchanged."""

    def __init__(self, master: DevMaster) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        subscribe, handle_call = master.subscribe, master.handle_call

        def recording_subscribe(call: dict[str, Any]) -> Any:
            sub = subscribe(call)
            self._record(RecordedCall(time.monotonic(), "SUBSCRIBE", getattr(sub, "stream_id", None)))
            return sub

        def recording_handle_call(call: object, stream_id: str | None) -> None:
            kind = str(call.get("type")) if isinstance(call, dict) else "?"
            self._record(RecordedCall(time.monotonic(), kind, stream_id))
            handle_call(call, stream_id)

        master.subscribe = recording_subscribe  # type: ignore[method-assign]
        master.handle_call = recording_handle_call  # type: ignore[method-assign]

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    def since(self, when: float) -> list[RecordedCall]:
        """The calls taken at or after ``when`` (monotonic), oldest first."""
        with self._lock:
            return [c for c in self._calls if c.at >= when]
