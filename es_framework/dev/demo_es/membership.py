"""Membership of a demo node: discovery, cluster formation, master election (development tool, not Elasticsearch).

Discovery: the node probes its seed hosts (``discovery.seed_hosts`` and, with
``discovery.seed_providers: file``, ``$ES_PATH_CONF/unicast_hosts.txt``, re-read when it changes)
every ``PROBE_INTERVAL`` seconds over the transport port (see :mod:`.transport`), and the nodes
those know in turn; ``GET /_nodes`` lists itself and every peer of the same cluster it reached.

Cluster formation: a node without a ``cluster_uuid`` whose ``cluster.initial_master_nodes`` names it
forms the cluster once a majority of the listed nodes has been found — the first of those names in
sorted order generates the uuid — and the others adopt it from any peer that has one. The uuid is
persisted in ``path.data`` and never replaced; a peer with a different uuid is ignored (logged).

Election: :func:`~es_framework.dev.demo_es.cluster_state.claims_master` decides, from the live peers
and the last accepted cluster state's voting configuration. A peer that stops answering stays live (in
``state.peers`` with its last answer: elections, the master's routing, ``GET /_nodes``) until
:mod:`.fault_detection` finds it faulty, as Elasticsearch's fault detection does: one late answer from a
CPU-starved node is not a node leaving.

:class:`MembershipNode` is the first layer of a demo node; the cluster state layer
(:class:`~es_framework.dev.demo_es.publication.PublishingNode`) gives it the voting configuration
and is told when this node becomes or stops being master.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from es_framework.dev.demo_es import persistence
from es_framework.dev.demo_es.cluster_state import NodeInfo, claims_master
from es_framework.dev.demo_es.fault_detection import FaultDetector
from es_framework.dev.demo_es.settings import Settings
from es_framework.dev.demo_es.transport import Peer, probe
from es_framework.dev.demo_es.version import handshake_refusal, node_version

PROBE_INTERVAL = 0.3
#: How long a node that probed this one is probed back (seconds) after its last probe.
HEARD_FOR = 5.0
#: Most addresses one discovery round probes (seed hosts and the nodes they know).
MAX_PROBES = 64

logger = logging.getLogger("es_framework.dev.demo_es")


def _own_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


@dataclass
class NodeState:
    """This node's identity in its cluster and the peers of the cluster it reaches now."""

    node_id: str
    cluster_uuid: str | None
    peers: dict[str, Peer] = field(default_factory=dict)


