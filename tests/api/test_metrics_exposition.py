"""``/metrics`` as prometheus_client writes it: every family's name, type, help and label names pinned
and parsed back with prometheus_client's parser, values round-tripped for any input, no global
registry, and label sets that do not grow with the cluster."""

from __future__ import annotations

from types import MappingProxyType

import prometheus_client
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY

from es_framework.api.app import ApiApp
from es_framework.api.core import Metrics
from es_framework.api.metrics import CONTENT_TYPE, render_metrics
from es_framework.core.node_state import TaskState
from es_framework.dev.fake_api import FakeCore
from strategies import strategy_for
from tests.api.http_call import call
from tests.api.test_scheduler_api import scheduler_core
from tests.core.test_engine import launched, make, status
from tests.harness.builders import offer

#: Every family as the parser names it (a counter without ``_total``): type, help, label names.
FAMILIES = {
    "es_mesos_nodes": ("gauge", "Node records by task state.", ("state",)),
    "es_mesos_desired_nodes": ("gauge", "Number of nodes the operator asked for.", ()),
    "es_mesos_running_nodes": ("gauge", "Number of nodes whose task is running.", ()),
    "es_mesos_node_ids_in_use": ("gauge", "Node ids reserved by a node record.", ()),
    "es_mesos_registered": ("gauge", "1 while the scheduler is subscribed to Mesos.", ()),
    "es_mesos_offers_received": ("counter", "Resource offers received from Mesos.", ()),
    "es_mesos_offers_accepted": ("counter", "Resource offers used to launch a node.", ()),
    "es_mesos_offers_declined": ("counter", "Resource offers declined, by reason.", ("reason",)),
    "es_mesos_reconciliations": ("counter", "Task reconciliations started.", ()),
    "es_mesos_failovers": (
        "counter",
        "Leadership take-overs and re-subscriptions with a known framework id.",
        (),
    ),
    "es_mesos_drain_shards_left": ("gauge", "Shards still on a node being drained.", ("node_id",)),
}

FULL = Metrics(
    nodes_by_state=MappingProxyType({"TASK_RUNNING": 2, "LAUNCHING": 1}),
    desired_nodes=4,
    running_nodes=2,
    node_ids_in_use=3,
    registered=True,
    offers_received=7,
    offers_accepted=3,
    offers_declined=MappingProxyType({"mem": 4}),
    reconciliations=1,
    failovers=2,
    drain_shards_left=MappingProxyType({4: 9}),
)


def families(text: str) -> dict[str, prometheus_client.Metric]:
    found = {f.name: f for f in text_string_to_metric_families(text)}
    assert len(found) == len(list(text_string_to_metric_families(text))), "a family is declared twice"
    return found


