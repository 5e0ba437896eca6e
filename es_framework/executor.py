"""``es-mesos-executor``: the Mesos executor that runs one Elasticsearch node.

A pymesos ``MesosExecutorDriver`` process, started by the Mesos agent with the ``MESOS_*``
environment and the ExecutorInfo's environment (``ELASTICSEARCH_*``, see
:mod:`es_framework.task_builder`). For its one task it:

1. reads the ``ELASTICSEARCH_*`` variables: the TaskInfo's executor command environment, overlaid
   with the process environment (which wins: an agent may adapt it, as the development cluster
   does for volume paths);
2. prepares the data directory (``ELASTICSEARCH_DATA_PATH``) and the config directory
   (``<ELASTICSEARCH_CONFIG_VOLUME_PATH>/config``, else ``<sandbox>/config``); relative paths are
   relative to ``MESOS_SANDBOX`` (else the working directory). With ``ELASTICSEARCH_USE_IP_ADDRESS=true``
   the publish host is the IP address ``ELASTICSEARCH_PUBLISH_HOST`` resolves to. The config directory is regenerated
   on every start: the distribution's default files are copied in, then ``elasticsearch.yml`` and
   ``unicast_hosts.txt`` are written;
3. starts Elasticsearch: ``ELASTICSEARCH_COMMAND`` if set (split like a shell would; tests and local
   mode point it at the demo node), else ``bin/elasticsearch`` of a distribution extracted in the
   sandbox (``--elasticsearchBinaryUrl``), else ``/usr/share/elasticsearch/bin/elasticsearch`` (the
   Docker image), with ``ES_PATH_CONF`` set;
4. reports ``TASK_STARTING``, then ``TASK_RUNNING`` only once ``GET /`` answers, then the node's
   health (the ``healthy`` field, from ``GET /_cluster/health``) whenever it changes and every
   :data:`HEALTH_REPORT_INTERVAL` seconds;
5. reports ``TASK_FAILED`` with the exit code, the reason and the last log lines when Elasticsearch
   exits by itself (exit 78: the failing bootstrap check line is named);
6. on KILL (and SHUTDOWN) stops Elasticsearch gracefully: SIGTERM, then SIGKILL after the grace
   period (``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``, else the task's kill policy, else 120 s),
   and reports ``TASK_KILLED``.

Framework messages are JSON ``{"version": n, "seed_hosts": ["host:port", ...]}``: a version newer
than the last one applied rewrites ``unicast_hosts.txt`` (Elasticsearch re-reads it); older or equal
versions are ignored. No exception ever escapes a pymesos callback (that would end the driver).
The executor logs to ``<sandbox>/es-mesos-executor.log`` (rotated) and stderr; Elasticsearch's
output goes to ``<sandbox>/elasticsearch.log``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import functools
import glob
import json
import logging
import logging.handlers
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pymesos import MesosExecutorDriver
from pymesos.utils import parse_duration

logger = logging.getLogger("es_framework.executor")

DEFAULT_GRACE_PERIOD = 120.0
DOCKER_ELASTICSEARCH_HOME = Path("/usr/share/elasticsearch")
#: Seconds between health checks, and the longest time between two health reports.
HEALTH_CHECK_INTERVAL = float(os.environ.get("ES_MESOS_EXECUTOR_HEALTH_CHECK_INTERVAL", "5"))
HEALTH_REPORT_INTERVAL = float(os.environ.get("ES_MESOS_EXECUTOR_HEALTH_REPORT_INTERVAL", "60"))
#: How often the executor asks whether Elasticsearch answers while it starts.
STARTUP_POLL_INTERVAL = 0.25
LOG_TAIL_LINES = 20
HTTP_TIMEOUT = 2.0
BOOTSTRAP_EXIT_CODE = 78
STATUS_SEND_ATTEMPTS = 50
LOG_FILE = "es-mesos-executor.log"
ES_LOG_FILE = "elasticsearch.log"
#: Files the executor writes itself into the config directory (never copied from the distribution).
GENERATED_FILES = frozenset({"elasticsearch.yml", "unicast_hosts.txt"})

F = TypeVar("F", bound=Callable[..., None])


class NodeLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with the node id and task id."""

    def __init__(self, node_id: str, task_id: str) -> None:
        super().__init__(logger, {})
        self.prefix = f"node {node_id} task {task_id}: "

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.prefix}{msg}", kwargs


class ExecutorError(Exception):
    """The node cannot be started (the message goes into TASK_FAILED)."""


# ---------------------------------------------------------------------- configuration


