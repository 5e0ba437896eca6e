"""The configuration's models of the REST API: ``GET`` and ``PUT /v1/cluster/configuration``
(:mod:`es_framework.api.configuration`), every field described. Whether a value is valid is the flag
parser's to say, as on the command line (:mod:`es_framework.core.config_change`); the change's model
states the JSON types only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model

from es_framework.api.models_storage import Time
from es_framework.core.config_change import CHANGEABLE_FLAGS, NUMBER_FLAGS

Changeable = Literal[CHANGEABLE_FLAGS]  # type: ignore[valid-type]
_POSITIVE_INT = Annotated[StrictInt, Field(ge=1)]
_POSITIVE = Annotated[StrictFloat | StrictInt, Field(gt=0, allow_inf_nan=False)]


def _flag_type(name: str) -> Any:
    # JSON's types only: the text of any value goes to the flag's own parser.
    if name == "elasticsearchNofile":
        return _POSITIVE_INT | StrictStr
    if name in NUMBER_FLAGS:
        return _POSITIVE | StrictStr
    return Annotated[StrictStr | None, Field(description="null or empty: unset")]


class _Change(BaseModel):
    """Flags to change, by their command-line names; a value equal to the flag given at start removes its
    override."""

    # At least one flag, and only changeable ones: stated here, enforced (400) by the core, whose
    # refusal says more than pydantic's could (an unknown flag's likely meaning, a flag that needs a
    # scheduler restart), so other names are let through the model to reach it.
    model_config = ConfigDict(extra="allow", json_schema_extra={"minProperties": 1, "additionalProperties": False})


#: Flags to change, by their command-line names; a value equal to the flag given at start removes its
#: override. Built from :data:`CHANGEABLE_FLAGS`, so a newly changeable flag is documented with it.
_FIELDS: dict[str, Any] = {name: (_flag_type(name), None) for name in CHANGEABLE_FLAGS}
ConfigurationChange: type[_Change] = create_model("ConfigurationChange", __base__=_Change, **_FIELDS)


class ConfigurationOverride(BaseModel):
    value: str = Field(description="the text the flag's parser reads")
    over: Any = Field(description="the flag's value at start when the override was made")
    at: Time | None


class Configuration(BaseModel):
    changeable: list[Changeable]
    values: dict[str, Any] = Field(description="the values the scheduler runs with (secrets masked)")
    flags: dict[str, Any] = Field(description="the values given at start (secrets masked)")
    overrides: dict[str, ConfigurationOverride] = Field(description="flag name -> the override made through the API")
    fingerprint: str | None = Field(description="of the node-shaping configuration recorded")


class ConfigurationRollout(BaseModel):
    id: str
    order: list[int] = Field(description="node ids in order")


class ConfigurationChanged(BaseModel):
    changed: list[str] = Field(description="empty: no change")
    message: str
    rollout: ConfigurationRollout | None = Field(
        description="the configuration rollout created (GET /v1/rollouts follows it)"
    )
    overrides: dict[str, ConfigurationOverride] = Field(description="flag name -> the override made through the API")
    warnings: list[str]
