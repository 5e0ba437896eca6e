"""The stored state document: :class:`~es_framework.core.node_state.ClusterState` to JSON and back.

The document is what the scheduler writes to ZooKeeper (or a file in local mode). Reading it back
checks every identity invariant, so corrupt state is refused instead of acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from types import MappingProxyType
from typing import Any

from es_framework.core.cluster_ca import ca_from_json, ca_to_json
from es_framework.core.config_overrides import overrides_from_json, overrides_to_json
from es_framework.core.disruption_json import ledger_from_json, ledger_to_json
from es_framework.core.disruption_ledger import Disruption
from es_framework.core.node_history import NodeHistory, history_from_json, history_to_json
from es_framework.core.node_state import ClusterState, NodeRecord, NodeStateError, Pin, Replacement, TaskState
from es_framework.core.permanent_failures import replacement_from_json, replacement_to_json
from es_framework.core.rollout_json import RolloutStateError, header_to_json, rollout_from_json, steps_to_json
from es_framework.core.rollout_model import Rollout
from es_framework.core.security_switch import switch_from_json, switch_to_json
from es_framework.core.volume_removal_json import removal_from_json, removal_to_json
from es_framework.core.volumes import VolumeRemoval, VolumeSet, VolumeSpec
from identity.naming import volume_names
from identity.task_ids import try_node_id_from_task_id

#: Version of the JSON written by :func:`state_to_json`. Version 1 (no bootstrap record, no cluster
#: uuid) and version 2 (no zones, attributes or volume inventory) are still read; see
#: :func:`state_from_json`. Fields added to version 3 since (the disruption ledger, rollouts, the
#: configuration overrides, the node histories) are optional: a document without them has none.
SCHEMA_VERSION = 3
READABLE_SCHEMAS = frozenset({1, 2, 3})


def state_to_json(state: ClusterState) -> dict[str, Any]:
    return {
        **cluster_to_json(state),
        "nodes": [record_to_json(r) for r in sorted(state.nodes.values(), key=lambda r: r.node_id)],
        "pins": {str(k): pin_to_json(p) for k, p in sorted(state.pins.items())},
        "volumes": {str(k): _volume_set_to_json(v) for k, v in sorted(state.volumes.items())},
        "volume_removals": {str(k): removal_to_json(r) for k, r in sorted(state.volume_removals.items())},
        "disruptions": ledger_to_json(state.disruptions),
        "rollout_steps": steps_to_json(state.rollout) if state.rollout is not None else {},
        "node_history": {str(k): history_to_json(h) for k, h in sorted(state.node_history.items())},
    }


def cluster_to_json(state: ClusterState) -> dict[str, Any]:
    """The part of :func:`state_to_json` that belongs to no single node id (no per-node field of
    :data:`~es_framework.core.state_layout.PER_NODE_FIELDS`): its size does not grow with the nodes."""
    return {
        "schema": SCHEMA_VERSION,
        "framework_id": state.framework_id,
        "desired_nodes": state.desired_nodes,
        "config": dict(state.config) if state.config is not None else None,
        "config_changes": [dict(change) for change in state.config_changes],
        "torn_down_at": state.torn_down_at,
        "bootstrap_masters": list(state.bootstrap_masters) if state.bootstrap_masters is not None else None,
        "cluster_uuid": state.cluster_uuid,
        "last_replacement": replacement_to_json(state.last_replacement),
        "rollout": header_to_json(state.rollout) if state.rollout is not None else None,
        "rollout_restore": dict(sorted(state.rollout_restore.items())),
        "rollout_history": [dict(entry) for entry in state.rollout_history],
        "config_overrides": overrides_to_json(state.config_overrides),
        "certificate_authority": ca_to_json(state.certificate_authority),
        "security_mode": state.security_mode,
        "security_switch": switch_to_json(state.security_switch),
    }


def pin_to_json(pin: Pin) -> dict[str, Any]:
    return {"agent_id": pin.agent_id, "until": pin.until}


def record_to_json(r: NodeRecord) -> dict[str, Any]:
    """One node record as the ``nodes`` list of :func:`state_to_json` holds it."""
    return {
        "node_id": r.node_id,
        "task_id": r.task_id,
        "agent_id": r.agent_id,
        "hostname": r.hostname,
        "http_port": r.http_port,
        "transport_port": r.transport_port,
        "state": r.state.value,
        "seen_running": r.seen_running,
        "volumes": list(r.volumes) if r.volumes else None,
        "needs_operator": r.needs_operator,
        "last_reason": r.last_reason,
        "last_message": r.last_message,
        "updated_at": r.updated_at,
        "outdated": r.outdated,
        "healthy": r.healthy,
        "started_at": r.started_at,
        "cluster_uuid": r.cluster_uuid,
        "version": r.version,
        "stopping": r.stopping,
        "zone": r.zone,
        "attributes": dict(r.attributes),
        "unreachable_since": r.unreachable_since,
    }


def _volume_set_to_json(entry: VolumeSet) -> dict[str, Any]:
    return {
        "driver": entry.driver,
        "volumes": [
            {"name": v.name, "role": v.role, "profile": v.profile, "options": [list(kv) for kv in v.options]}
            for v in entry.specs
        ],
        "first_launched_at": entry.first_launched_at,
        "last_agent_id": entry.last_agent_id,
        "last_hostname": entry.last_hostname,
        "last_launched_at": entry.last_launched_at,
        "last_zone": entry.last_zone,
        "removed_at": entry.removed_at,
    }


def _field(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = raw.get(key)
    # bool is an int subclass; a stored true where a node id belongs is corruption, not 1.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise NodeStateError(f"{where}: '{key}' is missing or has the wrong type")
    return value


def state_from_json(raw: object, framework_name: str) -> ClusterState:
    """Stored state back to :class:`ClusterState`, checking every identity invariant on the way."""
    if not isinstance(raw, Mapping):
        raise NodeStateError("stored state is not a JSON object")
    schema = raw.get("schema")
    if schema not in READABLE_SCHEMAS or isinstance(schema, bool):
        raise NodeStateError(
            f"stored state has schema {schema!r}; this version reads {', '.join(map(str, sorted(READABLE_SCHEMAS)))}"
        )
    desired = _field(raw, "desired_nodes", int, "stored state")
    # 0 only while `teardown --purge-volumes` stops every node; the API never sets fewer than 1.
    if desired < 0:
        raise NodeStateError(f"stored state: desired_nodes {desired} is below 0")
    framework_id = raw.get("framework_id")
    if framework_id is not None and not isinstance(framework_id, str):
        raise NodeStateError("stored state: framework_id must be a string or null")
    nodes: dict[int, NodeRecord] = {}
    seen_tasks: set[str] = set()
    for index, item in enumerate(_field(raw, "nodes", list, "stored state")):
        where = f"stored node #{index}"
        if not isinstance(item, Mapping):
            raise NodeStateError(f"{where} is not an object")
        node_id = _field(item, "node_id", int, where)
        task_id = _field(item, "task_id", str, where)
        if try_node_id_from_task_id(task_id, framework_name) != node_id:
            raise NodeStateError(f"{where}: task id {task_id!r} does not name node {node_id} of {framework_name!r}")
        if node_id in nodes or task_id in seen_tasks:
            raise NodeStateError(f"{where}: node {node_id} or task {task_id} appears twice")
        try:
            task_state = TaskState(_field(item, "state", str, where))
        except ValueError:
            raise NodeStateError(f"{where}: unknown state {item.get('state')!r}") from None
        volumes = item.get("volumes")
        if volumes is not None and (
            not isinstance(volumes, list) or tuple(volumes) != volume_names(framework_name, node_id)
        ):
            raise NodeStateError(f"{where}: volumes {volumes!r} are not node {node_id}'s")
        nodes[node_id] = NodeRecord(
            node_id=node_id,
            task_id=task_id,
            agent_id=intern(_field(item, "agent_id", str, where)),
            hostname=intern(_field(item, "hostname", str, where)),
            http_port=_field(item, "http_port", int, where),
            transport_port=_field(item, "transport_port", int, where),
            state=task_state,
            seen_running=_field(item, "seen_running", bool, where),
            volumes=(volumes[0], volumes[1]) if volumes else None,
            needs_operator=bool(item.get("needs_operator", False)),
            last_reason=item.get("last_reason") if isinstance(item.get("last_reason"), str) else None,
            last_message=item.get("last_message") if isinstance(item.get("last_message"), str) else None,
            updated_at=float(item["updated_at"]) if isinstance(item.get("updated_at"), (int, float)) else None,
            outdated=item.get("outdated") is True,
            healthy=item.get("healthy") if isinstance(item.get("healthy"), bool) else None,
            started_at=float(item["started_at"]) if isinstance(item.get("started_at"), (int, float)) else None,
            cluster_uuid=_shared_text(item, "cluster_uuid", where),
            version=_shared_text(item, "version", where),
            stopping=_optional_text(item, "stopping", where),
            zone=_shared_text(item, "zone", where),
            attributes=_text_map(item.get("attributes"), f"{where}: attributes"),
            unreachable_since=_unreachable_since(item, task_state, where),
        )
        seen_tasks.add(task_id)
    config = raw.get("config")
    if config is not None and (not isinstance(config, Mapping) or not isinstance(config.get("fingerprint"), str)):
        raise NodeStateError("stored state: config must be an object with a fingerprint, or null")
    changes = raw.get("config_changes") or []
    if not isinstance(changes, list) or not all(isinstance(c, Mapping) for c in changes):
        raise NodeStateError("stored state: config_changes must be a list of objects")
    torn_down_at = raw.get("torn_down_at")
    if torn_down_at is not None and (not isinstance(torn_down_at, (int, float)) or isinstance(torn_down_at, bool)):
        raise NodeStateError("stored state: torn_down_at must be a time or null")
    cluster_uuid = _optional_text(raw, "cluster_uuid", "stored state")
    if schema == 1:
        # Written before bootstrapping was recorded: a cluster that ever had nodes may hold data, so
        # it must never be bootstrapped again; a brand-new one may.
        bootstrap: tuple[str, ...] | None = () if nodes or framework_id else None
    else:
        masters = raw.get("bootstrap_masters")
        if masters is not None and (not isinstance(masters, list) or not all(isinstance(m, str) for m in masters)):
            raise NodeStateError("stored state: bootstrap_masters must be a list of node names or null")
        bootstrap = tuple(masters) if masters is not None else None
    if cluster_uuid is not None and bootstrap:
        raise NodeStateError("stored state: a cluster with a recorded uuid cannot still be bootstrapping")
    pins: dict[int, Pin] = {}
    raw_pins = raw.get("pins") or {}
    if not isinstance(raw_pins, Mapping):
        raise NodeStateError("stored state: pins must be an object")
    for key, pin in raw_pins.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(pin, Mapping)):
            raise NodeStateError(f"stored state: pin {key!r} is not a node id with an object")
        agent, until = pin.get("agent_id"), pin.get("until")
        if not isinstance(agent, str) or not isinstance(until, (int, float)) or isinstance(until, bool):
            raise NodeStateError(f"stored state: pin of node {key} needs agent_id and until")
        pins[int(key)] = Pin(agent, float(until))
    volumes = {
        node_id: _volume_set_from_json(node_id, entry, framework_name) for node_id, entry in _by_node_id(raw, "volumes")
    }
    # Written since volume removal tasks exist; an earlier schema-3 document has none.
    removals = {node_id: _volume_removal(node_id, entry) for node_id, entry in _by_node_id(raw, "volume_removals")}
    disruptions = _disruptions(raw.get("disruptions"), framework_name)
    rollout, restore, history = _rollout(raw)
    # Written since node histories are kept; an earlier document has none (each node starts afresh).
    histories = {node_id: _node_history(node_id, entry) for node_id, entry in _by_node_id(raw, "node_history")}
    # Written since runtime configuration changes exist; an earlier schema-3 document has none.
    try:
        overrides = overrides_from_json(raw.get("config_overrides"))
    except ValueError as error:
        raise NodeStateError(f"stored state: {error}") from None
    # Written since --elasticsearchSecurity auto exists; an earlier document has none.
    try:
        certificate_authority = ca_from_json(raw.get("certificate_authority"))
    except ValueError as error:
        raise NodeStateError(f"stored state: {error}") from None
    # Written since the mode is recorded (core/security_mode.py); an earlier document has none.
    security_mode = raw.get("security_mode")
    if security_mode not in (None, "auto", "off"):
        raise NodeStateError(f"stored state: security_mode must be 'auto', 'off' or null, not {security_mode!r}")
    try:  # written since the switch to auto exists (core/security_switch.py); an earlier document has none
        security_switch = switch_from_json(raw.get("security_switch"))
    except ValueError as error:
        raise NodeStateError(f"stored state: {error}") from None
    return ClusterState(
        desired_nodes=desired,
        nodes=MappingProxyType(nodes),
        framework_id=framework_id,
        config=MappingProxyType(dict(config)) if config is not None else None,
        config_changes=tuple(MappingProxyType(dict(c)) for c in changes),
        torn_down_at=float(torn_down_at) if torn_down_at is not None else None,
        bootstrap_masters=bootstrap,
        cluster_uuid=cluster_uuid,
        pins=MappingProxyType(pins),
        volumes=MappingProxyType(volumes),
        volume_removals=MappingProxyType(removals),
        disruptions=disruptions,
        last_replacement=_last_replacement(raw.get("last_replacement"), framework_name),
        rollout=rollout,
        rollout_restore=restore,
        rollout_history=history,
        config_overrides=overrides,
        node_history=MappingProxyType(histories),
        certificate_authority=certificate_authority,
        security_mode=security_mode,
        security_switch=security_switch,
    )


def _by_node_id(raw: Mapping[str, Any], name: str) -> list[tuple[int, object]]:
    """The entries of ``raw[name]``, an object keyed by node id in decimal (absent or null: none)."""
    entries = raw.get(name)
    entries = {} if entries is None else entries
    if not isinstance(entries, Mapping):
        raise NodeStateError(f"stored state: {name} must be an object")
    out: list[tuple[int, object]] = []
    for key, entry in entries.items():
        if not (isinstance(key, str) and key.isdigit()):
            raise NodeStateError(f"stored state: {name} key {key!r} is not a node id")
        out.append((int(key), entry))
    return out


def _node_history(node_id: int, raw: object) -> NodeHistory:
    try:
        return history_from_json(raw, f"stored state: node_history[{node_id}]")
    except ValueError as exc:
        raise NodeStateError(str(exc)) from None


def _volume_removal(node_id: int, raw: object) -> VolumeRemoval:
    try:
        removal = removal_from_json(raw, where=f"stored state: volume_removals[{node_id}]")
    except ValueError as exc:
        raise NodeStateError(str(exc)) from exc
    if removal.node_id != node_id:
        raise NodeStateError(f"stored state: volume_removals[{node_id}] is node {removal.node_id}'s")
    return removal


def _unreachable_since(item: Mapping[str, Any], task_state: TaskState, where: str) -> float | None:
    """Written since automatic replacement exists; an earlier record out of reach counts from its last
    update (the UNREACHABLE or UNKNOWN that made it so: repeats of it are not written)."""
    if "unreachable_since" in item:
        value = item["unreachable_since"]
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise NodeStateError(f"{where}: unreachable_since must be a time or null")
        return float(value) if value is not None else None
    updated = item.get("updated_at")
    if task_state in (TaskState.UNREACHABLE, TaskState.UNKNOWN) and isinstance(updated, (int, float)):
        return float(updated)
    return None


def _last_replacement(raw: object, framework_name: str) -> Replacement | None:
    """The last automatic replacement; written since it exists, so an earlier document has none."""
    try:
        entry = replacement_from_json(raw)
    except ValueError as exc:
        raise NodeStateError(f"stored state: {exc}") from exc
    if entry is not None and try_node_id_from_task_id(entry.task_id, framework_name) != entry.node_id:
        raise NodeStateError(f"stored state: last_replacement names task {entry.task_id!r} of another node")
    return entry


def _disruptions(raw: object, framework_name: str) -> Mapping[int, Disruption]:
    """The planner's ledger; written since the planner is wired, so an earlier document has none."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise NodeStateError("stored state: disruptions must be an object")
    try:
        ledger = ledger_from_json(raw)
    except ValueError as exc:
        raise NodeStateError(f"stored state: {exc}") from exc
    for node_id, entry in ledger.items():
        # A started entry names the task it stopped; any other task id for that node is corruption.
        if entry.task_id is not None and try_node_id_from_task_id(entry.task_id, framework_name) != node_id:
            raise NodeStateError(f"stored state: disruption {node_id} names task {entry.task_id!r} of another node")
    return ledger


