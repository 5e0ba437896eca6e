"""The demo Elasticsearch node process (development tool, not Elasticsearch): lifecycle, discovery,
master election and publication of the cluster state, and the shard applier.

Start: ``python -m es_framework.dev.demo_es [-Ekey=value ...]`` with ``ES_PATH_CONF`` naming the config
directory, or the ``bin/elasticsearch`` launcher :func:`write_launcher` writes. Exit codes follow
Elasticsearch: 0 after a clean stop (SIGTERM/SIGINT), 1 for a bad setting or a locked
``path.data``, 78 for a failed bootstrap check (``demo.fail_bootstrap_check: true``).

Discovery: the transport port is a plain TCP listener that answers every connection with one JSON
line describing the node (name, id, cluster name and uuid, HTTP address, roles, whether it is master,
its cluster state version). The node probes its seed hosts (``discovery.seed_hosts`` and, with
``discovery.seed_providers: file``, ``$ES_PATH_CONF/unicast_hosts.txt``, re-read when it changes) every
``PROBE_INTERVAL`` seconds, and the nodes those know in turn; ``GET /_nodes`` lists itself and every
peer of the same cluster it reached.

Cluster formation: a node without a ``cluster_uuid`` whose ``cluster.initial_master_nodes`` names it
forms the cluster once a majority of the listed nodes has been found — the first of those names in
sorted order generates the uuid — and the others adopt it from any peer that has one. The uuid is
persisted in ``path.data`` and never replaced; a peer with a different uuid is ignored (logged).

Master and cluster state (:mod:`~es_framework.dev.demo_es.cluster_state` has the election rule): the master
keeps the cluster state (indices, routing table, cluster settings, voting configuration), runs
:func:`~es_framework.dev.demo_es.routing.reroute` whenever something changes, persists it in its
``path.data`` and publishes it over HTTP to every node, which persists the newest version it saw (a
restarted cluster comes back with the same allocation; a restarted node serves requests only once the
master sent it the current state). A node leaves the routing after missing
``LEAVE_ROUNDS`` discovery rounds in a row. Any node forwards master operations (create/delete index,
settings, shard started/failed) to the master.

Shard applier: every node starts the recoveries the routing assigns to it (an empty or its own existing
store for a primary; a copy from the primary for a replica or a relocation target, skipped when its own
files already equal the primary's; ``demo.relocation_delay`` seconds of pretend copying first), reports
them started to the master, and deletes local shard copies once the routing no longer needs them.
Documents and searches are in :mod:`~es_framework.dev.demo_es.actions`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import shutil
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from es_framework.dev.demo_es.actions import run_master_action
from es_framework.dev.demo_es.client import call
from es_framework.dev.demo_es.cluster_state import (
    INITIALIZING,
    RECOVERY_PEER,
    RELOCATION_DELAY,
    ClusterState,
    NodeInfo,
    claims_master,
    state_from_json,
    to_json,
    voting_config,
)
from es_framework.dev.demo_es.documents import ShardStore, doc_from_json
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.rest import DemoHTTPServer, media_type_problem
from es_framework.dev.demo_es.routing import reroute
from es_framework.dev.demo_es.settings import Settings, SettingsError, load_settings

__all__ = ["DEMO_VERSION", "TAGLINE", "DemoNode", "main", "media_type_problem", "write_launcher"]

DEMO_VERSION = "8.x-demo"
TAGLINE = "es-mesos demo node — not Elasticsearch"
#: Elasticsearch's exit code for a failed bootstrap check (ExitCodes.CONFIG).
EXIT_BOOTSTRAP_CHECK = 78
EXIT_STARTUP_ERROR = 1
PROBE_INTERVAL = 0.3
PROBE_TIMEOUT = 0.5
#: How long a node that probed this one is probed back (seconds) after its last probe.
HEARD_FOR = 5.0
#: Discovery rounds a node may miss before the master takes it out of the routing.
LEAVE_ROUNDS = 3
#: Most addresses one discovery round probes (seed hosts and the nodes they know).
MAX_PROBES = 64
STATE_FILE = "demo-node-state.json"
CLUSTER_STATE_FILE = "cluster-state.json"
BOOTSTRAP_FAILURE = "max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]"
#: Seconds a node waits for its cluster state to catch up with a version another node has seen.
CATCH_UP_TIMEOUT = 5.0
#: Seconds an acknowledged API change waits for every node to apply the new cluster state.
ACK_TIMEOUT = 5.0

logger = logging.getLogger("es_framework.dev.demo_es")


def _own_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def now_millis() -> int:
    return int(time.time() * 1000)


def write_launcher(home: Path, python: str | None = None) -> Path:
    """Write ``<home>/bin/elasticsearch``, a shell launcher that runs the demo node with its arguments
    (what the executor runs when the "distribution" in its sandbox is this demo). Returns its path."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (home / "config").mkdir(exist_ok=True)
    launcher = bin_dir / "elasticsearch"
    project_root = Path(__file__).resolve().parents[3]
    launcher.write_text(
        "#!/bin/sh\n"
        "# es-mesos demo node launcher — not Elasticsearch (development tool).\n"
        f'ES_PATH_CONF="${{ES_PATH_CONF:-{home / "config"}}}"\n'
        "export ES_PATH_CONF\n"
        f'PYTHONPATH="{project_root}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        "export PYTHONPATH\n"
        f'exec "{python or sys.executable}" -m es_framework.dev.demo_es "$@"\n',
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
    master: bool = False
    state_version: int = -1

    def info(self) -> NodeInfo:
        return NodeInfo(self.node_id, self.name, tuple(self.roles), self.http, self.transport)


@dataclass
class NodeState:
    node_id: str
    cluster_uuid: str | None
    peers: dict[str, Peer] = field(default_factory=dict)


class DemoNode:
    """One running demo node: HTTP server, transport listener, discovery, master and applier threads,
    locked data path. ``self._state_lock`` guards ``state`` (membership) and ``cluster`` (cluster state);
    no network call is made while it is held (only the small state files are written)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cluster_name = settings.get("cluster.name", "elasticsearch")
        self.name = settings.get("node.name", socket.gethostname())
        host = settings.get("network.host", "127.0.0.1")
        self.bind_host = settings.get("network.bind_host", host if host not in ("_local_", "_site_") else "127.0.0.1")
        publish = settings.get("network.publish_host", self.bind_host)
        if publish in ("0.0.0.0", "::", "_site_", "_global_"):
            # Like Elasticsearch, publish an address peers can reach rather than the wildcard it binds to.
            publish = _own_address()
        self.publish_host = publish
        self.http_publish_host = settings.get("http.publish_host", publish)
        self.transport_publish_host = settings.get("transport.publish_host", publish)
        self.roles = settings.get_list("node.roles") or ["master", "data", "ingest"]
        self.initial_masters = settings.get_list("cluster.initial_master_nodes")
        self.single_node = settings.get("discovery.type") == "single-node"
        self.http_port_setting = settings.get_port("http.port", 9200)
        self.transport_port_setting = settings.get_port("transport.port", 9300)
        self.file_seeds = "file" in settings.get_list("discovery.seed_providers")
        self.shutdown_delay = float(settings.get("demo.shutdown_delay", "0") or 0)
        self.relocation_delay = float(settings.get(RELOCATION_DELAY, "0").removesuffix("s") or 0)
        data = settings.get("path.data", "data")
        self.data_path = Path(data).resolve()
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._state_changed = threading.Condition(self._state_lock)
        self._seed_file_mtime: float | None = None
        self._file_seed_hosts: list[str] = []
        self.http_server: ThreadingHTTPServer | None = None
        self.transport_server: socketserver.ThreadingTCPServer | None = None
        self.state = NodeState(node_id="", cluster_uuid=None)
        #: The last cluster state this node accepted (persisted, so it survives restarts) ...
        self.cluster: ClusterState | None = None
        #: ... which it serves requests from only once it is current: received from the master since this
        #: process started, or taken over as the master (Elasticsearch's "state not recovered" block).
        self._live = False
        self.is_master = False
        #: Peers of the cluster seen lately, with the rounds each has missed in a row (the master's live set).
        self._recent: dict[str, Peer] = {}
        #: Transport address -> when it last probed this node.
        self._heard: dict[str, float] = {}
        self._misses: dict[str, int] = {}
        self._master_wake = threading.Event()
        self._applier_wake = threading.Event()
        self._acked: dict[str, int] = {}
        self._publishing: set[str] = set()
        self._synced = False
        self._stores: dict[tuple[str, int], ShardStore] = {}
        self._stores_lock = threading.Lock()
        self._recovering: set[tuple[str, int]] = set()

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
        cluster_path = self.data_path / "_state" / CLUSTER_STATE_FILE
        if cluster_path.exists() and self.state.cluster_uuid:
            saved = state_from_json(json.loads(cluster_path.read_text(encoding="utf-8")))
            if saved.cluster_uuid == self.state.cluster_uuid:
                # Transient settings do not survive a full restart, as in Elasticsearch.
                self.cluster = replace(saved, transient={}, master=None)

    def _save_state(self) -> None:
        self._write_json(
            self.data_path / "_state" / STATE_FILE,
            {"node_id": self.state.node_id, "cluster_uuid": self.state.cluster_uuid},
        )

    @staticmethod
    def _write_json(path: Path, document: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(document), encoding="utf-8")
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
        return f"{self.http_publish_host}:{self.http_port}"

    @property
    def transport_address(self) -> str:
        return f"{self.transport_publish_host}:{self.transport_port}"

    @property
    def node_id(self) -> str:
        return self.state.node_id

    def own_info(self) -> NodeInfo:
        return NodeInfo(self.state.node_id, self.name, tuple(self.roles), self.http_address, self.transport_address)

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

    # -------------------------------------------------------------- discovery

    def describe(self) -> dict[str, Any]:
        with self._state_lock:
            cluster_uuid = self.state.cluster_uuid
            peers = list(self.state.peers.values())
            version = self.cluster.version if self.cluster else -1
            master = self.acting_master
        return {
            "name": self.name,
            "node_id": self.state.node_id,
            "cluster_name": self.cluster_name,
            "cluster_uuid": cluster_uuid,
            "http": self.http_address,
            "transport": self.transport_address,
            "roles": self.roles,
            "known": [p.transport for p in peers],
            "master": master,
            "state_version": version,
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
        # Peers found before are probed too, so a cluster stays together when seeds change, and so are
        # the nodes that probed this one lately (they joined through it).
        hosts.extend(p.transport for p in list(self._recent.values()))
        now = time.monotonic()
        hosts.extend(a for a, seen in list(self._heard.items()) if now - seen < HEARD_FOR)
        return [h for h in dict.fromkeys(hosts) if h not in own]

    def heard_from(self, address: str) -> None:
        """A node at ``address`` probed this one: probe it back for a while."""
        if address != self.transport_address and len(address) < 256 and ":" in address:
            self._heard[address] = time.monotonic()

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
                # Say who probes (see TransportHandler.handle).
                with contextlib.suppress(OSError):
                    sock.sendall((self.transport_address + "\n").encode("utf-8"))
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
                master=bool(info.get("master", False)),
                state_version=int(info.get("state_version", -1)),
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
            was_master = self.is_master
            self._update_recent(members, own_uuid)
            self.is_master = own_uuid is not None and self._claims_master(members)
            if self.is_master != was_master:
                self._synced = False
                self._acked.clear()
        if joined or left:
            logger.info("[%s] cluster membership changed: joined %s, left %s", self.name, joined, left)
        if self.is_master != was_master:
            logger.info("[%s] %s", self.name, "elected as master" if self.is_master else "no longer master")
        self._master_wake.set()

    def _update_recent(self, members: dict[str, Peer], own_uuid: str | None) -> None:
        """Called with the state lock held: a peer stays in the live set until it missed LEAVE_ROUNDS rounds."""
        for node_id, peer in members.items():
            if peer.cluster_uuid == own_uuid:
                self._recent[node_id] = peer
                self._misses[node_id] = 0
        for node_id in list(self._recent):
            if node_id not in members:
                self._misses[node_id] = self._misses.get(node_id, 0) + 1
                if self._misses[node_id] >= LEAVE_ROUNDS:
                    del self._recent[node_id]
                    del self._misses[node_id]

    def _claims_master(self, members: dict[str, Peer]) -> bool:
        if self.single_node:
            return True
        seen = [p.info() for p in members.values() if p.cluster_uuid == self.state.cluster_uuid]
        config = self.cluster.voting_config if self.cluster else ()
        exclusions = self.cluster.voting_exclusions if self.cluster else ()
        return claims_master(self.own_info(), seen, config, exclusions)

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

    def master_peer(self) -> NodeInfo | None:
        """The node this node takes for the master: itself, or the lowest-named peer that says it is."""
        with self._state_lock:
            if self.acting_master:
                return self.own_info()
            claiming = sorted((p for p in self.state.peers.values() if p.master), key=lambda p: p.name)
        return claiming[0].info() if claiming else None

    def members(self) -> list[NodeInfo]:
        """This node and the peers of its cluster it reaches now (what ``/_nodes`` lists); once this node has a
        cluster uuid, only the peers that joined the same cluster."""
        with self._state_lock:
            own_uuid = self.state.cluster_uuid
            peers = [p.info() for p in self.state.peers.values() if own_uuid is None or p.cluster_uuid == own_uuid]
        return [self.own_info(), *peers]

    # -------------------------------------------------------------- the cluster state

    @property
    def acting_master(self) -> bool:
        """Elected and caught up with the newest state: the master the other nodes may use."""
        return self.is_master and self._synced

    def current(self) -> ClusterState | None:
        """The cluster state to serve requests from (None until it is current, see ``_live``)."""
        with self._state_lock:
            return self.cluster if self._live else None

    def last_accepted(self) -> ClusterState | None:
        """The last state this node accepted, current or not (what a new master takes over)."""
        with self._state_lock:
            return self.cluster

    def wait_for_version(self, version: int, timeout: float = CATCH_UP_TIMEOUT) -> ClusterState | None:
        """The current cluster state once it is at least ``version`` (or whatever it is after ``timeout``)."""
        return self.wait_for(lambda state: state.version >= version, timeout)

    def wait_for(self, predicate: Callable[[ClusterState], bool], timeout: float) -> ClusterState | None:
        """Wait until the current cluster state satisfies ``predicate``; the last state either way."""
        deadline = time.monotonic() + timeout
        with self._state_changed:
            while not self._stop.is_set():
                if self._live and self.cluster is not None and predicate(self.cluster):
                    return self.cluster
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._state_changed.wait(min(remaining, 0.5))
            return self.cluster if self._live else None

    def _persist_cluster(self, state: ClusterState) -> None:
        self._write_json(self.data_path / "_state" / CLUSTER_STATE_FILE, to_json(state))

    def _install(self, state: ClusterState) -> None:
        """Called with the state lock held: make ``state`` this node's (current) cluster state."""
        self.cluster = state
        self._live = True
        self._persist_cluster(state)
        self._state_changed.notify_all()
        self._applier_wake.set()

    def accept_published(self, document: dict[str, Any]) -> dict[str, Any]:
        """``POST /_demo/publish``: a master's cluster state; newer versions replace older ones."""
        state = state_from_json(document)
        with self._state_lock:
            if state.cluster_uuid != self.state.cluster_uuid:
                raise EsError(
                    400,
                    "coordination_state_rejected_exception",
                    f"cluster uuid [{state.cluster_uuid}] is not this node's [{self.state.cluster_uuid}]",
                )
            # Until this node has a current state it takes the master's, even one older than what it had
            # persisted (a master that took over may have gone on from an earlier version).
            if not self._live or self.cluster is None or state.version > self.cluster.version:
                self._install(state)
            return {"version": self.cluster.version if self.cluster else -1}

    def master_update(self, change: Callable[[ClusterState], ClusterState]) -> int:
        """On the master: apply ``change`` and a reroute, commit and publish. Returns the new version."""
        with self._state_lock:
            if not self.is_master or not self._synced or self.state.cluster_uuid is None:
                raise EsError(503, "not_master_exception", f"[{self.name}] is not the master (yet)")
            base = self.cluster or ClusterState(cluster_uuid=self.state.cluster_uuid)
            changed = change(base)
            rerouted = self._rerouted(changed)
            if rerouted != base:
                self._install(replace(rerouted, version=base.version + 1))
            version = self.cluster.version if self.cluster else 0
        self._master_wake.set()
        return version

    def _rerouted(self, state: ClusterState) -> ClusterState:
        """Called with the state lock held on the master."""
        live = [self.own_info(), *(p.info() for p in self._recent.values())]
        config = voting_config(state.voting_config, live, state.voting_exclusions, self.state.node_id)
        state = replace(state, master=self.state.node_id, voting_config=config)
        return reroute(state, live, now_millis())

    def _master_loop(self) -> None:
        while not self._stop.is_set():
            self._master_wake.wait(0.5)
            self._master_wake.clear()
            try:
                if self.is_master:
                    self._master_round()
            except EsError as error:
                logger.info("[%s] master round stopped: %s", self.name, error.reason)
            except Exception:
                logger.exception("[%s] master round failed", self.name)

    def _master_round(self) -> None:
        if not self._synced:
            # A new master waits until the old one stepped down (it sees this node in its next round), then
            # takes the newest state any member has, so that no decision is lost.
            with self._state_lock:
                own = self.cluster.version if self.cluster else -1
                other_master = any(p.master for p in self.state.peers.values())
                newest = max(self.state.peers.values(), key=lambda p: p.state_version, default=None)
            if other_master:
                return
            if newest is not None and newest.state_version > own:
                status, document = call(newest.http, "GET", "/_demo/state", timeout=5)
                if status == 200 and isinstance(document, dict):
                    with self._state_lock:
                        adopted = state_from_json(document)
                        if adopted.cluster_uuid == self.state.cluster_uuid and (
                            self.cluster is None or adopted.version > self.cluster.version
                        ):
                            self._install(adopted)
                else:
                    return
            with self._state_lock:
                self._install(self.cluster or ClusterState(cluster_uuid=self.state.cluster_uuid or ""))
            self._synced = True
            current = self.current()
            logger.info(
                "[%s] acting as master from cluster state version %s", self.name, current.version if current else 0
            )
        self.master_update(lambda state: state)
        self._publish()

    def _publish(self) -> None:
        with self._state_lock:
            state = self.cluster
            if state is None:
                return
            targets = [
                n
                for n in state.nodes
                if n.node_id != self.state.node_id
                and self._acked.get(n.node_id, -1) < state.version
                and n.node_id not in self._publishing
            ]
            self._publishing.update(n.node_id for n in targets)
        document = to_json(state) if targets else None
        for node in targets:
            threading.Thread(
                target=self._publish_to, args=(node, document, state.version), name="demo-es-publish", daemon=True
            ).start()

    def _publish_to(self, node: NodeInfo, document: Any, version: int) -> None:
        try:
            status, answer = call(node.http, "POST", "/_demo/publish", document, timeout=3)
            if status == 200 and isinstance(answer, dict):
                with self._state_lock:
                    self._acked[node.node_id] = max(self._acked.get(node.node_id, -1), int(answer["version"]))
                    self._state_changed.notify_all()
            else:
                logger.warning(
                    "[%s] publishing version %s to [%s] failed: %s %s", self.name, version, node.name, status, answer
                )
        except (OSError, ValueError):
            logger.debug("[%s] publishing version %s to [%s] failed", self.name, version, node.name, exc_info=True)
        finally:
            with self._state_lock:
                self._publishing.discard(node.node_id)
                newer = self.cluster is not None and self.cluster.version > self._acked.get(node.node_id, -1)
            if newer and self._acked.get(node.node_id, -1) >= version:
                # A newer state was committed while this one was on its way: send it now, not next round.
                self._master_wake.set()

    def master_action_here(self, action: str, payload: dict[str, Any]) -> int:
        """``POST /_demo/master/<action>``: run a master action on this node, which must be the master."""
        if not self.is_master:
            raise EsError(503, "not_master_exception", f"[{self.name}] is not the master")
        return self._acknowledged(action, run_master_action(self, action, payload))

    def _acknowledged(self, action: str, version: int) -> int:
        """Like Elasticsearch's acknowledged answers: an API change returns once every node applied it (or after
        ``ACK_TIMEOUT``), so that the next request to any node sees it. Shard events do not wait."""
        if action in ("shard_started", "shard_failed"):
            return version
        self._master_wake.set()
        deadline = time.monotonic() + ACK_TIMEOUT
        with self._state_changed:
            while not self._stop.is_set():
                nodes = self.cluster.nodes if self.cluster else ()
                if all(self._acked.get(n.node_id, -1) >= version for n in nodes if n.node_id != self.state.node_id):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._state_changed.wait(min(remaining, 0.2))
        return version

    def master_action(self, action: str, payload: dict[str, Any], timeout: float = 10.0) -> int:
        """Run a master operation (``es_framework.dev.demo_es.actions.MASTER_ACTIONS``) here if this node is the
        master, else on the master over HTTP; returns the version that holds its result, which this node
        has once this returns (or after ``CATCH_UP_TIMEOUT``)."""
        deadline = time.monotonic() + timeout
        while True:
            master = self.master_peer()
            if master is not None and master.node_id == self.state.node_id:
                try:
                    return self._acknowledged(action, run_master_action(self, action, payload))
                except EsError as error:
                    if error.kind != "not_master_exception" or time.monotonic() > deadline:
                        raise
            elif master is not None:
                try:
                    status, answer = call(master.http, "POST", f"/_demo/master/{action}", payload)
                except (OSError, ValueError):
                    status, answer = 503, None
                if status == 200 and isinstance(answer, dict):
                    version = int(answer["version"])
                    self.wait_for_version(version)
                    return version
                if (
                    isinstance(answer, dict)
                    and "error" in answer
                    and answer["error"].get("type") != "not_master_exception"
                ):
                    cause = answer["error"]
                    raise EsError(int(answer.get("status", status)), str(cause["type"]), str(cause["reason"]))
            if time.monotonic() > deadline:
                raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
            time.sleep(0.1)

    # -------------------------------------------------------------- shard copies on this node

    def shard_dir(self, index_uuid: str, shard: int) -> Path:
        return self.data_path / "indices" / index_uuid / str(shard)

    def store(self, index_uuid: str, shard: int, create: bool = True) -> ShardStore | None:
        key = (index_uuid, shard)
        with self._stores_lock:
            store = self._stores.get(key)
            if store is None:
                directory = self.shard_dir(index_uuid, shard)
                if not create and not directory.exists():
                    return None
                store = ShardStore(directory)
                self._stores[key] = store
            return store

    def _applier_loop(self) -> None:
        while not self._stop.is_set():
            self._applier_wake.wait(0.5)
            self._applier_wake.clear()
            try:
                self._apply_round()
            except Exception:
                logger.exception("[%s] applying the cluster state failed", self.name)

    def _apply_round(self) -> None:
        state = self.current()
        if state is None:
            return
        me = self.state.node_id
        for (index, shard), group in state.shards.items():
            for copy in group.copies:
                target = (copy.state == INITIALIZING and copy.node == me) or copy.relocating_node == me
                if not target:
                    continue
                with self._stores_lock:
                    if (index, shard) in self._recovering:
                        continue
                    self._recovering.add((index, shard))
                threading.Thread(
                    target=self._recover,
                    args=(state, index, shard, copy.primary and copy.relocating_node != me, copy.recovery),
                    name="demo-es-recovery",
                    daemon=True,
                ).start()
        self._clean_up(state)

    def _recover(self, state: ClusterState, index: str, shard: int, primary: bool, recovery: str) -> None:
        meta = state.indices[index]
        try:
            store = self.store(meta.uuid, shard)
            assert store is not None
            if not primary or recovery == RECOVERY_PEER or not recovery:
                self._copy_from_primary(state, index, shard, store)
            else:
                with store.lock:
                    store.save()
                logger.info("[%s] [%s][%s] primary recovered from %s", self.name, index, shard, recovery)
            self.master_action(
                "shard_started",
                {"index": index, "shard": shard, "node_id": self.state.node_id, "index_uuid": meta.uuid},
            )
        except Exception as error:
            logger.warning("[%s] [%s][%s] recovery failed, will retry: %s", self.name, index, shard, error)
            self._stop.wait(0.5)
        finally:
            with self._stores_lock:
                self._recovering.discard((index, shard))
            self._applier_wake.set()

    def _copy_from_primary(self, state: ClusterState, index: str, shard: int, store: ShardStore) -> None:
        group = state.shards[(index, shard)]
        source = state.node(group.primary.node)
        if source is None or not group.primary.active:
            raise RuntimeError("the primary is not active")
        delay = float(state.setting(RELOCATION_DELAY, str(self.relocation_delay)).removesuffix("s") or 0)
        if delay > 0 and self._stop.wait(delay):
            raise RuntimeError("stopping")
        with store.lock:
            digest = store.digest()
        status, answer = call(
            source.http,
            "POST",
            f"/_demo/shard/{state.indices[index].uuid}/{shard}/_recovery",
            {"index": index, "state_version": state.version, "digest": digest, "target": self.state.node_id},
            timeout=30,
        )
        if status != 200 or not isinstance(answer, dict):
            raise RuntimeError(f"recovery source [{source.name}] answered {status}: {answer}")
        with store.lock:
            if not answer.get("up_to_date"):
                store.merge(doc_from_json(d) for d in answer["docs"])
            store.save()
        logger.info(
            "[%s] [%s][%s] recovered from [%s]: %s",
            self.name,
            index,
            shard,
            source.name,
            "files already equal, nothing copied" if answer.get("up_to_date") else f"{len(answer['docs'])} docs copied",
        )

    def _clean_up(self, state: ClusterState) -> None:
        """Delete local copies the routing no longer needs: of deleted indices, and of shards whose every copy is
        started elsewhere (as Elasticsearch deletes a shard's files once it is fully active on other nodes)."""
        root = self.data_path / "indices"
        if not root.is_dir():
            return
        by_uuid = {meta.uuid: meta for meta in state.indices.values()}
        me = self.state.node_id
        for index_dir in root.iterdir():
            for shard_dir in index_dir.iterdir() if index_dir.is_dir() else []:
                try:
                    shard = int(shard_dir.name)
                    # A copy written moments ago may belong to a state this node has not seen yet.
                    if time.time() - shard_dir.stat().st_mtime < 5:
                        continue
                except (ValueError, OSError):
                    continue
                meta = by_uuid.get(index_dir.name)
                if meta is not None:
                    group = state.shards.get((meta.name, shard))
                    with self._stores_lock:
                        recovering = (meta.name, shard) in self._recovering
                    if group is None or recovering:
                        continue
                    if not group.fully_active or me in group.holders() or me in group.in_sync | group.stale:
                        continue
                with self._stores_lock:
                    self._stores.pop((index_dir.name, shard), None)
                shutil.rmtree(shard_dir, ignore_errors=True)
                logger.info("[%s] deleted the local copy of shard [%s][%s]", self.name, index_dir.name, shard)
            with contextlib.suppress(OSError):
                index_dir.rmdir()

    # -------------------------------------------------------------- REST (the answers that need no shards)

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

    def nodes(self) -> dict[str, Any]:
        entries = {}
        for node in self.members():
            host = node.transport.rpartition(":")[0]
            entries[node.node_id] = {
                "name": node.name,
                "transport_address": node.transport,
                "host": host,
                "ip": host,
                "version": DEMO_VERSION,
                "roles": list(node.roles),
                "http": {"publish_address": node.http},
            }
        total = len(entries)
        return {
            "_nodes": {"total": total, "successful": total, "failed": 0},
            "cluster_name": self.cluster_name,
            "nodes": entries,
        }


class TransportServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], node: DemoNode) -> None:
        self.node = node
        super().__init__(address, TransportHandler)


class TransportHandler(socketserver.BaseRequestHandler):
    server: TransportServer

    def handle(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.request.sendall((json.dumps(self.server.node.describe()) + "\n").encode("utf-8"))
            # The prober answers with its own transport address: the way a node that found this one
            # through its seed list joins, so nodes outside the seed list (data-only nodes) are found.
            self.request.settimeout(PROBE_TIMEOUT)
            data = b""
            while not data.endswith(b"\n") and len(data) < 512:
                chunk = self.request.recv(512)
                if not chunk:
                    break
                data += chunk
            address = data.decode("utf-8").strip()
            if address:
                self.server.node.heard_from(address)


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
