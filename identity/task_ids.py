"""Task ids that carry the node id.

Status updates and reconciliation answers carry only the task id, so the node id must be
recoverable from it. A fresh uuid per launch makes every task id unique: Mesos refuses a launch
that reuses the id of a task it still knows, such as an unreachable one.
"""

from __future__ import annotations

import re
import uuid

from identity.naming import validate_framework_name

_TASK_ID = re.compile(r"(?P<framework>[a-z](?:[a-z0-9-]*[a-z])?)-node(?P<node_id>[1-9][0-9]*)-(?P<launch>[0-9a-f]{32})")

#: The task label that repeats the node id (for operators and tools that read labels).
NODE_ID_LABEL = "es-mesos.node-id"


class TaskIdError(ValueError):
    """A task id that is not one of ours."""


def new_launch_id() -> str:
    return uuid.uuid4().hex


def task_id_for(framework_name: str, node_id: int, launch_id: str) -> str:
    """``<framework>-node<id>-<launch id>``, e.g. ``elasticsearch-node2-4f1c…``."""
    validate_framework_name(framework_name)
    if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 1:
        raise ValueError(f"node id must be an integer of 1 or greater, got {node_id!r}")
    if not re.fullmatch(r"[0-9a-f]{32}", launch_id):
        raise ValueError(f"launch id must be 32 lowercase hex digits (a uuid4 hex), got {launch_id!r}")
    return f"{framework_name}-node{node_id}-{launch_id}"


def node_id_from_task_id(task_id: str, framework_name: str) -> int:
    """The node id a task id of ``framework_name`` names; :class:`TaskIdError` for anything else.

    A task of another framework, or a malformed id, is never guessed at: adopting the wrong task
    would put two nodes on one volume.
    """
    match = _TASK_ID.fullmatch(task_id)
    if match is None:
        raise TaskIdError(f"task id {task_id!r} is not an es-mesos task id (<framework>-node<id>-<32 hex>)")
    if match["framework"] != framework_name:
        raise TaskIdError(f"task id {task_id!r} belongs to framework {match['framework']!r}, not {framework_name!r}")
    return int(match["node_id"])


def try_node_id_from_task_id(task_id: str, framework_name: str) -> int | None:
    try:
        return node_id_from_task_id(task_id, framework_name)
    except TaskIdError:
        return None
