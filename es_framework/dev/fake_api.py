"""Development tools: an in-memory stand-in for the scheduler behind the API, and a stub node.

Not used in production. :class:`FakeCore` implements :class:`~es_framework.api.core.ApiCore`
over a few node records held in memory, enforcing the same rules the real core documents (404
for unknown ids, 409 for states that forbid a command), and records every command it was given.
:class:`StubElasticsearch` answers the two proxied paths (``/_search``, ``/_cluster/stats``) with
small JSON documents. The API tests use both; so does the preview::

    python -m es_framework.dev.fake_api --port 31100 [--token SECRET] [--local]

which serves the web UI on a fake three-node cluster, to look at the page without Mesos (``--local``:
as local mode with demo nodes shows it).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from es_framework.api.agents import blocked_view
from es_framework.api.app import ApiApp
from es_framework.api.core import (
    MODE_LOCAL,
    MODE_MESOS,
    AgentView,
    ApiError,
    ClusterEvent,
    ClusterOverview,
    DeclineSummary,
    DrainProgress,
    Health,
    Metrics,
    NodeEvent,
    NodeView,
    NodeVolumes,
    RuleOutcomeView,
)
from es_framework.api.rollout_views import RolloutsView, RolloutView, finished_view, rollout_view
from es_framework.api.server import serve
from es_framework.config import Config, resolve_config
from es_framework.contract import AgentCheck
from es_framework.core import rollouts
from es_framework.core.blocked_agents import BlockedAgents
from es_framework.core.engine_rollouts import summary
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.operations import MAX_NODES, OperatorError
from es_framework.core.rollouts import Rollout, RolloutReason, Step
from es_framework.core.volume_inventory import VolumeInventory, volume_inventory
from es_framework.core.volume_profiles import profile_catalog, volume_specs
from es_framework.core.volumes import VolumeSet
from es_framework.dev.fake_configuration import FakeConfiguration
from identity.naming import volume_names

logger = logging.getLogger(__name__)

#: A fixed moment, so that pages and answers are the same from run to run.
EPOCH = 1_790_000_000.0


def sample_node(node_id: int, *, http_address: str | None = None, state: str = "TASK_RUNNING") -> NodeView:
    """Node ``node_id`` on host ``agent<id>.example.com``, running, with external volumes."""
    host = f"agent{node_id}.example.com"
    return NodeView(
        node_id=node_id,
        task_id=f"elasticsearch-node{node_id}-0f3a9c{node_id}",
        name=f"elasticsearch{node_id}",
        state=state,
        hostname=host,
        agent_id=f"agent-{node_id}-S0",
        http_address=http_address or f"{host}:31000",
        transport_address=f"{host}:31001",
        volumes=NodeVolumes(config=f"elasticsearch{node_id}config", data=f"elasticsearch{node_id}data"),
        started_at=EPOCH + 60 * node_id,
        version="8.15.0",
        healthy=True,
        history=(
            NodeEvent(EPOCH + 60 * node_id - 30, "LAUNCHING", f"launching on {host}"),
            NodeEvent(EPOCH + 60 * node_id, "TASK_RUNNING", "running"),
        ),
    )


def _outcomes(*steps: tuple[str, bool, str]) -> tuple[RuleOutcomeView, ...]:
    return tuple(RuleOutcomeView(rule, passed, reason) for rule, passed, reason in steps)


_PASSED_RESOURCES = (
    ("gpu_agent", True, "agent offers no GPUs"),
    ("cpus", True, "enough cpus: 4 offered, 1 needed"),
)
#: What the normal strategy explains for two typical declines (a full cluster, a small agent), and
#: a malformed offer no rule judged.
SAMPLE_DECLINES = (
    DeclineSummary(
        "cluster_full",
        12,
        "cluster size fulfilled: 3 of 3 nodes present",
        EPOCH + 400,
        _outcomes(
            ("cluster_full", False, "cluster size fulfilled: 3 of 3 nodes present"),
            ("agent_has_node", False, "this agent already runs node 1 of cluster mesos-ha (one node per agent)"),
            *_PASSED_RESOURCES,
            ("mem", True, "enough mem: 4096 MB offered, 2048 MB needed"),
            ("ports", True, "HTTP port 31000 and transport port 31001 are offered"),
            ("pinned", True, "no missing node is pinned to another agent"),
            ("backoff", True, "no node id to launch, so none to hold back"),
        ),
    ),
    DeclineSummary(
        "mem",
        2,
        'not enough mem: 1024 MB offered, 2048 MB needed "big"',
        EPOCH + 300,
        _outcomes(
            ("cluster_full", True, "1 of 3 nodes missing"),
            ("agent_has_node", True, "no node of cluster mesos-ha on this agent or host"),
            *_PASSED_RESOURCES,
            ("mem", False, 'not enough mem: 1024 MB offered, 2048 MB needed "big"'),
            ("ports", False, "not enough ports: HTTP port 9200 is not offered (offered: 31000-32000)"),
            ("pinned", True, "node 3 would launch here"),
            ("backoff", True, "node 3 has not failed lately"),
        ),
    ),
    DeclineSummary("malformed", 1, "offer without resources", EPOCH + 200),
)


def sample_agents(nodes: Sequence[NodeView]) -> BlockedAgents:
    """The nodes' agents, and one more (``agent-9-S0``) that failed ``vm.max_map_count`` at ``EPOCH``."""
    seen = [(n.agent_id, n.hostname) for n in nodes] + [("agent-9-S0", "agent9.example.com")]
    check = AgentCheck("vm.max_map_count", "65530", "at least 262144", "sysctl -w vm.max_map_count=262144")
    agents = BlockedAgents().offered(seen)
    agents, _ = agents.block(
        "agent-9-S0", "agent9.example.com", (check,), node_id=3, task_id="elasticsearch-node3-0f3a9c0", now=EPOCH
    )
    return agents


