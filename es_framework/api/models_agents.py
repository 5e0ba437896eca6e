"""The agents' and the operator's models of the REST API: the blocked agents of ``GET /v1/cluster``
and ``GET /v1/agents``, ``DELETE /v1/agents/{agent_id}/failures`` (:mod:`es_framework.api.agents`),
and the missing nodes waiting for an offer, every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from es_framework.api.models_storage import Time


class AgentCheck(BaseModel):
    name: str = Field(description="the limit (vm.max_map_count, max file descriptors, …)")
    found: str = Field(description="what the agent has")
    needed: str = Field(description="what Elasticsearch needs")
    fix: str = Field(description="what the operator does about it on the agent")


class BlockedAgent(BaseModel):
    agent_id: str
    hostname: str
    checks: list[AgentCheck] = Field(description="the agent checks it failed")
    blocked_at: Time = Field(description="when the failure was seen")
    blocked_until: Time = Field(description="when nodes may launch there again (--agentFailureBackoff later)")
    node_id: int = Field(ge=1, description="the node whose task failed there")
    task_id: str
    source: Literal["report", "message"] = Field(
        description="report: the executor checked the agent; message: Elasticsearch's exit-78 message (an "
        "executor of an earlier release)"
    )
    message: str = Field(description="the agent_check decline reason: what failed, until when, fix")


class Agent(BaseModel):
    agent_id: str
    hostname: str
    blocked: BlockedAgent | None = Field(description="its agent-check block in force; null when it may take nodes")


class AgentFailuresCleared(BaseModel):
    agent_id: str
    message: str


class WaitingReason(BaseModel):
    rule: str
    count: int = Field(ge=1)
    last_message: str = Field(description="why the last such offer was declined")


class Waiting(BaseModel):
    node_ids: list[int] = Field(description="the lowest missing node ids (at most 20)")
    missing: int = Field(ge=1, description="how many nodes are missing in all")
    since: Time = Field(description="when this set of nodes started waiting")
    reasons: list[WaitingReason] = Field(
        description="offers declined since then, by first failing rule; most first (empty before the first decline)"
    )
    message: str = Field(description="the same in one sentence, as the scheduler logs it")
