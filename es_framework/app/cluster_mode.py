"""What ``GET /v1/cluster`` says about how the framework runs and what its missing nodes wait for.

- **The mode**: ``local`` (``--mesosMaster local``, es_framework/dev/local.py), ``development`` (a
  Mesos master on this machine's loopback: the development cluster the tests run, never a
  production one) or ``mesos``.
- **Demo nodes**: in local mode without ``--elasticsearchBinaryUrl`` every node runs the demo node;
  elsewhere a node that reports the demo node's default version does
  (:func:`es_framework.core.engine_stats.runs_demo_node`). Production code never imports
  es_framework/dev: both come from the configuration and the executors' reports.
- **Waiting**: the engine's :class:`~es_framework.core.engine_stats.Waiting` as the API shows it.
"""

from __future__ import annotations

import ipaddress

from es_framework.api.core import MODE_DEVELOPMENT, MODE_LOCAL, MODE_MESOS, WaitingReason, WaitingView
from es_framework.config import Config
from es_framework.contract import NodeReport
from es_framework.core.engine_stats import Waiting, runs_demo_node
from es_framework.core.node_state import ClusterState


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cluster_mode(config: Config) -> str:
    """``local``, ``development`` (every Mesos master or ZooKeeper host is a loopback address) or ``mesos``."""
    if config.local_mode:
        return MODE_LOCAL
    hosts = config.mesos_master.hosts if config.mesos_master is not None else ()
    if hosts and all(_loopback(host) for host, _ in hosts):
        return MODE_DEVELOPMENT
    return MODE_MESOS


def demo_nodes(config: Config, state: ClusterState) -> bool:
    """Whether the nodes run the demo node (a development tool, not Elasticsearch)."""
    if runs_demo_node(config):
        return True
    return any(
        record.version is not None and runs_demo_node(config, NodeReport(version=record.version))
        for record in state.nodes.values()
    )


def waiting_view(waiting: Waiting | None, state: ClusterState) -> WaitingView | None:
    """The API's view of the waiting nodes; None when none is missing (also when the engine has not
    worked the latest state out yet and no node is missing in it)."""
    if waiting is None or state.missing_nodes == 0:
        return None
    return WaitingView(
        node_ids=waiting.node_ids,
        missing=waiting.missing,
        since=waiting.since,
        reasons=tuple(
            WaitingReason(rule, count, waiting.last_reasons.get(rule, rule)) for rule, count in waiting.ranked()
        ),
        message=waiting.sentence(),
    )
