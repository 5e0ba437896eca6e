"""``es-mesos-executor``: the Mesos executor that runs one Elasticsearch node.

A pymesos ``MesosExecutorDriver`` process, started by the Mesos agent with the ``MESOS_*``
environment and the ExecutorInfo's environment (``ELASTICSEARCH_*``, see
:mod:`es_framework.core.task_builder`). For its one task it:

1. reads the ``ELASTICSEARCH_*`` variables: the TaskInfo's executor command environment (VALUE
   secrets decoded), overlaid with the process environment (which wins: an agent may adapt it, as
   the development cluster does for volume paths, and a real agent resolves secrets into it);
2. finds Elasticsearch: ``ELASTICSEARCH_COMMAND`` if set (split like a shell would; tests and local
   mode point it at the demo node), else ``bin/elasticsearch`` of a distribution extracted in the
   sandbox (``--elasticsearchBinaryUrl``), else ``/usr/share/elasticsearch/bin/elasticsearch`` (the
   Docker image), and its version: ``ELASTICSEARCH_VERSION``, else ``<home>/lib/elasticsearch-<version>.jar``,
   else 8 for ``ELASTICSEARCH_COMMAND``. Supported: 7.9+ and 8.x;
3. prepares the node. The data directory is ``ELASTICSEARCH_DATA_PATH``, the config directory
   ``<ELASTICSEARCH_CONFIG_VOLUME_PATH>/config``, else ``<sandbox>/config``; relative paths are
   relative to ``MESOS_SANDBOX`` (else the working directory).

   - As root, Elasticsearch runs as ``ELASTICSEARCH_UID`` (1000, the official image's user), group
     0, no other group: the data and config volumes are first given to that user wherever they are
     not (a fresh volume belongs to root; its top-level ``lost+found`` stays root's). Not as root,
     or for ``ELASTICSEARCH_COMMAND`` without ``ELASTICSEARCH_UID``: the executor's own user.
   - The config directory is regenerated on every start: everything but the keystore and
     ``certs/`` is removed, the distribution's ``config/*`` (but ``elasticsearch.yml``) is copied in,
     then ``elasticsearch.yml`` (see :mod:`es_framework.core.es_settings`: identity, ``ELASTICSEARCH_NODE_ROLES``,
     network, discovery by ``unicast_hosts.txt``, bootstrap, security, then ``ELASTICSEARCH_USER_SETTINGS``
     minus the settings es-mesos owns) and ``unicast_hosts.txt`` are written. User settings this
     major refuses fail the task.
   - ``ELASTICSEARCH_INITIAL_MASTER_NODES`` is dropped, with a warning, when the data path already
     holds a cluster (7: ``nodes/0/_state``, 8: ``_state``, the demo node: a cluster uuid in its
     state file), unless the executor's marker ``.es-mesos-unformed`` (written into an empty data
     path, removed once a cluster uuid is seen) says that state never joined a cluster.
   - ``ELASTICSEARCH_SECURITY=enabled`` (needs ``ELASTIC_PASSWORD`` and ``ELASTICSEARCH_CERTIFICATES``,
     the sandbox path of an ``elasticsearch-certutil`` PKCS#12 bundle without a password): the
     bundle is copied to ``certs/elastic-certificates.p12`` (0640) and transport TLS is configured;
     HTTP stays plain. ``disabled`` (the default) writes ``xpack.security.enabled: false`` and warns.
   - With ``ELASTIC_PASSWORD`` and ``<home>/bin/elasticsearch-keystore``, the keystore is created if
     missing and the password stored as ``bootstrap.password`` through stdin, as Elasticsearch's user
     with ``ES_PATH_CONF`` set. The password is never on a command line, in a log, or in
     Elasticsearch's environment;
4. starts Elasticsearch with ``ES_PATH_CONF`` set and the heap of ``ES_JAVA_OPTS``; reports
   ``TASK_STARTING``, then ``TASK_RUNNING`` only once ``GET /`` answers (as ``elastic`` with security
   enabled), then the node's health (the ``healthy`` field, from ``GET /_cluster/health``) whenever
   it changes and every :data:`HEALTH_REPORT_INTERVAL` seconds;
5. reports the node's identity in the ``data`` field of ``TASK_RUNNING`` once ``GET /`` gives a
   ``cluster_uuid`` other than ``_na_``: an extra update when the uuid first appears or changes, and
   in every later ``TASK_RUNNING``. ``data`` is, as for every bytes field of the v1 JSON API,
   base64 text (pymesos sends the status dict as it is, and hands the scheduler the field the same
   way), of the UTF-8 JSON ``{"cluster_uuid": "...", "node_name": "...", "version": "8.15.1"}``:
   ``json.loads(base64.b64decode(status["data"]))``;
6. reports ``TASK_FAILED`` with the exit code, the reason and the last log lines when Elasticsearch
   exits by itself (exit 78: the failing bootstrap check line is named), and with the reason when
   the node cannot be prepared;
7. on KILL (and SHUTDOWN) stops Elasticsearch gracefully: SIGTERM, then SIGKILL after the grace
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
import re
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pymesos import MesosExecutorDriver
from pymesos.utils import parse_duration

from es_framework.core.es_catalog import SUPPORTED_MAJORS
from es_framework.core.es_settings import (
    CERTIFICATES_IN_CONFIG,
    NodeConfig,
    Security,
    UserValue,
    build_settings,
    render_yaml,
    validate_user_settings,
)

logger = logging.getLogger("es_framework.executor")

DEFAULT_GRACE_PERIOD = 120.0
DOCKER_ELASTICSEARCH_HOME = Path("/usr/share/elasticsearch")
#: Seconds between health checks, and the longest time between two health reports.
HEALTH_CHECK_INTERVAL = float(os.environ.get("ES_MESOS_EXECUTOR_HEALTH_CHECK_INTERVAL", "5"))
HEALTH_REPORT_INTERVAL = float(os.environ.get("ES_MESOS_EXECUTOR_HEALTH_REPORT_INTERVAL", "60"))
#: How often the executor asks whether Elasticsearch answers while it starts.
STARTUP_POLL_INTERVAL = 0.25
#: How often the executor asks for the cluster uuid while the cluster forms.
FORMING_CHECK_INTERVAL = 1.0
LOG_TAIL_LINES = 20
HTTP_TIMEOUT = 2.0
BOOTSTRAP_EXIT_CODE = 78
STATUS_SEND_ATTEMPTS = 50
LOG_FILE = "es-mesos-executor.log"
ES_LOG_FILE = "elasticsearch.log"
#: Files the executor writes itself into the config directory (never copied from the distribution).
GENERATED_FILES = frozenset({"elasticsearch.yml", "unicast_hosts.txt"})
KEYSTORE_FILE = "elasticsearch.keystore"
CERTS_DIR = "certs"
#: What survives the regeneration of the config directory: the keystore and the framework's certificates.
KEPT_CONFIG_ENTRIES = frozenset({KEYSTORE_FILE, CERTS_DIR})
#: Written into an empty data path; removed once the node reports a cluster uuid (see bootstrap_master_nodes).
UNFORMED_MARKER = ".es-mesos-unformed"
LOST_AND_FOUND = "lost+found"
#: The official image's elasticsearch user (its group is 0).
DEFAULT_ELASTICSEARCH_UID = 1000
#: Seconds elasticsearch-keystore may take (it starts a JVM).
KEYSTORE_TIMEOUT = 300.0
#: Variables Elasticsearch's own process never gets (the password reaches it through the keystore).
CHILD_ENV_HIDDEN = frozenset({"ELASTIC_PASSWORD"})
#: Where the demo node (development tool) keeps its cluster uuid, under path.data/_state; the same
#: as es_framework.dev.demo_es.node.STATE_FILE (not imported: the executor does not need the demo node).
DEMO_STATE_FILE = "demo-node-state.json"
#: The cluster uuid Elasticsearch reports while no cluster has formed.
NO_CLUSTER_UUID = "_na_"

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
    env: dict[str, str] = {}
    for variable in variables:
        if "name" not in variable:
            continue
        if variable.get("type") == "SECRET":
            # A real agent resolves secrets into the process environment (which wins below); a VALUE
            # secret can also be read here. A REFERENCE secret only the agent can resolve.
            data = (((variable.get("secret") or {}).get("value") or {}).get("data")) or ""
            try:
                env[str(variable["name"])] = base64.b64decode(str(data), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                logger.warning("secret variable %s is unreadable in the TaskInfo", variable["name"])
            continue
        env[str(variable["name"])] = str(variable.get("value", ""))
    return env


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
    #: None when the scheduler sends no ELASTICSEARCH_NODE_ROLES: node.roles stays unset.
    roles: tuple[str, ...] | None
    user_settings: Mapping[str, UserValue]
    data_path: Path
    config_path: Path
    #: The config volume's mount point (None without a config volume: the config is in the sandbox).
    config_volume: Path | None
    sandbox: Path
    command: tuple[str, ...] | None
    grace_period: float
    security_enabled: bool
    #: The certificate bundle in the sandbox (security enabled only).
    certificates: Path | None
    elastic_password: str | None = field(repr=False)
    #: ELASTICSEARCH_VERSION: overrides the version found in the distribution.
    version_override: str | None
    #: Who runs Elasticsearch when the executor is root (ELASTICSEARCH_UID; gid 0 as in the official image).
    uid: int
    #: ELASTICSEARCH_UID was given: drop privileges even for ELASTICSEARCH_COMMAND (tests).
    uid_explicit: bool
    child_env: Mapping[str, str] = field(repr=False)

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
        config_volume = path(volume) if volume else None
        config_path = config_volume / "config" if config_volume is not None else sandbox / "config"
        command_text = env.get("ELASTICSEARCH_COMMAND", "").strip()
        roles_text = env.get("ELASTICSEARCH_NODE_ROLES")
        security = env.get("ELASTICSEARCH_SECURITY", "").strip().lower() or "disabled"
        if security not in ("enabled", "disabled"):
            raise ExecutorError(f"ELASTICSEARCH_SECURITY={security!r}: expected enabled or disabled")
        password = env.get("ELASTIC_PASSWORD") or None
        certificates_text = env.get("ELASTICSEARCH_CERTIFICATES", "").strip()
        if security == "enabled":
            if not password:
                raise ExecutorError("security is enabled but the executor's environment lacks ELASTIC_PASSWORD")
            if not certificates_text:
                raise ExecutorError(
                    "security is enabled but the executor's environment lacks ELASTICSEARCH_CERTIFICATES "
                    "(the elasticsearch-certutil PKCS#12 bundle)"
                )
        uid_text = env.get("ELASTICSEARCH_UID", "").strip()
        if uid_text and not uid_text.isdigit():
            raise ExecutorError(f"ELASTICSEARCH_UID={uid_text!r} is not a user id")
        child_env = {k: v for k, v in env.items() if k not in CHILD_ENV_HIDDEN}
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
            roles=None if roles_text is None else _split(roles_text),
            user_settings=_user_settings(env.get("ELASTICSEARCH_USER_SETTINGS", "")),
            data_path=data_path,
            config_path=config_path,
            config_volume=config_volume,
            sandbox=sandbox,
            command=tuple(shlex.split(command_text)) if command_text else None,
            grace_period=_grace_period(env, task_info),
            security_enabled=security == "enabled",
            certificates=path(certificates_text) if security == "enabled" else None,
            elastic_password=password,
            version_override=env.get("ELASTICSEARCH_VERSION", "").strip() or None,
            uid=int(uid_text) if uid_text else DEFAULT_ELASTICSEARCH_UID,
            uid_explicit=bool(uid_text),
            child_env=child_env,
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


def _user_settings(text: str) -> dict[str, UserValue]:
    """ELASTICSEARCH_USER_SETTINGS: a JSON object of flattened settings (strings or lists of strings)."""
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ExecutorError(f"ELASTICSEARCH_USER_SETTINGS is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise ExecutorError("ELASTICSEARCH_USER_SETTINGS must be a JSON object of settings")
    settings: dict[str, UserValue] = {}
    for key, value in document.items():
        if isinstance(value, str):
            settings[str(key)] = value
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            settings[str(key)] = [str(item) for item in value]
        else:
            raise ExecutorError(
                f"ELASTICSEARCH_USER_SETTINGS: [{key}] must be a string or a list of strings, not {value!r}"
            )
    return settings


def node_config(settings: NodeSettings, initial_master_nodes: tuple[str, ...]) -> NodeConfig:
    """What :func:`es_framework.core.es_settings.build_settings` needs, from the executor's settings."""
    return NodeConfig(
        cluster_name=settings.cluster_name,
        node_name=settings.node_name,
        roles=settings.roles,
        network_host=settings.network_host,
        publish_host=settings.publish_host,
        http_port=settings.http_port,
        transport_port=settings.transport_port,
        data_path=str(settings.data_path),
        initial_master_nodes=initial_master_nodes,
        security=Security(enabled=settings.security_enabled),
        user_settings=settings.user_settings,
    )


