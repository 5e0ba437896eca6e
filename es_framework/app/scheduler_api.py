"""The running scheduler as the REST API sees it: :class:`SchedulerCore` implements
:class:`es_framework.api.core.ApiCore` over the driver shell, the engine and the cluster monitor.

Reads come from what the engine thread last published (:class:`es_framework.shell.driver.Published`)
and what the monitor last learnt: no lock, no waiting on Mesos events. Commands run on the
engine thread through :meth:`SchedulerShell.call` (the engine stays single-threaded); what needs
the network (asking Elasticsearch how many copies the data keeps, fencing an agent through the
Mesos operator API) happens on the request's own thread, before or after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import requests

from es_framework.api.agents import blocked_view
from es_framework.api.core import (
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
from es_framework.app.cluster_mode import cluster_mode, demo_nodes, waiting_view
from es_framework.app.configuration import change_configuration, configuration_view
from es_framework.app.maintenance_status import free_on_down_machines
from es_framework.app.operator_api import OperatorApiError, operator_call, operator_url
from es_framework.config import Config, redact_url
from es_framework.core.cluster_ca import ca_certificate_pem
from es_framework.core.describe import busy_agents
from es_framework.core.drain import copies_needed
from es_framework.core.engine import Engine
from es_framework.core.engine_stats import EngineEvent
from es_framework.core.history_notes import routine_event
from es_framework.core.mesos_calls import Call
from es_framework.core.node_history import NodeHistory
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.operations import OperatorError, check_gone
from es_framework.core.rollouts import RolloutReason
from es_framework.core.volume_inventory import VolumeInventory, volume_inventory
from es_framework.core.volume_profiles import profile_catalog
from es_framework.shell.driver import STUCK_AFTER_S, SchedulerShell
from es_framework.shell.es_client import ElasticsearchClient, ElasticsearchError, cluster_trust
from es_framework.shell.monitor import ClusterMonitor
from identity.naming import node_name

log = logging.getLogger("es_framework.app.scheduler_api")
T = TypeVar("T")

#: Events per node kept in ``/v1/nodes/<id>``, and cluster events in ``/v1/cluster``.
NODE_HISTORY = 50
CLUSTER_EVENTS = 30


def mode_note(config: Config) -> str | None:
    """What the API and the web UI say about local mode (``None`` on a Mesos cluster): that it is a
    development tool, and what the nodes run (``es_framework/dev/local.py``: the demo node unless
    ``--elasticsearchBinaryUrl`` names an Elasticsearch on this machine)."""
    if not config.local_mode:
        return None
    nodes = (
        "the demo node (python -m es_framework.dev.demo_es), which is NOT Elasticsearch"
        if config.binary_url is None
        else f"Elasticsearch from {redact_url(config.binary_url)}"
    )
    return (
        "local mode, a development tool: a simulated Mesos cluster on this machine (executors are local processes, "
        f"containers and volumes simulated); the nodes run {nodes}"
    )


def node_events(history: NodeHistory, events: Iterable[EngineEvent], node_id: int) -> tuple[NodeEvent, ...]:
    """A node's history as ``GET /v1/nodes/<id>`` shows it: its persisted entries (what a failover
    keeps: launches, failures, commands, planner actions, rollout steps), with this scheduler's
    routine task updates of the node (not persisted: :func:`routine_event`) in between, by time; the
    newest :data:`NODE_HISTORY`."""
    kept = [NodeEvent(e.at, e.state or "", e.text, e.kind.value, e.rollout, e.step) for e in history]
    routine = [
        NodeEvent(e.time, e.state, e.message)
        for e in events
        if e.node_id == node_id and e.state is not None and routine_event(e.state, e.message)
    ]
    return tuple(sorted([*kept, *routine], key=lambda event: event.time))[-NODE_HISTORY:]


class SchedulerCore:
    def __init__(self, config: Config, shell: SchedulerShell, monitor: ClusterMonitor) -> None:
        self.config = config
        self.shell = shell
        self.monitor = monitor
        self.engine: Engine = shell.engine
        #: The last inventory and the state it was built from: building it is O(N) (about 1.4 s at
        #: 4,000 nodes), and a published state never changes, so the same state object gives the
        #: same inventory. One tuple, swapped whole, so concurrent requests read a matching pair.
        self._inventory: tuple[ClusterState, VolumeInventory] | None = None

    # --- reads --------------------------------------------------------------------------------------

    def _state(self) -> ClusterState:
        return self.shell.published.state

    def _view(self, record: NodeRecord, history: tuple[NodeEvent, ...] = ()) -> NodeView:
        known = bool(record.hostname)
        config_volume, data_volume = record.volumes or (None, None)
        return NodeView(
            node_id=record.node_id,
            task_id=record.task_id,
            name=node_name(self.config.framework_name, record.node_id),
            state=record.state.value,
            hostname=record.hostname,
            agent_id=record.agent_id,
            http_address=record.http_address if known and record.http_port else None,
            transport_address=record.transport_address if known and record.transport_port else None,
            volumes=NodeVolumes(config_volume, data_volume),
            started_at=record.started_at,
            version=record.version,
            healthy=record.healthy,
            outdated=record.outdated,
            history=history,
        )

    def nodes(self) -> tuple[NodeView, ...]:
        state = self._state()
        return tuple(self._view(state.nodes[i]) for i in sorted(state.nodes))

    def node(self, node_id: int) -> NodeView | None:
        record = self._state().nodes.get(node_id)
        if record is None:
            return None
        published = self.shell.published
        return self._view(record, node_events(published.state.node_history.get(node_id, ()), published.events, node_id))

    def cluster(self) -> ClusterOverview:
        published = self.shell.published
        state = published.state
        seen = self.monitor.view
        declines = sorted(published.declines.items(), key=lambda item: (-item[1], item[0]))
        agents, now = self.engine.agents_now()
        busy = busy_agents(state, self.config.max_nodes_per_agent) if agents.blocks else frozenset()
        return ClusterOverview(
            cluster_name=self.config.cluster_name,
            framework_name=self.config.framework_name,
            framework_id=state.framework_id,
            cluster_uuid=state.cluster_uuid,
            configuration=self.engine.config.public_dict(),  # with PUT /v1/cluster/configuration's changes
            desired_nodes=state.desired_nodes,
            running_nodes=sum(1 for r in state.nodes.values() if r.state is TaskState.RUNNING),
            registered=published.registered,
            health=seen.health if seen.health in ("green", "yellow", "red") else "unknown",
            security_warning=self.config.security_warning,
            drain=tuple(DrainProgress(d.node_id, d.shards_left, d.status, d.reason, d.predicate) for d in seen.drain),
            declines=tuple(
                DeclineSummary(
                    rule,
                    count,
                    *published.last_declines.get(rule, (rule, 0.0)),
                    outcomes=tuple(
                        RuleOutcomeView(o.rule, o.passed, o.reason)
                        for o in published.decline_explanations.get(rule, ())
                    ),
                )
                for rule, count in declines
            ),
            events=tuple(
                ClusterEvent(e.time, e.message, e.node_id) for e in reversed(published.events[-CLUSTER_EVENTS:])
            ),
            mode=cluster_mode(self.config),
            mode_note=mode_note(self.config),
            demo_nodes=demo_nodes(self.config, state),
            # Replaced whole by the engine thread: read without a lock, like the blocked agents.
            waiting=waiting_view(self.engine.declines.waiting, state),
            blocked_agents=tuple(blocked_view(b) for b in agents.current(now)),
            start_blocked=agents.no_start(now, state.missing_nodes, busy),
        )

    def agents(self) -> tuple[AgentView, ...]:
        agents, now = self.engine.agents_now()
        views = []
        for agent_id in sorted({*agents.seen, *agents.blocks}):
            block = agents.active(agent_id, now)
            hostname = agents.seen.get(agent_id) or agents.blocks[agent_id].hostname
            views.append(AgentView(agent_id, hostname, blocked_view(block) if block is not None else None))
        return tuple(views)

    def clear_agent_failures(self, agent_id: str) -> str:
        return self._run(lambda: self.engine.clear_agent_failures(agent_id))

    def metrics(self) -> Metrics:
        published = self.shell.published
        state = published.state
        by_state: dict[str, int] = {}
        for record in state.nodes.values():
            by_state[record.state.value] = by_state.get(record.state.value, 0) + 1
        counters = published.counters
        return Metrics(
            nodes_by_state=by_state,
            desired_nodes=state.desired_nodes,
            running_nodes=by_state.get(TaskState.RUNNING.value, 0),
            node_ids_in_use=len(state.nodes),
            registered=published.registered,
            offers_received=counters.offers_received,
            offers_accepted=counters.offers_accepted,
            offers_declined=dict(published.declines),
            reconciliations=counters.reconciliations,
            failovers=counters.failovers,
            drain_shards_left={d.node_id: d.shards_left for d in self.monitor.view.drain if d.shards_left is not None},
        )

    def health(self) -> Health:
        stuck_for = time.monotonic() - self.shell.last_turn
        registered = self.shell.published.registered
        if stuck_for > STUCK_AFTER_S:
            return Health(False, registered, f"the scheduler's event loop has not turned for {stuck_for:.0f}s")
        return Health(True, registered, "registered with Mesos" if registered else "not registered with Mesos")

    def volumes(self) -> VolumeInventory:
        state, cached = self._state(), self._inventory
        if cached is not None and cached[0] is state:
            return cached[1]
        inventory = volume_inventory(state, self.config)
        self._inventory = (state, inventory)
        return inventory

    def profiles(self) -> Sequence[Mapping[str, Any]]:
        return profile_catalog(self.config)

    # --- commands -----------------------------------------------------------------------------------

    def _run(self, body: Callable[[], tuple[T, list[Call]]]) -> T:
        """``body`` on the engine thread; a refusal or a timeout becomes the API's error."""
        try:
            return self.shell.call(body)
        except OperatorError as refused:
            raise ApiError(refused.status, refused.message) from None
        except TimeoutError as error:
            raise ApiError(503, str(error)) from None

    def _copies_needed(self) -> int:
        state = self._state()
        running = sorted(
            (r for r in state.nodes.values() if r.state is TaskState.RUNNING and r.hostname),
            key=lambda r: r.node_id,
        )
        secret = self.config.elastic_password
        password = secret.reveal() if secret is not None and self.config.security_enabled else None
        problems = []
        for record in running[:3]:
            client = ElasticsearchClient(record.http_address, password=password)
            try:
                return copies_needed(client.replicas_by_index())
            except ElasticsearchError as error:
                problems.append(str(error))
            finally:
                client.close()
        raise ApiError(
            503,
            "cannot scale down now: no running node answered the question how many copies the data keeps"
            + (f" ({'; '.join(problems)})" if problems else ""),
        )

    def set_desired_nodes(self, count: int) -> None:
        copies = self._copies_needed() if count < self._state().desired_nodes else None
        self._run(lambda: self.engine.set_desired_nodes(count, copies_needed=copies))

    def restart_node(self, node_id: int, *, force: str | None = None) -> str:
        if force is None:
            # Queued in the planner's ledger: it starts when safe, counted with every other disruption.
            return self._run(lambda: self.engine.request_restart(node_id))
        log.warning("node %d: restart forced by the operator past the disruption planner: %s", node_id, force)
        return self._run(lambda: self.engine.restart_node(node_id))

    def rollouts(self) -> RolloutsView:
        state, now = self._state(), time.time()
        current = rollout_view(state.rollout, now, self.monitor.view.blocked) if state.rollout is not None else None
        return RolloutsView(current, tuple(finished_view(h) for h in reversed(state.rollout_history)))

    def start_restart(self, disabled: frozenset[str] = frozenset()) -> RolloutView:
        rollout = self._run(lambda: self.engine.start_rollout(RolloutReason.RESTART, disabled=disabled))
        return rollout_view(rollout, time.time())

    def rollout_command(
        self, rollout_id: str, verb: str, reason: str = "", disabled: frozenset[str] = frozenset()
    ) -> RolloutView:
        rollout = self._run(lambda: self.engine.rollout_command(rollout_id, verb, reason, disabled))
        return rollout_view(rollout, time.time())

    def replace_node(self, node_id: int, *, force: str | None = None) -> str:
        if force is None:
            # Queued in the planner's ledger like a restart (a node not running is replaced at once).
            return self._run(lambda: self.engine.request_replace(node_id))
        log.warning("node %d: replace forced by the operator past the disruption planner: %s", node_id, force)
        return self._run(lambda: self.engine.replace_node(node_id))

    def configuration(self) -> Mapping[str, Any]:
        state = self._state()
        fingerprint = state.config.get("fingerprint") if state.config is not None else None
        return configuration_view(self.engine, state.config_overrides, fingerprint)

    def change_configuration(self, values: Mapping[str, object]) -> Mapping[str, Any]:
        return change_configuration(self._run, self.engine, values)

    def declare_gone(self, node_id: int) -> str:
        def check() -> tuple[NodeRecord, list[Call]]:
            # Marking an agent gone cannot be undone: never from a state a scheduler that does not lead holds.
            self.engine.require_action()
            return check_gone(self.engine.state, node_id), []

        record = self._run(check)
        fenced = self._mark_agent_gone(record.agent_id)
        log.warning(
            "node %d task %s: declared gone by the operator; agent %s %s",
            node_id,
            record.task_id,
            record.agent_id,
            "marked gone in Mesos (fenced)" if fenced is None else f"NOT fenced: {fenced}",
        )
        try:
            message = self._run(lambda: self.engine.release_gone(node_id, record.task_id))
        except ApiError as refused:
            if refused.status != 404:
                raise
            # Mesos answered the fencing with TASK_GONE_BY_OPERATOR first: the id is free already.
            message = f"node {node_id} (task {record.task_id}) is gone: the id is free and the node is launched again"
        if fenced is None:
            return f"{message}; agent {record.agent_id} is marked gone in Mesos, so its old task can never come back"
        return (
            f"{message}; WARNING: agent {record.agent_id} could not be marked gone ({fenced}): if its old task is "
            "still alive it may write to the same volume — make sure that machine is off"
        )

    def _mark_agent_gone(self, agent_id: str) -> str | None:
        return mark_agent_gone(self.config, self.shell, agent_id)


