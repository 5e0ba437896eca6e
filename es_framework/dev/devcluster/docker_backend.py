"""Executors in Docker containers, as Mesos' Docker containerizer runs them (development tool, not for production).

:class:`DockerExecutorBackend` lets the development master's simulated agents run an executor whose
``ExecutorInfo.container.type`` is ``DOCKER`` in a real container of a given ``dockerd`` (the tests
use a private one), so the executor image, Docker volume drivers, ulimits and bind mounts are
exercised for real. The ``docker run`` command line is :func:`~.docker_run.docker_run_argv`'s, built
as Mesos builds it.

The container runs detached (``docker run -d``); ``docker logs -f`` copies its output into the
sandbox's ``stdout``/``stderr`` files and ``docker wait`` tells the monitor when it exits. ``docker
run`` itself runs in a thread, since it can take a while (image layers, volume driver) and the
master calls :meth:`launch` holding its lock; a failed ``docker run`` becomes ``TASK_FAILED`` /
``REASON_CONTAINER_LAUNCH_FAILED`` with Docker's message. Everything else — the v1 executor API,
KILL/MESSAGE/SHUTDOWN events, ``TASK_FAILED`` / ``REASON_EXECUTOR_TERMINATED`` when the executor
exits under a live task — is :class:`~es_framework.dev.devcluster.executor_api.ExecutorAPIBackend`'s,
shared with the process backend. Shutting an executor down is what an agent does: the SHUTDOWN
event, and once the grace period is over ``docker stop -t <stop_timeout>`` (Mesos'
``--docker_stop_timeout``, 0 s by default). Stopped containers stay (``docker inspect`` them) until
:meth:`close`, which stops and removes every container of this backend.

A cluster whose tasks use both Docker and plain executors combines it with a process backend in a
:class:`~es_framework.dev.devcluster.routing_backend.RoutingExecutorBackend`.

Command tasks (``command``, no ``executor``) run as Mesos' command executor runs them on the agent
host (:mod:`.command_tasks`), with ``DOCKER_HOST`` set to this backend's engine: ``docker volume rm``
asks its real volume drivers (the tests' engine has the test volume plugin). A
:class:`~es_framework.dev.devcluster.routing_backend.RoutingExecutorBackend` sends them to its default
backend; give that ``ProcessExecutorBackend(workdir, docker_host=...)`` for the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from es_framework.dev.devcluster.command_tasks import CommandTaskBackend, CommandTaskRunner
from es_framework.dev.devcluster.docker_run import SANDBOX_IN_CONTAINER, container_name, docker_run_argv
from es_framework.dev.devcluster.executor_api import DEFAULT_GRACE_PERIOD, ExecutorRecord
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef

logger = logging.getLogger(__name__)

#: Labels on every container this backend runs (``<prefix>backend`` tells backends apart).
LABEL_PREFIX = "es-mesos.devcluster."


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


class DockerExecutorBackend(CommandTaskBackend[ContainerRecord]):
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
        self.command_tasks = CommandTaskRunner(environment=self.command_env)

    def command_env(self, ref: ExecutorRef, sandbox: Path) -> dict[str, str]:
        """A command task's ``docker`` talks to this backend's engine (and is this backend's binary)."""
        env = super().command_env(ref, sandbox)
        env["DOCKER_HOST"] = self.docker_host
        env["PATH"] = os.pathsep.join([str(Path(self.docker_binary).parent), os.environ.get("PATH", "")])
        return env

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


__all__ = ["LABEL_PREFIX", "ContainerRecord", "DockerExecutorBackend"]
