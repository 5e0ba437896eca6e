"""The demo Elasticsearch node process (development tool, not Elasticsearch).

Start: ``python -m es_framework.demo_es [-Ekey=value ...]`` with ``ES_PATH_CONF`` naming the config
directory, or the ``bin/elasticsearch`` launcher :func:`write_launcher` writes. Exit codes follow
Elasticsearch: 0 after a clean stop (SIGTERM/SIGINT), 1 for a bad setting or a locked
``path.data``, 78 for a failed bootstrap check (``demo.fail_bootstrap_check: true``).

Discovery: the transport port is a plain TCP listener that answers every connection with one JSON
line describing the node (name, id, cluster name and uuid, HTTP address). The node probes its seed
hosts (``discovery.seed_hosts`` and, with ``discovery.seed_providers: file``,
``$ES_PATH_CONF/unicast_hosts.txt``, re-read when it changes) every ``PROBE_INTERVAL`` seconds,
and the nodes those know in turn; ``GET /_nodes`` lists itself and every peer of the same cluster
it reached.

Cluster formation: a node without a ``cluster_uuid`` whose ``cluster.initial_master_nodes`` names it
forms the cluster once every listed node it can reach has been found — the first of those names in
sorted order generates the uuid — and the others adopt it from any peer that has one. The uuid is
persisted in ``path.data`` and never replaced; a peer with a different uuid is ignored (logged).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from es_framework.demo_es.settings import Settings, SettingsError, load_settings

DEMO_VERSION = "8.x-demo"
TAGLINE = "es-mesos demo node — not Elasticsearch"
#: Elasticsearch's exit code for a failed bootstrap check (ExitCodes.CONFIG).
EXIT_BOOTSTRAP_CHECK = 78
EXIT_STARTUP_ERROR = 1
PROBE_INTERVAL = 0.3
PROBE_TIMEOUT = 0.5
#: Most addresses one discovery round probes (seed hosts and the nodes they know).
MAX_PROBES = 64
#: The media types that can carry ``compatible-with``; this server is major 8 and accepts 7 and 8.
COMPATIBLE_RE = re.compile(r"compatible-with\s*=\s*(\d+)")
SERVER_MAJOR = 8
STATE_FILE = "demo-node-state.json"
BOOTSTRAP_FAILURE = "max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]"

logger = logging.getLogger("es_framework.demo_es")


def write_launcher(home: Path, python: str | None = None) -> Path:
    """Write ``<home>/bin/elasticsearch``, a shell launcher that runs the demo node with its arguments
    (what the executor runs when the "distribution" in its sandbox is this demo). Returns its path."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (home / "config").mkdir(exist_ok=True)
    launcher = bin_dir / "elasticsearch"
    project_root = Path(__file__).resolve().parents[2]
    launcher.write_text(
        "#!/bin/sh\n"
        "# es-mesos demo node launcher — not Elasticsearch (development tool).\n"
        f'ES_PATH_CONF="${{ES_PATH_CONF:-{home / "config"}}}"\n'
        "export ES_PATH_CONF\n"
        f'PYTHONPATH="{project_root}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        "export PYTHONPATH\n"
        f'exec "{python or sys.executable}" -m es_framework.demo_es "$@"\n',
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return launcher


@dataclass
class Peer:
    name: str
    node_id: str
    cluster_name: str
    cluster_uuid: str | None
    http: str
    transport: str
    roles: list[str]
    #: Transport addresses of the nodes this peer reaches.
    known: list[str] = field(default_factory=list)


@dataclass
class NodeState:
    node_id: str
    cluster_uuid: str | None
    peers: dict[str, Peer] = field(default_factory=dict)


class DemoNode:
    """One running demo node: HTTP server, transport listener, discovery thread, locked data path."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cluster_name = settings.get("cluster.name", "elasticsearch")
        self.name = settings.get("node.name", socket.gethostname())
        host = settings.get("network.host", "127.0.0.1")
        self.bind_host = settings.get("network.bind_host", host if host not in ("_local_", "_site_") else "127.0.0.1")
        self.publish_host = settings.get("network.publish_host", self.bind_host)
        self.roles = settings.get_list("node.roles") or ["master", "data", "ingest"]
        self.initial_masters = settings.get_list("cluster.initial_master_nodes")
        self.single_node = settings.get("discovery.type") == "single-node"
        self.http_port_setting = settings.get_port("http.port", 9200)
        self.transport_port_setting = settings.get_port("transport.port", 9300)
        self.file_seeds = "file" in settings.get_list("discovery.seed_providers")
        self.shutdown_delay = float(settings.get("demo.shutdown_delay", "0") or 0)
        data = settings.get("path.data", "data")
        self.data_path = Path(data).resolve()
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._seed_file_mtime: float | None = None
        self._file_seed_hosts: list[str] = []
        self.http_server: ThreadingHTTPServer | None = None
        self.transport_server: socketserver.ThreadingTCPServer | None = None
        self.state = NodeState(node_id="", cluster_uuid=None)

    # -------------------------------------------------------------- start-up

    def lock_data_path(self) -> None:
        self.data_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_path / "node.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SettingsError(
                f"failed to obtain node locks, tried [{self.data_path}]; maybe these locations are not writable "
                "or multiple nodes were started on the same data path?"
            ) from None
        self._lock_fd = fd

    def load_state(self) -> None:
        path = self.data_path / "_state" / STATE_FILE
        if path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            self.state = NodeState(node_id=str(document["node_id"]), cluster_uuid=document.get("cluster_uuid"))
        else:
            self.state = NodeState(node_id=uuid.uuid4().hex[:22], cluster_uuid=None)
            self._save_state()

    def _save_state(self) -> None:
        path = self.data_path / "_state" / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"node_id": self.state.node_id, "cluster_uuid": self.state.cluster_uuid}), encoding="utf-8"
        )
        os.replace(tmp, path)

    def start(self) -> None:
        if self._lock_fd is None:
            self.lock_data_path()
        self.load_state()
        self.http_server = DemoHTTPServer((self.bind_host, self.http_port_setting), self)
        self.transport_server = TransportServer((self.bind_host, self.transport_port_setting), self)
        for target, name in (
            (functools.partial(self.http_server.serve_forever, 0.1), "demo-es-http"),
            (functools.partial(self.transport_server.serve_forever, 0.1), "demo-es-transport"),
            (self._discover, "demo-es-discovery"),
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

    @property
    def http_port(self) -> int:
        assert self.http_server is not None
        return int(self.http_server.server_address[1])

    @property
    def transport_port(self) -> int:
        assert self.transport_server is not None
        return int(self.transport_server.server_address[1])

    @property
    def http_address(self) -> str:
        return f"{self.publish_host}:{self.http_port}"

    @property
    def transport_address(self) -> str:
        return f"{self.publish_host}:{self.transport_port}"

    def stop(self) -> None:
        logger.info("[%s] stopping demo node ...", self.name)
        if self.shutdown_delay > 0:
            time.sleep(self.shutdown_delay)
        self._stop.set()
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

    # -------------------------------------------------------------- discovery

    def describe(self) -> dict[str, Any]:
        with self._state_lock:
            cluster_uuid = self.state.cluster_uuid
            peers = list(self.state.peers.values())
        return {
            "name": self.name,
            "node_id": self.state.node_id,
            "cluster_name": self.cluster_name,
            "cluster_uuid": cluster_uuid,
            "http": self.http_address,
            "transport": self.transport_address,
            "roles": self.roles,
            "known": [p.transport for p in peers],
        }

    def seed_hosts(self) -> list[str]:
        hosts = self.settings.get_list("discovery.seed_hosts")
        if self.file_seeds and self.settings.config_dir is not None:
            path = self.settings.config_dir / "unicast_hosts.txt"
            try:
                mtime: float | None = path.stat().st_mtime_ns / 1e9
            except FileNotFoundError:
                mtime = None
            if mtime != self._seed_file_mtime:
                self._seed_file_mtime = mtime
                text = path.read_text(encoding="utf-8") if mtime is not None else ""
                self._file_seed_hosts = [
                    line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
                ]
                logger.info("[%s] seed hosts from [%s]: %s", self.name, path, self._file_seed_hosts)
        hosts.extend(self._file_seed_hosts)
        own = {self.transport_address, f"127.0.0.1:{self.transport_port}", f"localhost:{self.transport_port}"}
        return [h for h in dict.fromkeys(hosts) if h not in own]

    def _probe(self, address: str) -> Peer | None:
        host, _, port = address.rpartition(":")
        if not host:
            host, port = address, "9300"
        try:
            with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT) as sock:
                sock.settimeout(PROBE_TIMEOUT)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            info = json.loads(data.decode("utf-8"))
            return Peer(
                name=str(info["name"]),
                node_id=str(info["node_id"]),
                cluster_name=str(info["cluster_name"]),
                cluster_uuid=info.get("cluster_uuid"),
                http=str(info["http"]),
                transport=str(info["transport"]),
                roles=[str(r) for r in info.get("roles", [])],
                known=[str(a) for a in info.get("known", [])],
            )
        except (OSError, ValueError, KeyError):
            return None

    def _discover(self) -> None:
        warned: set[str] = set()
        while not self._stop.is_set():
            try:
                self.discover_once(warned)
            except Exception:
                logger.exception("[%s] discovery round failed", self.name)
            self._stop.wait(PROBE_INTERVAL)

    def discover_once(self, warned: set[str]) -> None:
        found: dict[str, Peer] = {}
        pending = self.seed_hosts()
        probed: set[str] = set()
        while pending and len(probed) < MAX_PROBES:
            address = pending.pop(0)
            if address in probed:
                continue
            probed.add(address)
            peer = self._probe(address)
            if peer is None or peer.node_id == self.state.node_id:
                continue
            # Like a node that joined through one seed and then hears of the others from the master.
            pending.extend(a for a in peer.known if a not in probed and a != self.transport_address)
            if peer.cluster_name != self.cluster_name:
                if peer.node_id not in warned:
                    warned.add(peer.node_id)
                    logger.warning(
                        "[%s] ignoring node [%s] at [%s]: cluster name [%s] is not [%s]",
                        self.name,
                        peer.name,
                        address,
                        peer.cluster_name,
                        self.cluster_name,
                    )
                continue
            found[peer.node_id] = peer
        with self._state_lock:
            own_uuid = self.state.cluster_uuid
            if own_uuid is None:
                own_uuid = self._maybe_form(found)
            members = {}
            for peer in found.values():
                if own_uuid is not None and peer.cluster_uuid not in (None, own_uuid):
                    if peer.node_id not in warned:
                        warned.add(peer.node_id)
                        logger.warning(
                            "[%s] ignoring node [%s]: it belongs to cluster uuid [%s], this node to [%s]",
                            self.name,
                            peer.name,
                            peer.cluster_uuid,
                            own_uuid,
                        )
                    continue
                members[peer.node_id] = peer
            joined = sorted(p.name for k, p in members.items() if k not in self.state.peers)
            left = sorted(p.name for k, p in self.state.peers.items() if k not in members)
            self.state.peers = members
        if joined or left:
            logger.info("[%s] cluster membership changed: joined %s, left %s", self.name, joined, left)

    def _maybe_form(self, found: dict[str, Peer]) -> str | None:
        """Called with the state lock held and no uuid yet: adopt a peer's uuid or form the cluster."""
        with_uuid = sorted({p.cluster_uuid for p in found.values() if p.cluster_uuid})
        new_uuid: str | None = None
        if with_uuid:
            new_uuid = with_uuid[0]
            logger.info("[%s] joined cluster [%s] with uuid [%s]", self.name, self.cluster_name, new_uuid)
        elif self.single_node or (self.name in self.initial_masters and self._may_bootstrap(found)):
            new_uuid = uuid.uuid4().hex[:22]
            logger.info("[%s] formed cluster [%s] with uuid [%s]", self.name, self.cluster_name, new_uuid)
        if new_uuid is not None:
            self.state.cluster_uuid = new_uuid
            self._save_state()
        return new_uuid

    def _may_bootstrap(self, found: dict[str, Peer]) -> bool:
        present = {self.name} | {p.name for p in found.values()}
        wanted = set(self.initial_masters)
        # A majority of the initial masters is needed (like a real election), and the first of them
        # in sorted order that is present generates the uuid so that two nodes never both do.
        if len(present & wanted) * 2 <= len(wanted):
            return False
        return self.name == min(present & wanted)

    # -------------------------------------------------------------- REST

    def root(self) -> dict[str, Any]:
        with self._state_lock:
            cluster_uuid = self.state.cluster_uuid or "_na_"
        return {
            "name": self.name,
            "cluster_name": self.cluster_name,
            "cluster_uuid": cluster_uuid,
            "version": {
                "number": DEMO_VERSION,
                "build_flavor": "demo",
                "build_type": "es-mesos-demo",
                "lucene_version": "none",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": TAGLINE,
        }

    def health(self) -> tuple[int, dict[str, Any]]:
        with self._state_lock:
            formed = self.state.cluster_uuid is not None
            nodes = 1 + len(self.state.peers)
            data_nodes = sum(1 for p in self.state.peers.values() if any(r.startswith("data") for r in p.roles))
        data_nodes += 1 if any(r.startswith("data") for r in self.roles) else 0
        if not formed:
            return 503, _error(503, "master_not_discovered_exception", "no master discovered by the demo node")
        return 200, {
            "cluster_name": self.cluster_name,
            "status": "green",
            "timed_out": False,
            "number_of_nodes": nodes,
            "number_of_data_nodes": data_nodes,
            "active_primary_shards": 0,
            "active_shards": 0,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }

    def nodes(self) -> dict[str, Any]:
        with self._state_lock:
            peers = list(self.state.peers.values())
        own = Peer(
            self.name,
            self.state.node_id,
            self.cluster_name,
            self.state.cluster_uuid,
            self.http_address,
            self.transport_address,
            self.roles,
        )
        entries = {}
        for peer in [own, *peers]:
            host = peer.transport.rpartition(":")[0]
            entries[peer.node_id] = {
                "name": peer.name,
                "transport_address": peer.transport,
                "host": host,
                "ip": host,
                "version": DEMO_VERSION,
                "roles": peer.roles,
                "http": {"publish_address": peer.http},
            }
        total = len(entries)
        return {
            "_nodes": {"total": total, "successful": total, "failed": 0},
            "cluster_name": self.cluster_name,
            "nodes": entries,
        }


def _error(status: int, kind: str, reason: str, caused_by: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}
    if caused_by is not None:
        error["caused_by"] = caused_by
    return {"error": error, "status": status}


def media_type_problem(accept: str | None, content_type: str | None) -> str | None:
    """Why Elasticsearch 8 would refuse these headers (None: it would not)."""
    accept_version = COMPATIBLE_RE.search(accept or "")
    content_version = COMPATIBLE_RE.search(content_type or "")
    for header, match in (("Accept", accept_version), ("Content-Type", content_version)):
        if match is not None and int(match.group(1)) not in (SERVER_MAJOR - 1, SERVER_MAJOR):
            return (
                f"{header} version must be either version {SERVER_MAJOR} or {SERVER_MAJOR - 1}, but found "
                f"{match.group(1)}. {header}={accept if header == 'Accept' else content_type}"
            )
    if accept_version and content_version and accept_version.group(1) != content_version.group(1):
        return (
            "A compatible version is required on both Content-Type and Accept headers if either one has "
            "requested a compatible version and the compatible versions must match. "
            f"Accept={accept}, Content-Type={content_type}"
        )
    return None


class DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], node: DemoNode) -> None:
        self.node = node
        super().__init__(address, DemoRequestHandler)


