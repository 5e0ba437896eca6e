"""The Elasticsearch process: which one to run, as whom, and its supervision (its keystore:
:mod:`es_framework.executor.keystore`).

Which: ``ELASTICSEARCH_COMMAND`` if set (split like a shell would; tests and local mode point it at
a development stand-in), else ``bin/elasticsearch`` of a distribution extracted in the sandbox
(``--elasticsearchBinaryUrl``), else ``/usr/share/elasticsearch/bin/elasticsearch`` (the Docker
image). As whom: see :func:`run_as_for`.
"""

from __future__ import annotations

import collections
import glob
import os
import pwd
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from es_framework import contract
from es_framework.core.es_catalog import SUPPORTED_MAJORS
from es_framework.executor.logs import NodeLog
from es_framework.executor.settings import ExecutorError, NodeSettings

DOCKER_ELASTICSEARCH_HOME = Path("/usr/share/elasticsearch")
#: Elasticsearch's exit code for a failed bootstrap check.
BOOTSTRAP_EXIT_CODE = 78
LOG_TAIL_LINES = 20
#: Elasticsearch's output in the sandbox.
ES_LOG_FILE = "elasticsearch.log"


# ---------------------------------------------------------------------- which Elasticsearch


def find_elasticsearch(settings: NodeSettings) -> tuple[list[str], Path | None]:
    """The command line, and the distribution's home (for its default config) if there is one."""
    if settings.command:
        return list(settings.command), None
    candidates = sorted(glob.glob(str(settings.sandbox / "elasticsearch*" / "bin" / "elasticsearch")))
    candidates.append(str(DOCKER_ELASTICSEARCH_HOME / "bin" / "elasticsearch"))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return [candidate], Path(candidate).parent.parent
    raise ExecutorError(
        f"no Elasticsearch to run: {contract.ENV_COMMAND} is not set, no elasticsearch*/bin/elasticsearch in the "
        f"sandbox {settings.sandbox}, and no {DOCKER_ELASTICSEARCH_HOME}/bin/elasticsearch"
    )


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_JAR = re.compile(r"elasticsearch-(\d+\.\d+\.\d+[^/]*)\.jar")


def elasticsearch_version(home: Path | None, override: str | None) -> tuple[int, str]:
    """(major, version text): ELASTICSEARCH_VERSION if given, else ``<home>/lib/elasticsearch-<version>.jar``,
    else 8 for a development command (ELASTICSEARCH_COMMAND, no distribution)."""
    if override:
        text = override
        major_text = text.split(".", 1)[0]
        if not major_text.isdigit():
            raise ExecutorError(f"{contract.ENV_VERSION}={override!r} is not a version (e.g. 8 or 8.15.1)")
    elif home is None:
        return 8, f"8 (assumed for {contract.ENV_COMMAND})"
    else:
        found = sorted(
            m.group(1) for jar in (home / "lib").glob("elasticsearch-*.jar") if (m := _JAR.fullmatch(jar.name))
        )
        if not found:
            raise ExecutorError(
                f"cannot tell the Elasticsearch version: no lib/elasticsearch-<version>.jar in {home}; "
                f"set {contract.ENV_VERSION}"
            )
        if len(found) > 1:
            raise ExecutorError(f"{home}/lib holds several Elasticsearch versions: {', '.join(found)}")
        text = found[0]
    major = int(text.split(".", 1)[0])
    if major not in SUPPORTED_MAJORS:
        raise ExecutorError(f"Elasticsearch {text} is not supported: es-mesos runs 7.x (7.9 or later) and 8.x")
    version = _VERSION.match(text)
    if major == 7 and version is not None and version.group(2) is not None and int(version.group(2)) < 9:
        raise ExecutorError(f"Elasticsearch {text} is not supported: es-mesos needs 7.9 or later (node.roles)")
    return major, text


# ---------------------------------------------------------------------- as whom

#: The official image's group for Elasticsearch (its user is ``ELASTICSEARCH_UID``'s default, 1000).
IMAGE_GID = 0


def privileges(uid: int, home: Path, gid: int = IMAGE_GID, extra_groups: Sequence[int] = ()) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run a child as ``uid``:``gid`` with only ``extra_groups`` besides,
    and its own HOME. The defaults are the official image's: group 0 and no other group."""
    return {"user": uid, "group": gid, "extra_groups": list(extra_groups), "env_updates": {"HOME": str(home)}}


def popen_arguments(run_as: Mapping[str, Any] | None, env: dict[str, str]) -> dict[str, Any]:
    """``subprocess`` keyword arguments for a child with ``env``, as ``run_as`` (see :func:`privileges`)."""
    if not run_as:
        return {"env": env}
    return {
        "env": {**env, **run_as["env_updates"]},
        "user": run_as["user"],
        "group": run_as["group"],
        "extra_groups": run_as["extra_groups"],
    }


def elasticsearch_user(settings: NodeSettings) -> str | None:
    """``ELASTICSEARCH_USER``: the agent user the scheduler names for Elasticsearch under the Mesos
    containerizer (``--elasticsearchUser``); None on Docker and in contract-1 task definitions."""
    return (settings.child_env.get(contract.ENV_USER) or "").strip() or None


