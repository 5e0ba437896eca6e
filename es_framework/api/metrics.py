"""``GET /metrics``: the scheduler's :class:`Metrics` in the Prometheus text exposition format 0.0.4.

A pure function of one snapshot, so the output is tested by parsing it back. Every family has its
``# HELP`` and ``# TYPE`` lines, counters end in ``_total``, and label values are escaped as the
format requires (backslash, double quote, newline), since decline reasons and task states come
from outside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from es_framework.api.core import Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "es_mesos_"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    full = _PREFIX + name
    lines = [f"# HELP {full} {_escape_help(help_text)}", f"# TYPE {full} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels.items())
        rendered = repr(float(value)) if not float(value).is_integer() else str(int(value))
        lines.append(f"{full}{{{label_text}}} {rendered}" if label_text else f"{full} {rendered}")
    return lines


def render_metrics(metrics: Metrics) -> str:
    """The exposition text for one snapshot (ends with a newline, as the format requires)."""
    lines: list[str] = []
    lines += _family(
        "nodes",
        "gauge",
        "Node records by task state.",
        (({"state": state}, count) for state, count in sorted(metrics.nodes_by_state.items())),
    )
    lines += _family("desired_nodes", "gauge", "Number of nodes the operator asked for.", [({}, metrics.desired_nodes)])
    lines += _family("running_nodes", "gauge", "Number of nodes whose task is running.", [({}, metrics.running_nodes)])
    lines += _family("node_ids_in_use", "gauge", "Node ids reserved by a node record.", [({}, metrics.node_ids_in_use)])
    lines += _family(
        "registered", "gauge", "1 while the scheduler is subscribed to Mesos.", [({}, int(metrics.registered))]
    )
    lines += _family(
        "offers_received_total", "counter", "Resource offers received from Mesos.", [({}, metrics.offers_received)]
    )
    lines += _family(
        "offers_accepted_total", "counter", "Resource offers used to launch a node.", [({}, metrics.offers_accepted)]
    )
    lines += _family(
        "offers_declined_total",
        "counter",
        "Resource offers declined, by reason.",
        (({"reason": reason}, count) for reason, count in sorted(metrics.offers_declined.items())),
    )
    lines += _family(
        "reconciliations_total", "counter", "Task reconciliations started.", [({}, metrics.reconciliations)]
    )
    lines += _family(
        "failovers_total",
        "counter",
        "Leadership take-overs and re-subscriptions with a known framework id.",
        [({}, metrics.failovers)],
    )
    lines += _family(
        "drain_shards_left",
        "gauge",
        "Shards still on a node being drained.",
        (({"node_id": str(node)}, shards) for node, shards in sorted(metrics.drain_shards_left.items())),
    )
    return "\n".join(lines) + "\n"