@dataclass(frozen=True)
class Call:
    """A command the fake core accepted."""

    name: str
    argument: int | str


def sample_volume_config() -> Config:
    """The configuration the fake cluster's volumes are compared with: REX-Ray, default profiles."""
    return resolve_config({"externalVolumeDriver": "rexray"}, {})


def _sample_volume_set(config: Config, node_id: int, agent_id: str, hostname: str) -> VolumeSet:
    config_spec, data_spec = volume_specs(config, node_id)
    if node_id == 1:
        # Created under another profile than the configuration names now: the inventory says so.
        data_spec = replace(data_spec, profile="gold")
    launched = EPOCH + 60 * node_id - 30
    return VolumeSet(
        node_id,
        "rexray",
        config_spec,
        data_spec,
        launched - 86_400,
        agent_id,
        hostname,
        launched,
        f"zone-{node_id % 2}",
    )


class FakeCore(FakeConfiguration):
    """Development stand-in for the scheduler's :class:`ApiCore`; thread-safe."""

    def __init__(
        self, nodes: tuple[NodeView, ...] | None = None, *, desired_nodes: int | None = None, local: bool = False
    ) -> None:
        self._lock = threading.Lock()
        #: ``local``: answer as local mode with demo nodes does (the web UI's look of it).
        self.mode = MODE_LOCAL if local else MODE_MESOS
        self.mode_note = (
            "local mode, a development tool: a simulated Mesos cluster on this machine; the nodes run the demo node, "
            "which is NOT Elasticsearch"
            if local
            else None
        )
        self._nodes = {n.node_id: n for n in (nodes if nodes is not None else tuple(sample_node(i) for i in (1, 2, 3)))}
        self._desired = desired_nodes if desired_nodes is not None else len(self._nodes)
        self.calls: list[Call] = []
        #: Agents, and their blocks as of ``EPOCH`` (the fake's fixed now).
        self.blocked_agents = sample_agents(tuple(self._nodes.values()))
        self.alive = True
        self.registered = True
        #: The rollout under way (``POST /v1/cluster/restart``) and the finished ones' summaries.
        self.rollout: Rollout | None = None
        self.rollout_history: list[Mapping[str, Any]] = []
        #: The planner's (node, kind, predicate, message) holds (:mod:`es_framework.dev.fake_rollouts`).
        self.rollout_blocked: tuple[tuple[int, str, str, str], ...] = ()

    def cluster(self) -> ClusterOverview:
        with self._lock:
            nodes = list(self._nodes.values())
            desired = self._desired
        return ClusterOverview(
            cluster_name="mesos-ha",
            framework_name="elasticsearch",
            framework_id="3f1c2a7e-0000-4c1d-9e7b-framework-0001",
            cluster_uuid="kM3x2fTqQ6a1b2c3d4e5fA",
            configuration=MappingProxyType(
                {
                    "elasticsearchNodes": desired,
                    "elasticsearchClusterName": "mesos-ha",
                    "externalVolumeDriver": "rexray",
                    "frameworkSecretPath": "****",
                }
            ),
            desired_nodes=desired,
            running_nodes=sum(n.state == "TASK_RUNNING" for n in nodes),
            registered=self.registered,
            health="green",
            security_warning="Elasticsearch security is off: anyone who reaches the nodes can read and write",
            drain=(DrainProgress(node_id=3, shards_left=4, status="draining", reason="scale down to 2 nodes"),)
            if desired < len(nodes)
            else (),
            declines=SAMPLE_DECLINES,
            events=tuple(
                ClusterEvent(EPOCH + 60 * n.node_id, f"node {n.node_id} running on {n.hostname}", n.node_id)
                for n in sorted(nodes, key=lambda n: -n.node_id)
            ),
            mode=self.mode,
            mode_note=self.mode_note,
            demo_nodes=self.mode == MODE_LOCAL,
            blocked_agents=tuple(blocked_view(b) for b in self.blocked_agents.current(EPOCH)),
        )

    def nodes(self) -> tuple[NodeView, ...]:
        with self._lock:
            return tuple(self._nodes[i] for i in sorted(self._nodes))

    def node(self, node_id: int) -> NodeView | None:
        with self._lock:
            return self._nodes.get(node_id)

    def metrics(self) -> Metrics:
        nodes = self.nodes()
        with self._lock:
            desired = self._desired
        return Metrics(
            nodes_by_state=MappingProxyType(Counter(n.state for n in nodes)),
            desired_nodes=desired,
            running_nodes=sum(n.state == "TASK_RUNNING" for n in nodes),
            node_ids_in_use=len(nodes),
            registered=self.registered,
            offers_received=20,
            offers_accepted=3,
            offers_declined=MappingProxyType({"cluster_full": 12, "mem": 2, 'odd "reason"\\\n': 1}),
            reconciliations=2,
            failovers=1,
            drain_shards_left=MappingProxyType({3: 4} if desired < len(nodes) else {}),
        )

    def health(self) -> Health:
        message = "scheduler loop alive" if self.alive else "scheduler loop stuck for 120 s"
        return Health(alive=self.alive, registered=self.registered, message=message)

    def volumes(self) -> VolumeInventory:
        """The fake nodes' volumes, and those of one node id past them that is gone (an orphan when the
        desired count is below it)."""
        nodes = self.nodes()
        with self._lock:
            desired = self._desired
        config = sample_volume_config()
        records = {
            n.node_id: NodeRecord(
                node_id=n.node_id,
                task_id=n.task_id,
                agent_id=n.agent_id,
                hostname=n.hostname,
                http_port=31000,
                transport_port=31001,
                state=TaskState(n.state),
                volumes=volume_names(config.framework_name, n.node_id),
                started_at=n.started_at,
            )
            for n in nodes
        }
        gone = max((n.node_id for n in nodes), default=0) + 1
        volumes = {r.node_id: _sample_volume_set(config, r.node_id, r.agent_id, r.hostname) for r in records.values()}
        volumes[gone] = _sample_volume_set(config, gone, f"agent-{gone}-S0", f"agent{gone}.example.com")
        state = ClusterState(desired_nodes=desired, nodes=MappingProxyType(records), volumes=MappingProxyType(volumes))
        return volume_inventory(state, config)

    def profiles(self) -> Sequence[Mapping[str, Any]]:
        return profile_catalog(sample_volume_config())

    def agents(self) -> tuple[AgentView, ...]:
        with self._lock:
            agents = self.blocked_agents
        return tuple(
            AgentView(a, h, blocked_view(b) if (b := agents.active(a, EPOCH)) is not None else None)
            for a, h in sorted(agents.seen.items())
        )

    def clear_agent_failures(self, agent_id: str) -> str:
        with self._lock:
            if not self.blocked_agents.knows(agent_id):
                raise ApiError(404, f"no agent {agent_id} has offered to this scheduler or failed an agent check")
            self.blocked_agents, block = self.blocked_agents.clear(agent_id)
            self.calls.append(Call("clear_agent_failures", agent_id))
        if block is None:
            return f"agent {agent_id} has no agent-check failure in force: nothing to clear"
        return f"{block.agent()}: block lifted by the operator"

    def set_desired_nodes(self, count: int) -> None:
        if count > MAX_NODES:  # as the real scheduler refuses it (core/operations.py)
            raise ApiError(400, f"the node count must be at most {MAX_NODES}, not {count}")
        with self._lock:
            self._desired = count
            self.calls.append(Call("set_desired_nodes", count))

    def _live(self, node_id: int, verb: str) -> NodeView:
        node = self._nodes.get(node_id)
        if node is None:
            raise ApiError(404, f"no node {node_id}")
        if node.state != "TASK_RUNNING":
            raise ApiError(409, f"node {node_id} is not running ({node.state}): it cannot be {verb}")
        return node

    def restart_node(self, node_id: int, *, force: str | None = None) -> str:
        with self._lock:
            self._live(node_id, "restarted")
            self.calls.append(Call("restart_node", node_id))
        return f"node {node_id}: restart queued; the planner starts it when safe"

    def rollouts(self) -> RolloutsView:
        with self._lock:
            current = rollout_view(self.rollout, EPOCH, self.rollout_blocked) if self.rollout else None
            return RolloutsView(current, tuple(finished_view(h) for h in reversed(self.rollout_history)))

    def start_restart(self, disabled: frozenset[str] = frozenset()) -> RolloutView:
        with self._lock:
            if self.rollout is not None:
                raise ApiError(409, f"rollout {self.rollout.id} is under way: pause, resume or abort it")
            ids = sorted(i for i, n in self._nodes.items() if n.state == "TASK_RUNNING")
            if not ids:
                raise ApiError(409, "no running node to restart")
            steps = {i: Step(i, pos, master_eligible=True, since=EPOCH) for pos, i in enumerate(ids)}
            rollout = Rollout(f"restart-{int(EPOCH * 1000)}", RolloutReason.RESTART, EPOCH, "", MappingProxyType(steps))
            try:
                self.rollout, _ = rollouts.disable_predicates(rollout, disabled)
            except OperatorError as refused:
                raise ApiError(refused.status, refused.message) from None
            self.calls.append(Call("start_restart", 0))
            return rollout_view(self.rollout, EPOCH)

    def rollout_command(
        self, rollout_id: str, verb: str, reason: str = "", disabled: frozenset[str] = frozenset()
    ) -> RolloutView:
        with self._lock:
            rollout = self.rollout
            if rollout is None or rollout.id != rollout_id:
                raise ApiError(404, f"no rollout {rollout_id} is under way")
            try:
                if verb == "pause":
                    changed, _ = rollouts.pause(rollout, "paused by the operator")
                elif verb == "resume":
                    changed, _ = rollouts.resume(rollout, EPOCH)
                elif verb == "force":
                    changed, _ = rollouts.grant_force(rollout, reason)
                elif verb == "predicates":
                    changed, _ = rollouts.disable_predicates(rollout, disabled)
                else:
                    changed, _ = rollouts.abort(rollout, "aborted by the operator", EPOCH)
            except OperatorError as refused:
                raise ApiError(refused.status, refused.message) from None
            self.rollout = None if changed.aborted else changed
            if changed.aborted:
                self.rollout_history.append(summary(changed, EPOCH))
            self.calls.append(Call(f"rollout_{verb}", 0))
            return rollout_view(changed, EPOCH)

    def replace_node(self, node_id: int, *, force: str | None = None) -> str:
        with self._lock:
            self._live(node_id, "replaced")
            self.calls.append(Call("replace_node", node_id))
        queued = f"node {node_id}: replace queued; the planner starts it when safe"
        return f"node {node_id} will be replaced" if force else queued

    def declare_gone(self, node_id: int) -> str:
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None:
                raise ApiError(404, f"no node {node_id}")
            if node.state != "TASK_UNREACHABLE":
                raise ApiError(409, f"node {node_id} is not unreachable ({node.state})")
            self._nodes[node_id] = replace(node, state="TASK_GONE_BY_OPERATOR")
            self.calls.append(Call("declare_gone", node_id))
        return f"node {node_id} declared gone; its id is free"


