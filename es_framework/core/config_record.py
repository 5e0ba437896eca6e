"""The node-shaping configuration the nodes were launched with, and what changed in it.

At every registration the engine records the node-shaping configuration (:func:`config_values`:
image, resources, ports, settings, volume driver and options; not the node count) with its
fingerprint. When a restarted scheduler brings a different one, the change is appended to
``config_changes`` and every current node is marked ``outdated``; nodes launched from then on use
the new configuration, and the engine restarts the outdated ones through a ``configuration`` rollout
(:func:`es_framework.core.engine_rollouts.configuration_rollout`), one at a time. A node's record is
recreated when its new task launches, so ``outdated`` ends with the task that was launched with the
earlier configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from es_framework import contract
from es_framework.config import Config, redact_url
from es_framework.core.node_state import ClusterState

log = logging.getLogger("es_framework.core.config_record")

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


def config_fingerprint(values: Mapping[str, Any]) -> str:
    """A short, stable digest of :func:`config_values`."""
    text = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_record(config: Config) -> dict[str, Any]:
    values = config_values(config)
    return {"fingerprint": config_fingerprint(values), "values": values}


def record_configuration(state: ClusterState, config: Config, *, now: float) -> ClusterState:
    """``state`` with ``config``'s node-shaping configuration recorded; when it differs from the
    stored one, the change is recorded (at ``now``) and every current node is marked outdated (nothing
    is stopped here: the engine's rollout restarts them)."""
    current = config_record(config)
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
