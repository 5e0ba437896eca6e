"""The Elasticsearch process: which one to run, as whom, its keystore, and its supervision.

Which: ``ELASTICSEARCH_COMMAND`` if set (split like a shell would; tests and local mode point it at
a development stand-in), else ``bin/elasticsearch`` of a distribution extracted in the sandbox
(``--elasticsearchBinaryUrl``), else ``/usr/share/elasticsearch/bin/elasticsearch`` (the Docker
image). As whom: see :func:`run_as_for`. The keystore: :func:`set_bootstrap_password`.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping
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
KEYSTORE_FILE = "elasticsearch.keystore"
#: Seconds elasticsearch-keystore may take (it starts a JVM).
KEYSTORE_TIMEOUT = 300.0


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


def privileges(uid: int, home: Path) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run a child as ``uid``, group 0 and no other group (as the
    official image runs Elasticsearch), with its own HOME."""
    return {"user": uid, "group": 0, "extra_groups": [], "env_updates": {"HOME": str(home)}}


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


def run_as_for(settings: NodeSettings, home: Path | None, euid: int | None = None) -> dict[str, Any] | None:
    """Whom Elasticsearch runs as: None (the executor's own user) unless the executor is root.

    As root, Elasticsearch (which refuses root) runs as ``ELASTICSEARCH_UID`` (1000), group 0. A
    development command (ELASTICSEARCH_COMMAND, no distribution) keeps the executor's user unless
    ELASTICSEARCH_UID is given: local mode run as root keeps working in directories only root can enter.
    """
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    if home is None and not settings.uid_explicit:
        return None
    if settings.uid == 0:
        raise ExecutorError(f"{contract.ENV_UID}=0: Elasticsearch never runs as root")
    return privileges(settings.uid, home if home is not None else settings.sandbox)


# ---------------------------------------------------------------------- the keystore


def set_bootstrap_password(
    home: Path | None, settings: NodeSettings, run_as: Mapping[str, Any] | None, log: NodeLog
) -> None:
    """Create the keystore if missing and put the ``elastic`` password in it as ``bootstrap.password``,
    as the official image's entrypoint does: the password goes through stdin, never a command line."""
    password = settings.elastic_password
    if not password:
        return
    tool = home / "bin" / "elasticsearch-keystore" if home is not None else None
    if tool is None or not os.access(tool, os.X_OK):
        log.info("no elasticsearch-keystore next to Elasticsearch: bootstrap.password not set")
        return
    env = {k: v for k, v in settings.child_env.items() if k != "ES_JAVA_OPTS"}
    env["ES_PATH_CONF"] = str(settings.config_path)
    arguments = popen_arguments(run_as, env)

    def run(*args: str, stdin: str | None = None) -> None:
        try:
            result = subprocess.run(
                [str(tool), *args],
                input=(stdin or "").encode("utf-8"),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=settings.config_path,
                timeout=KEYSTORE_TIMEOUT,
                check=False,
                **arguments,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ExecutorError(f"elasticsearch-keystore {' '.join(args)} failed: {error}") from error
        if result.returncode != 0:
            output = result.stdout.decode("utf-8", "replace").replace(password, "******").strip()
            raise ExecutorError(
                f"elasticsearch-keystore {' '.join(args)} exited with code {result.returncode}: {output[-500:]}"
            )

    if not (settings.config_path / KEYSTORE_FILE).exists():
        run("create")
        log.info("created the keystore %s", settings.config_path / KEYSTORE_FILE)
    run("add", "-x", "-f", "bootstrap.password", stdin=password)
    log.info("bootstrap.password set in the keystore")


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