class _StubHandler(BaseHTTPRequestHandler):
    server: _StubServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests.append((parts.path, parse_qs(parts.query), dict(self.headers.items())))
        if parts.path.endswith(("/_search", "/_count")):  # also <index>/_search and POST with a body
            query = parse_qs(parts.query).get("q", [""])[0]
            body: dict[str, Any] = {"took": 1, "hits": {"total": {"value": 1}, "hits": [{"_source": {"q": query}}]}}
        elif parts.path in ("/_cluster/stats", "/_cluster/health") or parts.path.startswith("/_cat/"):
            body = {"cluster_name": "mesos-ha", "status": "green", "nodes": {"count": {"total": 3}}}
        else:
            body = {"error": f"no handler for {parts.path}"}
        data = json.dumps({**body, "answered_by": self.server.name}).encode("utf-8")
        self.send_response(200 if "error" not in body else 400)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("stub elasticsearch: " + format, *args)


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    name = "stub"
    requests: list[tuple[str, dict[str, list[str]], dict[str, str]]]


class StubElasticsearch:
    """Development stand-in for one node's HTTP port: the read-only paths the API proxies, roughly."""

    def __init__(self, name: str = "stub") -> None:
        self._server = _StubServer(("127.0.0.1", 0), _StubHandler)
        self._server.name = name
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"stub-es-{name}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[tuple[str, dict[str, list[str]], dict[str, str]]]:
        """(path, query, headers) of each request received, oldest first."""
        return self._server.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    """Serve the web UI on a fake cluster (development tool)."""
    parser = argparse.ArgumentParser(description="Development tool: the es-mesos web UI on a fake cluster")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=31100)
    parser.add_argument("--token", default=None)
    parser.add_argument("--local", action="store_true", help="answer as local mode with demo nodes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stub = StubElasticsearch()
    core = FakeCore(tuple(sample_node(i, http_address=stub.address) for i in (1, 2, 3)), local=args.local)
    server = serve(ApiApp(core, token=args.token), args.host, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(1):
        time.sleep(0)
    server.shutdown()
    stub.stop()


if __name__ == "__main__":
    main()