def render_elasticsearch_yml(
    settings: NodeSettings, major: int, initial_master_nodes: tuple[str, ...] | None = None
) -> tuple[str, tuple[str, ...]]:
    """The node's ``elasticsearch.yml`` and the warnings to log.

    ``initial_master_nodes`` defaults to what the scheduler sent; the executor passes what is left
    of it after looking at the data path (:func:`bootstrap_master_nodes`).
    Raises :class:`ExecutorError` for user settings this major refuses.
    """
    validation = validate_user_settings(settings.user_settings, major)
    if validation.errors:
        raise ExecutorError(
            f"the user's settings (--elasticsearchSettingsLocation) are refused by Elasticsearch {major}: "
            + "; ".join(validation.errors)
        )
    masters = settings.initial_master_nodes if initial_master_nodes is None else initial_master_nodes
    generated = build_settings(node_config(settings, masters), major)
    header = (
        f"Written by es-mesos-executor for node {settings.node_id} ({settings.node_name}), task {settings.task_id}.",
        "Regenerated on every start of the node: edit the framework's configuration instead.",
    )
    return render_yaml(generated.settings, header), validation.warnings + generated.warnings


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


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_JAR = re.compile(r"elasticsearch-(\d+\.\d+\.\d+[^/]*)\.jar")


