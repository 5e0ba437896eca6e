"""Task ids that carry the node id: a node's task, and the volume tasks that work on its volumes.

Status updates and reconciliation answers carry only the task id, so the node id must be
recoverable from it. A fresh uuid per launch makes every task id unique: Mesos refuses a launch
that reuses the id of a task it still knows, such as an unreachable one.

Two kinds of task carry a node id:

- a node's task, ``<framework>-node<id>-<launch>``: it runs Elasticsearch and holds the node id;
- a volume task, ``<framework>-volumes<id>-<launch>``: a short Mesos command task that asks the
  volume driver about the two volumes of node ``<id>`` (removal, :mod:`es_framework.core.volume_tasks`).
  It never holds the node id and must never be adopted as a node.

Why the two can never be mistaken for each other: a framework name has no ``.`` or ``_`` and ends
with a letter (:mod:`identity.naming`), the launch is 32 hex digits and ``<kind><id>`` has no
``-``. Reading an id from its right end, the last ``-``-separated part is the launch, the part before
it is exactly ``node<digits>`` or ``volumes<digits>``, and the rest is the framework name. Both
patterns below are anchored (``fullmatch``) on that shape, so one id matches at most one of them,
whatever ``-node``/``-volumes`` the framework name itself contains.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from identity.naming import validate_framework_name

_FRAMEWORK = r"(?P<framework>[a-z](?:[a-z0-9-]*[a-z])?)"
_LAUNCH = r"(?P<launch>[0-9a-f]{32})"
_TASK_ID = re.compile(_FRAMEWORK + r"-node(?P<node_id>[1-9][0-9]*)-" + _LAUNCH)
_VOLUME_TASK_ID = re.compile(_FRAMEWORK + r"-volumes(?P<node_id>[1-9][0-9]*)-" + _LAUNCH)

#: The task label that repeats the node id (for operators and tools that read labels).
NODE_ID_LABEL = "es-mesos.node-id"


class TaskIdError(ValueError):
    """A task id that is not one of ours."""


def new_launch_id() -> str:
    return uuid.uuid4().hex


def _check_parts(framework_name: str, node_id: int, launch_id: str) -> None:
    validate_framework_name(framework_name)
    if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 1:
        raise ValueError(f"node id must be an integer of 1 or greater, got {node_id!r}")
    if not re.fullmatch(r"[0-9a-f]{32}", launch_id):
        raise ValueError(f"launch id must be 32 lowercase hex digits (a uuid4 hex), got {launch_id!r}")


def task_id_for(framework_name: str, node_id: int, launch_id: str) -> str:
    """``<framework>-node<id>-<launch id>``, e.g. ``elasticsearch-node2-4f1c…``."""
    _check_parts(framework_name, node_id, launch_id)
    return f"{framework_name}-node{node_id}-{launch_id}"


def volume_task_id_for(framework_name: str, node_id: int, launch_id: str) -> str:
    """``<framework>-volumes<id>-<launch id>``: a volume task for node ``node_id``'s volumes."""
    _check_parts(framework_name, node_id, launch_id)
    return f"{framework_name}-volumes{node_id}-{launch_id}"


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


class TaskKind(StrEnum):
    #: A node's task: it holds its node id (the identity rules apply).
    NODE = "node"
    #: A volume task of ours: it works on a node id's volumes and never holds the id.
    VOLUMES = "volumes"
    #: Not a task of this framework (another framework, or a malformed id): never guessed at.
    FOREIGN = "foreign"


@dataclass(frozen=True)
class ParsedTaskId:
    kind: TaskKind
    #: The node id the task id names (None for a foreign one).
    node_id: int | None
    #: Why a task id is foreign, in words for the log (None otherwise).
    reason: str | None = None


def parse_task_id(task_id: str, framework_name: str) -> ParsedTaskId:
    """What ``task_id`` is to framework ``framework_name``: a node task, a volume task, or foreign.

    Route a status update by this before any node-identity logic: a volume task's update must never
    reach :func:`es_framework.core.status_updates.apply_status`, which would take the live task for
    one that names no node of ours and kill it.
    """
    for kind, pattern in ((TaskKind.NODE, _TASK_ID), (TaskKind.VOLUMES, _VOLUME_TASK_ID)):
        match = pattern.fullmatch(task_id)
        if match is None:
            continue
        if match["framework"] != framework_name:
            return ParsedTaskId(
                TaskKind.FOREIGN, None, f"task id {task_id!r} belongs to framework {match['framework']!r}"
            )
        return ParsedTaskId(kind, int(match["node_id"]))
    return ParsedTaskId(
        TaskKind.FOREIGN,
        None,
        f"task id {task_id!r} is not an es-mesos task id (<framework>-node<id>-<32 hex> or "
        "<framework>-volumes<id>-<32 hex>)",
    )
