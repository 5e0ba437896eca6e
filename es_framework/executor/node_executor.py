"""The pymesos executor callbacks of one Elasticsearch node (:class:`NodeExecutor`): the node's life
(prepare, start, watch, stop), its status updates, and the scheduler's framework messages.

Status updates: ``TASK_STARTING`` once the node is prepared, ``TASK_RUNNING`` only once ``GET /``
answers, then the node's health (``healthy``) whenever it changes and every
:data:`HEALTH_REPORT_INTERVAL` seconds; the node's :class:`~es_framework.contract.NodeReport` rides
in the ``data`` of every ``TASK_RUNNING`` once the node has a cluster uuid, with an extra update when
the uuid first appears or changes. ``TASK_FAILED`` carries the exit code, the reason and the last log
lines; ``TASK_KILLED`` follows a KILL or SHUTDOWN (SIGTERM, then SIGKILL after the grace period).
Before Elasticsearch starts, the agent is checked as its bootstrap checks will
(:mod:`~es_framework.executor.bootstrap_checks`): an enforced failure, or an exit 78 whose lines name
such a check, is a ``TASK_FAILED`` naming the agent with an
:class:`~es_framework.contract.AgentCheckReport` as ``data``.

Framework messages are :class:`~es_framework.contract.SeedHosts`: a version newer than the last one
applied rewrites ``unicast_hosts.txt`` (Elasticsearch re-reads it); older or equal versions are
ignored. A :class:`~es_framework.core.credentials.CredentialsSource` message says where to fetch the
current ``elastic`` password when Elasticsearch refuses the probes' one after a rotation
(:mod:`~es_framework.executor.credentials_fetch`).
No exception ever escapes a pymesos callback (that would end the driver).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from es_framework.contract import (
    CONTRACT_VERSION,
    ENV_NODE_ID,
    ENV_PUBLISH_HOST,
    AgentCheckReport,
    ContractError,
    NodeReport,
    SeedHosts,
)
from es_framework.core.credentials import CredentialsSource
from es_framework.executor import bootstrap_checks
from es_framework.executor.credentials_fetch import fetch_for
from es_framework.executor.keystore import password_for_node
from es_framework.executor.logs import NodeLog, logger
from es_framework.executor.probes import (
    Answer,
    CredentialsRefused,
    CredentialsWatch,
    basic_authorization,
    node_healthy,
    node_identity,
    probe_context,
)
from es_framework.executor.process import (
    BOOTSTRAP_EXIT_CODE,
    ElasticsearchProcess,
    failure_message,
    find_elasticsearch,
    run_as_for,
)
from es_framework.executor.settings import (
    DEFAULT_GRACE_PERIOD,
    ExecutorError,
    NodeSettings,
    Resolver,
    env_of_task,
    system_resolver,
)
from es_framework.executor.volumes import note_cluster_joined, prepare_node, write_unicast_hosts

#: Seconds between health checks, and the longest time between two health reports.
HEALTH_CHECK_INTERVAL = float(os.environ.get("ES_MESOS_EXECUTOR_HEALTH_CHECK_INTERVAL", "5"))
HEALTH_REPORT_INTERVAL = float(os.environ.get("ES_MESOS_EXECUTOR_HEALTH_REPORT_INTERVAL", "60"))
#: How often the executor asks whether Elasticsearch answers while it starts.
STARTUP_POLL_INTERVAL = 0.25
#: How often the executor asks for the cluster uuid while the cluster forms.
FORMING_CHECK_INTERVAL = 1.0
STATUS_SEND_ATTEMPTS = 50

F = TypeVar("F", bound=Callable[..., None])


def guarded(method: F) -> F:
    """Log and swallow every exception of a pymesos callback: one escaping would end the driver."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            logger.exception("executor callback %s failed", method.__name__)

    return wrapper  # type: ignore[return-value]


def status_data(report: NodeReport | AgentCheckReport) -> str:
    """``TaskStatus.data`` as the v1 JSON API carries bytes (base64 text; pymesos sends it as it is)."""
    return base64.b64encode(report.encode()).decode("ascii")