def mark_agent_gone(config: Config, shell: SchedulerShell, agent_id: str) -> str | None:
    """Fence the agent with the Mesos operator API (``MARK_AGENT_GONE``); None when done, else why not.
    Raises :class:`ApiError` 503 when this scheduler no longer leads (nothing was sent)."""
    url = operator_url(shell)
    if url is None:
        return "the Mesos master's address is not known"
    body: dict[str, Any] = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}
    if not shell.leading:  # the lock may have gone since the check on the engine thread
        raise ApiError(503, "the scheduler cannot change anything now (it no longer leads): nothing was changed")
    try:
        response = operator_call(config, url, body)
    except OperatorApiError as error:
        return str(error)
    if response.status_code in (200, 202):
        return None
    return f"the operator API answered HTTP {response.status_code}: {response.text[:200]}"


def replace_failed_node(config: Config, shell: SchedulerShell) -> None:
    """One automatic-replacement round (``--permanentFailureTimeout``), from the monitor's thread: the
    engine names at most one node whose agent to mark gone (on its own thread), the agent is marked
    gone here with the ``gone`` command's call, and the engine frees the node only if that worked."""
    choice = shell.call(shell.engine.replacement_round)
    if choice is None or choice.agent_id is None:
        return
    try:
        problem = mark_agent_gone(config, shell, choice.agent_id)
    except ApiError as refused:
        problem = refused.message
    shell.call(lambda: shell.engine.fence_result(choice, problem))


