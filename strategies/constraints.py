"""Placement rules: the operator's constraints (``--constraints``), the spread over zones, and the zone
a zonal volume binds its node to.

Every operator follows Marathon (mesosphere/marathon ``src/main/scala/mesosphere/mesos/Constraints.scala``
and ``docs/docs/constraints.md``):

- the field is the agent's hostname (``hostname``/``@hostname``) or an attribute, compared as text
  in Marathon's format (:func:`es_framework.core.offers.attribute_text`); an agent without the
  attribute passes ``UNLIKE`` only;
- ``LIKE``/``UNLIKE``: the value fully matches / does not match the regular expression (Java's
  ``String.matches``; here :func:`re.fullmatch`);
- ``IS``: equal to the value, a scalar compared to the thousandth (``0.80`` is ``0.8``);
- ``UNIQUE``: no node on an agent with the same value; ``MAX_PER n``: fewer than n there;
- ``CLUSTER v``: the value is v; ``CLUSTER`` without a value: the value of the first node placed
  (here the lowest node id that has one), anything while no node has one;
- ``GROUP_BY [n]``: a value without a node always passes; a value with nodes passes only while it
  has the fewest nodes and at least n values have nodes (Marathon before 1.10, whose docs still
  describe it; 1.10 lets a group run ahead by up to its share, which an Elasticsearch cluster gains
  nothing from). Beyond Marathon, the values this cycle's offers bring count as expected too, so the
  spread is even within one cycle whatever order offers come in; only offers that could host a node
  count (:meth:`strategies.base.OfferStrategy.can_host`), so no value that can never take a node is
  waited for. Nodes on agents without the field never take part (they can never be evened out).

Counts come from :class:`es_framework.core.cluster_view.ValueCounts`: each check is a few lookups,
whatever the cluster's size.
"""

from __future__ import annotations

import re

from es_framework.config.constraints import Constraint
from es_framework.core.cluster_view import ValueCounts
from es_framework.core.offers import agent_zone, field_value
from strategies.base import Candidate, Finding, Rule, failed, passed

#: How many values without a node a reason names at most.
_NAMED = 3


def _nodes(n: int) -> str:
    return f"{n} node{'' if n == 1 else 's'}"


def _missing_field(c: Constraint) -> Finding:
    what = "hostname" if c.field.lstrip("@") == "hostname" else f"attribute {c.field}"
    if c.operator == "UNLIKE":
        return passed(f"the agent has no {what}, which UNLIKE accepts")
    return failed(f"the agent has no {what}")


def group_by(counts: ValueCounts, value: str, expected: int) -> Finding:
    """``GROUP_BY``: spread evenly over the values (``expected``: how many values to wait for at least)."""
    have = counts.count(value)
    if have == 0:
        return passed(f"{value} has no node yet")
    want = max(expected, counts.known)
    placed = len(counts.counts)
    if placed < want:
        waiting = counts.unplaced[:_NAMED]
        named = f" ({', '.join(waiting)}{', ...' if len(counts.unplaced) > _NAMED else ''})" if waiting else ""
        return failed(f"{value} has {_nodes(have)} while {want - placed} of {want} values have none yet{named}")
    if have > counts.smallest:
        return failed(f"{value} has {_nodes(have)}, {counts.smallest_value} only {counts.smallest}")
    return passed(f"{value} has {_nodes(have)}, the fewest of {placed} values")


def check_constraint(c: Constraint, value: str | None, counts: ValueCounts) -> Finding:
    """One constraint for an agent whose field has ``value`` (None: it has none)."""
    if value is None:
        return _missing_field(c)
    op, wanted = c.operator, c.value or ""
    if op == "LIKE":
        if re.fullmatch(wanted, value):
            return passed(f"{value} matches {wanted}")
        return failed(f"{value} does not match {wanted}")
    if op == "UNLIKE":
        if re.fullmatch(wanted, value):
            return failed(f"{value} matches {wanted}")
        return passed(f"{value} does not match {wanted}")
    if op == "IS":
        if value == c.is_value:
            return passed(f"{value} is {c.is_value}")
        return failed(f"{value} is not {c.is_value}")
    if op == "CLUSTER":
        target = c.value if c.value is not None else counts.first_value
        if target is None:
            return passed(f"{value}: the first node picks the value all others follow")
        if value == target:
            return passed(f"{value} is the cluster's value")
        source = "" if c.value is not None else f" (node {counts.first_node}'s)"
        return failed(f"{value} is not {target}{source}")
    have = counts.count(value)
    if op == "UNIQUE":
        if have:
            return failed(f"{value} already has {_nodes(have)}")
        return passed(f"{value} has no node")
    if op == "MAX_PER":
        limit = c.count or 0
        if have >= limit:
            return failed(f"{value} has {_nodes(have)}, at most {limit}")
        return passed(f"{value} has {_nodes(have)}, at most {limit}")
    return group_by(counts, value, c.count or 0)


