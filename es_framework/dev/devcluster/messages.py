"""Framework messages between schedulers and executors (development tool, not for production).

MESSAGE calls go to the executor's backend, executor messages become MESSAGE events on the
framework's stream; neither crosses an agent the master cannot reach (Mesos drops them too, they
are not reliable). Every message is also kept, ``data`` in base64, for ``GET /devcluster/state``.

Every function expects the master's lock held.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from es_framework.dev.devcluster.calls import value
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.master_state import MasterState

logger = logging.getLogger(__name__)


def _record(direction: str, framework_id: str, agent_id: str, executor_id: str, data: str) -> dict[str, Any]:
    return {
        "direction": direction,
        "framework_id": framework_id,
        "agent_id": agent_id,
        "executor_id": executor_id,
        "data": data,
    }


def executor_message(state: MasterState, ref: ExecutorRef, data: bytes) -> None:
    """An executor sends its framework a message."""
    encoded = base64.b64encode(data).decode("ascii")
    state.messages.append(_record("executor_to_framework", ref.framework_id, ref.agent_id, ref.executor_id, encoded))
    framework = state.frameworks.get(ref.framework_id)
    if framework is None or not state.agent_reachable(ref.agent_id):
        return
    state.send(
        framework,
        {
            "type": "MESSAGE",
            "message": {
                "agent_id": {"value": ref.agent_id},
                "executor_id": {"value": ref.executor_id},
                "data": encoded,
            },
        },
    )


def framework_message(state: MasterState, agent_side: AgentSide, framework: Framework, body: dict[str, Any]) -> None:
    """MESSAGE: the framework sends an executor a message."""
    agent_id = str(value(body.get("agent_id")))
    executor_id = str(value(body.get("executor_id")))
    data = str(body.get("data", ""))
    state.messages.append(_record("framework_to_executor", framework.id, agent_id, executor_id, data))
    if not state.agent_reachable(agent_id):
        logger.info("framework %s: message to executor %s on unreachable agent dropped", framework.id, executor_id)
        return
    state.backend.message(agent_side, ExecutorRef(framework.id, agent_id, executor_id), base64.b64decode(data))
