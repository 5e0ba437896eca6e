"""``GET /metrics``: the scheduler's :class:`Metrics` in Prometheus' text exposition format 0.0.4.

The text is written by ``prometheus_client`` (its registry and ``generate_latest``), not by hand:
escaping label values and help text, the ``_total`` suffix of counters and number formatting are
the library's. The values are not instruments updated as events happen: the scheduler already
keeps them in one consistent snapshot (:meth:`es_framework.api.core.ApiCore.metrics`), so this
module follows prometheus_client's "custom collector" pattern, meant for proxying values kept
elsewhere (https://prometheus.github.io/client_python/collector/custom): a :class:`Collector`
whose ``collect`` builds ``GaugeMetricFamily``/``CounterMetricFamily`` objects from the snapshot
at scrape time.

Each exposition gets a fresh ``CollectorRegistry``, never the library's global default ``REGISTRY``:
that one also carries the process, platform and garbage-collector collectors (which this endpoint
never exposed) and is shared by the whole interpreter, so two API apps in one process (the tests
build many) would register colliding names.

Label sets are bounded, whatever the number of nodes or agents: ``state`` by Mesos' task states,
``reason`` by the offer rules' names plus ``malformed``, ``store_unavailable`` and ``maintenance``.
``node_id`` on ``es_mesos_drain_shards_left`` would grow with the cluster (a scale-down from 10,000
to 5,000 nodes has 5,000 leaving nodes with a known count once asked), so it keeps at most
:data:`DRAIN_SERIES` series, the nodes with the most shards left (ties: the lower node id), and one
``node_id="other"`` series with the shards left on all the rest: ``sum(es_mesos_drain_shards_left)``
stays the whole count, and the exposition stays a few kilobytes at any cluster size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from es_framework.api.core import Metrics

#: What ``generate_latest`` writes (the format Prometheus scrapes when it negotiates nothing else).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_PREFIX = "es_mesos_"
#: The most ``es_mesos_drain_shards_left`` series with a node id (then one ``node_id="other"``).
DRAIN_SERIES = 20
OTHER_NODES = "other"


def drain_series(shards_left: Mapping[int, int]) -> list[tuple[str, int]]:
    """The ``(node_id label, shards)`` samples of ``es_mesos_drain_shards_left``: the
    :data:`DRAIN_SERIES` nodes with most shards left, by node id as a number (2 before 10), then
    ``other`` with the sum of the rest when there is a rest."""
    ranked = sorted(shards_left.items(), key=lambda item: (-item[1], item[0]))
    shown = [(str(node), shards) for node, shards in sorted(ranked[:DRAIN_SERIES])]
    if len(ranked) > DRAIN_SERIES:
        shown.append((OTHER_NODES, sum(shards for _, shards in ranked[DRAIN_SERIES:])))
    return shown


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(_PREFIX + name, help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(_PREFIX + name, help_text, value=value)


def _labelled(family: GaugeMetricFamily | CounterMetricFamily, samples: Iterable[tuple[str, float]]) -> Metric:
    for label, value in samples:
        family.add_metric([label], value)
    return family


class SnapshotCollector(Collector):
    """The families of one :class:`Metrics` snapshot, in a fixed order (each declared even when empty)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield _labelled(
            GaugeMetricFamily(_PREFIX + "nodes", "Node records by task state.", labels=["state"]),
            # Sorted so that the text is the same for the same snapshot, whatever the mapping's order.
            sorted(m.nodes_by_state.items()),
        )
        yield _gauge("desired_nodes", "Number of nodes the operator asked for.", m.desired_nodes)
        yield _gauge("running_nodes", "Number of nodes whose task is running.", m.running_nodes)
        yield _gauge("node_ids_in_use", "Node ids reserved by a node record.", m.node_ids_in_use)
        yield _gauge("registered", "1 while the scheduler is subscribed to Mesos.", int(m.registered))
        yield _counter("offers_received_total", "Resource offers received from Mesos.", m.offers_received)
        yield _counter("offers_accepted_total", "Resource offers used to launch a node.", m.offers_accepted)
        yield _labelled(
            CounterMetricFamily(
                _PREFIX + "offers_declined_total", "Resource offers declined, by reason.", labels=["reason"]
            ),
            sorted(m.offers_declined.items()),
        )
        yield _counter("reconciliations_total", "Task reconciliations started.", m.reconciliations)
        yield _counter(
            "failovers_total", "Leadership take-overs and re-subscriptions with a known framework id.", m.failovers
        )
        yield _labelled(
            GaugeMetricFamily(
                _PREFIX + "drain_shards_left", "Shards still on a node being drained.", labels=["node_id"]
            ),
            drain_series(m.drain_shards_left),
        )


def render_metrics(metrics: Metrics) -> str:
    """The exposition text for one snapshot (ends with a newline, as the format requires)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(metrics))
    return generate_latest(registry).decode("utf-8")
