"""The external-storage strategy: the volume driver (REX-Ray, ...) provides the storage, so no
rule looks at the agent's disk and the task takes none; an agent must be able to attach the
driver's volumes (``--externalVolumeAttribute``)."""

from es_framework.core.cluster_view import ValueCounts
from es_framework.core.offers import field_value
from strategies.base import Candidate, Finding, OfferStrategy, Rule, failed, passed
from strategies.constraints import check_constraint
from strategies.rules import CLUSTER_RULES, NODE_ID_RULES, PLACEMENT_RULES, RESOURCE_RULES


def volume_attribute(c: Candidate) -> Finding:
    """The agent has the attribute that says it can attach the driver's volumes; an agent without it
    never gets a node (its task could not mount them)."""
    wanted = c.config.external_volume_attribute
    assert wanted is not None  # the rule applies only then
    value = field_value(c.offer, wanted.field)
    flag = f"--externalVolumeAttribute {wanted.field}" + (f":{wanted.value}" if wanted.operator == "IS" else "")
    if check_constraint(wanted, value, ValueCounts()).passed:
        return passed(f"the agent has {wanted.field}={value} ({flag})")
    has = f"has {wanted.field}={value}" if value is not None else f"has no attribute {wanted.field}"
    return failed(f"the agent {has}: it cannot attach {c.config.external_volume_driver} volumes ({flag})")


def _wants_attribute(c: Candidate) -> bool:
    return c.config.external_volume_attribute is not None


VOLUME_ATTRIBUTE_RULE = Rule(
    "volume_attribute", volume_attribute, applies=_wants_attribute, offer_only=volume_attribute
)

EXTERNAL = OfferStrategy(
    name="external",
    rules=(*CLUSTER_RULES, VOLUME_ATTRIBUTE_RULE, *PLACEMENT_RULES, *RESOURCE_RULES, *NODE_ID_RULES),
    uses_local_disk=False,
)
