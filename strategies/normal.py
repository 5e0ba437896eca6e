"""The normal strategy: node data lives on the agent's local disk, so the offer must have the disk."""

from strategies.base import OfferStrategy
from strategies.rules import COMMON_RULES, DISK_RULE, NODE_ID_RULES

NORMAL = OfferStrategy(name="normal", rules=(*COMMON_RULES, DISK_RULE, *NODE_ID_RULES), uses_local_disk=True)