class MembershipNode:
    """Who this node is, which peers it reaches, and whether it is master. ``self._state_lock`` guards
    ``state`` (and the cluster state of the layers above); no network call is made while it is held
    (only the small state files are written)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.es_version = node_version(os.environ)
        self.version = str(self.es_version)
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
        self.data_path = Path(settings.get("path.data", "data")).resolve()
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._seed_file_mtime: float | None = None
        self._file_seed_hosts: list[str] = []
        self.http_server: socketserver.TCPServer | None = None
        self.transport_server: socketserver.TCPServer | None = None
        self.state = NodeState(node_id="", cluster_uuid=None)
        self.is_master = False
        #: The peers of this node's cluster it considers live (see :mod:`.fault_detection`).
        self._detector = FaultDetector()
        #: Monotonic seconds; a test injects its own clock.
        self._clock = time.monotonic
        #: Transport address -> when it last probed this node.
        self._heard: dict[str, float] = {}

    # -------------------------------------------------------------- what the cluster state layer provides

    @property
    def acting_master(self) -> bool:
        """Elected and caught up with the newest state: the master the other nodes may use."""
        return False

    def _voting(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """The last accepted voting configuration and its exclusions (state lock held)."""
        return (), ()

    def _state_version(self) -> int:
        """The version of the last accepted cluster state, -1 without one (state lock held)."""
        return -1

    def _leadership_changed(self) -> None:
        """This node became or stopped being master (state lock held)."""

    def _round_done(self) -> None:
        """A discovery round is over."""

    def _serving(self) -> bool:
        """Whether this node has a current cluster state (state lock held)."""
        return False

    def _cluster_nodes(self) -> tuple[NodeInfo, ...]:
        """The nodes of the last accepted cluster state (state lock held)."""
        return ()

    def _admitted(self, node_id: str) -> bool:
        """Whether the current cluster state holds this node (state lock held); True without a current state."""
        return True

    @property
    def _recent(self) -> dict[str, Peer]:
        """The live peers of this node's cluster, each with its last answer (the master's live set)."""
        return self._detector.live

    # -------------------------------------------------------------- identity and addresses

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

    @property
    def cluster_uuid(self) -> str | None:
        with self._state_lock:
            return self.state.cluster_uuid

    def own_info(self) -> NodeInfo:
        return NodeInfo(
            self.state.node_id, self.name, tuple(self.roles), self.http_address, self.transport_address, self.version
        )

    def _save_state(self) -> None:
        persistence.save_node_state(self.data_path, self.state.node_id, self.state.cluster_uuid)

    # -------------------------------------------------------------- discovery

    def describe(self) -> dict[str, Any]:
        """What the transport port answers a probe with."""
        with self._state_lock:
            cluster_uuid = self.state.cluster_uuid
            peers = list(self.state.peers.values())
            version = self._state_version()
            master = self.acting_master
            live = self._serving()
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
            "version": self.version,
            "live": live,
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
        now = self._clock()
        hosts.extend(a for a, seen in list(self._heard.items()) if now - seen < HEARD_FOR)
        return [h for h in dict.fromkeys(hosts) if h not in own]

    def heard_from(self, address: str) -> None:
        """A node at ``address`` probed this one: probe it back for a while."""
        if address != self.transport_address and len(address) < 256 and ":" in address:
            self._heard[address] = self._clock()

    def _discover(self) -> None:
        warned: set[str] = set()
        while not self._stop.is_set():
            try:
                self.discover_once(warned)
            except Exception:
                logger.exception("[%s] discovery round failed", self.name)
            self._stop.wait(PROBE_INTERVAL)

    def _ignore(self, warned: set[str], peer: Peer, why: str, *args: object) -> None:
        """Log once per peer why it is not a member."""
        if peer.node_id not in warned:
            warned.add(peer.node_id)
            logger.warning("[%s] ignoring node [%s]" + why, self.name, peer.name, *args)

    def discover_once(self, warned: set[str]) -> None:
        found: dict[str, Peer] = {}
        pending = self.seed_hosts()
        probed: set[str] = set()
        disconnected: set[str] = set()
        while pending and len(probed) < MAX_PROBES:
            address = pending.pop(0)
            if address in probed:
                continue
            probed.add(address)
            peer = probe(address, self.transport_address, disconnected)
            if peer is None or peer.node_id == self.state.node_id:
                continue
            # Like a node that joined through one seed and then hears of the others from the master.
            pending.extend(a for a in peer.known if a not in probed and a != self.transport_address)
            try:
                refusal = handshake_refusal(self.es_version, peer.info().es_version, peer.name)
            except ValueError:
                refusal = f"handshake with [{peer.name}] failed: remote node version [{peer.version}] is unknown"
            if refusal is not None:
                # Elasticsearch's transport handshake fails: the two never see each other.
                self._ignore(warned, peer, " at [%s]: %s", address, refusal)
                continue
            if peer.cluster_name != self.cluster_name:
                self._ignore(
                    warned,
                    peer,
                    " at [%s]: cluster name [%s] is not [%s]",
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
                    self._ignore(
                        warned,
                        peer,
                        ": it belongs to cluster uuid [%s], this node to [%s]",
                        peer.cluster_uuid,
                        own_uuid,
                    )
                    continue
                members[peer.node_id] = peer
            was_master = self.is_master
            self._update_recent(members, own_uuid, disconnected)
            # A live peer that missed this round stays a member with its last answer until found faulty.
            members = {**{k: p for k, p in self._recent.items() if k not in members}, **members}
            joined = sorted(p.name for k, p in members.items() if k not in self.state.peers)
            left = sorted(p.name for k, p in self.state.peers.items() if k not in members)
            self.state.peers = members
            self.is_master = own_uuid is not None and self._claims_master(members)
            if self.is_master != was_master:
                self._leadership_changed()
        if joined or left:
            logger.info("[%s] cluster membership changed: joined %s, left %s", self.name, joined, left)
        if self.is_master != was_master:
            logger.info("[%s] %s", self.name, "elected as master" if self.is_master else "no longer master")
        self._round_done()

    def _update_recent(self, members: dict[str, Peer], own_uuid: str | None, disconnected: set[str]) -> None:
        """Called with the state lock held: this round's answers are the fault detector's checks."""
        answered = {k: p for k, p in members.items() if p.cluster_uuid == own_uuid}
        for peer in self._detector.check_round(self._clock(), answered, disconnected):
            how = "disconnected" if peer.transport in disconnected else "no answer for a while"
            logger.info("[%s] node [%s] (node id [%s]) found faulty: %s", self.name, peer.name, peer.node_id, how)

    def _claims_master(self, members: dict[str, Peer]) -> bool:
        if self.single_node:
            return True
        seen = [p.info() for p in members.values() if p.cluster_uuid == self.state.cluster_uuid]
        config, exclusions = self._voting()
        return claims_master(self.own_info(), seen, config, exclusions, self._cluster_nodes())

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
        cluster uuid, only the peers that joined the same cluster, and once it has a current cluster state only
        the peers the master admitted into it (a node whose join the master refused is not a member)."""
        with self._state_lock:
            own_uuid = self.state.cluster_uuid
            peers = [
                p.info()
                for p in self.state.peers.values()
                if (own_uuid is None or p.cluster_uuid == own_uuid) and self._admitted(p.node_id)
            ]
        return [self.own_info(), *peers]
