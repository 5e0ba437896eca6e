"""The scheduler's engine: Mesos events in, state writes and Mesos calls out, in the safe order.

The engine knows nothing of pymesos or HTTP. Each ``on_*`` method takes one event, persists what
must survive a crash through the :class:`Store` it was given, and returns the calls to make to
Mesos as plain :class:`Call` values, which the driver shell (``es_framework.shell.scheduler``) sends. The
order is the guarantee:

- a launch's record is written *before* its ACCEPT is returned (a crash in between leaves the id
  reserved; reconciliation settles it), and if the write fails nothing is launched;
- a status update is applied and written *before* its ACKNOWLEDGE is returned (if the write
  fails, no acknowledgement: the agent resends the update);
- while the engine may not act (ZooKeeper session suspended or lost, or not the leader), offers
  are declined and nothing is launched or freed; updates are left unacknowledged so that Mesos
  resends them to whoever acts next.

At every registration the engine also records the node-shaping configuration
(:func:`config_values`: image, resources, ports, settings, volume driver and options; not the node
count) with its fingerprint. When a restarted scheduler brings a different one, the change is
appended to ``config_changes`` and every current node is marked ``outdated``; nothing is restarted,
and nodes launched from then on use the new configuration. Offers also teach the engine each
agent's hostname, which fills in the hostname of tasks adopted through reconciliation.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from es_framework.config import Config, redact_url
from es_framework.core import operations
from es_framework.core.failures import Backoff, classify_failure
from es_framework.core.node_state import (
    FREEING_STATES,
    LIVE_STATES,
    Action,
    ClusterState,
    Decision,
    NodeStateError,
    StatusUpdate,
    TaskState,
    apply_status,
    describe,
    parse_status,
    state_from_json,
    state_to_json,
)
from es_framework.core.offers import Offer, OfferError, parse_offer
from es_framework.core.plan import SHORT_REFUSE_S, plan_offer_cycle
from es_framework.core.task_builder import executor_id_for
from identity.task_ids import new_launch_id

log = logging.getLogger("es_framework.core.engine")

#: How many configuration changes the state keeps (oldest dropped first).
CONFIG_CHANGES_KEPT = 20


def config_values(config: Config) -> dict[str, Any]:
    """The settings that shape a node's task, by flag name: what a running node was launched with.
    The node count is not one of them (it is stored state of its own)."""
    return {
        "elasticsearchDockerImage": config.docker_image,
        # Stored in ZooKeeper and logged when it changes: never with credentials.
        "elasticsearchBinaryUrl": redact_url(config.binary_url),
        "frameworkUseDocker": config.use_docker,
        "elasticsearchCpu": config.cpus,
        "elasticsearchRam": config.mem_mb,
        "elasticsearchDisk": config.disk_mb,
        "elasticsearchPorts": f"{config.ports.http},{config.ports.transport}",
        "elasticsearchSettingsLocation": redact_url(config.settings_location),
        # The file's content, not only its place: a changed file marks the running nodes outdated.
        "elasticsearchSettings": hashlib.sha256(
            json.dumps(dict(config.user_settings), sort_keys=True).encode("utf-8")
        ).hexdigest()[:16]
        if config.user_settings
        else "",
        "elasticsearchNofile": config.nofile,
        "externalVolumeDriver": config.external_volume_driver,
        "externalVolumeOptions": ",".join(f"{k}={v}" for k, v in config.external_volume_options),
        "externalVolumeConfigOptions": ",".join(f"{k}={v}" for k, v in config.external_volume_config_options),
        "externalVolumeMethod": str(config.external_volume_method),
        "elasticsearchMasterNodes": config.master_nodes,
        "elasticsearchSecurity": config.security_enabled,
        "elasticsearchCertificatesUrl": redact_url(config.certificates_url),
    }


def config_fingerprint(values: Mapping[str, Any]) -> str:
    """A short, stable digest of :func:`config_values`."""
    text = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_record(config: Config) -> dict[str, Any]:
    values = config_values(config)
    return {"fingerprint": config_fingerprint(values), "values": values}


class StoreConflictError(Exception):
    """Someone else wrote the state since we read it (compare-and-set failed)."""


class Store(Protocol):
    """Where the engine's state lives (ZooKeeper in production, a file in local mode)."""

    def load(self) -> tuple[dict[str, Any] | None, int]:
        """The stored document (None if there is none yet) and its version."""
        ...

    def save(self, document: dict[str, Any], version: int) -> int:
        """Write if the stored version is still ``version``; return the new version.
        Raise :class:`StoreConflictError` on a version mismatch, anything else on failure."""
        ...


