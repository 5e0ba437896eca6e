"""Executors as real local processes (development tool, not for production).

:class:`ProcessExecutorBackend` makes the development master's simulated agents run each task's
executor (``ExecutorInfo.command``) as a child process, the way a Mesos agent without containers
would: in its sandbox (``stdout`` and ``stderr`` files there), in a process group of its own, with
the agent's executor environment overlaid by the ExecutorInfo's (as the Mesos containerizer merges
them; see :mod:`~es_framework.dev.devcluster.executor_api`, which also serves the v1 executor API).
The command ``es-mesos-executor`` runs as ``<this python> -m es_framework.executor`` (see
``commands``). When the executor is shut down, its process group is killed after its grace period.

**No containers and no volume drivers run here.** What stands in for a Docker volume driver:
every external volume a TaskInfo names (Docker ``volume``/``mount`` parameters, Mesos
``DOCKER_VOLUME`` sources, mesos-module-dvdi ``DVDI_VOLUME_*`` variables) is the directory
``<workdir>/volumes/<volume name>``, created on first use and kept, so a replacement node with the
same id finds the same directory; ``host_path`` volumes become ``<workdir>/hostpaths/<agent>/<path>``
(each agent has a disk of its own, as real agents do, so nodes on two agents never share one). The
executor learns them through ``ELASTICSEARCH_DATA_PATH`` / ``ELASTICSEARCH_CONFIG_VOLUME_PATH``,
which the backend sets in the child's environment to those directories when they name a volume's
container path. Any other absolute path there is the agent's own filesystem for an executor of the
Mesos containerizer without an image (which shares it, e.g. normal mode's ``<dataDir>/…``), so it
becomes ``<workdir>/hostpaths/<agent>/<path>`` too; inside a Docker container it would vanish with the
container, so it becomes a sandbox directory.

The limits of a Mesos container's ``rlimit_info`` are set on the executor as Mesos' launcher sets them,
when the agent runs ``posix/rlimits`` (:func:`with_rlimits`; without it the agent leaves them out).

Command tasks (``command``, no ``executor``) run as Mesos' command executor runs them
(:mod:`.command_tasks`). ``docker volume rm|inspect NAMES`` there asks the stand-in driver: ``rm``
removes ``<workdir>/volumes/<name>`` unless a running executor of this backend mounts it (then it
fails as Docker does, "Error response from daemon: remove <name>: volume is in use - [<tasks>]",
exit 1, and a missing one fails with "… get <name>: no such volume", exit 1; ``-f`` skips missing
ones, as Docker's does, never in-use ones); ``inspect`` prints the found volumes as JSON and fails
(exit 1) on a missing one. Given ``docker_host``, ``docker`` runs for real against that engine instead.
Any other command runs as a process in the task's sandbox.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from es_framework.dev.devcluster.command_tasks import CommandTaskBackend, CommandTaskRunner, StandIn
from es_framework.dev.devcluster.docker_run import is_docker_executor
from es_framework.dev.devcluster.env_secrets import command_variables
from es_framework.dev.devcluster.executor_api import DEFAULT_GRACE_PERIOD, ExecutorRecord, safe_name
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef
from es_framework.dev.devcluster.isolation import rlimits_of

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: Run by path with the standard library only: no package import delays the executor's start.
RLIMIT_LAUNCH = Path(__file__).resolve().with_name("rlimit_launch.py")
DEFAULT_COMMANDS: Mapping[str, Sequence[str]] = {
    "es-mesos-executor": (sys.executable, "-m", "es_framework.executor"),
}


def with_rlimits(argv: Sequence[str], limits: Sequence[Mapping[str, Any]]) -> list[str]:
    """``argv`` started through :mod:`.rlimit_launch` when there are ``limits`` to set (the task's
    ``rlimit_info``, which the agent left in only with ``posix/rlimits``, see :mod:`.isolation`): it sets
    them and execs the executor, as ``mesos-containerizer launch`` does, or ends with Mesos' message."""
    if not limits:
        return list(argv)
    return [sys.executable, "-I", str(RLIMIT_LAUNCH), json.dumps(list(limits)), "--", *argv]


@dataclass
class ProcessRecord(ExecutorRecord):
    popen: subprocess.Popen[bytes] | None = None


