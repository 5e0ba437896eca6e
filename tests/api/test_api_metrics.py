"""``/metrics``: the exposition text parsed back with Prometheus' own parser, and checked line by line."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from es_framework.api.app import ApiApp
from es_framework.api.core import Metrics
from es_framework.api.metrics import CONTENT_TYPE, render_metrics
from es_framework.dev.fake_api import FakeCore
from tests.api.http_call import call

METRICS = Metrics(
    nodes_by_state=MappingProxyType({"TASK_RUNNING": 2, "TASK_UNREACHABLE": 1}),
    desired_nodes=3,
    running_nodes=2,
    node_ids_in_use=3,
    registered=True,
    offers_received=20,
    offers_accepted=3,
    offers_declined=MappingProxyType({"mem": 5, 'odd "reason"\\\nline': 1}),
    reconciliations=2,
    failovers=1,
    drain_shards_left=MappingProxyType({3: 4}),
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_every_value_parses_back() -> None:
    parsed = samples(render_metrics(METRICS))
    assert parsed == {
        ("es_mesos_nodes", (("state", "TASK_RUNNING"),)): 2,
        ("es_mesos_nodes", (("state", "TASK_UNREACHABLE"),)): 1,
        ("es_mesos_desired_nodes", ()): 3,
        ("es_mesos_running_nodes", ()): 2,
        ("es_mesos_node_ids_in_use", ()): 3,
        ("es_mesos_registered", ()): 1,
        ("es_mesos_offers_received_total", ()): 20,
        ("es_mesos_offers_accepted_total", ()): 3,
        ("es_mesos_offers_declined_total", (("reason", "mem"),)): 5,
        ("es_mesos_offers_declined_total", (("reason", 'odd "reason"\\\nline'),)): 1,
        ("es_mesos_reconciliations_total", ()): 2,
        ("es_mesos_failovers_total", ()): 1,
        ("es_mesos_drain_shards_left", (("node_id", "3"),)): 4,
    }


def test_types_and_help() -> None:
    families = {f.name: f for f in text_string_to_metric_families(render_metrics(METRICS))}
    # The parser names a counter family without its _total suffix.
    assert families["es_mesos_offers_declined"].type == "counter"
    assert families["es_mesos_failovers"].type == "counter"
    assert families["es_mesos_nodes"].type == "gauge"
    assert families["es_mesos_drain_shards_left"].documentation == "Shards still on a node being drained."
    assert all(f.documentation for f in families.values())


def test_text_format_line_by_line() -> None:
    text = render_metrics(METRICS)
    assert text.endswith("\n")
    declared: set[str] = set()
    sample_line = re.compile(r'([a-z_]+)(\{([a-z_]+="([^"\\\n]|\\\\|\\"|\\n)*",?)*\})? -?[0-9.e+]+')
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter")
            assert name.endswith("_total") == (kind == "counter"), line
            declared.add(name)
            continue
        match = sample_line.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        assert match.group(1) in declared, f"sample before its TYPE: {line!r}"
    assert r'reason="odd \"reason\"\\\nline"' in text


def test_empty_families_still_declared() -> None:
    text = render_metrics(Metrics())
    assert "# TYPE es_mesos_drain_shards_left gauge" in text
    assert samples(text)[("es_mesos_registered", ())] == 0


@pytest.mark.parametrize("token", [None, "t"])
def test_metrics_endpoint(token: str | None) -> None:
    answer = call(ApiApp(FakeCore(), token=token), "GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == CONTENT_TYPE
    parsed = samples(answer.body.decode())
    assert parsed[("es_mesos_nodes", (("state", "TASK_RUNNING"),))] == 3
    assert parsed[("es_mesos_desired_nodes", ())] == 3