def elasticsearch_version(home: Path | None, override: str | None) -> tuple[int, str]:
    """(major, version text): ELASTICSEARCH_VERSION if given, else ``<home>/lib/elasticsearch-<version>.jar``,
    else 8 for a development command (the demo node behaves as 8)."""
    if override:
        text = override
        major_text = text.split(".", 1)[0]
        if not major_text.isdigit():
            raise ExecutorError(f"ELASTICSEARCH_VERSION={override!r} is not a version (e.g. 8 or 8.15.1)")
    elif home is None:
        return 8, "8 (assumed for ELASTICSEARCH_COMMAND)"
    else:
        found = sorted(
            m.group(1) for jar in (home / "lib").glob("elasticsearch-*.jar") if (m := _JAR.fullmatch(jar.name))
        )
        if not found:
            raise ExecutorError(
                f"cannot tell the Elasticsearch version: no lib/elasticsearch-<version>.jar in {home}; "
                "set ELASTICSEARCH_VERSION"
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


# ---------------------------------------------------------------------- bootstrapping over existing data


def existing_cluster(data_path: Path) -> str | None:
    """Why ``data_path`` already holds a cluster's state, or None when it holds none."""
    demo_state = data_path / "_state" / DEMO_STATE_FILE
    if demo_state.is_file():
        # The demo node writes its state file at once; only a recorded uuid means it joined a cluster.
        try:
            recorded = json.loads(demo_state.read_text(encoding="utf-8")).get("cluster_uuid")
        except (OSError, ValueError, AttributeError):
            return f"{demo_state} exists but is unreadable"
        return f"{demo_state} records cluster uuid {recorded}" if recorded else None
    for state in (data_path / "nodes" / "0" / "_state", data_path / "_state"):
        # Elasticsearch 7 keeps its node and cluster state in nodes/0/_state, 8 in _state.
        try:
            if state.is_dir() and any(state.iterdir()):
                return f"{state} holds Elasticsearch node state"
        except OSError as error:
            return f"{state} cannot be read ({error})"
    return None


def bootstrap_master_nodes(settings: NodeSettings, log: logging.LoggerAdapter[Any]) -> tuple[str, ...]:
    """The ``cluster.initial_master_nodes`` to write: the scheduler's, unless the data path already
    holds a cluster (never bootstrap a second cluster over existing data).

    State left by an earlier start on the same data path that never saw a cluster uuid (a node that
    failed a bootstrap check, say) does not count: :data:`UNFORMED_MARKER`, written while the data
    path was empty and removed once a uuid is seen, tells that case apart.
    """
    evidence = existing_cluster(settings.data_path)
    if evidence is None:
        with contextlib.suppress(OSError):
            (settings.data_path / UNFORMED_MARKER).write_text(
                "es-mesos: this data path has not joined a cluster yet\n", encoding="utf-8"
            )
    if not settings.initial_master_nodes:
        return ()
    if evidence is None:
        return settings.initial_master_nodes
    if (settings.data_path / UNFORMED_MARKER).exists():
        log.info("keeping cluster.initial_master_nodes: %s, but this node never joined a cluster", evidence)
        return settings.initial_master_nodes
    log.warning(
        "not writing cluster.initial_master_nodes %s: %s, and bootstrapping over existing data would make a new "
        "cluster; the node joins the cluster its data belongs to",
        list(settings.initial_master_nodes),
        evidence,
    )
    return ()


# ---------------------------------------------------------------------- the config directory


def regenerate_config_dir(config_path: Path, defaults: Path | None, files: Mapping[str, str]) -> None:
    """Empty ``config_path`` of all but :data:`KEPT_CONFIG_ENTRIES`, copy in the distribution's defaults
    (``defaults``, without the files the executor writes), then write ``files``.

    An upgrade therefore never carries an old major's ``jvm.options`` or log4j files forward, while
    the keystore survives.
    """
    config_path.mkdir(parents=True, exist_ok=True)
    for entry in config_path.iterdir():
        if entry.name in KEPT_CONFIG_ENTRIES:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if defaults is not None and defaults.is_dir():
        for entry in sorted(defaults.iterdir()):
            target = config_path / entry.name
            if entry.name in GENERATED_FILES or entry.name == CERTS_DIR:
                continue
            if target.exists():
                continue  # the keystore on the volume wins over the image's
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
    for name, text in files.items():
        (config_path / name).write_text(text, encoding="utf-8")


def install_certificates(settings: NodeSettings, owner: tuple[int, int] | None) -> None:
    """Copy the certificate bundle into ``<config>/certs/`` (mode 0640, owned by Elasticsearch's user)."""
    source = settings.certificates
    if source is None:
        return
    if not source.is_file():
        raise ExecutorError(f"the certificate bundle {source} (ELASTICSEARCH_CERTIFICATES) is not in the sandbox")
    certs = settings.config_path / CERTS_DIR
    certs.mkdir(mode=0o750, exist_ok=True)
    target = settings.config_path / CERTIFICATES_IN_CONFIG
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o640)
    if owner is not None:
        os.chown(certs, *owner)
        os.chown(tmp, *owner)
    os.replace(tmp, target)