def _report(findings: list[tuple[Constraint, Finding]]) -> Finding:
    failing = [(c, f) for c, f in findings if not f.passed]
    shown = failing or findings
    text = "; ".join(f"{c}: {f.reason}" for c, f in shown)
    return failed(text) if failing else passed(text)


def constraints(c: Candidate) -> Finding:
    """Every operator constraint; the reason names each failing one as written, with the agent's value."""
    empty = ValueCounts()
    return _report(
        [
            (k, check_constraint(k, field_value(c.offer, k.field), c.view.placement.get(k.field, empty)))
            for k in c.config.constraints
        ]
    )


#: Operators whose outcome depends on the agent alone (``CLUSTER`` only with a value).
_OFFER_ONLY = frozenset({"LIKE", "UNLIKE", "IS"})


def constraints_offer_only(c: Candidate) -> Finding:
    """What of the constraints no node placement can change: the matching operators, and the field's
    presence for the counting ones."""
    findings = []
    for k in c.config.constraints:
        value = field_value(c.offer, k.field)
        if value is None or k.operator in _OFFER_ONLY or (k.operator == "CLUSTER" and k.value is not None):
            findings.append((k, check_constraint(k, value, ValueCounts())))
    return _report(findings) if findings else passed("no constraint excludes this agent")


def zone_spread(c: Candidate) -> Finding:
    """Nodes spread over the zones known (of the nodes, and of this cycle's offers that could host
    one), like ``GROUP_BY`` over the zone; a node whose zonal volumes bind it to a zone goes back
    there whatever the spread."""
    zone = agent_zone(c.offer, c.config.zone_attribute)
    where = f"attribute {c.config.zone_attribute}" if c.config.zone_attribute else "fault domain"
    if zone is None:
        return failed(
            f"the agent has no zone ({where}) while other agents have zones: under zone awareness "
            "Elasticsearch gives a node without node.attr.zone no shards"
        )
    bound = c.context.node_zone
    if bound is not None and bound == zone:
        return passed(f"node {c.context.node_id} returns to zone {zone}, where its volumes are")
    finding = group_by(c.view.zones, zone, 0)
    return Finding(finding.passed, f"zone {finding.reason}")


def volume_zone(c: Candidate) -> Finding:
    """A node whose volumes can only be attached in one zone is launched in that zone only."""
    ctx = c.context
    zone = agent_zone(c.offer, c.config.zone_attribute)
    if ctx.node_id is None:
        if not any(node_id <= c.view.desired_nodes for node_id in ctx.zone_bound):
            return passed("no missing node's volumes are bound to a zone")
        return failed(
            "; ".join(
                f"node {i}'s volumes are in zone {z}, not {zone or 'this agent (no zone)'}"
                for i, z in sorted(ctx.zone_bound.items())
            )
        )
    bound = ctx.node_zone
    if bound is None:
        return passed(f"node {ctx.node_id}'s volumes are not bound to a zone")
    if bound == zone:
        return passed(f"node {ctx.node_id}'s volumes are in zone {zone}, this agent's")
    return failed(f"node {ctx.node_id}'s volumes are in zone {bound}, not {zone or 'this agent (no zone)'}")


def _has_constraints(c: Candidate) -> bool:
    return bool(c.config.constraints)


def _zones_known(c: Candidate) -> bool:
    return c.view.zones.known > 0


def _zone_bound_nodes(c: Candidate) -> bool:
    # Only the offer cycle binds ids to zones, and only for a driver whose volumes are zonal.
    return bool(c.context.zone_bound)


CONSTRAINTS_RULE = Rule("constraints", constraints, applies=_has_constraints, offer_only=constraints_offer_only)
ZONE_SPREAD_RULE = Rule("zone_spread", zone_spread, applies=_zones_known)
VOLUME_ZONE_RULE = Rule("volume_zone", volume_zone, applies=_zone_bound_nodes)
