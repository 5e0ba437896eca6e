"""Local mode, ``es-framework --mesosMaster local``: the whole framework on one machine.

**A development tool, not for production** (production runs on real Mesos and real Elasticsearch).
:func:`run_local` starts an in-process development master (:class:`~es_framework.dev.devcluster.DevMaster`)
with ``--localAgents`` simulated agents whose executors are real local processes
(:class:`~es_framework.dev.devcluster.ProcessExecutorBackend`, ``python -m es_framework.executor``), and
runs the normal scheduler (:func:`~es_framework.app.run.run_scheduler`) against it with the file
state store (``file://<--localWorkDir>/state`` unless ``--frameworkStateUrl`` says otherwise).

- **Agents.** Agent ``n`` is ``local-agent<n>`` with hostname ``127.0.0.<n>`` (a loopback address
  of its own, so the one-node-per-agent rule, which also compares hostnames, holds; Linux routes all
  of 127.0.0.0/8 to the loopback interface), exactly ``--elasticsearchCpu``/``--elasticsearchRam``/
  ``--elasticsearchDisk`` (room for one node), and its own range of :data:`PORTS_PER_AGENT` ports
  from :data:`FIRST_PORT` (``--webUiPort`` left out), so nodes never clash. The agent ids are the
  same in every run. Their ``--isolation`` is what the mode needs on real agents: Mesos' default
  (``posix/cpu,posix/mem``, so ``filesystem/posix``) in normal mode, ``filesystem/linux,docker/volume``
  (an agent that mounts REX-Ray volumes for the Mesos containerizer) with ``--externalVolumeDriver``.
- **Elasticsearch.** The executors run the demo node (``python -m es_framework.dev.demo_es``, **not
  Elasticsearch**) unless ``--elasticsearchBinaryUrl`` names a local Elasticsearch directory (with
  ``bin/elasticsearch``) or tarball (extracted once under ``<workDir>/elasticsearch``); the backend
  passes it to every executor as ``ELASTICSEARCH_COMMAND``.
- **Containers and volumes are simulated.** No Docker runs, whatever ``--frameworkUseDocker`` says;
  each external volume is the directory ``<workDir>/volumes/<name>``.
- **Stopping.** Ctrl-C or SIGTERM stops the scheduler, then the development master, which shuts
  every executor down and kills what is left of their process groups.
- **Restarting.** The development master is new in every run, so the nodes of the previous run are
  gone for certain (they were stopped with it). Before the scheduler starts, every node record of
  the stored state is therefore released (:func:`release_previous_nodes`): by the identity rules an
  UNKNOWN answer would otherwise keep a node once seen RUNNING reserved for the operator. The node
  count, the configuration record and the framework id are kept; the development master accepts
  the stored framework id, so the framework keeps its id. The nodes are launched again with the
  lowest free ids, i.e. the same ids, and re-attach the same ``volumes/<name>`` directories.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from es_framework.app.run import RefusedError, run_scheduler
from es_framework.app.store import lead_state, open_store, state_url
from es_framework.config import LOCAL_MODE_WARNING, Config, MesosMaster, Secret, redact_url
from es_framework.core.node_state import TaskState, release_node
from es_framework.core.state_document import state_from_json
from es_framework.dev.devcluster import AgentSpec, DevMaster, ProcessExecutorBackend
from es_framework.dev.devcluster.isolation import DEFAULT_ISOLATION, DOCKER_VOLUME_ISOLATION
from es_framework.shell.hooks import NO_HOOKS, Hooks
from es_framework.shell.state_store import StateStore

log = logging.getLogger("es_framework.dev.local")
#: The state store's logger (es_framework/shell/state_store/base.py).
STORE_LOGGER = "es_framework.shell.state_store"

FIRST_PORT = 31000
PORTS_PER_AGENT = 10
#: The demo node, run by every executor unless --elasticsearchBinaryUrl gives Elasticsearch.
DEMO_COMMAND = f"{shlex.quote(sys.executable)} -m es_framework.dev.demo_es"


class LocalModeError(RefusedError):
    """Local mode cannot start; the message says why."""


def agent_port_ranges(index: int, skip: int) -> tuple[tuple[int, int], ...]:
    """The ports of agent ``index`` (1-based): its own block, without ``skip`` (``--webUiPort``)."""
    low = FIRST_PORT + PORTS_PER_AGENT * (index - 1)
    high = low + PORTS_PER_AGENT - 1
    if not low <= skip <= high:
        return ((low, high),)
    return tuple((a, b) for a, b in ((low, skip - 1), (skip + 1, high)) if a <= b)


def local_agents(config: Config) -> list[AgentSpec]:
    """``--localAgents`` agents, each with room for exactly one node and ports of its own, and the
    isolation a real agent needs for this mode (no more: the simulation is never more permissive)."""
    isolation = DOCKER_VOLUME_ISOLATION if config.external_volume_driver else DEFAULT_ISOLATION
    return [
        AgentSpec(
            id=f"local-agent{n}",
            hostname=f"127.0.0.{n}",
            ip=f"127.0.0.{n}",
            cpus=config.cpus,
            mem=config.mem_mb,
            disk=config.disk_mb,
            ports=agent_port_ranges(n, config.web_ui_port),
            isolation=isolation,
        )
        for n in range(1, config.local_agents + 1)
    ]


def work_dir(config: Config) -> Path:
    return Path(config.local_work_dir).expanduser().absolute()


def elasticsearch_command(config: Config, workdir: Path) -> str:
    """``ELASTICSEARCH_COMMAND`` for the executors: the demo node, or a local Elasticsearch."""
    if config.binary_url is None:
        return DEMO_COMMAND
    path = Path(config.binary_url.removeprefix("file://"))
    if (path / "bin" / "elasticsearch").is_file():
        return shlex.quote(str(path / "bin" / "elasticsearch"))
    if not path.is_file():
        raise LocalModeError(f"--elasticsearchBinaryUrl {config.binary_url}: neither a directory nor a tarball")
    target = workdir / "elasticsearch" / path.name
    if not target.is_dir():
        log.info("extracting %s into %s", path, target)
        try:
            with tarfile.open(path) as archive:
                archive.extractall(target.with_suffix(".partial"), filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise LocalModeError(f"--elasticsearchBinaryUrl {path}: cannot extract it: {exc}") from None
        target.with_suffix(".partial").rename(target)
    found = sorted(target.glob("*/bin/elasticsearch")) + sorted(target.glob("bin/elasticsearch"))
    if not found:
        raise LocalModeError(f"--elasticsearchBinaryUrl {path}: the tarball has no bin/elasticsearch")
    return shlex.quote(str(found[0]))


@contextlib.contextmanager
def _store_lines_quiet() -> Iterator[None]:
    """The state store's INFO lines shown only with --logLevel DEBUG meanwhile: this step holds the
    leader lock for a moment before the scheduler takes it for good, and "holds ... released ...
    holds the leader lock" at INFO read as leadership flapping at start. Warnings still show. Only
    the main thread logs there this early (no scheduler runs yet)."""
    store_log = logging.getLogger(STORE_LOGGER)
    if store_log.isEnabledFor(logging.DEBUG):
        yield
        return
    level = store_log.level
    store_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        store_log.setLevel(level)


def release_previous_nodes(config: Config, lock_timeout: float = 2.0) -> list[int]:
    """Free every node id of the stored state: the development master that ran those nodes is gone
    and so are they. Returns the ids released. Torn-down state is left alone (the scheduler refuses it)."""
    busy = LocalModeError(
        f"another scheduler leads cluster {config.cluster_name} with state {redact_url(state_url(config))} "
        "(is local mode already running on this work directory?)"
    )
    with _store_lines_quiet(), lead_state(config, lock_timeout=lock_timeout, busy=busy) as led:
        state = led.state
        if state is None or state.torn_down_at is not None or not state.nodes:
            return []
        released = sorted(state.nodes)
        for node_id in released:
            record = state.nodes[node_id]
            log.info(
                "node %d task %s (%s in the previous run): released, its local master and processes are gone",
                node_id,
                record.task_id,
                record.state,
            )
            state = release_node(state, node_id)
        led.save(state)
        return released


def leftover_processes(workdir: Path) -> list[int]:
    """Pids of executors and nodes running in a sandbox of ``workdir`` (their working directory is
    under ``<workdir>/agents`` and their command line names es_framework or elasticsearch): what a
    local-mode run killed before it could stop them leaves behind. Linux only (``/proc``); elsewhere
    none are found."""
    pids: list[int] = []
    root = str(workdir / "agents") + os.sep
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(entry.name)
            if pid == os.getpid() or not (os.readlink(entry / "cwd") + os.sep).startswith(root):
                continue
            cmdline = (entry / "cmdline").read_bytes()
            if b"es_framework" in cmdline or b"elasticsearch" in cmdline:
                pids.append(pid)
    return sorted(pids)


def _kill_leftovers(workdir: Path) -> None:
    for pid in leftover_processes(workdir):
        log.warning("killing process %d, left over in %s by a local-mode run that did not stop cleanly", pid, workdir)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class _EndpointLogger:
    """Logs each node's HTTP endpoint once its task is RUNNING (from the stored state)."""

    def __init__(self, config: Config, stop: threading.Event) -> None:
        self._config = config
        self._stop = stop
        self._logged: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="local-endpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        store = open_store(self._config)
        try:
            store.start()
            while not self._stop.wait(1.0):
                with contextlib.suppress(Exception):
                    self._once(store)
        except Exception:
            log.debug("endpoint logger stopped", exc_info=True)
        finally:
            store.close()

    def _once(self, store: StateStore) -> None:
        stored = store.read()
        if stored is None:
            return
        state = state_from_json(stored.document, self._config.framework_name)
        for node_id in sorted(state.nodes):
            record = state.nodes[node_id]
            if record.state is TaskState.RUNNING and record.task_id not in self._logged and record.hostname:
                self._logged.add(record.task_id)
                log.info("node %d http://%s:%d", node_id, record.hostname, record.http_port)