# ---------------------------------------------------------------------- users and volumes


def privileges(uid: int, home: Path) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run a child as ``uid``, group 0 and no other group (as the
    official image runs Elasticsearch), with its own HOME."""
    return {"user": uid, "group": 0, "extra_groups": [], "env_updates": {"HOME": str(home)}}


def _popen_arguments(run_as: Mapping[str, Any] | None, env: dict[str, str]) -> dict[str, Any]:
    if not run_as:
        return {"env": env}
    return {
        "env": {**env, **run_as["env_updates"]},
        "user": run_as["user"],
        "group": run_as["group"],
        "extra_groups": run_as["extra_groups"],
    }


def chown_tree(root: Path, uid: int, gid: int, log: logging.LoggerAdapter[Any]) -> int:
    """Give ``root`` and everything under it to uid:gid where it belongs to someone else (a freshly
    attached volume belongs to root). ``lost+found`` at the top stays root's: Elasticsearch never
    needs it. Returns how many entries changed owner."""
    changed = 0

    def fix(path: str) -> None:
        nonlocal changed
        info = os.lstat(path)
        if info.st_uid != uid or info.st_gid != gid:
            os.chown(path, uid, gid, follow_symlinks=False)
            changed += 1

    fix(str(root))
    for directory, dirs, files in os.walk(root):
        if Path(directory) == root and LOST_AND_FOUND in dirs:
            dirs.remove(LOST_AND_FOUND)
            log.info("leaving %s/%s to root", root, LOST_AND_FOUND)
        for name in dirs + files:
            fix(os.path.join(directory, name))
    return changed


def prepare_volumes(settings: NodeSettings, owner: tuple[int, int], log: logging.LoggerAdapter[Any]) -> None:
    """As root: make the data and config directories Elasticsearch's user's."""
    roots = [settings.data_path]
    roots.append(settings.config_volume if settings.config_volume is not None else settings.config_path)
    for root in roots:
        changed = chown_tree(root, *owner, log)
        if changed:
            log.info("gave %d entries under %s to %d:%d", changed, root, *owner)


# ---------------------------------------------------------------------- the keystore


def set_bootstrap_password(
    home: Path | None, settings: NodeSettings, run_as: Mapping[str, Any] | None, log: logging.LoggerAdapter[Any]
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
    arguments = _popen_arguments(run_as, env)

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


def prepare_node(
    settings: NodeSettings,
    home: Path | None,
    log: logging.LoggerAdapter[Any] | None = None,
    *,
    run_as: Mapping[str, Any] | None = None,
) -> int:
    """Prepare the data and config directories and write the node's configuration; returns the major."""
    log = log or NodeLog(settings.node_id, settings.task_id)
    major, version = elasticsearch_version(home, settings.version_override)
    owner = (int(run_as["user"]), int(run_as["group"])) if run_as else None
    try:
        settings.data_path.mkdir(parents=True, exist_ok=True)
        settings.config_path.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            prepare_volumes(settings, owner, log)
        masters = bootstrap_master_nodes(settings, log)
        text, warnings = render_elasticsearch_yml(settings, major, masters)
        for warning in warnings:
            log.warning("%s", warning)
        hosts = "# Written by es-mesos-executor.\n" + "".join(f"{h}\n" for h in settings.seed_hosts)
        regenerate_config_dir(
            settings.config_path,
            home / "config" if home is not None else None,
            {"elasticsearch.yml": text, "unicast_hosts.txt": hosts},
        )
        install_certificates(settings, owner)
        if owner is not None:
            chown_tree(settings.config_path, *owner, log)
            with contextlib.suppress(FileNotFoundError):
                os.chown(settings.data_path / UNFORMED_MARKER, *owner)
        set_bootstrap_password(home, settings, run_as, log)
    except OSError as error:
        raise ExecutorError(f"cannot prepare the node's directories: {error}") from error
    log.info("configured for Elasticsearch %s in %s", version, settings.config_path)
    return major


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
            **_popen_arguments(run_as, env),
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