def volume_mounts(task_info: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(kind, source, container path)`` for every volume the task's executor asks for; kind is
    ``volume`` (a named external volume) or ``host`` (a host path)."""
    executor = task_info.get("executor") or {}
    container = executor.get("container") or {}
    mounts: list[tuple[str, str, str]] = []
    for parameter in (container.get("docker") or {}).get("parameters") or []:
        key, value = str(parameter.get("key")), str(parameter.get("value"))
        if key == "volume" and ":" in value:
            name, path = value.split(":", 2)[:2]
            mounts.append(("volume", name, path))
        elif key == "mount":
            fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
            if fields.get("type", "volume") == "volume" and "source" in fields and "target" in fields:
                mounts.append(("volume", fields["source"], fields["target"]))
    for volume in container.get("volumes") or []:
        path = str(volume.get("container_path", ""))
        source = volume.get("source") or {}
        if source.get("type") == "DOCKER_VOLUME":
            mounts.append(("volume", str(source["docker_volume"]["name"]), path))
        elif volume.get("host_path"):
            mounts.append(("host", str(volume["host_path"]), path))
    variables = ((executor.get("command") or {}).get("environment") or {}).get("variables") or []
    env = {str(v.get("name")): str(v.get("value", "")) for v in variables}
    for suffix in ["", *map(str, range(1, 10))]:
        dvdi_name = env.get(f"DVDI_VOLUME_NAME{suffix}")
        dvdi_path = env.get(f"DVDI_VOLUME_CONTAINERPATH{suffix}")
        if dvdi_name and dvdi_path:
            mounts.append(("volume", dvdi_name, dvdi_path))
    return mounts


class ProcessExecutorBackend(CommandTaskBackend[ProcessRecord]):
    """Runs executors as local processes against the master's executor API. See the module docstring."""

    kind = "executor process"

    def __init__(
        self,
        workdir: Path,
        *,
        commands: Mapping[str, Sequence[str]] | None = None,
        extra_env: Mapping[str, str] | None = None,
        default_grace_period: float = DEFAULT_GRACE_PERIOD,
        docker_host: str | None = None,
    ) -> None:
        super().__init__(workdir, default_grace_period=default_grace_period)
        self.commands = dict(DEFAULT_COMMANDS if commands is None else commands)
        self.extra_env = dict(extra_env or {})
        self.docker_host = docker_host
        self.command_tasks = CommandTaskRunner(
            stand_in=self._docker_stand_in if docker_host is None else None, environment=self.command_env
        )

    def command_env(self, ref: ExecutorRef, sandbox: Path) -> dict[str, str]:
        env = super().command_env(ref, sandbox)
        if self.docker_host is not None:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def volume_dir(self, name: str) -> Path:
        return self.workdir / "volumes" / safe_name(name)

    # -------------------------------------------------------------- the ExecutorAPIBackend seams

    def _make_record(
        self, ref: ExecutorRef, agent: AgentSide, task_info: dict[str, Any], sandbox: Path, grace_period: float
    ) -> ProcessRecord:
        return ProcessRecord(ref, agent, task_info, sandbox, grace_period)

    def _start(self, record: ProcessRecord, executor: Mapping[str, Any], grace: float | None) -> None:
        argv, env = self._command(record, executor, grace)
        argv = with_rlimits(argv, rlimits_of(record.task_info))
        with open(record.sandbox / "stdout", "ab") as out, open(record.sandbox / "stderr", "ab") as err:
            record.popen = subprocess.Popen(
                argv,
                cwd=record.sandbox,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: pymesos kills its group on SHUTDOWN
            )

    def _exit_code(self, record: ProcessRecord) -> int | None:
        return record.popen.poll() if record.popen is not None else 0

    def _kill(self, record: ProcessRecord) -> None:
        if record.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            record.popen.wait(timeout=2)

    def _reap(self, record: ProcessRecord) -> None:
        # The session's leftovers (Elasticsearch, if the executor left it behind).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if record.popen is not None:
                os.killpg(record.popen.pid, signal.SIGKILL)

    def _describe(self, record: ProcessRecord) -> dict[str, Any]:
        return {"pid": record.popen.pid if record.popen is not None else None}

    # -------------------------------------------------------------- internals

    def _command(
        self, record: ProcessRecord, executor: Mapping[str, Any], grace: float | None
    ) -> tuple[list[str], dict[str, str]]:
        command = executor.get("command") or {}
        value = str(command.get("value", ""))
        if command.get("shell", True):
            argv = ["/bin/sh", "-c", value]
        elif value in self.commands:
            argv = [*self.commands[value], *[str(a) for a in (command.get("arguments") or [])[1:]]]
        else:
            argv = [value, *[str(a) for a in (command.get("arguments") or [])[1:]]]
        if not value:
            raise ValueError("the ExecutorInfo has no command value")
        env = dict(os.environ)
        for inherited in ("MESOS_CHECKPOINT", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"):
            env.pop(inherited, None)  # only the agent decides these
        # The Mesos containerizer's order: the agent's executor environment, then the CommandInfo's
        # variables win (MesosContainerizerProcess::_launch, src/slave/containerizer/mesos/containerizer.cpp).
        env.update(self._agent_env(record, grace, str(record.sandbox)))
        # SECRET variables resolved where real Mesos resolves them (.env_secrets).
        env.update(command_variables(executor))
        env.update(self._volume_env(record, env))
        env.update(self.extra_env)
        pythonpath = env.get("PYTHONPATH")
        env["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{pythonpath}" if pythonpath else str(PROJECT_ROOT)
        return argv, env

    def _volume_env(self, record: ProcessRecord, env: Mapping[str, str]) -> dict[str, str]:
        """Stand-in for a volume driver: map each volume's container path to a directory of ours."""
        by_path: dict[str, Path] = {}
        for kind, source, path in volume_mounts(record.task_info):
            local = self.volume_dir(source) if kind == "volume" else self.host_path_dir(record.ref.agent_id, source)
            local.mkdir(parents=True, exist_ok=True)
            by_path[path.rstrip("/")] = local
            logger.info(
                "agent %s: task %s %s %s at %s is %s (development stand-in)",
                record.ref.agent_id,
                record.task_id,
                kind,
                source,
                path,
                local,
            )
        out: dict[str, str] = {}
        for name in ("ELASTICSEARCH_DATA_PATH", "ELASTICSEARCH_CONFIG_VOLUME_PATH"):
            value = env.get(name, "").rstrip("/")
            if value in by_path:
                out[name] = str(by_path[value])
            elif value.startswith("/") and not is_docker_executor(record.task_info):
                # The Mesos containerizer without an image: the executor shares the agent's filesystem
                # (and creates the directory itself, as it must on a real agent).
                out[name] = str(self.host_path_dir(record.ref.agent_id, value))
            elif value.startswith("/"):
                # An absolute path inside a container that is not a volume: it would vanish with the container.
                out[name] = str(record.sandbox / value.lstrip("/"))
        return out

    # ------------------------------------------------------------------ the stand-in for ``docker volume``

    def _docker_stand_in(self, argv: Sequence[str]) -> StandIn | None:
        if Path(argv[0]).name == "docker" and len(argv) >= 3 and argv[1] == "volume" and argv[2] in _VOLUME_VERBS:
            return self._docker_volume
        return None

    def volume_users(self, name: str) -> list[str]:
        """The tasks of running executors of this backend that mount volume ``name`` (Docker's references)."""
        with self._lock:
            return sorted(
                record.task_id
                for record in self._executors.values()
                if self._exit_code(record) is None
                and any(kind == "volume" and source == name for kind, source, _ in volume_mounts(record.task_info))
            )

    def _docker_volume(self, argv: Sequence[str], out: TextIO, err: TextIO) -> int:
        verb = _VOLUME_VERBS[argv[2]]
        names = [a for a in argv[3:] if not a.startswith("-")]
        flags = [a for a in argv[3:] if a.startswith("-")]
        unknown = [f for f in flags if verb != "rm" or f not in ("-f", "--force")]
        if unknown:
            err.write(f"unknown flag: {unknown[0]}\nSee 'docker volume {verb} --help'.\n")
            return 125
        if not names:
            err.write(f'"docker volume {verb}" requires at least 1 argument.\n')
            return 1
        failed = False
        found: list[dict[str, Any]] = []
        for name in names:
            directory = self.volume_dir(name)
            if not directory.is_dir():
                if verb == "rm" and flags:
                    continue  # --force: a missing volume counts as removed (and hides nothing else here)
                err.write(f"Error response from daemon: get {name}: no such volume\n")
                failed = True
                continue
            if verb == "inspect":
                found.append({"Name": name, "Driver": "local", "Mountpoint": str(directory), "Scope": "local"})
                continue
            users = self.volume_users(name)
            if users:
                err.write(f"Error response from daemon: remove {name}: volume is in use - [{', '.join(users)}]\n")
                failed = True
                continue
            shutil.rmtree(directory)
            logger.info("stand-in volume driver: removed volume %s (%s)", name, directory)
            out.write(f"{name}\n")
        if verb == "inspect":
            out.write(json.dumps(found, indent=4) + "\n")
        return 1 if failed else 0


#: ``docker volume`` verbs the stand-in answers (``remove`` is ``rm``'s alias).
_VOLUME_VERBS = {"rm": "rm", "remove": "rm", "inspect": "inspect"}
