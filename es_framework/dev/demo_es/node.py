"""The demo Elasticsearch node process (development tool, not Elasticsearch): start-up, servers, threads, exit.

Start: ``python -m es_framework.dev.demo_es [-Ekey=value ...]`` with ``ES_PATH_CONF`` naming the config
directory, or the ``bin/elasticsearch`` launcher :func:`write_launcher` writes; ``ELASTICSEARCH_VERSION`` chooses
the Elasticsearch version it plays (see :mod:`.version`; a version it cannot play is exit 1). Exit codes follow
Elasticsearch: 0 after a clean stop (SIGTERM/SIGINT), 1 for a bad setting (also a TLS or security setting
Elasticsearch refuses, :mod:`.security`) or a locked
``path.data``, 78 for a failed bootstrap check: the machine's limits or transport TLS missing with security on
(:mod:`.security`) in production mode (bound to a
non-loopback address, or forced by ``-Des.enforce.bootstrap.checks=true`` in ``ES_JAVA_OPTS``; see
:mod:`.bootstrap_checks`, whose failures are warnings in development mode), or always with
``demo.fail_bootstrap_check: true``.

A :class:`DemoNode` is built in layers, each in its module: :mod:`.membership` (discovery, cluster
formation, election), :mod:`.publication` (the cluster state, master updates and their publication),
:mod:`.applier` (shard copies on this node); this module adds the HTTP server (:mod:`.rest`), the
transport listener (:mod:`.transport`), the locked ``path.data`` (:mod:`.persistence`) and the threads.
Documents and searches are in :mod:`es_framework.dev.demo_es.actions`.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from es_framework.dev.demo_es import bootstrap_checks, channel, persistence
from es_framework.dev.demo_es.applier import ApplierNode
from es_framework.dev.demo_es.membership import NodeState
from es_framework.dev.demo_es.rest import DemoHTTPServer
from es_framework.dev.demo_es.secure_transport import SecureTransportServer
from es_framework.dev.demo_es.security import Security, SecurityError, load_security
from es_framework.dev.demo_es.settings import Settings, SettingsError, load_settings
from es_framework.dev.demo_es.transport import TransportServer
from es_framework.dev.demo_es.version import (
    DEMO_VERSION,
    TAGLINE,
    VERSION_ENV,
    VersionError,
    node_version,
    parse_version,
)

__all__ = ["DEMO_VERSION", "TAGLINE", "DemoNode", "main", "write_launcher"]

#: Elasticsearch's exit code for a failed bootstrap check (ExitCodes.CONFIG).
EXIT_BOOTSTRAP_CHECK = 78
EXIT_STARTUP_ERROR = 1
BOOTSTRAP_FAILURE = "max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]"

logger = logging.getLogger("es_framework.dev.demo_es")


def write_launcher(home: Path, python: str | None = None, version: str | None = None) -> Path:
    """Write ``<home>/bin/elasticsearch``, a shell launcher that runs the demo node with its arguments
    (what the executor runs when the "distribution" in its sandbox is this demo), and
    ``<home>/bin/elasticsearch-keystore``, the demo's keystore tool (:mod:`.keystore`). Returns the launcher's path.

    With ``version`` (checked like :func:`~.version.parse_version`) the "distribution" is that version: the
    launcher sets ``ELASTICSEARCH_VERSION`` for the node whatever its environment says, and
    ``<home>/lib/elasticsearch-<version>.jar`` (empty) is where the executor reads a distribution's version."""
    if version is not None:
        parse_version(version)
        (home / "lib").mkdir(parents=True, exist_ok=True)
        (home / "lib" / f"elasticsearch-{version}.jar").write_bytes(b"")
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (home / "config").mkdir(exist_ok=True)
    launcher = bin_dir / "elasticsearch"
    project_root = Path(__file__).resolve().parents[3]
    pinned = f'{VERSION_ENV}="{version}"\nexport {VERSION_ENV}\n' if version is not None else ""
    launcher.write_text(
        "#!/bin/sh\n"
        "# es-mesos demo node launcher — not Elasticsearch (development tool).\n"
        f'ES_PATH_CONF="${{ES_PATH_CONF:-{home / "config"}}}"\n'
        "export ES_PATH_CONF\n"
        f"{pinned}"
        f'PYTHONPATH="{project_root}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        "export PYTHONPATH\n"
        f'exec "{python or sys.executable}" -m es_framework.dev.demo_es "$@"\n',
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    # The keystore tool next to it, as in a distribution (the executor fills the keystore with it).
    keystore_tool = bin_dir / "elasticsearch-keystore"
    keystore_tool.write_text(
        "#!/bin/sh\n"
        "# es-mesos demo keystore tool — not Elasticsearch's (development tool).\n"
        f'ES_PATH_CONF="${{ES_PATH_CONF:-{home / "config"}}}"\n'
        "export ES_PATH_CONF\n"
        f'PYTHONPATH="{project_root}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        "export PYTHONPATH\n"
        f'exec "{python or sys.executable}" -m es_framework.dev.demo_es.keystore "$@"\n',
        encoding="utf-8",
    )
    keystore_tool.chmod(0o755)
    return launcher


class DemoNode(ApplierNode):
    """One running demo node: HTTP server, transport listener, discovery, master and applier threads,
    locked data path."""

    def __init__(self, settings: Settings, security: Security | None = None) -> None:
        super().__init__(settings)
        self.security = security or Security()
        self.shutdown_delay = float(settings.get("demo.shutdown_delay", "0") or 0)
        self._lock_fd: int | None = None

    def lock_data_path(self) -> None:
        self._lock_fd = persistence.lock_data_path(self.data_path)

    def load_state(self) -> None:
        """The node id and cluster uuid of ``path.data`` (new ones for a new data path), and its last cluster state."""
        saved = persistence.read_node_state(self.data_path)
        if saved is not None:
            self.state = NodeState(node_id=saved[0], cluster_uuid=saved[1])
        else:
            self.state = NodeState(node_id=uuid.uuid4().hex[:22], cluster_uuid=None)
            self._save_state()
        cluster = persistence.read_cluster_state(self.data_path, self.state.cluster_uuid)
        if cluster is not None:
            self.cluster = cluster

    def start(self) -> None:
        if self._lock_fd is None:
            self.lock_data_path()
        self.load_state()
        security = self.security
        tls = security.transport
        channel.configure(
            channel.Channel(tls.client_context() if tls else None, "https" if security.http is not None else "http")
        )
        self.http_server = http_server = DemoHTTPServer((self.bind_host, self.http_port_setting), self, security)
        transport_address = (self.bind_host, self.transport_port_setting)
        transport_server: socketserver.TCPServer = (
            SecureTransportServer(transport_address, self, tls) if tls else TransportServer(transport_address, self)
        )
        self.transport_server = transport_server
        for target, name in (
            (functools.partial(http_server.serve_forever, 0.1), "demo-es-http"),
            (functools.partial(transport_server.serve_forever, 0.1), "demo-es-transport"),
            (self._discover, "demo-es-discovery"),
            (self._master_loop, "demo-es-master"),
            (self._applier_loop, "demo-es-applier"),
        ):
            threading.Thread(target=target, name=name, daemon=True).start()
        logger.info(
            "[%s] started demo node (%s) — cluster [%s], node id [%s], cluster uuid [%s], publish_address {%s}, "
            "transport {%s}, data [%s]",
            self.name,
            TAGLINE,
            self.cluster_name,
            self.state.node_id,
            self.state.cluster_uuid or "_na_",
            self.http_address,
            self.transport_address,
            self.data_path,
        )

    def stop(self) -> None:
        logger.info("[%s] stopping demo node ...", self.name)
        if self.shutdown_delay > 0:
            time.sleep(self.shutdown_delay)
        self._stop.set()
        self._master_wake.set()
        self._applier_wake.set()
        for server in (self.http_server, self.transport_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        logger.info("[%s] stopped demo node", self.name)

    def wait(self) -> None:
        while not self._stop.wait(0.2):
            pass


def _configure_logging(stream: TextIO) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)-5s][demo-es] %(message)s (demo node)"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _configure_logging(sys.stderr)
    try:
        settings = load_settings(args)
    except SettingsError as error:
        logger.error("fatal exception while booting the demo node: java.lang.IllegalArgumentException: %s", error)
        return EXIT_STARTUP_ERROR
    node_name = settings.get("node.name", socket.gethostname())
    try:
        version = node_version(os.environ)
    except VersionError as error:
        logger.error(
            "[%s] fatal exception while booting the demo node: java.lang.IllegalArgumentException: %s", node_name, error
        )
        return EXIT_STARTUP_ERROR
    logger.info("[%s] starting %s (version %s), pid %s", node_name, TAGLINE, version, os.getpid())
    try:
        security = load_security(settings)
    except (SecurityError, SettingsError) as error:
        logger.error(
            "[%s] fatal exception while booting the demo node: org.elasticsearch.ElasticsearchSecurityException: %s",
            node_name,
            error,
        )
        return EXIT_STARTUP_ERROR
    try:
        node = DemoNode(settings, security)
        node.lock_data_path()
    except SettingsError as error:
        logger.error(
            "[%s] fatal exception while booting the demo node: java.lang.IllegalStateException: %s", node_name, error
        )
        return EXIT_STARTUP_ERROR
    try:
        simulated = (BOOTSTRAP_FAILURE,) if settings.get_bool("demo.fail_bootstrap_check") else ()
        outcome = bootstrap_checks.run_checks(
            settings, os.environ, always=simulated, xpack=tuple(security.bootstrap_failures())
        )
    except (SettingsError, bootstrap_checks.BootstrapCheckError) as error:
        logger.error(
            "[%s] fatal exception while booting the demo node: java.lang.IllegalArgumentException: %s", node_name, error
        )
        return EXIT_STARTUP_ERROR
    for line in outcome.info:
        logger.info("[%s] %s", node_name, line)
    for warning in outcome.warnings:
        logger.warning("[%s] %s", node_name, warning)
    if outcome.errors:
        logger.error("[%s] node validation exception\n%s", node_name, bootstrap_checks.failure_text(outcome.errors))
        logger.error("[%s] ERROR: Elasticsearch did not exit normally (exit code %s)", node_name, EXIT_BOOTSTRAP_CHECK)
        return EXIT_BOOTSTRAP_CHECK
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logger.info("[%s] received signal %s", node_name, signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node.start()
    except (OSError, SettingsError) as error:
        logger.error("[%s] fatal exception while booting the demo node: %s", node_name, error)
        return EXIT_STARTUP_ERROR
    while not stopping.wait(0.2):
        pass
    node.stop()
    return 0