def _env_of_task(task_info: Mapping[str, Any]) -> dict[str, str]:
    executor = task_info.get("executor") or {}
    command = executor.get("command") or task_info.get("command") or {}
    variables = (command.get("environment") or {}).get("variables") or []
    return {str(v["name"]): str(v.get("value", "")) for v in variables if "name" in v}


def _grace_period(env: Mapping[str, str], task_info: Mapping[str, Any]) -> float:
    raw = env.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "").strip()
    if raw:
        try:
            return float(parse_duration(raw))
        except (AssertionError, ValueError, TypeError):
            try:
                return float(raw)
            except ValueError:
                logger.warning("unreadable MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD %r; using the default", raw)
    nanoseconds = ((task_info.get("kill_policy") or {}).get("grace_period") or {}).get("nanoseconds")
    if isinstance(nanoseconds, int | float) and nanoseconds > 0:
        return float(nanoseconds) / 1e9
    return DEFAULT_GRACE_PERIOD


@dataclass(frozen=True)
class NodeSettings:
    """Everything the executor needs to start one node, from the environment."""

    task_id: str
    node_id: str
    node_name: str
    cluster_name: str
    http_port: int
    transport_port: int
    publish_host: str
    network_host: str
    seed_hosts: tuple[str, ...]
    initial_master_nodes: tuple[str, ...]
    data_path: Path
    config_path: Path
    sandbox: Path
    command: tuple[str, ...] | None
    grace_period: float
    child_env: Mapping[str, str]

    @classmethod
    def from_task(cls, task_info: Mapping[str, Any], environ: Mapping[str, str]) -> NodeSettings:
        env = {**_env_of_task(task_info), **environ}
        sandbox = Path(env.get("MESOS_SANDBOX") or env.get("MESOS_DIRECTORY") or os.getcwd())

        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ExecutorError(f"the executor's environment lacks {name}")
            return value

        def port(name: str) -> int:
            raw = need(name)
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ExecutorError(f"{name}={raw!r} is not a port number")
            return int(raw)

        def path(raw: str) -> Path:
            candidate = Path(raw)
            return candidate if candidate.is_absolute() else sandbox / candidate

        data_path = path(env.get("ELASTICSEARCH_DATA_PATH") or "data")
        volume = env.get("ELASTICSEARCH_CONFIG_VOLUME_PATH", "").strip()
        config_path = path(volume) / "config" if volume else sandbox / "config"
        command_text = env.get("ELASTICSEARCH_COMMAND", "").strip()
        return cls(
            task_id=str((task_info.get("task_id") or {}).get("value", "")),
            node_id=need("ELASTICSEARCH_NODE_ID"),
            node_name=need("ELASTICSEARCH_NODE_NAME"),
            cluster_name=need("ELASTICSEARCH_CLUSTER_NAME"),
            http_port=port("ELASTICSEARCH_HTTP_PORT"),
            transport_port=port("ELASTICSEARCH_TRANSPORT_PORT"),
            publish_host=_publish_host(need("ELASTICSEARCH_PUBLISH_HOST"), env),
            network_host=env.get("ELASTICSEARCH_NETWORK_HOST", "0.0.0.0").strip() or "0.0.0.0",
            seed_hosts=_split(env.get("ELASTICSEARCH_SEED_HOSTS", "")),
            initial_master_nodes=_split(env.get("ELASTICSEARCH_INITIAL_MASTER_NODES", "")),
            data_path=data_path,
            config_path=config_path,
            sandbox=sandbox,
            command=tuple(shlex.split(command_text)) if command_text else None,
            grace_period=_grace_period(env, task_info),
            child_env=env,
        )

    @property
    def local_http(self) -> str:
        """Where the executor asks the node how it is (it runs on this host)."""
        host = "127.0.0.1" if self.network_host in ("0.0.0.0", "_site_", "_local_", "") else self.network_host
        return f"http://{host}:{self.http_port}"


def _publish_host(host: str, env: Mapping[str, str]) -> str:
    """The agent's hostname, or its IP address with ``ELASTICSEARCH_USE_IP_ADDRESS=true`` (--useIpAddress)."""
    if env.get("ELASTICSEARCH_USE_IP_ADDRESS", "").strip().lower() != "true":
        return host
    try:
        return socket.gethostbyname(host)
    except OSError as error:
        logger.warning("cannot resolve %s to an IP address (%s); publishing the hostname", host, error)
        return host


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _yaml_string(value: str) -> str:
    return json.dumps(value)


