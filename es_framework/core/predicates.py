"""The disruption planner's predicates by name, and which of them an operator may disable.

Every predicate a node restart waits for is named (:data:`PREDICATES`, in the order the planner
checks them, :mod:`es_framework.core.disruption`), after ECK's upgrade predicates
(elastic/cloud-on-k8s, ``docs/reference/upgrade-predicates.md``). ECK lets an operator disable some
of them by name (the ``eck.k8s.elastic.co/disable-upgrade-predicates`` annotation, ECK 2.1) for a
cluster that cannot get through an upgrade otherwise; here the operator disables them for one
rollout (``POST /v1/cluster/restart`` or ``POST /v1/rollouts/{id}/predicates``), and the set ends
with that rollout. The predicates that keep the planner fail-closed and bounded
(:data:`NEVER_DISABLED`) are never disabled: no answer from Elasticsearch, a node not running or
already stopping, and ``--maxUnavailable``. Kept apart from the planner so that the rollout's data
and its persisted form can check a name without importing the planner.
"""

from __future__ import annotations

from collections.abc import Iterable

from es_framework.core.operations import OperatorError

PREDICATES = (
    "elasticsearch_answered",
    "node_running",
    "skip_already_stopping",
    "max_unavailable",
    "one_master_at_a_time",
    "master_quorum",
    "cluster_green",
    "shards_settled",
    "started_copy_elsewhere",
)
NEVER_DISABLED = frozenset({"elasticsearch_answered", "node_running", "skip_already_stopping", "max_unavailable"})
#: What an operator may disable (by name), in the planner's order.
DISABLEABLE = tuple(p for p in PREDICATES if p not in NEVER_DISABLED)
#: What a rollout's one-step ``force`` disables.
FORCEABLE = frozenset({"cluster_green", "shards_settled", "started_copy_elsewhere"})


def check_disabled(names: Iterable[str]) -> frozenset[str]:
    """The predicates an operator asked to disable, or :class:`OperatorError` (400) naming the first
    unknown one or one that is never disabled; nothing is changed by a refusal."""
    chosen = frozenset(names)
    for name in sorted(chosen):
        if name not in PREDICATES:
            raise OperatorError(400, f"no predicate is called {name[:60]!r}; known: {', '.join(PREDICATES)}")
        if name in NEVER_DISABLED:
            raise OperatorError(400, f"the predicate {name} cannot be disabled; these can: {', '.join(DISABLEABLE)}")
    return chosen
