"""``GET /v1/agents`` and ``DELETE /v1/agents/{agentId}/failures``: the agents that offered, which of
them failed an agent check (:mod:`es_framework.core.blocked_agents`), and lifting such a block once
the operator fixed the agent. Routed by :class:`es_framework.api.app.ApiApp`, which checks the token
of the DELETE as of every mutating request."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from es_framework.api.core import AgentCheckView, ApiCore, ApiError, BlockedAgentView
from es_framework.core.blocked_agents import BlockedAgent

logger = logging.getLogger("es_framework.api.app")

#: What an agent id in a path may be: Mesos' are ``<master uuid>-S<n>``; this keeps any plain id and
#: refuses what could only be a mistake (spaces, control characters, kilobytes).
AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$"


def blocked_view(block: BlockedAgent) -> BlockedAgentView:
    return BlockedAgentView(
        agent_id=block.agent_id,
        hostname=block.hostname,
        checks=tuple(AgentCheckView(c.name, c.found, c.needed, c.fix) for c in block.checks),
        blocked_at=block.since,
        blocked_until=block.until,
        node_id=block.node_id,
        task_id=block.task_id,
        source=block.source.value,
        message=block.sentence(),
    )


def clear_agent_failures(
    core: ApiCore, text: str, refuse: Callable[[int, str], Exception]
) -> tuple[int, dict[str, str]]:
    """Ask ``core`` to lift the block of agent ``text``: the status and body to answer. ``refuse``
    builds the exception the app answers with (400 for what is no agent id)."""
    if not re.fullmatch(AGENT_ID_PATTERN, text):
        raise refuse(400, f"{text[:60]!r} is not an agent id (Mesos agent ids look like <uuid>-S<n>)")
    try:
        message = core.clear_agent_failures(text)
    except ApiError as refused:
        logger.warning("clear agent %s failures refused (%d): %s", text, refused.status, refused.message)
        return refused.status, {"error": refused.message}
    logger.info("clear agent %s failures accepted: %s", text, message)
    return 200, {"agent_id": text, "message": message}