def cluster_monitor(config: Config, shell: SchedulerShell, stop_node: Callable[[int], None]) -> ClusterMonitor:
    """The monitor of ``shell``'s cluster: it drains only while the engine may act (leading, and the
    state re-read since the lock was last in doubt), never from a state published before."""
    return ClusterMonitor(
        config,
        lambda: shell.published.state,
        stop_node,
        may_act=lambda: shell.leading and shell.engine.may_act,
        # The planner runs on the engine thread, which owns the state and persists its ledger.
        plan=lambda seen, adopt, ready: shell.call(
            lambda: shell.engine.plan_disruptions(seen, adopt=adopt, ready=ready)
        ),
        replace=lambda: _operator_round(config, shell),
    )


def _operator_round(config: Config, shell: SchedulerShell) -> None:
    """The monitor's rounds against the Mesos operator API: tasks lost to a machine DOWN for maintenance
    while no scheduler was subscribed (app/maintenance_status.py), then automatic replacement."""
    free_on_down_machines(config, shell)
    if config.permanent_failure_timeout_s > 0:
        replace_failed_node(config, shell)


class RunningApi:
    """The API server and the cluster monitor of one leading scheduler."""

    def __init__(self, server: Any, monitor: ClusterMonitor) -> None:
        self.server = server
        self.monitor = monitor

    def stop(self) -> None:
        self.monitor.stop()
        self.server.shutdown()


