"""The Elasticsearch side of maintenance moves (:mod:`es_framework.core.maintenance_moves`): register
node shutdown ``restart`` for a node that moves with its external volumes, and keep the restarts'
clean-up (:mod:`es_framework.core.rollout_prep`) off the records of moves under way. The allocation
exclusion of a local-disk move is set by the monitor with the scale-down drain's list."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from es_framework.core.maintenance_moves import MovePrep
from es_framework.core.rollout_prep import Prep
from es_framework.shell.es_client import ElasticsearchError
from es_framework.shell.rollout_client import RolloutClient
from identity.naming import node_name

log = logging.getLogger("es_framework.shell.monitor")

REASON = "es-mesos: moving the node off an agent under Mesos maintenance"
#: The reason registered for the operator's replace (``POST /v1/nodes/<id>/replace``).
REPLACE_REASON = "es-mesos: the operator replaces the node (same id and volumes, launched again on any agent)"


def without_held(prep: Prep, moves: MovePrep) -> Prep:
    """``prep`` without clearing the ``restart`` records that moves under way registered."""
    return replace(prep, clear=tuple(i for i in prep.clear if i not in moves.holding))


def carry_out_moves(client: RolloutClient, moves: MovePrep, framework_name: str, ids: Mapping[str, str]) -> None:
    """Send what ``moves`` asks for; an error is logged and tried again next round (nothing is
    reported ready that Elasticsearch did not confirm)."""
    for node_id, task_id in moves.register:
        es_id = ids.get(node_name(framework_name, node_id))
        if es_id is None:
            log.info("node %d task %s: not in the cluster's node list; its node shutdown waits", node_id, task_id)
            continue
        try:
            replacing = node_id in moves.replacing
            client.put_shutdown(es_id, REPLACE_REASON if replacing else REASON)
            what = "replace" if replacing else "maintenance move"
            log.info("node %d task %s: node shutdown restart registered before its %s", node_id, task_id, what)
        except ElasticsearchError as error:
            log.warning(
                "node %d task %s: node shutdown not registered (tried again next round): %s", node_id, task_id, error
            )
    for node_id, why in sorted(moves.waits.items()):
        log.debug("node %d: maintenance move waits: %s", node_id, why)