def render_elasticsearch_yml(settings: NodeSettings) -> str:
    lines = [
        f"# Written by es-mesos-executor for node {settings.node_id} ({settings.node_name}), task {settings.task_id}.",
        "# Regenerated on every start of the node: edit the framework's configuration instead.",
        f"cluster.name: {_yaml_string(settings.cluster_name)}",
        f"node.name: {_yaml_string(settings.node_name)}",
        f"network.host: {_yaml_string(settings.network_host)}",
        f"network.publish_host: {_yaml_string(settings.publish_host)}",
        f"http.port: {settings.http_port}",
        f"transport.port: {settings.transport_port}",
        f"path.data: {_yaml_string(str(settings.data_path))}",
        "discovery.seed_providers: [file]",
    ]
    if settings.initial_master_nodes:
        masters = ", ".join(_yaml_string(n) for n in settings.initial_master_nodes)
        lines.append(f"cluster.initial_master_nodes: [{masters}]")
    return "\n".join(lines) + "\n"


def write_unicast_hosts(config_path: Path, hosts: tuple[str, ...] | list[str]) -> None:
    """Replace ``unicast_hosts.txt`` atomically (Elasticsearch may read it at any moment)."""
    target = config_path / "unicast_hosts.txt"
    tmp = config_path / ".unicast_hosts.txt.tmp"
    tmp.write_text("# Written by es-mesos-executor.\n" + "".join(f"{h}\n" for h in hosts), encoding="utf-8")
    os.replace(tmp, target)


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
        "no Elasticsearch to run: ELASTICSEARCH_COMMAND is not set, no elasticsearch*/bin/elasticsearch in the "
        f"sandbox {settings.sandbox}, and no {DOCKER_ELASTICSEARCH_HOME}/bin/elasticsearch"
    )


def prepare_node(settings: NodeSettings, home: Path | None) -> None:
    """Create the data and config directories and write the node's configuration."""
    try:
        settings.data_path.mkdir(parents=True, exist_ok=True)
        settings.config_path.mkdir(parents=True, exist_ok=True)
        if home is not None and (home / "config").is_dir():
            for entry in (home / "config").iterdir():
                if entry.name in GENERATED_FILES:
                    continue
                if entry.is_dir():
                    shutil.copytree(entry, settings.config_path / entry.name, dirs_exist_ok=True)
                else:
                    shutil.copy2(entry, settings.config_path / entry.name)
        (settings.config_path / "elasticsearch.yml").write_text(render_elasticsearch_yml(settings), encoding="utf-8")
        write_unicast_hosts(settings.config_path, settings.seed_hosts)
    except OSError as error:
        raise ExecutorError(f"cannot prepare the node's directories: {error}") from error


def bootstrap_check_lines(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if "bootstrap check" in line.lower()]


def failure_message(code: int, lines: list[str]) -> str:
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


# ---------------------------------------------------------------------- the Elasticsearch process


