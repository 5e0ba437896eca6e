"""The Elasticsearch calls of restarts (rollout steps and operator restarts): node shutdown, the
allocation setting, flush — and carrying out a :class:`~es_framework.core.rollout_prep.Prep`.

Calls as Elasticsearch's reference gives them: ``GET _nodes/shutdown`` (``{"nodes": [{"node_id",
"type", "status", …}]}``, get-shutdown.html), ``PUT _nodes/<node id>/shutdown`` with ``type`` and
``reason`` (both required, put-shutdown.html), ``DELETE _nodes/<node id>/shutdown``; the shutdown API
takes Elasticsearch's node id, not the name, so names are mapped with ``GET _nodes`` (nodes-info.html).
``PUT _cluster/settings`` with ``persistent`` (a null value removes a setting) and ``POST _flush``
(cluster-update-settings.html, indices-flush.html).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

from es_framework.core.engine_rollouts import node_id_of
from es_framework.core.rollout_prep import PRIMARIES, Prep
from es_framework.shell.es_client import ElasticsearchClient, ElasticsearchError
from identity.naming import node_name

log = logging.getLogger("es_framework.shell.monitor")

ALLOCATION_ENABLE = "cluster.routing.allocation.enable"
REASON = "es-mesos: restarting the node in place"


@dataclass(frozen=True)
class ShutdownRecord:
    """One entry of ``GET _nodes/shutdown``: Elasticsearch's node id, type and status, lower case."""

    node_id: str
    type: str
    status: str


def named_shutdowns(records: Iterable[ShutdownRecord], ids: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Node name -> (type, status) of the records whose node is in ``ids`` (name -> node id)."""
    names = {v: k for k, v in ids.items()}
    return {names[r.node_id]: (r.type, r.status) for r in records if r.node_id in names}


def restart_records_left(records: Iterable[ShutdownRecord], ids: Mapping[str, str], framework_name: str) -> bool:
    """Whether a ``restart`` record may be one of ours that is still to be cleared: one named after
    our nodes, or one whose node is not in the cluster now (a node restarting — possibly ours — is
    absent until it rejoins, and its record cannot be told apart until then) (pure)."""
    names = {v: k for k, v in ids.items()}
    for record in records:
        if record.type != "restart":
            continue
        name = names.get(record.node_id)
        if name is None or node_id_of(name, framework_name) is not None:
            return True
    return False


class RolloutClient(ElasticsearchClient):
    def node_ids(self) -> dict[str, str]:
        """Node name -> Elasticsearch node id of every node in the cluster."""
        answer = self._call("GET", "/_nodes?filter_path=nodes.*.name")
        nodes = answer.get("nodes") if isinstance(answer, Mapping) else None
        if not isinstance(nodes, Mapping):
            raise ElasticsearchError(f"GET {self.base}/_nodes: no node list")
        return {str(v["name"]): str(k) for k, v in nodes.items() if isinstance(v, Mapping) and v.get("name")}

    def shutdown_records(self) -> tuple[ShutdownRecord, ...]:
        """Every registered node shutdown, whether or not its node is in the cluster now."""
        answer = self._call("GET", "/_nodes/shutdown")
        rows = answer.get("nodes") if isinstance(answer, Mapping) else None
        if not isinstance(rows, list):
            raise ElasticsearchError(f"GET {self.base}/_nodes/shutdown: no node list")
        out = []
        for row in rows:
            if not isinstance(row, Mapping) or not all(isinstance(row.get(k), str) for k in ("node_id", "type")):
                raise ElasticsearchError(f"GET {self.base}/_nodes/shutdown: a malformed record")
            out.append(
                ShutdownRecord(str(row["node_id"]), str(row["type"]).lower(), str(row.get("status", "")).lower())
            )
        return tuple(out)

    def shutdowns(self, ids: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """Node name -> (type, status), lower case, of the registered node shutdowns of nodes in the
        cluster (``ids``: name -> node id); a record of a node not in the cluster is not named."""
        return named_shutdowns(self.shutdown_records(), ids)

    def allocation_enable(self) -> str | None:
        answer = self._call("GET", "/_cluster/settings?flat_settings=true")
        for scope in ("transient", "persistent"):  # transient wins in Elasticsearch
            settings = answer.get(scope) if isinstance(answer, Mapping) else None
            if isinstance(settings, Mapping) and settings.get(ALLOCATION_ENABLE) is not None:
                return str(settings[ALLOCATION_ENABLE])
        return None

    def put_shutdown(self, es_id: str, reason: str) -> None:
        self._call("PUT", f"/_nodes/{es_id}/shutdown", body={"type": "restart", "reason": reason})

    def delete_shutdown(self, es_id: str) -> None:
        self._call("DELETE", f"/_nodes/{es_id}/shutdown", ok=(200, 404))

    def put_settings(self, settings: Mapping[str, str | None]) -> None:
        self._call("PUT", "/_cluster/settings", body={"persistent": dict(settings)})

    def flush(self) -> None:
        self._call("POST", "/_flush")


def _primaries(client: RolloutClient) -> None:
    client.put_settings({ALLOCATION_ENABLE: PRIMARIES})
    client.flush()


def carry_out(client: RolloutClient, prep: Prep, framework_name: str, ids: Mapping[str, str]) -> None:
    """Send what ``prep`` asks for; an error is logged and tried again next round (nothing is
    reported ready that Elasticsearch did not confirm)."""
    calls: list[tuple[str, Callable[[], None]]] = []
    for node_id in prep.register:
        es_id = ids.get(node_name(framework_name, node_id))
        if es_id is not None:
            calls.append(
                (f"node {node_id}: node shutdown restart registered", partial(client.put_shutdown, es_id, REASON))
            )
    if prep.restore:
        settings = dict(prep.restore)
        calls.append((f"cluster settings put back: {settings}", partial(client.put_settings, settings)))
    elif prep.primaries:
        which = ", ".join(str(i) for i in prep.primaries)
        calls.append(
            (f"node {which}: allocation {PRIMARIES} set and flushed before the stop", partial(_primaries, client))
        )
    for node_id in prep.clear:
        es_id = ids.get(node_name(framework_name, node_id))
        if es_id is not None:
            calls.append(
                (f"node {node_id}: restarted; its node shutdown cleared", partial(client.delete_shutdown, es_id))
            )
    for what, call in calls:
        try:
            call()
            log.info("%s", what)
        except ElasticsearchError as error:
            log.warning("%s failed (tried again next round): %s", what.split(":")[0], error)