def agent_user(name: str, lookup: Callable[[str], pwd.struct_passwd] = pwd.getpwnam) -> tuple[int, int, list[int]]:
    """(uid, gid, groups) of user ``name`` on this agent, as Mesos' launcher switches to a
    ``CommandInfo.user``: its uid, its primary group, and every group it belongs to
    (``os::getuid``, ``os::getgid``, ``os::getgrouplist`` in apache/mesos
    ``src/slave/containerizer/mesos/launch.cpp``)."""
    try:
        entry = lookup(name)
    except KeyError:
        raise ExecutorError(
            f"user {name!r} ({contract.ENV_USER}, --elasticsearchUser) does not exist on this agent: create it, or "
            f"set {contract.ENV_UID} through the agent's --executor_environment_variables"
        ) from None
    try:
        groups = os.getgrouplist(name, entry.pw_gid)
    except OSError:
        groups = [entry.pw_gid]
    return entry.pw_uid, entry.pw_gid, sorted(set(groups))


def run_as_for(
    settings: NodeSettings,
    home: Path | None,
    euid: int | None = None,
    *,
    lookup: Callable[[str], pwd.struct_passwd] = pwd.getpwnam,
) -> dict[str, Any] | None:
    """Whom Elasticsearch runs as: None (the executor's own user) unless the executor is root.

    The scheduler starts the executor as root on both containerizers (Docker: the image's ``USER
    root``; Mesos: ``CommandInfo.user``), so that it can prepare the node's directories (a freshly
    attached volume belongs to root) before it drops privileges for Elasticsearch, which refuses root:

    - ``ELASTICSEARCH_UID``, the explicit override (an agent sets it with
      ``--executor_environment_variables``; tests): that uid, group 0, no other group.
    - A development command (``ELASTICSEARCH_COMMAND``, no distribution) without ``ELASTICSEARCH_UID``
      keeps the executor's user: local mode run as root keeps working in directories only root can
      enter.
    - ``ELASTICSEARCH_USER`` (the Mesos containerizer, ``--elasticsearchUser``): that user as this
      agent knows it (:func:`agent_user`). It is resolved here, not by the scheduler, because without
      an image the executor shares the agent's filesystem, ``/etc/passwd`` included, and only the agent
      knows the uid its user has (Mesos resolves a ``CommandInfo.user`` on the agent the same way).
      A user missing on the agent fails the task with the fix.
    - Otherwise (the Docker image): uid 1000 (``ELASTICSEARCH_UID``'s default, the image's user), group 0.

    Not root: an agent started with ``--switch_user=false`` as another user, local mode run by a user,
    or a contract-1 task definition (release 0.1.0 asked Mesos to start the executor as
    ``--elasticsearchUser`` itself). Elasticsearch then runs as the executor and nothing changes owner.
    """
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    if home is None and not settings.uid_explicit:
        return None
    if settings.uid_explicit:
        if settings.uid == 0:
            raise ExecutorError(f"{contract.ENV_UID}=0: Elasticsearch never runs as root")
        return privileges(settings.uid, home if home is not None else settings.sandbox)
    assert home is not None
    name = elasticsearch_user(settings)
    if name is None:
        return privileges(settings.uid, home)
    uid, gid, groups = agent_user(name, lookup)
    if uid == 0:
        raise ExecutorError(f"{contract.ENV_USER}={name!r} is root on this agent: Elasticsearch never runs as root")
    return privileges(uid, home, gid, [g for g in groups if g != gid])


# ---------------------------------------------------------------------- the process


def bootstrap_check_lines(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if "bootstrap check" in line.lower()]


def failure_message(code: int, lines: list[str]) -> str:
    """TASK_FAILED's message for an Elasticsearch that exited by itself: the reason, then its last lines."""
    if code == BOOTSTRAP_EXIT_CODE:
        checks = [line for line in bootstrap_check_lines(lines) if "failure [" in line] or bootstrap_check_lines(lines)
        reason = "; ".join(checks) if checks else "bootstrap check failure (no check named in the log)"
        head = f"Elasticsearch exited with code 78: {reason}"
    elif code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        head = f"Elasticsearch was killed by signal {name}"
    else:
        head = f"Elasticsearch exited with code {code}"
    tail = " | ".join(line.strip() for line in lines[-LOG_TAIL_LINES:] if line.strip())
    return f"{head}. Last log lines: {tail}" if tail else head


class ElasticsearchProcess:
    """Elasticsearch as a child process; its output goes to a sandbox file and a short memory tail."""

    def __init__(
        self, command: list[str], settings: NodeSettings, log: NodeLog, run_as: Mapping[str, Any] | None = None
    ) -> None:
        self.log = log
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        env = dict(settings.child_env)
        env["ES_PATH_CONF"] = str(settings.config_path)
        self._log_path = settings.sandbox / ES_LOG_FILE
        self.process = subprocess.Popen(
            command,
            cwd=settings.sandbox,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **popen_arguments(run_as, env),
        )
        self._reader = threading.Thread(target=self._read, name="elasticsearch-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with open(self._log_path, "ab") as out:
            for raw in self.process.stdout:
                out.write(raw)
                out.flush()
                self.tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def last_lines(self) -> list[str]:
        self._reader.join(timeout=2)
        return list(self.tail)

    def stop(self, grace_period: float) -> tuple[int, bool]:
        """SIGTERM, then SIGKILL after ``grace_period``. Returns (exit code, whether it stopped by itself)."""
        if self.process.poll() is None:
            self.log.info("sending SIGTERM to Elasticsearch (pid %s); grace period %.1fs", self.pid, grace_period)
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=max(grace_period, 0.0)), True
            except subprocess.TimeoutExpired:
                self.log.warning("Elasticsearch (pid %s) still running after %.1fs: SIGKILL", self.pid, grace_period)
                self.process.kill()
                return self.process.wait(), False
        return int(self.process.returncode), True
