"""A full cluster restart that switches a cluster from ``--elasticsearchSecurity off`` to ``auto``,
as the framework state keeps it (pure data; what the engine does with it is
:mod:`es_framework.core.engine_security_switch`).

Transport TLS cannot be rolled into a running cluster: the transport layer's TLS is mutual (the
Elasticsearch 8 reference, "Set up basic security for the Elastic Stack", which "Manually configure
security" points an existing, unsecured cluster to), so a node with
``xpack.security.transport.ssl.enabled: true`` and a node without it do not talk to each other; the
reference's procedure for encrypting an existing cluster's internode traffic ("Encrypt internode
communications") stops every node before TLS is enabled on each. So every node from before the
switch must have ended before the first node with TLS starts: :class:`SecuritySwitch` records when
the switch began and which node ids held a task then; while any of them still holds a record,
nothing is launched.

The entry is a field of the state's small cluster part (``ClusterState.security_switch``): written
in the same fenced write that records ``security_mode: auto`` and marks every node stopping, so a new
leader finishes a switch an earlier one began. Documents from before it have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: ``NodeRecord.stopping`` of a node the switch stops: its end is intended (no failure back-off).
SWITCH_STOPPING = "security-switch"
#: The decline rule of an offer that arrives while nodes from before the switch still live.
SWITCH_RULE = "security_switch"


@dataclass(frozen=True)
class SecuritySwitch:
    """A switch to ``auto`` under way: begun at ``started_at`` (Unix seconds), with ``node_ids`` the
    ids that held a task then (their tasks must end before any node is launched)."""

    started_at: float
    node_ids: tuple[int, ...]


def switch_to_json(switch: SecuritySwitch | None) -> dict[str, Any] | None:
    if switch is None:
        return None
    return {"started_at": switch.started_at, "node_ids": list(switch.node_ids)}


def switch_from_json(raw: object) -> SecuritySwitch | None:
    """The stored entry (absent or null: no switch under way); ValueError naming what is malformed."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"security_switch must be an object or null, not {raw!r}")
    started = raw.get("started_at")
    ids = raw.get("node_ids")
    if isinstance(started, bool) or not isinstance(started, (int, float)):
        raise ValueError(f"security_switch.started_at must be a number, not {started!r}")
    if not isinstance(ids, list) or any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in ids):
        raise ValueError(f"security_switch.node_ids must be a list of node ids (integers from 1), not {ids!r}")
    return SecuritySwitch(float(started), tuple(sorted(set(ids))))