def run_local(
    config: Config,
    stop: threading.Event,
    hooks: Hooks = NO_HOOKS,
    on_started: Callable[[DevMaster], None] | None = None,
) -> None:
    """Local mode: development master, executors, scheduler; returns once ``stop`` is set (or Ctrl-C)
    and everything it started has stopped. ``hooks`` go to the scheduler's driver shell (see
    ``es_framework.dev.scheduler``). Raises :class:`LocalModeError`."""
    log.warning("%s", LOCAL_MODE_WARNING)
    workdir = work_dir(config)
    workdir.mkdir(parents=True, exist_ok=True)
    scheduler_config = replace(config, state_url=Secret(state_url(config)))
    command = elasticsearch_command(config, workdir)
    if config.binary_url is None:
        log.warning("the nodes run the demo node (python -m es_framework.dev.demo_es), which is NOT Elasticsearch")
    else:
        log.info("the nodes run %s", command)
    log.warning(
        "containers are simulated: no Docker runs%s; executors are local processes and each volume is a directory "
        "%s/volumes/<name>",
        " (although --frameworkUseDocker is true)" if config.use_docker else "",
        workdir,
    )
    _kill_leftovers(workdir)
    released = release_previous_nodes(scheduler_config)
    if released:
        log.info("released node(s) %s of the previous local run; they are launched again", released)
    backend = ProcessExecutorBackend(workdir, extra_env={"ELASTICSEARCH_COMMAND": command})
    agents = local_agents(config)
    dev = DevMaster(agents, backend=backend, heartbeat_interval=5.0, status_update_resend_interval=2.0)
    dev.start()
    try:
        for agent in agents:
            log.info(
                "agent %s: %s, ports %s",
                agent.id,
                agent.hostname,
                ",".join(f"{a}-{b}" for a, b in agent.ports),
            )
        log.info("development Mesos master at %s; work directory %s", dev.url, workdir)
        master = MesosMaster(kind="http", url=dev.url, hosts=(("127.0.0.1", dev.port),))
        if on_started is not None:
            on_started(dev)
        endpoints_stop = threading.Event()
        _EndpointLogger(scheduler_config, endpoints_stop).start()
        try:
            run_scheduler(replace(scheduler_config, mesos_master=master), stop, hooks)
        finally:
            endpoints_stop.set()
    finally:
        log.info("local mode: stopping the development master and every executor and node")
        dev.stop()
        log.info("local mode stopped; state and volumes are kept in %s", workdir)
