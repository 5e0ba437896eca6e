"""Executors in Docker containers, as Mesos' Docker containerizer runs them (development tool, not for production).

:class:`DockerExecutorBackend` lets the development master's simulated agents run an executor whose
``ExecutorInfo.container.type`` is ``DOCKER`` in a real container of a given ``dockerd`` (the tests
use a private one), so the executor image, Docker volume drivers, ulimits and bind mounts are
exercised for real. The ``docker run`` command line is built by the pure :func:`docker_run_argv`
the way Mesos' ``Docker::RunOptions::create`` builds it (read in Mesos' ``src/docker/docker.cpp``):

- ``--cpu-shares`` (1024 per cpu) and ``--memory`` (at least 32 MB) from the resources of the
  task and its executor (``limit_resources=False`` leaves them out);
- ``-e`` for the agent's executor environment (``MESOS_AGENT_ENDPOINT``, ``MESOS_FRAMEWORK_ID``,
  ``MESOS_EXECUTOR_ID``, ``MESOS_DIRECTORY``/``MESOS_SANDBOX`` = ``/mnt/mesos/sandbox``,
  ``MESOS_CONTAINER_NAME``, ``MESOS_CHECKPOINT``, ``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``, …)
  and for the ExecutorInfo command's variables (the agent's win, as in Mesos);
- ``-v`` for every ContainerInfo volume: ``host_path`` as a bind mount (an absolute host path is
  mapped to ``<workdir>/hostpaths/<agent>/<path>``, since every simulated agent shares this
  machine; a relative one is in the sandbox), a ``DOCKER_VOLUME`` source as ``<name>:<path>`` with
  one ``--volume-driver`` (two different drivers are an error; ``driver_options`` are dropped, as
  Mesos drops them), then the sandbox bind-mounted at ``/mnt/mesos/sandbox``;
- ``--net`` from ``docker.network`` (``HOST`` by default), ``--privileged``, ``-p`` port mappings
  (not with host networking), ``--name mesos-<agent>-<executor>``, ``--label`` entries of ours
  (Mesos adds none; we use them to find and remove our containers), then every
  ``docker.parameters`` entry as ``--<key>=<value>`` in order — so ``volume-driver``, ``volume``,
  ``mount`` and ``ulimit`` reach Docker as on a real agent;
- no ``--user``: Mesos never passes the framework user to ``docker run``; the image's ``USER``
  applies;
- the command: with ``shell`` (the default) ``--entrypoint /bin/sh`` and ``-c <value>``; without,
  ``<value> <arguments…>`` (every argument, unlike the Mesos containerizer's argv) after the image's
  ``ENTRYPOINT``.

The container runs detached (``docker run -d``); ``docker logs -f`` copies its output into the
sandbox's ``stdout``/``stderr`` files and ``docker wait`` tells the monitor when it exits. ``docker
run`` itself runs in a thread, since it can take a while (image layers, volume driver) and the
master calls :meth:`launch` holding its lock; a failed ``docker run`` becomes ``TASK_FAILED`` /
``REASON_CONTAINER_LAUNCH_FAILED`` with Docker's message. Everything else — the v1 executor API,
KILL/MESSAGE/SHUTDOWN events, ``TASK_FAILED`` / ``REASON_EXECUTOR_TERMINATED`` when the executor
exits under a live task — is :class:`~es_framework.dev.devcluster.processes.ExecutorAPIBackend`'s, shared
with the process backend. Shutting an executor down is what an agent does: the SHUTDOWN event, and
once the grace period is over ``docker stop -t <stop_timeout>`` (Mesos' ``--docker_stop_timeout``,
0 s by default). Stopped containers stay (``docker inspect`` them) until :meth:`close`, which
stops and removes every container of this backend.

:class:`RoutingExecutorBackend` sends ``DOCKER`` executors to a Docker backend and every other one
to another backend (``ProcessExecutorBackend``), for a cluster whose tasks use both::

    DevMaster(agents, backend=RoutingExecutorBackend(
        docker=DockerExecutorBackend("unix:///…/docker.sock", workdir),
        default=ProcessExecutorBackend(workdir)))
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import AgentSide, ExecutorBackend, ExecutorRef
from es_framework.dev.devcluster.processes import DEFAULT_GRACE_PERIOD, ExecutorAPIBackend, ExecutorRecord

if TYPE_CHECKING:
    from es_framework.dev.devcluster.http_api import EventStream, ExecutorAPI
    from es_framework.dev.devcluster.master import DevMaster

logger = logging.getLogger(__name__)

#: Where Mesos mounts the sandbox in a Docker container (the agent's ``--sandbox_directory``).
SANDBOX_IN_CONTAINER = "/mnt/mesos/sandbox"
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
MIN_MEMORY_MB = 32
#: Labels on every container this backend runs (``<prefix>backend`` tells backends apart).
LABEL_PREFIX = "es-mesos.devcluster."
_DOCKER_NAME = re.compile(r"[^a-zA-Z0-9_.-]")
_NETWORKS = {"HOST": "host", "BRIDGE": "bridge", "NONE": "none"}


def is_docker_executor(task_info: Mapping[str, Any]) -> bool:
    """Whether the task's executor asks for the Docker containerizer."""
    executor = task_info.get("executor") or {}
    return bool((executor.get("container") or {}).get("type") == "DOCKER")