# --- calls to Mesos ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accept:
    offer_id: str
    task_infos: tuple[dict[str, Any], ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str | None


@dataclass(frozen=True)
class Acknowledge:
    agent_id: str
    task_id: str
    uuid: str


@dataclass(frozen=True)
class Reconcile:
    """``tasks`` empty means implicit reconciliation (every task the master knows)."""

    tasks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Suppress:
    pass


@dataclass(frozen=True)
class Revive:
    pass


@dataclass(frozen=True)
class Message:
    """A framework message to one node's executor (``data`` is the raw payload)."""

    agent_id: str
    executor_id: str
    data: bytes


Call = Accept | Decline | Kill | Acknowledge | Reconcile | Suppress | Revive | Message


# --- the engine -------------------------------------------------------------------------------------


@dataclass
class DeclineCounts:
    """Declines by rule, with the last reason of each, for logs, the API and metrics."""

    by_rule: dict[str, int] = field(default_factory=dict)
    #: rule -> (last reason, when).
    last: dict[str, tuple[str, float]] = field(default_factory=dict)

    def add(self, rule: str, reason: str = "", when: float = 0.0) -> None:
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1
        self.last[rule] = (reason or rule, when)


@dataclass
class Counters:
    """Counters since this scheduler process started (``/metrics``)."""

    offers_received: int = 0
    offers_accepted: int = 0
    reconciliations: int = 0
    #: Registrations that resumed a known framework id (a failover or a re-subscription).
    failovers: int = 0


@dataclass(frozen=True)
class EngineEvent:
    """Something the engine decided or saw, for the operator's history (bounded)."""

    time: float
    message: str
    node_id: int | None = None
    state: str | None = None


#: How many events the engine keeps for the API.
EVENTS_KEPT = 500


class Engine:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], float],
        new_launch_id: Callable[[], str] = new_launch_id,
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._new_launch_id = new_launch_id
        self.backoff = Backoff()
        self.declines = DeclineCounts()
        self.counters = Counters()
        #: Newest last; the engine thread appends, readers take a copy (``tuple(engine.events)``).
        self.events: collections.deque[EngineEvent] = collections.deque(maxlen=EVENTS_KEPT)
        #: Cleared while the state store cannot be trusted (session suspended/lost, not leader).
        self.may_act = True
        self.suppressed = False
        #: agent id -> hostname, learnt from offers (reconciliation answers carry no hostname).
        self.agent_hostnames: dict[str, str] = {}
        self._seed_hosts: tuple[str, ...] = ()
        self._seed_version = 0
        #: task id -> the seed version last sent to it.
        self._seed_sent: dict[str, int] = {}
        self.state, self._version = self._read()

    # --- state ------------------------------------------------------------------------------------

    def _read(self) -> tuple[ClusterState, int]:
        document, version = self._store.load()
        if document is None:
            return ClusterState(desired_nodes=self.config.elasticsearch_nodes), version
        state = state_from_json(document, self.config.framework_name)
        if state.desired_nodes != self.config.elasticsearch_nodes:
            log.warning(
                "stored desired node count %d wins over --elasticsearchNodes %d (change it through the API)",
                state.desired_nodes,
                self.config.elasticsearch_nodes,
            )
        return state, version

    def reload(self) -> None:
        """Re-read state (after a conflict, or when the store becomes trustworthy again)."""
        self.state, self._version = self._read()

    def _persist(self, state: ClusterState) -> bool:
        """Write ``state``; on success it becomes the engine's state. False (state re-read) on failure."""
        try:
            self._version = self._store.save(state_to_json(state), self._version)
        except StoreConflictError:
            log.error("state changed under us (another scheduler?); re-reading it and acting on nothing this time")
            self._safe_reload()
            return False
        except Exception:
            log.exception("could not write state; acting on nothing until it can be written")
            return False
        self.state = state
        return True

    def _safe_reload(self) -> None:
        try:
            self.reload()
        except Exception:
            log.exception("could not re-read state")

    # --- events -----------------------------------------------------------------------------------

    def on_registered(self, framework_id: str) -> list[Call]:
        """SUBSCRIBED (first registration or failover): remember the id, then reconcile everything."""
        calls: list[Call] = []
        new_state = self.state
        if self.state.framework_id == framework_id:
            self.counters.failovers += 1
        self._event(f"registered with Mesos as framework {framework_id}")
        if self.state.framework_id != framework_id:
            if self.state.framework_id is not None:
                log.warning("framework id changed from %s to %s", self.state.framework_id, framework_id)
            new_state = replace(new_state, framework_id=framework_id)
        new_state = self._check_configuration(new_state)
        if new_state is not self.state and not self._persist(new_state):
            log.error("could not record framework id %s and the configuration", framework_id)
        log.info("registered as %s", framework_id)
        calls.extend(self.reconcile_calls())
        calls.extend(self.pending_kills())
        calls.extend(self._offer_interest(force=True))
        calls.extend(self.seed_host_messages(resend=True))
        return calls

    def seed_host_messages(self, *, resend: bool = False) -> list[Call]:
        """Tell running nodes the master-eligible nodes' transport addresses.

        Framework messages are best-effort, so the list is versioned: each running node is sent the
        current version once, and everyone again (same version) after re-registration and
        periodically (``resend``); an executor applies only a version newer than the last it
        applied. The version is the clock in milliseconds, so a restarted scheduler never goes back."""
        seeds = self.state.view(self.config.master_nodes).seed_hosts
        if seeds != self._seed_hosts:
            self._seed_hosts = seeds
            self._seed_version = max(self._seed_version + 1, int(self._clock() * 1000))
        if not seeds:
            return []
        data = json.dumps({"version": self._seed_version, "seed_hosts": list(seeds)}).encode("utf-8")
        calls: list[Call] = []
        sent: dict[str, int] = {}
        for record in sorted(self.state.nodes.values(), key=lambda r: r.node_id):
            if record.state is not TaskState.RUNNING:
                continue
            sent[record.task_id] = self._seed_version
            if not resend and self._seed_sent.get(record.task_id) == self._seed_version:
                continue
            launch_id = record.task_id.rsplit("-", 1)[1]
            executor_id = executor_id_for(self.config, record.node_id, launch_id)
            calls.append(Message(record.agent_id, executor_id, data))
        self._seed_sent = sent
        return calls

    def reconcile_calls(self) -> list[Call]:
        """Reconcile every known task explicitly (with its agent id), then all tasks implicitly."""
        explicit = tuple(self.state.reconcile_tasks())
        log.info("reconciling %d known task(s), then all tasks", len(explicit))
        self.counters.reconciliations += 1
        calls: list[Call] = [Reconcile(explicit)] if explicit else []
        calls.append(Reconcile(()))
        return calls

    def _check_configuration(self, state: ClusterState) -> ClusterState:
        """Record the node-shaping configuration; when it differs from the stored one, record the
        change and mark every current node outdated (they keep running: nothing is restarted)."""
        current = config_record(self.config)
        stored = state.config
        if stored is not None and stored.get("fingerprint") == current["fingerprint"]:
            return state
        if stored is None:
            log.info("recording the configuration (fingerprint %s)", current["fingerprint"])
            return replace(state, config=current)
        old_values = stored.get("values")
        old_values = old_values if isinstance(old_values, Mapping) else {}
        changed = {
            flag: [old_values.get(flag), value]
            for flag, value in current["values"].items()
            if old_values.get(flag) != value
        }
        words = ", ".join(f"--{flag} {old!r} -> {new!r}" for flag, (old, new) in sorted(changed.items()))
        log.warning(
            "the configuration changed since the nodes were launched (fingerprint %s -> %s): %s; running nodes are "
            "marked outdated and are NOT restarted; new launches use the new configuration",
            stored.get("fingerprint"),
            current["fingerprint"],
            words or "details unknown",
        )
        nodes = dict(state.nodes)
        for node_id, record in sorted(state.nodes.items()):
            if not record.outdated:
                nodes[node_id] = replace(record, outdated=True)
            log.warning(
                "node %d task %s: launched with the earlier configuration; outdated (not restarted)",
                node_id,
                record.task_id,
            )
        change = {
            "at": self._clock(),
            "from": stored.get("fingerprint"),
            "to": current["fingerprint"],
            "changed": changed,
            "outdated_nodes": sorted(nodes),
        }
        return replace(
            state,
            nodes=MappingProxyType(nodes),
            config=current,
            config_changes=(*state.config_changes, change)[-CONFIG_CHANGES_KEPT:],
        )

    def _learn_hostnames(self, offers: Sequence[Offer]) -> ClusterState:
        """Remember each offer's agent hostname; fill it into records that lack it (adopted tasks)."""
        for offer in offers:
            self.agent_hostnames[offer.agent_id] = offer.hostname
        return self._fill_hostnames(self.state)

    def _fill_hostnames(self, state: ClusterState) -> ClusterState:
        missing = {
            node_id: record
            for node_id, record in state.nodes.items()
            if not record.hostname and record.agent_id in self.agent_hostnames
        }
        if not missing:
            return state
        nodes = dict(state.nodes)
        for node_id, record in missing.items():
            nodes[node_id] = replace(record, hostname=self.agent_hostnames[record.agent_id])
            log.info(
                "node %d task %s: hostname %s learnt from agent %s",
                node_id,
                record.task_id,
                nodes[node_id].hostname,
                record.agent_id,
            )
        return replace(state, nodes=MappingProxyType(nodes))

    def on_offers(self, raw_offers: Sequence[object]) -> list[Call]:
        offers: list[Offer] = []
        malformed: list[str] = []
        for raw in raw_offers:
            try:
                offers.append(parse_offer(raw))
            except OfferError as exc:
                offer_id = _offer_id(raw)
                log.error("declining malformed offer %s: %s", offer_id, exc)
                self.declines.add("malformed", str(exc), self._clock())
                if offer_id:
                    malformed.append(offer_id)
        calls: list[Call] = []
        if malformed:
            calls.append(Decline(tuple(malformed), SHORT_REFUSE_S))
        if not offers:
            return calls
        if not self.may_act:
            log.warning("declining %d offer(s): state store not available, launching nothing", len(offers))
            self.declines.add("store_unavailable", "state store not available", self._clock())
            return [*calls, Decline(tuple(o.id for o in offers), SHORT_REFUSE_S)]

        self.counters.offers_received += len(offers)
        known = self._learn_hostnames(offers)
        plan = plan_offer_cycle(
            known, offers, self.config, now=self._clock(), backoff=self.backoff, new_launch_id=self._new_launch_id
        )
        if (plan.launches or known is not self.state) and not self._persist(plan.state):
            return [*calls, Decline(tuple(o.id for o in offers), SHORT_REFUSE_S)]
        for launch in plan.launches:
            log.info(
                "node %d task %s: launching on %s [%s] (offer %s)%s",
                launch.record.node_id,
                launch.record.task_id,
                launch.offer.hostname,
                launch.offer.agent_id,
                launch.offer.id,
                f", volumes {launch.record.volumes[0]}, {launch.record.volumes[1]}" if launch.record.volumes else "",
            )
            calls.append(Accept(launch.offer.id, (launch.task_info,), SHORT_REFUSE_S))
            self.counters.offers_accepted += 1
            self._event(
                f"launching on {launch.offer.hostname} (task {launch.record.task_id})",
                launch.record.node_id,
                launch.record.state.value,
            )
        by_refuse: dict[float, list[str]] = {}
        for decline in plan.declines:
            self.declines.add(decline.rule, decline.reason, self._clock())
            log.info(
                "offer %s from %s [%s] declined for %gs: %s: %s",
                decline.offer.id,
                decline.offer.hostname,
                decline.offer.agent_id,
                decline.refuse_seconds,
                decline.rule,
                decline.reason,
            )
            by_refuse.setdefault(decline.refuse_seconds, []).append(decline.offer.id)
        calls.extend(Decline(tuple(ids), refuse) for refuse, ids in sorted(by_refuse.items()))
        if plan.launches:
            log.info("%s", describe(self.state))
        calls.extend(self._offer_interest())
        calls.extend(self.seed_host_messages())
        return calls

    def on_update(self, raw_status: object) -> list[Call]:
        return self.on_updates([raw_status])

    def on_updates(self, raw_statuses: Sequence[object]) -> list[Call]:
        """Apply a batch of status updates with **one** state write, then acknowledge them all.

        If the write fails, none is acknowledged (Mesos resends them) and nothing changes.
        Reconciling N tasks thus costs one write, not N writes of an N-node document."""
        updates: list[StatusUpdate] = []
        for raw in raw_statuses:
            try:
                updates.append(parse_status(raw))
            except NodeStateError as exc:
                log.error("ignoring malformed status update: %s", exc)
        if not updates:
            return []
        if not self.may_act:
            for update in updates:
                log.warning("task %s: %s left unacknowledged: state store not available", update.task_id, update.state)
            return []
        new_state = self.state
        applied: list[tuple[StatusUpdate, Decision, bool, bool]] = []
        for update in updates:
            holder = new_state.by_task_id.get(update.task_id)
            # A record written before a crash whose ACCEPT never went out: reconciliation answers GONE
            # or UNKNOWN for it. That is no failure of the node, so it is not backed off.
            never_launched = (
                holder is not None
                and holder.state is TaskState.LAUNCHING
                and update.reason == "REASON_RECONCILIATION"
                and update.state in (TaskState.GONE, TaskState.UNKNOWN, TaskState.LOST)
            )
            intended = holder is not None and holder.stopping is not None
            new_state, decision = apply_status(new_state, update, self.config.framework_name, now=self._clock())
            if decision.action is Action.ADOPT:
                new_state = self._fill_hostnames(new_state)
            node = f"node {decision.node_id}" if decision.node_id is not None else "no node"
            log.info(
                "%s task %s: %s (%s): %s", node, update.task_id, update.state, update.reason or "-", decision.reason
            )
            applied.append((update, decision, never_launched, intended))
            if decision.action is not Action.IGNORE:
                self._event(
                    f"{update.state.value}{f' ({update.reason})' if update.reason else ''}: {decision.reason}"
                    + (f" — {update.message}" if update.message else ""),
                    decision.node_id,
                    update.state.value,
                )
        if new_state is not self.state and not self._persist(new_state):
            return []  # unacknowledged: the agents resend them
        calls: list[Call] = []
        progress = False
        for update, decision, never_launched, intended in applied:
            calls.extend(self._after_update(update, decision, never_launched, intended))
            progress = progress or decision.action is not Action.IGNORE
        if progress:
            log.info("%s", describe(self.state))
        calls.extend(self._offer_interest())
        calls.extend(self.seed_host_messages())
        return calls

    def _after_update(
        self, update: StatusUpdate, decision: Decision, never_launched: bool, intended: bool
    ) -> list[Call]:
        """Kills, back-off bookkeeping and the acknowledgement of one update already written."""
        calls: list[Call] = []
        if decision.action is Action.KILL:
            calls.append(Kill(update.task_id, update.agent_id))
        if decision.action is Action.FREE and decision.node_id is not None:
            if intended:
                # Stopped on purpose (restart, replace, scale-down): no failure, no back-off.
                log.info("node %d task %s: stopped as asked (%s)", decision.node_id, update.task_id, update.state)
            elif never_launched:
                log.info(
                    "node %d task %s: the launch never reached Mesos (%s on reconciliation); relaunching without "
                    "back-off",
                    decision.node_id,
                    update.task_id,
                    update.state,
                )
            elif update.state in FREEING_STATES and update.state is not TaskState.FINISHED:
                kind = classify_failure(update)
                self.backoff = self.backoff.failed(decision.node_id, kind, update.message or "", self._clock())
                wait = self.backoff.wait(decision.node_id, self._clock())
                log.warning(
                    "node %d task %s failed (%s): %s; relaunch in %.0fs",
                    decision.node_id,
                    update.task_id,
                    kind,
                    update.message or update.reason or "no message",
                    wait,
                )
        if update.state is TaskState.RUNNING and decision.node_id is not None:
            self.backoff = self.backoff.succeeded(decision.node_id)
        if update.uuid is not None and update.agent_id is not None:
            calls.append(Acknowledge(update.agent_id, update.task_id, update.uuid))
        return calls

    # --- operator commands (the REST API) -----------------------------------------------------------
    # Each checks the request against the state (operations.py), persists the new state, and only
    # then returns the kills it implies; a refused request raises OperatorError and changes nothing.

    def _operate(self, outcome: operations.Outcome) -> tuple[str, list[Call]]:
        if outcome.state is not self.state and not self._persist(outcome.state):
            raise operations.OperatorError(503, "the state could not be written; nothing was changed")
        log.info("%s", outcome.message)
        if not outcome.kills:
            self._event(outcome.message)
        calls: list[Call] = []
        for node_id, task_id, agent_id in outcome.kills:
            log.info("node %d task %s: killing on agent %s", node_id, task_id, agent_id)
            # In the node's own history too (GET /v1/nodes/<id>).
            self._event(outcome.message, node_id, self.state.nodes[node_id].state.value)
            calls.append(Kill(task_id, agent_id))
        calls.extend(self._offer_interest())
        return outcome.message, calls

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        self.events.append(EngineEvent(self._clock(), message, node_id, state))

    def _require_action(self) -> None:
        if not self.may_act:
            raise operations.OperatorError(503, "the scheduler cannot change anything now (state store unavailable)")

    def set_desired_nodes(self, count: int, *, copies_needed: int | None) -> tuple[str, list[Call]]:
        self._require_action()
        return self._operate(operations.set_desired_nodes(self.state, count, copies_needed=copies_needed))

    def restart_node(self, node_id: int) -> tuple[str, list[Call]]:
        self._require_action()
        return self._operate(operations.restart_node(self.state, node_id, now=self._clock()))

    def replace_node(self, node_id: int) -> tuple[str, list[Call]]:
        self._require_action()
        return self._operate(operations.replace_node(self.state, node_id))

    def stop_drained(self, node_id: int) -> tuple[str, list[Call]]:
        self._require_action()
        return self._operate(operations.stop_drained(self.state, node_id))

    def release_gone(self, node_id: int, task_id: str) -> tuple[str, list[Call]]:
        self._require_action()
        return self._operate(operations.release_gone(self.state, node_id, task_id))

    def pending_kills(self) -> list[Call]:
        """Kill again every task being stopped on purpose that still runs (a KILL may be lost while
        disconnected; Mesos answers a kill of an unknown task with TASK_LOST or nothing)."""
        return [
            Kill(r.task_id, r.agent_id)
            for r in sorted(self.state.nodes.values(), key=lambda r: r.node_id)
            if r.stopping is not None and r.state in LIVE_STATES
        ]

    def _offer_interest(self, *, force: bool = False) -> list[Call]:
        """SUPPRESS when no node is missing, REVIVE when one is; only on a change, or when ``force``d
        (after registration, when the master's idea of our suppression is unknown)."""
        wants = self.state.missing_nodes > 0
        if wants and (self.suppressed or force):
            self.suppressed = False
            log.info("reviving offers: %d node(s) missing", self.state.missing_nodes)
            return [Revive()]
        if not wants and (not self.suppressed or force):
            self.suppressed = True
            log.info("suppressing offers: all %d node(s) placed", self.state.desired_nodes)
            return [Suppress()]
        return []


def _offer_id(raw: object) -> str | None:
    if isinstance(raw, dict):
        inner = raw.get("id")
        value = inner.get("value") if isinstance(inner, dict) else None
        if isinstance(value, str):
            return value
    return None
