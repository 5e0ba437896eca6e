"""The pydantic models of the REST API's bodies: what each request takes and each answer holds. The
OpenAPI document (``GET /v1/openapi.json``) is generated from them and from the routes
(:mod:`es_framework.api.app`), so it states every constraint the server enforces on a request.

A request body is validated by its model (a 400 ``{"error": …}`` says what is wrong). An answer is
the core's snapshot written by :func:`es_framework.api.views.to_json`, not re-validated per request
(at 10,000 nodes that would copy every list again); its model documents it, and the schema-driven
tests (``tests/api/test_api_schema*.py``) check every answer against it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from es_framework.api.core import MODES
from es_framework.api.models_agents import BlockedAgent, Waiting
from es_framework.api.models_storage import Time
from es_framework.api.pages import CLUSTER_LIST_CAP
from es_framework.core.operations import MAX_NODES

#: The phrase ``POST /v1/nodes/{id}/gone`` requires, with the node id filled in.
GONE_CONFIRMATION = "node {node_id} is gone"
GONE_CONFIRMATION_PATTERN = "^node [1-9][0-9]* is gone$"


class Error(BaseModel):
    error: str = Field(description="what is wrong")


def _json_integer(value: object) -> object:
    # A JSON integer (5, or 5.0: the same number in JSON), never true (one node) nor the text "5".
    if isinstance(value, bool | str):
        raise ValueError("a JSON integer is needed")
    return value


class DesiredNodes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The cap is operations.set_desired_nodes' (one znode per node id).
    value: Annotated[int, at.Ge(1), at.Le(MAX_NODES), BeforeValidator(_json_integer)] = Field(
        description="number of nodes"
    )


class GoneConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: StrictStr = Field(
        pattern=GONE_CONFIRMATION_PATTERN, description="exactly 'node <id> is gone', with this node's id"
    )


class Health(BaseModel):
    alive: bool
    registered: bool
    message: str


class NodeCommandResult(BaseModel):
    node_id: int
    message: str


class Credentials(BaseModel):
    username: str = Field(examples=["elastic"])
    password: str


class Volumes(BaseModel):
    """External volume names; null with local storage."""

    config: str | None
    data: str | None


class Task(BaseModel):
    id: str = Field(description="Mesos task id")
    node_id: int = Field(ge=1)
    name: str = Field(description="Elasticsearch node name")
    state: str = Field(description="LAUNCHING or a Mesos task state (TASK_RUNNING, …)")
    hostname: str
    agent_id: str
    http_address: str | None = Field(description="host:port")
    transport_address: str | None = Field(description="host:port")
    volumes: Volumes
    started_at: Time | None
    version: str | None


class NodeEvent(BaseModel):
    time: Time | None
    state: str
    message: str
    kind: str | None = Field(
        description="a persisted entry's kind (launch, failure, stopped, command, restart, replace, scale-down, "
        "maintenance, rollout, replacement); null for a routine task update, not persisted"
    )
    rollout: str | None = Field(description="the rollout of a rollout step")
    step: str | None = Field(description="what the rollout step did: started, done, failed, …")


class Node(Task):
    healthy: bool | None
    outdated: bool = Field(description="launched with a configuration that has changed since")
    history: list[NodeEvent] = Field(description="oldest first")


class Endpoints(BaseModel):
    http: list[str] = Field(description="host:port of running nodes")
    transport: list[str]


class RuleOutcome(BaseModel):
    rule: str = Field(description="the offer rule (cluster_full, mem, ports, …)")
    passed: bool
    reason: str = Field(description="why it passed or failed")


class Drain(BaseModel):
    node_id: int
    shards_left: int | None
    status: str = Field(description="draining, waiting, ready, stopping, blocked or stalled")
    reason: str
    predicate: str | None = Field(
        description="the disruption planner's predicate that holds this leaving node back (e.g. max_unavailable: "
        "at most --maxUnavailable nodes away at once), also named in reason; null while the node is being drained"
    )


class Decline(BaseModel):
    reason: str = Field(description="the first failing rule, counted")
    count: int = Field(ge=1)
    last_message: str = Field(description="why the last such offer was declined")
    last_time: Time | None
    outcomes: list[RuleOutcome] = Field(
        description="the last such offer's complete explanation: every rule's outcome, in the strategy's order; "
        "empty when no rule judged the offer (malformed, store_unavailable)"
    )


class ClusterEvent(BaseModel):
    time: Time | None
    message: str
    node_id: int | None


class Cluster(BaseModel):
    cluster_name: str
    framework_name: str
    framework_id: str | None
    cluster_uuid: str | None
    configuration: dict[str, Any] = Field(description="secrets masked")
    desired_nodes: int = Field(ge=0)
    running_nodes: int = Field(ge=0)
    registered: bool
    health: str = Field(description="green, yellow, red or unknown")
    security_warning: str | None
    mode: Literal[MODES] = Field(  # type: ignore[valid-type]
        description="mesos: on a Mesos cluster; local: local mode, a development tool (a simulated Mesos cluster "
        "on one machine); development: a Mesos master on this machine's loopback (the development cluster)"
    )
    mode_note: str | None = Field(
        description="what to know about the mode (local mode: whether the nodes run the demo node, which is not "
        "Elasticsearch); null on a Mesos cluster"
    )
    drain: list[Drain] = Field(
        max_length=CLUSTER_LIST_CAP,
        description="leaving nodes (scale-down), drained one at a time by the disruption planner; the first "
        f"{CLUSTER_LIST_CAP} (drain_total counts them all)",
    )
    drain_total: int = Field(ge=0, description="leaving nodes in all")
    declines: list[Decline] = Field(description="offers declined, by the first failing rule; most frequent first")
    events: list[ClusterEvent] = Field(max_length=CLUSTER_LIST_CAP, description="newest first")
    blocked_agents: list[BlockedAgent] = Field(
        max_length=CLUSTER_LIST_CAP,
        description="agents that failed an agent check and get no node now, by agent id; the first "
        f"{CLUSTER_LIST_CAP} (blocked_agents_total counts them all, GET /v1/agents lists them)",
    )
    blocked_agents_total: int = Field(ge=0, description="blocked agents in all")
    start_blocked: str | None = Field(
        description="why no missing node can start: every agent that offered failed an agent check (each quoted); "
        "null otherwise"
    )
    demo_nodes: bool = Field(
        description="whether the nodes run the demo node (a development tool, not Elasticsearch): local mode "
        "without --elasticsearchBinaryUrl, or nodes that report the demo node's version"
    )
    mode_label: str = Field(
        description="the mode in a few words, as the web UI's header shows it (e.g. local mode · demo nodes, not "
        "Elasticsearch; development cluster; Mesos (production))"
    )
    waiting: Waiting | None = Field(
        description="the missing nodes waiting for an offer and why no offer fits (decline reasons by count since "
        "they started waiting); null when no node is missing"
    )