class NodeExecutor:
    """The pymesos ``Executor`` of one Elasticsearch node (pymesos duck-types the callbacks)."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        resolve: Resolver = system_resolver,
        system_limits: Callable[[], bootstrap_checks.AgentLimits] = bootstrap_checks.system_limits,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.resolve = resolve
        self.system_limits = system_limits
        #: The agent's hostname, from its AgentInfo at registration (named in a failed agent check).
        self.agent_hostname: str | None = None
        self.driver: Any = None
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._task_info: dict[str, Any] | None = None
        self._settings: NodeSettings | None = None
        self._process: ElasticsearchProcess | None = None
        self._kill_requested = threading.Event()
        self._shutdown_grace: float | None = None
        self._seed_version = 0
        self._credentials_url: str | None = None  # from the launch, then from CredentialsSource messages
        self._thread: threading.Thread | None = None
        self.log = NodeLog(self.environ.get(ENV_NODE_ID, "?"), "-")

    # -------------------------------------------------------------- status updates

    def _update(
        self,
        state: str,
        message: str | None = None,
        *,
        healthy: bool | None = None,
        identity: NodeReport | None = None,
        agent_report: AgentCheckReport | None = None,
    ) -> None:
        task_id = (self._task_info or {}).get("task_id") or {}
        status: dict[str, Any] = {"task_id": dict(task_id), "state": state}
        if message:
            status["message"] = message
        if healthy is not None:
            status["healthy"] = healthy
        if identity is not None and identity.cluster_uuid is not None:
            status["data"] = status_data(identity)
        if agent_report is not None:
            status["data"] = status_data(agent_report)
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
        hostname = agent_info.get("hostname")
        self.agent_hostname = str(hostname) if hostname else None
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
        node_id = env_of_task(task_info).get(ENV_NODE_ID) or self.environ.get(ENV_NODE_ID, "?")
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
        """``data`` as pymesos gives it (base64 text) or raw bytes: a :class:`SeedHosts` message."""
        try:
            if isinstance(data, str):
                raw = base64.b64decode(data, validate=True)
            elif isinstance(data, (bytes, bytearray, memoryview)):
                raw = bytes(data)
            else:  # bytes(n) of an int would be n zero bytes: never read anything else as bytes
                raise TypeError(f"a framework message must be base64 text or bytes, not {type(data).__name__}")
            source = CredentialsSource.decode(raw)
            if source is not None:
                self._credentials_url = source.credentials_url
                self.log.info("credentials are fetched from %s from now on", source.credentials_url)
                return
            message = SeedHosts.decode(raw)
        except (ContractError, ValueError, TypeError, binascii.Error) as error:
            self.log.warning("ignoring unreadable framework message: %s", error)
            return
        settings = self._settings
        with self._lock:
            if message.version <= self._seed_version:
                self.log.info(
                    "ignoring seed hosts version %s: version %s already applied", message.version, self._seed_version
                )
                return
            if settings is None:
                self.log.warning(
                    "seed hosts version %s arrived before the node was configured; ignored", message.version
                )
                return
            write_unicast_hosts(settings.config_path, message.seed_hosts)
            self._seed_version = message.version
        self.log.info("seed hosts version %s written: %s", message.version, list(message.seed_hosts))

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
            if settings.contract > CONTRACT_VERSION:
                self.log.warning(
                    "the scheduler wrote contract %s, this executor speaks %s: what is newer is ignored",
                    settings.contract,
                    CONTRACT_VERSION,
                )
            command, home = find_elasticsearch(settings)
            run_as = run_as_for(settings, home)
            prepare_node(settings, home, self.log, run_as=run_as)
            settings = password_for_node(settings, home)
        except ExecutorError as error:
            self.log.error("cannot start Elasticsearch: %s", error)
            self._update("TASK_FAILED", str(error))
            return
        self._settings = settings
        if self._kill_requested.is_set():
            self._update("TASK_KILLED", "killed before Elasticsearch was started")
            return
        if not self._agent_passes(settings):
            return
        self._update("TASK_STARTING", f"starting Elasticsearch: {shlex.join(command)}")
        self.log.info(
            "starting Elasticsearch %s with config %s, data %s, http %s, transport %s%s",
            shlex.join(command),
            settings.config_path,
            settings.data_path,
            settings.http_port,
            settings.transport_port,
            f", as uid {run_as['user']} gid {run_as['group']}" if run_as else "",
        )
        try:
            process = ElasticsearchProcess(command, settings, self.log, run_as)
        except OSError as error:
            self._update("TASK_FAILED", f"cannot run {shlex.join(command)}: {error}")
            return
        self._process = process
        self._watch(process, settings)

    def _watch(self, process: ElasticsearchProcess, settings: NodeSettings) -> None:
        """Report RUNNING once ``GET /`` answers, then health and identity changes, until it ends or is killed."""
        authorization = basic_authorization(settings.elastic_password)
        tls = probe_context(settings.tls.ca) if settings.tls is not None else None
        running = False
        healthy: bool | None = None
        identity: NodeReport | None = None
        credentials = CredentialsWatch(f"{settings.publish_host}:{settings.http_port}")
        self._credentials_url = self._credentials_url or settings.credentials_url
        fetch = fetch_for(settings, lambda: self._credentials_url, self.log.info)

        def refused(answer: Answer) -> bool:
            """Whether Elasticsearch refuses our credentials (401/403); said once per change. Health is
            then reported false, not left out: a status without ``healthy`` keeps the scheduler's last
            value (possibly true), and the disruption planner counts a node reported unhealthy as
            unavailable, which is what a node whose health nobody can read must be."""
            nonlocal authorization
            if isinstance(answer, CredentialsRefused) and fetch is not None:
                # After a rotation: the scheduler's current password, when the node takes it.
                fresh = fetch.working(lambda header: node_identity(settings.local_http, header, tls))
                authorization, answer = fresh if fresh is not None else (authorization, answer)
            news = credentials.observe(answer)
            if news is not None and credentials.refused is not None:
                self.log.warning("%s", news)
                self._update("TASK_RUNNING", news, healthy=False, identity=identity)
            elif news is not None:
                self.log.info("%s", news)
            return credentials.refused is not None

        last_report = 0.0
        next_check = 0.0
        while True:
            code = process.poll()
            if code is not None:
                lines = process.last_lines()
                message = failure_message(code, lines)
                report = None
                if code == BOOTSTRAP_EXIT_CODE:
                    # Elasticsearch's own verdict on the agent: the same report as the executor's checks.
                    checks = bootstrap_checks.parse_failures(lines)
                    if checks:
                        report = bootstrap_checks.report(self._agent_name(settings), checks)
                        reason = f"Elasticsearch exited with code {code}"
                        message = f"{bootstrap_checks.task_message(report, reason)}. {message}"
                self.log.error("%s", message)
                self._update("TASK_FAILED", message, agent_report=report)
                return
            if self._kill_requested.is_set():
                grace = self._shutdown_grace if self._shutdown_grace is not None else settings.grace_period
                code, graceful = process.stop(grace)
                how = "stopped gracefully" if graceful else f"did not stop within {grace:g}s and was killed"
                self._update("TASK_KILLED", f"Elasticsearch {how} (exit code {code})")
                return
            now = time.monotonic()
            if not running:
                answer = node_identity(settings.local_http, authorization, tls)
                if refused(answer):
                    running, healthy, last_report, next_check = True, None, now, now + HEALTH_CHECK_INTERVAL
                elif isinstance(answer, NodeReport):
                    running = True
                    identity = self._note_identity(None, answer, settings)
                    healthy = node_healthy(settings.local_http, authorization, tls)
                    last_report = now
                    next_check = now + min(FORMING_CHECK_INTERVAL, HEALTH_CHECK_INTERVAL)
                    self._update(
                        "TASK_RUNNING",
                        f"Elasticsearch answers on {settings.publish_host}:{settings.http_port}",
                        healthy=healthy,
                        identity=identity,
                    )
                self._kill_requested.wait(STARTUP_POLL_INTERVAL)
                continue
            if now >= next_check:
                # Until the node reports its cluster's uuid, ask every second: the scheduler stops
                # sending the bootstrap settings only once it has heard the uuid.
                forming = identity is None or identity.cluster_uuid is None
                next_check = now + (
                    min(FORMING_CHECK_INTERVAL, HEALTH_CHECK_INTERVAL) if forming else HEALTH_CHECK_INTERVAL
                )
                answer = node_identity(settings.local_http, authorization, tls)
                if refused(answer):
                    healthy = None  # the first check with working credentials reports the health again
                    self._kill_requested.wait(min(STARTUP_POLL_INTERVAL, HEALTH_CHECK_INTERVAL))
                    continue
                current = node_healthy(settings.local_http, authorization, tls)
                uuid_changed = False
                if isinstance(answer, NodeReport) and answer != identity:
                    previous = identity
                    identity = self._note_identity(identity, answer, settings)
                    uuid_changed = previous is None or previous.cluster_uuid != identity.cluster_uuid
                if uuid_changed and identity is not None and identity.cluster_uuid is not None:
                    healthy, last_report = current, now
                    self._update(
                        "TASK_RUNNING", f"cluster uuid {identity.cluster_uuid}", healthy=current, identity=identity
                    )
                elif current != healthy or now - last_report >= HEALTH_REPORT_INTERVAL:
                    healthy, last_report = current, now
                    self._update(
                        "TASK_RUNNING",
                        "cluster health " + ("ok" if current else "not ok"),
                        healthy=current,
                        identity=identity,
                    )
            self._kill_requested.wait(min(STARTUP_POLL_INTERVAL, HEALTH_CHECK_INTERVAL))

    def _agent_name(self, settings: NodeSettings) -> str:
        """The agent as its AgentInfo names it, else as the scheduler did (its offer's hostname)."""
        return self.agent_hostname or settings.child_env.get(ENV_PUBLISH_HOST) or settings.publish_host

    def _agent_passes(self, settings: NodeSettings) -> bool:
        """Elasticsearch's bootstrap checks that depend on the agent, before Elasticsearch is started
        (:mod:`~es_framework.executor.bootstrap_checks`). In production mode a failure ends the task
        (``TASK_FAILED`` whose data is an :class:`~es_framework.contract.AgentCheckReport`) and False
        is returned; in development mode failures are warnings, as in Elasticsearch."""
        node_settings = bootstrap_checks.settings_for_checks(
            settings.network_host, settings.publish_host, settings.user_settings
        )
        try:
            limits = bootstrap_checks.read_limits(settings.child_env, self.system_limits)
        except bootstrap_checks.BootstrapCheckError as error:
            self.log.error("cannot check the agent's limits: %s", error)
            self._update("TASK_FAILED", f"cannot check the agent's limits: {error}")
            return False
        failed = bootstrap_checks.failures(limits, node_settings)
        mode = bootstrap_checks.mode(node_settings, force=settings.enforce_bootstrap_checks, resolve=self.resolve)
        if not failed:
            self.log.info("the agent passes Elasticsearch's bootstrap checks (%s)", mode.reason)
            return True
        if not mode.enforced:
            for check in failed:
                self.log.warning("bootstrap check, a warning only (%s): %s", mode.reason, check.sentence())
            return True
        report = bootstrap_checks.report(self._agent_name(settings), failed)
        message = bootstrap_checks.task_message(report, mode.reason)
        self.log.error("%s", message)
        self._update("TASK_FAILED", message, agent_report=report)
        return False

    def _note_identity(self, previous: NodeReport | None, current: NodeReport, settings: NodeSettings) -> NodeReport:
        """Log a new or changed cluster uuid; once there is one, the data path has joined a cluster."""
        if current.cluster_uuid is None:
            return current
        if previous is None or previous.cluster_uuid != current.cluster_uuid:
            if previous is not None and previous.cluster_uuid is not None:
                self.log.warning("cluster uuid changed from %s to %s", previous.cluster_uuid, current.cluster_uuid)
            else:
                self.log.info(
                    "node %s is in cluster uuid %s (Elasticsearch %s)",
                    current.node_name,
                    current.cluster_uuid,
                    current.version,
                )
            note_cluster_joined(settings.data_path)
        return current