class DemoRequestHandler(BaseHTTPRequestHandler):
    server: DemoHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("[%s] http %s " + format, self.server.node.name, self.address_string(), *args)

    def _send(self, status: int, document: dict[str, Any], *, head: bool = False) -> None:
        body = (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-elastic-product", "Elasticsearch")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _handle(self, *, head: bool = False) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        problem = media_type_problem(self.headers.get("Accept"), self.headers.get("Content-Type"))
        if problem is not None:
            header = "Content-Type" if problem.startswith("Content-Type") else "Accept"
            self._send(
                400,
                _error(
                    400,
                    "media_type_header_exception",
                    f"Invalid media-type value on headers [{header}]",
                    {"type": "status_exception", "reason": problem},
                ),
                head=head,
            )
            return
        node = self.server.node
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path == "/":
            self._send(200, node.root(), head=head)
        elif path == "/_cluster/health":
            status, document = node.health()
            self._send(status, document, head=head)
        elif path == "/_nodes":
            self._send(200, node.nodes(), head=head)
        else:
            self._send(
                400,
                _error(400, "illegal_argument_exception", f"demo node has no endpoint [{self.command} {self.path}]"),
                head=head,
            )

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle(head=True)


class TransportServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], node: DemoNode) -> None:
        self.node = node
        super().__init__(address, TransportHandler)


class TransportHandler(socketserver.BaseRequestHandler):
    server: TransportServer

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            self.request.sendall((json.dumps(self.server.node.describe()) + "\n").encode("utf-8"))


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
    logger.info("[%s] starting %s (version %s), pid %s", node_name, TAGLINE, DEMO_VERSION, os.getpid())
    try:
        node = DemoNode(settings)
        node.lock_data_path()
    except SettingsError as error:
        logger.error(
            "[%s] fatal exception while booting the demo node: java.lang.IllegalStateException: %s", node_name, error
        )
        return EXIT_STARTUP_ERROR
    try:
        failure = settings.get_bool("demo.fail_bootstrap_check")
    except SettingsError as error:
        logger.error("[%s] fatal exception while booting the demo node: %s", node_name, error)
        return EXIT_STARTUP_ERROR
    if failure:
        logger.error(
            "[%s] node validation exception\n[1] bootstrap checks failed. You must address the points described in the "
            "following [1] lines before starting Elasticsearch.\nbootstrap check failure [1] of [1]: %s",
            node_name,
            BOOTSTRAP_FAILURE,
        )
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