class ElasticsearchProcess:
    """Elasticsearch as a child process; its output goes to a sandbox file and a short memory tail."""

    def __init__(self, command: list[str], settings: NodeSettings, log: NodeLog) -> None:
        self.log = log
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        env = dict(settings.child_env)
        env["ES_PATH_CONF"] = str(settings.config_path)
        self._log_path = settings.sandbox / ES_LOG_FILE
        self.process = subprocess.Popen(
            command,
            cwd=settings.sandbox,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
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


def http_get(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return int(response.status), json.loads(response.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read().decode("utf-8") or "{}")
        except ValueError:
            body = {}
        return int(error.code), body if isinstance(body, dict) else {}


def node_answers(base_url: str) -> bool:
    try:
        status, _ = http_get(base_url + "/")
    except (OSError, ValueError):
        return False
    return status == 200


def node_healthy(base_url: str) -> bool:
    try:
        status, body = http_get(base_url + "/_cluster/health?timeout=1s")
    except (OSError, ValueError):
        return False
    return status == 200 and body.get("status") in ("green", "yellow")


# ---------------------------------------------------------------------- the executor


def guarded(method: F) -> F:
    """Log and swallow every exception of a pymesos callback: one escaping would end the driver."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            logger.exception("executor callback %s failed", method.__name__)

    return wrapper  # type: ignore[return-value]


class NodeExecutor:
    """The pymesos ``Executor`` of one Elasticsearch node (pymesos duck-types the callbacks)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.driver: Any = None
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._task_info: dict[str, Any] | None = None
        self._settings: NodeSettings | None = None
        self._process: ElasticsearchProcess | None = None
        self._kill_requested = threading.Event()
        self._shutdown_grace: float | None = None
        self._seed_version = 0
        self._thread: threading.Thread | None = None
        self.log = NodeLog(self.environ.get("ELASTICSEARCH_NODE_ID", "?"), "-")

    # -------------------------------------------------------------- status updates

    def _update(self, state: str, message: str | None = None, *, healthy: bool | None = None) -> None:
        task_id = (self._task_info or {}).get("task_id") or {}
        status: dict[str, Any] = {"task_id": dict(task_id), "state": state}
        if message:
            status["message"] = message
        if healthy is not None:
            status["healthy"] = healthy
        for attempt in range(STATUS_SEND_ATTEMPTS):
            try:
                self.driver.sendStatusUpdate(dict(status))
                self.log.info(
                    "reported %s%s%s",
                    state,
                    "" if healthy is None else f" (healthy={healthy})",
                    f": {message}" if message else "",
                )
                return
            except Exception as error:
                if attempt == STATUS_SEND_ATTEMPTS - 1:
                    self.log.error("could not report %s: %s", state, error)
                    return
                time.sleep(0.2)

    # -------------------------------------------------------------- pymesos callbacks

    @guarded
    def registered(self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any) -> None:
        self.driver = driver
        self.log.info(
            "executor %s registered with agent %s (framework %s)",
            (executor_info.get("executor_id") or {}).get("value"),
            (agent_info.get("id") or {}).get("value"),
            (framework_info.get("id") or {}).get("value"),
        )

    @guarded
    def reregistered(self, driver: Any, agent_info: Any) -> None:
        self.driver = driver
        self.log.info("executor re-registered with agent %s", (agent_info.get("id") or {}).get("value"))

    @guarded
    def disconnected(self, driver: Any) -> None:
        self.log.warning("executor disconnected from its agent")

    @guarded
    def launchTask(self, driver: Any, task: Any) -> None:
        self.driver = driver
        task_info = dict(task)
        task_id = str((task_info.get("task_id") or {}).get("value", ""))
        with self._lock:
            if self._task_info is not None:
                logger.error("task %s refused: this executor already runs a task", task_id)
                status = {
                    "task_id": {"value": task_id},
                    "state": "TASK_ERROR",
                    "message": "es-mesos-executor runs one task per executor",
                }
                driver.sendStatusUpdate(status)
                return
            self._task_info = task_info
        node_id = _env_of_task(task_info).get("ELASTICSEARCH_NODE_ID") or self.environ.get("ELASTICSEARCH_NODE_ID", "?")
        self.log = NodeLog(node_id, task_id)
        self._thread = threading.Thread(target=self._run_task, name="elasticsearch-node", daemon=True)
        self._thread.start()

    @guarded
    def killTask(self, driver: Any, task_id: Any) -> None:
        self.log.info("kill requested for task %s", (task_id or {}).get("value"))
        self._kill_requested.set()
        if self._thread is None:
            self.finished.set()

    @guarded
    def frameworkMessage(self, driver: Any, message: Any) -> None:
        self.apply_message(message)

    @guarded
    def shutdown(self, driver: Any) -> None:
        # pymesos SIGKILLs the whole process group after MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: stop sooner.
        settings = self._settings
        grace = settings.grace_period if settings is not None else DEFAULT_GRACE_PERIOD
        self._shutdown_grace = max(grace - 1.0, grace * 0.8, 0.0)
        self.log.info("shutdown requested by the agent")
        self._kill_requested.set()
        if self._thread is not None:
            self._thread.join(timeout=grace)
        self.finished.set()

    @guarded
    def error(self, driver: Any, message: Any) -> None:
        self.log.error("error from the agent: %s", message)

    # -------------------------------------------------------------- framework messages

    def apply_message(self, data: Any) -> None:
        """``data`` as pymesos gives it (base64 text) or raw bytes; JSON ``{"version", "seed_hosts"}``."""
        try:
            raw = base64.b64decode(data, validate=True) if isinstance(data, str) else bytes(data)
            message = json.loads(raw.decode("utf-8"))
            version = int(message["version"])
            hosts = [str(h) for h in message["seed_hosts"]]
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            self.log.warning("ignoring unreadable framework message: %s", error)
            return
        settings = self._settings
        with self._lock:
            if version <= self._seed_version:
                self.log.info("ignoring seed hosts version %s: version %s already applied", version, self._seed_version)
                return
            if settings is None:
                self.log.warning("seed hosts version %s arrived before the node was configured; ignored", version)
                return
            write_unicast_hosts(settings.config_path, hosts)
            self._seed_version = version
        self.log.info("seed hosts version %s written: %s", version, hosts)

    # -------------------------------------------------------------- the node's life

    def _run_task(self) -> None:
        try:
            self._run_node()
        except Exception as error:
            self.log.exception("the node failed")
            self._update("TASK_FAILED", f"es-mesos-executor failed: {error}")
        finally:
            self.finished.set()

    def _run_node(self) -> None:
        assert self._task_info is not None
        try:
            settings = NodeSettings.from_task(self._task_info, self.environ)
            command, home = find_elasticsearch(settings)
            prepare_node(settings, home)
        except ExecutorError as error:
            self.log.error("cannot start Elasticsearch: %s", error)
            self._update("TASK_FAILED", str(error))
            return
        self._settings = settings
        if self._kill_requested.is_set():
            self._update("TASK_KILLED", "killed before Elasticsearch was started")
            return
        self._update("TASK_STARTING", f"starting Elasticsearch: {shlex.join(command)}")
        self.log.info(
            "starting Elasticsearch %s with config %s, data %s, http %s, transport %s",
            shlex.join(command),
            settings.config_path,
            settings.data_path,
            settings.http_port,
            settings.transport_port,
        )
        try:
            process = ElasticsearchProcess(command, settings, self.log)
        except OSError as error:
            self._update("TASK_FAILED", f"cannot run {shlex.join(command)}: {error}")
            return
        self._process = process
        running = False
        healthy: bool | None = None
        last_report = 0.0
        next_check = 0.0
        while True:
            code = process.poll()
            if code is not None:
                lines = process.last_lines()
                message = failure_message(code, lines)
                self.log.error("%s", message)
                self._update("TASK_FAILED", message)
                return
            if self._kill_requested.is_set():
                grace = self._shutdown_grace if self._shutdown_grace is not None else settings.grace_period
                code, graceful = process.stop(grace)
                how = "stopped gracefully" if graceful else f"did not stop within {grace:g}s and was killed"
                self._update("TASK_KILLED", f"Elasticsearch {how} (exit code {code})")
                return
            now = time.monotonic()
            if not running:
                if node_answers(settings.local_http):
                    running = True
                    healthy = node_healthy(settings.local_http)
                    last_report = now
                    next_check = now + HEALTH_CHECK_INTERVAL
                    self._update(
                        "TASK_RUNNING",
                        f"Elasticsearch answers on {settings.publish_host}:{settings.http_port}",
                        healthy=healthy,
                    )
                self._kill_requested.wait(STARTUP_POLL_INTERVAL)
                continue
            if now >= next_check:
                next_check = now + HEALTH_CHECK_INTERVAL
                current = node_healthy(settings.local_http)
                if current != healthy or now - last_report >= HEALTH_REPORT_INTERVAL:
                    healthy, last_report = current, now
                    self._update("TASK_RUNNING", "cluster health " + ("ok" if current else "not ok"), healthy=current)
            self._kill_requested.wait(min(STARTUP_POLL_INTERVAL, HEALTH_CHECK_INTERVAL))


# ---------------------------------------------------------------------- process entry point


def configure_logging(sandbox: Path) -> None:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    with contextlib.suppress(OSError):
        handlers.append(logging.handlers.RotatingFileHandler(sandbox / LOG_FILE, maxBytes=10 * 2**20, backupCount=3))
    root = logging.getLogger()
    root.handlers[:] = []
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def main() -> int:
    sandbox = Path(os.environ.get("MESOS_SANDBOX") or os.environ.get("MESOS_DIRECTORY") or os.getcwd())
    configure_logging(sandbox)
    missing = [n for n in ("MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID") if not os.environ.get(n)]
    if missing:
        logger.error("es-mesos-executor must be started by a Mesos agent: %s not set", ", ".join(missing))
        return 2
    executor = NodeExecutor()
    driver = MesosExecutorDriver(executor, use_addict=False)
    executor.driver = driver
    logger.info(
        "es-mesos-executor %s starting (agent %s)", os.environ["MESOS_EXECUTOR_ID"], os.environ["MESOS_AGENT_ENDPOINT"]
    )
    driver.start()
    try:
        while not executor.finished.wait(0.5):
            if driver.aborted:
                logger.error("the executor driver stopped")
                return 1
    except KeyboardInterrupt:
        logger.info("interrupted")
    # Updates are sent synchronously (the agent has them): give the agent a moment, then leave.
    time.sleep(0.5)
    driver.stop()
    logger.info("es-mesos-executor exits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
