"""Node identity: runtime-unique, recyclable node ids and the names derived from them."""

from identity.allocator import MAX_RESERVE_GAP, NodeIdAllocator, NodeIdError
from identity.naming import (
    FrameworkNameError,
    framework_name_problem,
    node_name,
    validate_framework_name,
    volume_names,
)
from identity.task_ids import (
    NODE_ID_LABEL,
    TaskIdError,
    new_launch_id,
    node_id_from_task_id,
    task_id_for,
    try_node_id_from_task_id,
)

__all__ = [
    "MAX_RESERVE_GAP",
    "NODE_ID_LABEL",
    "FrameworkNameError",
    "NodeIdAllocator",
    "NodeIdError",
    "TaskIdError",
    "framework_name_problem",
    "new_launch_id",
    "node_id_from_task_id",
    "node_name",
    "task_id_for",
    "try_node_id_from_task_id",
    "validate_framework_name",
    "volume_names",
]