def http_get(url: str, authorization: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return int(response.status), json.loads(response.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read().decode("utf-8") or "{}")
        except ValueError:
            body = {}
        return int(error.code), body if isinstance(body, dict) else {}


def basic_authorization(password: str | None) -> str | None:
    """The ``elastic`` user's Authorization header (security enabled), else None."""
    if not password:
        return None
    return "Basic " + base64.b64encode(f"elastic:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class NodeIdentity:
    """What ``GET /`` says about the node; reported in TASK_RUNNING's ``data`` once the uuid is known."""

    cluster_uuid: str
    version: str
    node_name: str

    def to_data(self) -> str:
        """The TaskStatus ``data`` field: base64 of the JSON document (bytes fields are base64 in v1 JSON)."""
        document = {"cluster_uuid": self.cluster_uuid, "version": self.version, "node_name": self.node_name}
        return base64.b64encode(json.dumps(document, sort_keys=True).encode("utf-8")).decode("ascii")


def node_identity(base_url: str, authorization: str | None = None) -> NodeIdentity | None:
    """``GET /``: None while the node does not answer 200; the identity otherwise (uuid ``_na_`` while forming)."""
    try:
        status, body = http_get(base_url + "/", authorization)
    except (OSError, ValueError):
        return None
    if status != 200:
        return None
    version = body.get("version")
    return NodeIdentity(
        cluster_uuid=str(body.get("cluster_uuid") or NO_CLUSTER_UUID),
        version=str(version.get("number", "")) if isinstance(version, dict) else "",
        node_name=str(body.get("name", "")),
    )


def node_answers(base_url: str, authorization: str | None = None) -> bool:
    return node_identity(base_url, authorization) is not None


def node_healthy(base_url: str, authorization: str | None = None) -> bool:
    try:
        status, body = http_get(base_url + "/_cluster/health?timeout=1s", authorization)
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

    def _update(
        self,
        state: str,
        message: str | None = None,
        *,
        healthy: bool | None = None,
        identity: NodeIdentity | None = None,
    ) -> None:
        task_id = (self._task_info or {}).get("task_id") or {}
        status: dict[str, Any] = {"task_id": dict(task_id), "state": state}
        if message:
            status["message"] = message
        if healthy is not None:
            status["healthy"] = healthy
        if identity is not None and identity.cluster_uuid != NO_CLUSTER_UUID:
            status["data"] = identity.to_data()
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
            run_as = run_as_for(settings, home)
            prepare_node(settings, home, self.log, run_as=run_as)
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
        running = False
        healthy: bool | None = None
        identity: NodeIdentity | None = None
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
                answer = node_identity(settings.local_http, authorization)
                if answer is not None:
                    running = True
                    identity = self._note_identity(None, answer, settings)
                    healthy = node_healthy(settings.local_http, authorization)
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
                forming = identity is None or identity.cluster_uuid == NO_CLUSTER_UUID
                next_check = now + (
                    min(FORMING_CHECK_INTERVAL, HEALTH_CHECK_INTERVAL) if forming else HEALTH_CHECK_INTERVAL
                )
                answer = node_identity(settings.local_http, authorization)
                current = node_healthy(settings.local_http, authorization)
                uuid_changed = False
                if answer is not None and answer != identity:
                    previous = identity
                    identity = self._note_identity(identity, answer, settings)
                    uuid_changed = previous is None or previous.cluster_uuid != identity.cluster_uuid
                if uuid_changed and identity is not None and identity.cluster_uuid != NO_CLUSTER_UUID:
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

    def _note_identity(
        self, previous: NodeIdentity | None, current: NodeIdentity, settings: NodeSettings
    ) -> NodeIdentity:
        """Log a new or changed cluster uuid; once there is one, the data path has joined a cluster."""
        if current.cluster_uuid == NO_CLUSTER_UUID:
            return current
        if previous is None or previous.cluster_uuid != current.cluster_uuid:
            if previous is not None and previous.cluster_uuid != NO_CLUSTER_UUID:
                self.log.warning("cluster uuid changed from %s to %s", previous.cluster_uuid, current.cluster_uuid)
            else:
                self.log.info(
                    "node %s is in cluster uuid %s (Elasticsearch %s)",
                    current.node_name,
                    current.cluster_uuid,
                    current.version,
                )
            with contextlib.suppress(OSError):
                (settings.data_path / UNFORMED_MARKER).unlink(missing_ok=True)
        return current


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
        raise ExecutorError("ELASTICSEARCH_UID=0: Elasticsearch never runs as root")
    return privileges(settings.uid, home if home is not None else settings.sandbox)


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