def _rollout(raw: Mapping[str, Any]) -> tuple[Rollout | None, Mapping[str, str | None], tuple[Mapping[str, Any], ...]]:
    """The rollout, the settings still to restore and the finished rollouts; written since rollouts
    run, so an earlier document has none (no rollout)."""
    header, steps = raw.get("rollout"), raw.get("rollout_steps") or {}
    restore, history = raw.get("rollout_restore") or {}, raw.get("rollout_history") or []
    if not isinstance(steps, Mapping):
        raise NodeStateError("stored state: rollout_steps must be an object")
    if header is None and steps:
        raise NodeStateError("stored state: rollout_steps without a rollout")
    if not isinstance(restore, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in restore.items()
    ):
        raise NodeStateError("stored state: rollout_restore must map setting names to text or null")
    if not isinstance(history, list) or not all(isinstance(h, Mapping) for h in history):
        raise NodeStateError("stored state: rollout_history must be a list of objects")
    try:
        rollout = rollout_from_json(header, steps) if header is not None else None
    except RolloutStateError as exc:
        raise NodeStateError(f"stored state: {exc}") from exc
    return rollout, MappingProxyType(dict(restore)), tuple(MappingProxyType(dict(h)) for h in history)


def _volume_set_from_json(node_id: int, raw: object, framework_name: str) -> VolumeSet:
    where = f"stored volumes of node {node_id}"
    if not isinstance(raw, Mapping):
        raise NodeStateError(f"{where}: not an object")
    specs = _field(raw, "volumes", list, where)
    expected = volume_names(framework_name, node_id)
    if len(specs) != 2:
        raise NodeStateError(f"{where}: must list the config and the data volume")
    parsed: list[VolumeSpec] = []
    for (name, role), spec in zip(zip(expected, ("config", "data"), strict=True), specs, strict=True):
        if not isinstance(spec, Mapping) or spec.get("name") != name or spec.get("role") != role:
            raise NodeStateError(f"{where}: {spec!r} is not node {node_id}'s {role} volume {name}")
        options = spec.get("options") or []
        if not isinstance(options, list) or not all(
            isinstance(kv, list) and len(kv) == 2 and all(isinstance(x, str) for x in kv) for kv in options
        ):
            raise NodeStateError(f"{where}: options of {name} must be [key, value] pairs of strings")
        profile = intern(_field(spec, "profile", str, where))
        parsed.append(VolumeSpec(name, role, profile, tuple((intern(k), intern(v)) for k, v in options)))
    removed_at = raw.get("removed_at")
    if removed_at is not None and (not isinstance(removed_at, (int, float)) or isinstance(removed_at, bool)):
        raise NodeStateError(f"{where}: removed_at must be a time or null")
    return VolumeSet(
        node_id=node_id,
        driver=intern(_field(raw, "driver", str, where)),
        config=parsed[0],
        data=parsed[1],
        first_launched_at=float(_number(raw, "first_launched_at", where)),
        last_agent_id=intern(_field(raw, "last_agent_id", str, where)),
        last_hostname=intern(_field(raw, "last_hostname", str, where)),
        last_launched_at=float(_number(raw, "last_launched_at", where)),
        last_zone=_shared_text(raw, "last_zone", where),
        removed_at=float(removed_at) if removed_at is not None else None,
    )


def _number(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise NodeStateError(f"{where}: '{key}' must be a number")
    return float(value)


#: The one empty read-only map that every record without attributes shares.
_NO_TEXT: Mapping[str, str] = MappingProxyType({})


def _text_map(raw: object, where: str) -> Mapping[str, str]:
    if raw is None:
        return _NO_TEXT
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise NodeStateError(f"{where} must be an object of strings")
    return MappingProxyType({intern(k): intern(v) for k, v in raw.items()}) if raw else _NO_TEXT


def _shared_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    """As :func:`_optional_text`, one string object for every equal value (sys.intern): the node
    records of a cluster repeat their cluster uuid, version, zone, agent and hostname (the volume
    set repeats the last two): several MB of copies at 10,000 nodes otherwise."""
    value = _optional_text(raw, key, where)
    return None if value is None else intern(value)


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise NodeStateError(f"{where}: '{key}' must be a string or null")
    return value


def volume_set_to_json(entry: VolumeSet) -> dict[str, Any]:
    """One node id's volume set as the ``volumes`` field of :func:`state_to_json` holds it."""
    return _volume_set_to_json(entry)