class ApiStartError(Exception):
    """The API port cannot be opened."""


def start_api(config: Config, shell: SchedulerShell, *, host: str = "0.0.0.0") -> RunningApi:
    """Start the cluster monitor and serve the REST API and web UI on ``--webUiPort``."""
    from es_framework.api.app import ApiApp  # noqa: PLC0415 - the web layer loads only with a scheduler
    from es_framework.api.server import serve  # noqa: PLC0415

    def stop_node(node_id: int) -> None:
        try:
            shell.call(lambda: shell.engine.stop_drained(node_id))
        except (OperatorError, TimeoutError) as error:
            log.warning("node %d: not stopped after its drain: %s", node_id, error)

    monitor = cluster_monitor(config, shell, stop_node)
    proxy = requests.Session()
    if config.security_enabled and config.elastic_password is not None:
        # The proxied /v1/es/... requests authenticate as the elastic user (HTTP TLS stays off).
        proxy.auth = ("elastic", config.elastic_password.reveal())
    app = ApiApp(
        SchedulerCore(config, shell, monitor),
        token=config.api_token.reveal() if config.api_token else None,
        session=proxy,
        ca_certificate=lambda: ca_certificate_pem(shell.engine.state.certificate_authority),
        node_trust=cluster_trust,
    )
    try:
        server = serve(app, host, config.web_ui_port)
    except OSError as error:
        raise ApiStartError(f"cannot serve the API on port {config.web_ui_port} (--webUiPort): {error}") from error
    monitor.start()
    return RunningApi(server, monitor)