def container_name(agent_id: str, executor_id: str) -> str:
    """``mesos-<agent>-<executor>``, with what Docker does not allow in names replaced by ``_``."""
    return _DOCKER_NAME.sub("_", f"mesos-{agent_id}-{executor_id}")


def _scalars(resources: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for resource in resources:
        value = (resource.get("scalar") or {}).get("value")
        if resource.get("type", "SCALAR") == "SCALAR" and isinstance(value, int | float):
            name = str(resource.get("name"))
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def docker_run_argv(
    task_info: Mapping[str, Any],
    *,
    name: str,
    sandbox: str | Path,
    agent_env: Mapping[str, str] | None = None,
    host_path: Callable[[str], str] | None = None,
    labels: Mapping[str, str] | None = None,
    limit_resources: bool = True,
) -> list[str]:
    """The ``docker`` arguments (from ``run`` on) that start the task's executor container as Mesos'
    Docker containerizer would (see the module docstring). ``sandbox`` is the sandbox on this
    machine; ``agent_env`` the agent's executor environment (wins over the command's variables);
    ``host_path`` maps an absolute ``host_path`` to the directory that stands in for it. Raises
    ``ValueError`` for what Mesos refuses too."""
    executor = task_info.get("executor")
    if not isinstance(executor, Mapping):
        raise ValueError("the task has no ExecutorInfo (command tasks are not run in Docker here)")
    container = executor.get("container") or {}
    if container.get("type") != "DOCKER":
        raise ValueError(f"the executor's container type is {container.get('type')!r}, not DOCKER")
    docker = container.get("docker") or {}
    image = str(docker.get("image") or "")
    if not image:
        raise ValueError("No docker image given in the ExecutorInfo's ContainerInfo")
    command = executor.get("command") or {}
    argv = ["run", "-d"]

    if bool(docker.get("privileged")):
        argv.append("--privileged")
    if limit_resources:
        totals = _scalars([*(task_info.get("resources") or []), *(executor.get("resources") or [])])
        if "cpus" in totals:
            argv += ["--cpu-shares", str(max(int(CPU_SHARES_PER_CPU * totals["cpus"]), MIN_CPU_SHARES))]
        if "mem" in totals:
            argv += ["--memory", str(int(max(totals["mem"], MIN_MEMORY_MB)) * 1024 * 1024)]

    env: dict[str, str] = {}
    for variable in (command.get("environment") or {}).get("variables") or []:
        if "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    env.update(agent_env or {})
    env["MESOS_SANDBOX"] = SANDBOX_IN_CONTAINER
    env["MESOS_CONTAINER_NAME"] = name
    for key in sorted(env):
        argv += ["-e", f"{key}={env[key]}"]

    volume_driver: str | None = None
    for volume in container.get("volumes") or []:
        target = str(volume.get("container_path") or "")
        if not target:
            raise ValueError("a volume has no container_path")
        target = target if posixpath.isabs(target) else posixpath.join(SANDBOX_IN_CONTAINER, target)
        mode = {"RW": "rw", "RO": "ro"}.get(str(volume.get("mode", "RW")))
        if mode is None:
            raise ValueError(f"Unsupported volume mode {volume.get('mode')!r}")
        source = volume.get("source") or {}
        if volume.get("host_path"):
            host = str(volume["host_path"])
            if not posixpath.isabs(host):
                if not posixpath.isabs(str(volume.get("container_path"))):
                    raise ValueError(f"Both host_path {host!r} and container_path of a volume are relative")
                local = posixpath.join(str(sandbox), host)
            else:
                local = host_path(host) if host_path is not None else host
            argv += ["-v", f"{local}:{target}:{mode}"]
        elif source:
            if source.get("type") != "DOCKER_VOLUME":
                logger.info(
                    "volume of type %s ignored: the Docker containerizer supports DOCKER_VOLUME", source.get("type")
                )
                continue
            docker_volume = source.get("docker_volume") or {}
            if not docker_volume.get("name"):
                raise ValueError("a DOCKER_VOLUME volume has no name")
            driver = docker_volume.get("driver")
            if driver:
                if volume_driver is not None and driver != volume_driver:
                    raise ValueError("Only one volume driver is supported")
                volume_driver = str(driver)
            argv += ["-v", f"{docker_volume['name']}:{target}:{mode}"]
        else:
            raise ValueError("Host path or volume source is required")
    argv += ["-v", f"{sandbox}:{SANDBOX_IN_CONTAINER}"]
    if docker.get("volume_driver"):  # the deprecated DockerInfo field
        if volume_driver is not None and docker["volume_driver"] != volume_driver:
            raise ValueError("Only one volume driver per task is supported")
        volume_driver = str(docker["volume_driver"])
    if volume_driver is not None:
        argv.append(f"--volume-driver={volume_driver}")

    network_mode = str(docker.get("network") or "HOST")
    if network_mode == "USER":
        infos = container.get("network_infos") or []
        if len(infos) != 1 or not infos[0].get("name"):
            raise ValueError("a USER network needs exactly one named network_info")
        network = str(infos[0]["name"])
    elif network_mode in _NETWORKS:
        network = _NETWORKS[network_mode]
    else:
        raise ValueError(f"Unsupported Network mode: {network_mode}")
    argv += ["--net", network]
    if container.get("hostname"):
        if network == "host":
            raise ValueError("Unable to set hostname with host network mode")
        argv += ["--hostname", str(container["hostname"])]
    for mapping in docker.get("port_mappings") or []:
        if network in {"host", "none"}:
            raise ValueError("Port mappings are only supported for bridge and user-defined networks")
        spec = f"{mapping['host_port']}:{mapping['container_port']}"
        if mapping.get("protocol"):
            spec += f"/{str(mapping['protocol']).lower()}"
        argv += ["-p", spec]

    shell = bool(command.get("shell", True))
    value = command.get("value")
    if shell:
        if not value:
            raise ValueError("Shell specified but no command value provided")
        argv += ["--entrypoint", "/bin/sh"]
    argv += ["--name", name]
    for key in sorted(labels or {}):
        argv += ["--label", f"{key}={(labels or {})[key]}"]
    for parameter in docker.get("parameters") or []:
        argv.append(f"--{parameter.get('key')}={parameter.get('value', '')}")
    argv.append(image)
    if shell:
        argv += ["-c", str(value)]
    else:
        if value:
            argv.append(str(value))
        argv += [str(a) for a in command.get("arguments") or []]
    return argv


@dataclass
class ContainerRecord(ExecutorRecord):
    container: str = ""
    #: ``docker run`` has not returned yet.
    starting: bool = True
    #: Docker's message when ``docker run`` failed.
    launch_error: str | None = None
    run_exit: int | None = None
    waiter: subprocess.Popen[str] | None = None
    logs: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    #: Killed while ``docker run`` was still running: stop the container as soon as it exists.
    cancelled: bool = False


class DockerExecutorBackend(ExecutorAPIBackend[ContainerRecord]):
    """Runs ``DOCKER`` executors as containers of the ``dockerd`` at ``docker_host``. See the module docstring."""

    kind = "executor container"

    def __init__(
        self,
        docker_host: str,
        workdir: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        default_grace_period: float = DEFAULT_GRACE_PERIOD,
        stop_timeout: float = 0.0,
        limit_resources: bool = True,
        docker_binary: str | None = None,
        run_timeout: float = 600.0,
    ) -> None:
        super().__init__(Path(workdir).resolve(), default_grace_period=default_grace_period)
        self.docker_host = docker_host
        self.extra_env = dict(extra_env or {})
        self.stop_timeout = stop_timeout
        self.limit_resources = limit_resources
        self.docker_binary = docker_binary or shutil.which("docker") or "docker"
        self.run_timeout = run_timeout
        #: Our label value: ``close()`` removes this backend's containers and no one else's.
        self.instance = uuid.uuid4().hex[:12]
        self._all: list[ContainerRecord] = []
        self._exit_lock = threading.Lock()

    # -------------------------------------------------------------- docker

    def docker_argv(self, *args: str) -> list[str]:
        return [self.docker_binary, "-H", self.docker_host, *args]

    def docker(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``docker -H <host> *args``, output captured. Never raises: a failure to run ``docker`` or a
        timeout is a non-zero exit (125, 124) with the reason as stderr."""
        argv = self.docker_argv(*args)
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._docker_env(),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"docker {args[0]} timed out after {timeout:g} s")
        except OSError as error:
            return subprocess.CompletedProcess(argv, 125, "", f"could not run docker: {error}")

    @staticmethod
    def _docker_env() -> dict[str, str]:
        env = dict(os.environ)
        for variable in ("DOCKER_HOST", "DOCKER_CONTEXT"):
            env.pop(variable, None)  # -H decides
        return env

    # -------------------------------------------------------------- the ExecutorAPIBackend seams

    def _make_record(
        self, ref: ExecutorRef, agent: AgentSide, task_info: dict[str, Any], sandbox: Path, grace_period: float
    ) -> ContainerRecord:
        return ContainerRecord(ref, agent, task_info, sandbox, grace_period)

    def _start(self, record: ContainerRecord, executor: Mapping[str, Any], grace: float | None) -> None:
        ref = record.ref
        record.container = container_name(ref.agent_id, ref.executor_id)
        env = {**self.extra_env, **self._agent_env(record, grace, SANDBOX_IN_CONTAINER)}

        def host_path(path: str) -> str:
            local = self.host_path_dir(ref.agent_id, path)
            local.mkdir(parents=True, exist_ok=True)
            return str(local)

        argv = docker_run_argv(
            record.task_info,
            name=record.container,
            sandbox=record.sandbox,
            agent_env=env,
            host_path=host_path,
            labels={
                f"{LABEL_PREFIX}backend": self.instance,
                f"{LABEL_PREFIX}agent": ref.agent_id,
                f"{LABEL_PREFIX}framework": ref.framework_id,
                f"{LABEL_PREFIX}executor": ref.executor_id,
                f"{LABEL_PREFIX}task": record.task_id,
            },
            limit_resources=self.limit_resources,
        )
        with self._lock:
            self._all.append(record)
        threading.Thread(
            target=self._run, args=(record, argv), name=f"docker-run-{record.container}", daemon=True
        ).start()

    def _exit_code(self, record: ContainerRecord) -> int | None:
        # Its own lock: close() asks too, without the base lock, and docker wait's output is read once.
        with self._exit_lock:
            if record.exit_code is not None or record.starting:
                return record.exit_code
            if record.launch_error is not None:
                record.exit_code = record.run_exit if record.run_exit is not None else -1
            elif record.waiter is not None and record.waiter.poll() is not None:
                output = record.waiter.stdout.read() if record.waiter.stdout is not None else ""
                try:
                    record.exit_code = int(output.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    record.exit_code = -1  # docker wait itself failed (container removed, daemon gone)
            return record.exit_code

    def _kill(self, record: ContainerRecord) -> None:
        record.cancelled = True
        if record.starting or record.launch_error is not None or not record.container:
            return  # _run stops it once docker run is done
        self.docker("stop", "-t", f"{int(self.stop_timeout)}", record.container, timeout=self.stop_timeout + 60)

    def _reap(self, record: ContainerRecord) -> None:
        # docker logs -f ends with the container; let it flush so the stderr tail is complete.
        if record.logs is not None:
            try:
                record.logs.wait(timeout=5)
            except subprocess.TimeoutExpired:
                record.logs.terminate()

    def _failure(self, record: ContainerRecord, code: int) -> tuple[str, str]:
        if record.launch_error is not None:
            return f"Failed to launch container: {record.launch_error}", "REASON_CONTAINER_LAUNCH_FAILED"
        return super()._failure(record, code)

    def _describe(self, record: ContainerRecord) -> dict[str, Any]:
        return {"container": record.container}

    def _closed(self) -> None:
        with self._lock:
            records = list(self._all)
            self._all.clear()
        listed = self.docker("ps", "-aq", "--filter", f"label={LABEL_PREFIX}backend={self.instance}")
        ids = listed.stdout.split()
        if ids:
            self.docker("rm", "-f", "-v", *ids, timeout=120)
        for record in records:
            for process in (record.logs, record.waiter):
                if process is not None and process.poll() is None:
                    process.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=2)

    # -------------------------------------------------------------- internals

    def _run(self, record: ContainerRecord, argv: list[str]) -> None:
        result = self.docker(*argv, timeout=self.run_timeout)
        if result.returncode != 0 and "is already in use" in result.stderr and self._remove_stale(record.container):
            result = self.docker(*argv, timeout=self.run_timeout)
        if result.returncode != 0:
            logger.error("agent %s: docker run of %s failed: %s", record.ref.agent_id, record.container, result.stderr)
            record.run_exit = result.returncode
            record.launch_error = result.stderr.strip() or f"docker run exited with {result.returncode}"
            record.starting = False
            return
        logger.info("agent %s: container %s running %s", record.ref.agent_id, record.container, result.stdout.strip())
        try:
            with open(record.sandbox / "stdout", "ab") as out, open(record.sandbox / "stderr", "ab") as err:
                record.logs = subprocess.Popen(
                    self.docker_argv("logs", "-f", record.container),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self._docker_env(),
                )
            record.waiter = subprocess.Popen(
                self.docker_argv("wait", record.container),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=self._docker_env(),
            )
        except OSError as error:
            record.run_exit = -1
            record.launch_error = f"could not follow container {record.container}: {error}"
        record.starting = False
        if record.cancelled:
            self._kill(record)

    def _remove_stale(self, name: str) -> bool:
        """Remove a stopped container of an earlier run with the same name; never a running one."""
        state = self.docker("inspect", "--type=container", "-f", "{{.State.Running}}", name)
        if state.returncode != 0 or state.stdout.strip() != "false":
            return False
        logger.info("removing stopped container %s of an earlier run", name)
        return self.docker("rm", "-f", "-v", name).returncode == 0


class RoutingExecutorBackend:
    """Sends ``DOCKER`` executors to ``docker`` and every other one to ``default`` (development tool).

    Kills, messages, shutdowns and executor API calls go to the backend that launched the executor.
    """

    def __init__(self, *, docker: ExecutorBackend, default: ExecutorBackend) -> None:
        self.docker = docker
        self.default = default
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], ExecutorBackend] = {}

    @property
    def backends(self) -> tuple[ExecutorBackend, ExecutorBackend]:
        return self.docker, self.default

    def backend_for(self, framework_id: str, executor_id: str) -> ExecutorBackend:
        with self._lock:
            return self._routes.get((framework_id, executor_id), self.default)

    # -------------------------------------------------------------- wiring (what DevMaster looks for)

    @property
    def executor_api(self) -> RoutingExecutorBackend:
        return self

    def attach(self, master: DevMaster) -> None:
        for backend in self.backends:
            attach = getattr(backend, "attach", None)
            if attach is not None:
                attach(master)

    def close(self) -> None:
        for backend in self.backends:
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def state(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for backend in self.backends:
            state = getattr(backend, "state", None)
            if callable(state):
                out.extend(state())
        return out

    # -------------------------------------------------------------- ExecutorBackend

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        backend = self.docker if is_docker_executor(task_info) else self.default
        with self._lock:
            self._routes[(ref.framework_id, ref.executor_id)] = backend
        backend.launch(agent, ref, task_info)

    def kill(self, agent: AgentSide, ref: ExecutorRef, task_id: str) -> None:
        self.backend_for(ref.framework_id, ref.executor_id).kill(agent, ref, task_id)

    def message(self, agent: AgentSide, ref: ExecutorRef, data: bytes) -> None:
        self.backend_for(ref.framework_id, ref.executor_id).message(agent, ref, data)

    def shutdown(self, ref: ExecutorRef) -> None:
        self.backend_for(ref.framework_id, ref.executor_id).shutdown(ref)

    # -------------------------------------------------------------- executor API

    def _api_for(self, call: Mapping[str, Any]) -> ExecutorAPI:
        framework_id = str((call.get("framework_id") or {}).get("value", ""))
        executor_id = str((call.get("executor_id") or {}).get("value", ""))
        api: ExecutorAPI | None = getattr(self.backend_for(framework_id, executor_id), "executor_api", None)
        if api is None:
            raise CallError(400, f"Executor {executor_id} of framework {framework_id} is not known to this agent")
        return api

    def executor_subscribe(self, call: dict[str, Any]) -> EventStream:
        return self._api_for(call).executor_subscribe(call)

    def executor_stream_closed(self, stream: EventStream) -> None:
        for backend in self.backends:
            api: ExecutorAPI | None = getattr(backend, "executor_api", None)
            if api is not None:
                api.executor_stream_closed(stream)

    def executor_call(self, call: dict[str, Any]) -> None:
        self._api_for(call).executor_call(call)


__all__ = [
    "SANDBOX_IN_CONTAINER",
    "ContainerRecord",
    "DockerExecutorBackend",
    "RoutingExecutorBackend",
    "container_name",
    "docker_run_argv",
    "is_docker_executor",
]
