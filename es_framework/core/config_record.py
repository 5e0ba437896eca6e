"""The node-shaping configuration the nodes were launched with, and what changed in it.

At every registration the engine records the node-shaping configuration (:func:`config_values`:
image, resources, ports, settings, volume driver and options; not the node count) with its
fingerprint. When a restarted scheduler brings a different one, the change is appended to
``config_changes`` and every current node is marked ``outdated``; nodes launched from then on use
the new configuration, and the engine restarts the outdated ones through a ``configuration`` rollout
(:func:`es_framework.core.engine_rollouts.configuration_rollout`), one at a time. A node's record is
recreated when its new task launches, so ``outdated`` ends with the task that was launched with the
earlier configuration. The record also keeps the executor the nodes were launched with (the release
and its contract version, :func:`executor_record`): another one over the same configuration marks
the nodes outdated too, and the engine restarts them through an ``executor`` rollout. So do nodes
under a configuration recorded without an executor (release 0.1.0's state: its executors speak
contract 1, :func:`launched_before_executor_records`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from es_framework import __version__, contract
from es_framework.config import Config, redact_url
from es_framework.core.node_state import ClusterState

log = logging.getLogger("es_framework.core.config_record")

#: How many configuration changes the state keeps (oldest dropped first).
CONFIG_CHANGES_KEPT = 20


def config_values(config: Config) -> dict[str, Any]:
    """The settings that shape a node's task, by flag name: what a running node was launched with.
    The node count is not one of them (it is stored state of its own)."""
    values: dict[str, Any] = {
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
            contract.encode_user_settings(config.user_settings).encode("utf-8")
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
    # The declared target version is the version the nodes are restarted into: a new one rolls them.
    # Only when given, so that a cluster recorded without it keeps its fingerprint.
    if config.elasticsearch_version is not None:
        values["elasticsearchVersion"] = str(config.elasticsearch_version)
    return values


def config_fingerprint(values: Mapping[str, Any]) -> str:
    """A short, stable digest of :func:`config_values`."""
    text = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_record(config: Config) -> dict[str, Any]:
    values = config_values(config)
    return {"fingerprint": config_fingerprint(values), "values": values, "executor": executor_record()}


def executor_record() -> dict[str, Any]:
    """The executor this release launches nodes with: its release (``es-mesos-executor`` ships in the
    same package) and the contract it speaks (:data:`es_framework.contract.CONTRACT_VERSION`)."""
    return {"release": __version__, "contract": contract.CONTRACT_VERSION}


#: What an executor record says of nodes launched by a release that recorded none.
UNRECORDED = "not recorded (an earlier release: 0.1.0 speaks contract 1)"


def launched_before_executor_records(state: ClusterState) -> bool:
    """``state`` holds nodes under a recorded configuration that names no executor: it was written by
    a release from before executors were recorded (release 0.1.0's documents,
    ``tests/fixtures/v0.1.0``), so its nodes run that release's executor, contract 1
    (:mod:`es_framework.contract`: older executors are driven, then rolled to the new one). This
    release always records its executor with the configuration, so it never writes such a state."""
    return state.config is not None and state.config.get("executor") is None and bool(state.nodes)


def executor_change(before: ClusterState, after: ClusterState) -> str | None:
    """What changed in the recorded executor from ``before`` to ``after``, or None. A ``before``
    whose nodes were launched before executors were recorded
    (:func:`launched_before_executor_records`) changed from :data:`UNRECORDED`."""
    old = before.config.get("executor") if before.config is not None else None
    new = after.config.get("executor") if after.config is not None else None
    if not isinstance(new, Mapping):
        return None
    if old is None and launched_before_executor_records(before):
        return f"executor {UNRECORDED} → release {new.get('release')} contract {new.get('contract')}"
    if not isinstance(old, Mapping) or old == new:
        return None
    return (
        f"release {old.get('release')} contract {old.get('contract')} → "
        f"release {new.get('release')} contract {new.get('contract')}"
    )


def _executor_recorded(state: ClusterState, executor: Mapping[str, Any], *, now: float) -> ClusterState:
    """``state`` (its configuration unchanged) with this release's executor recorded; when another
    one was recorded, the change is recorded and every node is marked outdated: an ``executor``
    rollout restarts them (:func:`es_framework.core.engine_rollouts.configuration_rollout`)."""
    stored = state.config or {}
    old = stored.get("executor")
    if old == executor:
        return state
    config = {**stored, "executor": dict(executor)}
    if old is None and not launched_before_executor_records(state):
        log.info("recording the executor (release %s, contract %s)", executor.get("release"), executor.get("contract"))
        return replace(state, config=config)
    log.warning(
        "the executor changed since the nodes were launched (%s -> %s): running nodes are marked outdated and "
        "restarted one at a time by a rollout",
        old if old is not None else UNRECORDED,
        dict(executor),
    )
    nodes = dict(state.nodes)
    for node_id, record in sorted(state.nodes.items()):
        nodes[node_id] = replace(record, outdated=True)
        log.warning("node %d task %s: launched with the earlier executor; outdated", node_id, record.task_id)
    change = {
        "at": now,
        "from": stored.get("fingerprint"),
        "to": stored.get("fingerprint"),
        "changed": {"executor": [old if old is not None else UNRECORDED, dict(executor)]},
        "outdated_nodes": sorted(nodes),
    }
    return replace(
        state,
        nodes=MappingProxyType(nodes),
        config=config,
        config_changes=(*state.config_changes, change)[-CONFIG_CHANGES_KEPT:],
    )


def record_configuration(
    state: ClusterState, config: Config, *, now: float, executor: Mapping[str, Any] | None = None
) -> ClusterState:
    """``state`` with ``config``'s node-shaping configuration and the executor (``executor``, default
    this release's: :func:`executor_record`) recorded; when either differs from the stored one, the
    change is recorded (at ``now``) and every current node is marked outdated (nothing is stopped
    here: the engine's rollout restarts them)."""
    current = {**config_record(config), **({"executor": dict(executor)} if executor is not None else {})}
    stored = state.config
    if stored is not None and stored.get("fingerprint") == current["fingerprint"]:
        return _executor_recorded(state, current["executor"], now=now)
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
        "marked outdated and restarted one at a time by a rollout; new launches use the new configuration",
        stored.get("fingerprint"),
        current["fingerprint"],
        words or "details unknown",
    )
    nodes = dict(state.nodes)
    for node_id, record in sorted(state.nodes.items()):
        if not record.outdated:
            nodes[node_id] = replace(record, outdated=True)
        log.warning(
            "node %d task %s: launched with the earlier configuration; outdated",
            node_id,
            record.task_id,
        )
    change = {
        "at": now,
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
