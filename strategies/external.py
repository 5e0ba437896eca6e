"""The external-storage strategy: the volume driver (REX-Ray, ...) provides the storage, so no
rule looks at the agent's disk and the task takes none."""

from strategies.base import OfferStrategy
from strategies.rules import COMMON_RULES, NODE_ID_RULES

EXTERNAL = OfferStrategy(name="external", rules=(*COMMON_RULES, *NODE_ID_RULES), uses_local_disk=False)
