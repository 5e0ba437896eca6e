"""The rollouts' models of the REST API: ``GET /v1/rollouts``, ``POST /v1/cluster/restart``,
``POST /v1/rollouts/{rollout_id}/{command}``, ``…/force`` and ``…/predicates``
(:mod:`es_framework.api.rollouts`), every field described; and the bodies those commands take."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from es_framework.api.models_storage import Time
from es_framework.api.rollouts import MAX_FORCE_REASON, MAX_PREDICATES
from es_framework.core.predicates import DISABLEABLE, PREDICATES

StepState = Literal["pending", "draining", "restarting", "waiting-healthy", "done", "failed", "skipped"]
#: The predicates that may be disabled (the others are never: a 400 names such a name).
Disableable = Literal[DISABLEABLE]  # type: ignore[valid-type]
Predicate = Literal[PREDICATES]  # type: ignore[valid-type]


class ForceBody(BaseModel):
    """The optional body of the commands that may go past the disruption planner (a rollout's ``force``,
    a node's restart and replace): the operator's reason, logged with the command."""

    model_config = ConfigDict(extra="forbid")
    force: StrictStr = Field(pattern=r"\S", max_length=MAX_FORCE_REASON, description="why, in a few words")


class PredicatesBody(BaseModel):
    """``{"disable_predicates": [...]}``: the predicates disabled for a rollout's steps."""

    model_config = ConfigDict(extra="forbid")
    disable_predicates: list[Disableable] = Field(
        max_length=MAX_PREDICATES,
        description="predicates to disable by name (the others are never disabled); [] disables none",
    )


class RolloutStep(BaseModel):
    node_id: int = Field(ge=1)
    position: int = Field(ge=0, description="its place in the order (0 first)")
    master_eligible: bool
    state: StepState
    since: Time | None = Field(description="when the step entered its state")
    reason: str | None = Field(description="why it failed or was skipped")
    attempts: int = Field(ge=0)


class Upgrade(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str


class Rollout(BaseModel):
    id: str = Field(pattern=r"^[a-z]{1,20}-[0-9]{1,20}$")
    reason: Literal["configuration", "restart", "executor"]
    state: Literal["running", "paused", "completed", "aborted"]
    created_at: Time
    finished_at: Time | None
    elapsed_s: float = Field(ge=0)
    done: int = Field(ge=0, description="steps done or skipped (progress n of total)")
    total: int = Field(ge=0)
    paused: str | None = Field(description="why it is paused (a failed step, the operator)")
    order: list[int] = Field(description="node ids in restart order")
    order_note: str | None = Field(description="what the order could not take into account")
    blocked_predicate: str | None = Field(description="the planner's predicate holding the next step")
    blocked_message: str | None
    upgrade: Upgrade | None = Field(
        description="the Elasticsearch versions a version upgrade goes from and to (yellow is allowed between "
        "its steps); null for any other rollout and for a finished one"
    )
    disabled_predicates: list[Predicate] = Field(
        description="predicates the operator disabled for this rollout's steps (POST "
        "/v1/rollouts/{rollout_id}/predicates); empty for a finished one"
    )
    steps: list[RolloutStep] = Field(description="empty for a finished one")


class Rollouts(BaseModel):
    current: Rollout | None = Field(description="under way or paused")
    finished: list[Rollout] = Field(description="the last few, newest first")