def series(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def test_every_family_its_type_help_and_label_names() -> None:
    parsed = families(render_metrics(FULL))
    assert list(parsed) == list(FAMILIES), "families missing, extra or out of order"
    for name, (kind, help_text, label_names) in FAMILIES.items():
        family = parsed[name]
        assert (family.type, family.documentation) == (kind, help_text), name
        assert family.samples, f"{name} has no sample"
        for sample in family.samples:
            assert tuple(sample.labels) == label_names, sample
            # A counter's sample keeps the _total name the hand-written writer used.
            assert sample.name == (name + "_total" if kind == "counter" else name)


def test_an_empty_snapshot_declares_every_family_and_writes_no_labelled_sample() -> None:
    text = render_metrics(Metrics())
    parsed = families(text)
    assert list(parsed) == list(FAMILIES)
    for name, (_, _, label_names) in FAMILIES.items():
        assert len(parsed[name].samples) == (0 if label_names else 1), name
    assert all(value == 0 for value in series(text).values())


def test_the_text_is_prometheus_clients_own_format() -> None:
    # The lines a scraper keys on, as prometheus_client writes them (numbers as Go floats).
    text = render_metrics(FULL)
    assert "# TYPE es_mesos_offers_declined_total counter\n" in text
    assert 'es_mesos_offers_declined_total{reason="mem"} 4.0\n' in text
    assert 'es_mesos_drain_shards_left{node_id="4"} 9.0\n' in text
    assert "es_mesos_registered 1.0\n" in text
    assert CONTENT_TYPE == CONTENT_TYPE_PLAIN_0_0_4


def test_labelled_samples_are_in_a_stable_order() -> None:
    metrics = Metrics(
        nodes_by_state=MappingProxyType({"TASK_RUNNING": 1, "LAUNCHING": 2}),
        drain_shards_left=MappingProxyType({10: 1, 2: 3}),
    )
    lines = render_metrics(metrics).splitlines()
    assert [line for line in lines if line.startswith("es_mesos_nodes{")] == [
        'es_mesos_nodes{state="LAUNCHING"} 2.0',
        'es_mesos_nodes{state="TASK_RUNNING"} 1.0',
    ]
    # By node id as a number, not as text.
    assert [line for line in lines if line.startswith("es_mesos_drain_shards_left{")] == [
        'es_mesos_drain_shards_left{node_id="2"} 3.0',
        'es_mesos_drain_shards_left{node_id="10"} 1.0',
    ]


counts = st.integers(min_value=0, max_value=2**53)
# Label values come from outside (Mesos task states, rule names): any text must survive the escaping.
label_text = st.text(max_size=20)


@given(
    st.dictionaries(label_text, counts, max_size=5),
    st.dictionaries(label_text, counts, max_size=5),
    st.dictionaries(st.integers(min_value=1, max_value=10**6), counts, max_size=5),
    counts,
    st.booleans(),
)
def test_any_snapshot_parses_back_to_its_values(
    by_state: dict[str, int], declined: dict[str, int], drain: dict[int, int], received: int, registered: bool
) -> None:
    metrics = Metrics(
        nodes_by_state=MappingProxyType(by_state),
        offers_declined=MappingProxyType(declined),
        drain_shards_left=MappingProxyType(drain),
        offers_received=received,
        registered=registered,
    )
    parsed = series(render_metrics(metrics))
    assert {labels: v for (name, labels), v in parsed.items() if name == "es_mesos_nodes"} == {
        frozenset({("state", k)}): v for k, v in by_state.items()
    }
    assert {labels: v for (name, labels), v in parsed.items() if name == "es_mesos_offers_declined_total"} == {
        frozenset({("reason", k)}): v for k, v in declined.items()
    }
    assert {labels: v for (name, labels), v in parsed.items() if name == "es_mesos_drain_shards_left"} == {
        frozenset({("node_id", str(k))}): v for k, v in drain.items()
    }
    assert parsed[("es_mesos_offers_received_total", frozenset())] == received
    assert parsed[("es_mesos_registered", frozenset())] == int(registered)


def test_no_global_registry_and_no_process_collectors(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(collector: object) -> None:
        raise AssertionError("the exposition registered into prometheus_client's default registry")

    monkeypatch.setattr(REGISTRY, "register", refuse)
    text = render_metrics(FULL)
    assert all(name.startswith("es_mesos_") for name in families(text)), "a process/platform/gc family leaked in"


def test_two_apps_in_one_process_each_expose_their_own_core() -> None:
    small, big = FakeCore(), FakeCore(desired_nodes=5)
    for core, desired in ((small, 3), (big, 5), (small, 3)):
        answer = call(ApiApp(core, token=None), "GET", "/metrics")
        assert answer.status == 200
        assert answer.headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4
        assert series(answer.body.decode())[("es_mesos_desired_nodes", frozenset())] == desired
        assert answer.body.decode() == render_metrics(core.metrics())


def _real_metrics(nodes: int) -> str:
    """/metrics of the real scheduler core with ``nodes`` launched, a third running, a third failed, and
    offers declined for every reason an engine can give here."""
    engine, _, _ = make(elasticsearchNodes=str(nodes))
    task_ids = launched(engine, *range(1, nodes + 1))
    for node_id, task_id in task_ids.items():
        state = ("TASK_RUNNING", "TASK_FAILED", "TASK_STAGING")[node_id % 3]
        engine.on_updates([status(task_id, state, f"agent-{node_id}")])
    engine.on_offers([offer(n, mem=1) for n in range(1, nodes + 1)])
    engine.on_offers([{"id": {"value": f"bad-offer-{n}"}} for n in range(nodes)])
    return call(ApiApp(scheduler_core(engine), token=None), "GET", "/metrics").body.decode()


def test_label_sets_do_not_grow_with_the_cluster() -> None:
    small, large = _real_metrics(6), _real_metrics(60)
    assert series(small).keys() == series(large).keys()
    rules = {rule.name for rule in strategy_for(make()[0].config).rules} | {"malformed", "store_unavailable"}
    for name, labels in series(large):
        for key, value in labels:
            if key == "state":
                assert value in {s.value for s in TaskState}
            elif key == "reason":
                assert value in rules
            else:
                # The one per-node label: a series per node being drained (none here).
                assert (name, key) == ("es_mesos_drain_shards_left", "node_id")
