"""The normal strategy: node data lives on the agent's local disk, so the offer must have the disk."""

from strategies.base import COMMON_RULES, OfferStrategy, Rule, enough_disk

NORMAL = OfferStrategy(name="normal", rules=(*COMMON_RULES, Rule("disk", enough_disk)), uses_local_disk=True)
