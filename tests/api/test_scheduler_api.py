"""The running scheduler's API core (:class:`SchedulerCore`) over a real engine: what ``/v1/cluster``
says about declined offers, and that the answer keeps to the OpenAPI document."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import pytest
import schemathesis

from es_framework.api.app import ApiApp
from es_framework.api.core import ApiError, RuleOutcomeView
from es_framework.app.scheduler_api import SchedulerCore, cluster_monitor
from es_framework.config import MesosMaster
from es_framework.core.engine import Engine
from es_framework.core.node_state import TaskState
from es_framework.shell.driver import SchedulerShell
from es_framework.shell.monitor import ClusterMonitor
from es_framework.shell.state_store import Leadership
from tests.api.http_call import call
from tests.core.test_engine import launched, make, status
from tests.harness.builders import offer
from tests.shell.test_scheduler_shell import FakeLock, RecordingDriver

#: The normal strategy's rules, in its order (the strategy's own tests pin the order itself).
RULES = ["cluster_full", "agent_has_node", "gpu_agent", "cpus", "mem", "ports", "disk", "pinned", "backoff"]


def _no_driver(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("these tests never open a Mesos subscription")


def scheduler_core(engine: Engine) -> SchedulerCore:
    """The API core over ``engine`` as it is now (the shell publishes a snapshot when it is built)."""
    shell = SchedulerShell(engine.config, engine, driver_factory=_no_driver)
    monitor = ClusterMonitor(engine.config, lambda: shell.published.state, lambda node_id: None)
    return SchedulerCore(engine.config, shell, monitor)


def declined_engine() -> Engine:
    """Three nodes launched, then: a small offer from agent 1 (full cluster, agent taken, too little
    memory) and a malformed offer."""
    engine, _, _ = make()
    launched(engine, 1, 2, 3)
    engine.on_offers([offer(1, mem=1), offer(4)])
    engine.on_offers([{"id": {"value": "bad-offer"}}])
    return engine


def test_the_last_decline_of_each_rule_carries_every_rules_outcome_in_order() -> None:
    declines = {d.reason: d for d in scheduler_core(declined_engine()).cluster().declines}
    assert sorted(declines) == ["cluster_full", "malformed"]
    full = declines["cluster_full"]
    # Counted by the first failing rule only; the explanation is that of the last offer (agent 4's).
    assert full.count == 2
    assert [o.rule for o in full.outcomes] == RULES
    assert full.outcomes[0] == RuleOutcomeView("cluster_full", False, "cluster size fulfilled: 3 of 3 nodes present")
    assert [o.rule for o in full.outcomes if not o.passed] == ["cluster_full"]
    assert full.last_message == full.outcomes[0].reason
    # No rule judged a malformed offer: it has no explanation.
    assert declines["malformed"].outcomes == ()


def test_an_explanation_lists_the_other_failing_rules_too() -> None:
    engine, _, _ = make()
    launched(engine, 1, 2, 3)
    engine.on_offers([offer(1, mem=1)])
    (full,) = scheduler_core(engine).cluster().declines
    assert [(o.rule, o.passed) for o in full.outcomes] == [
        ("cluster_full", False),
        ("agent_has_node", False),
        ("gpu_agent", True),
        ("cpus", True),
        ("mem", False),
        ("ports", True),
        ("disk", True),
        ("pinned", True),
        ("backoff", True),
    ]
    assert full.outcomes[4].reason == "not enough mem: 1 MB offered, 2048 MB needed"


def test_cluster_json_shows_the_outcomes_in_order_and_metrics_stay_by_first_failing_rule() -> None:
    engine, _, _ = make()
    launched(engine, 1, 2, 3)
    engine.on_offers([offer(1, mem=1)])
    app = ApiApp(scheduler_core(engine), token="t")
    (decline,) = call(app, "GET", "/v1/cluster").json()["declines"]
    assert decline["reason"] == "cluster_full" and decline["count"] == 1
    assert [o["rule"] for o in decline["outcomes"]] == RULES
    assert decline["outcomes"][1] == {
        "rule": "agent_has_node",
        "passed": False,
        "reason": "this agent already runs node 1 of cluster mesos-ha (one node per agent)",
    }
    assert decline["outcomes"][2] == {"rule": "gpu_agent", "passed": True, "reason": "agent offers no GPUs"}
    declined = [line for line in call(app, "GET", "/metrics").body.decode().splitlines() if "declined" in line]
    assert [line for line in declined if not line.startswith("#")] == [
        'es_mesos_offers_declined_total{reason="cluster_full"} 1.0'
    ]


def test_the_real_cores_cluster_answer_keeps_to_the_openapi_document() -> None:
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", ApiApp(scheduler_core(declined_engine()), token="t"))
    case = schema["/v1/cluster"]["GET"].Case()
    response = case.call()
    assert [len(d["outcomes"]) for d in response.json()["declines"]] == [len(RULES), 0]
    case.validate_response(response)


def _local_mode_engine(**flags: str) -> Engine:
    """An engine configured as local mode's scheduler is: local mode, the development master's address."""
    engine, _, _ = make(None, mesosMaster="local", **flags)
    master = MesosMaster(kind="http", url="http://127.0.0.1:5050", hosts=(("127.0.0.1", 5050),))
    engine.config = replace(engine.config, mesos_master=master)
    return engine


def test_the_cluster_overview_carries_the_mode() -> None:
    on_mesos = scheduler_core(make()[0]).cluster()
    assert (on_mesos.mode, on_mesos.mode_note) == ("mesos", None)
    local = scheduler_core(_local_mode_engine()).cluster()
    assert local.mode == "local"
    assert local.mode_note is not None and "development tool" in local.mode_note
    assert "the demo node (python -m es_framework.dev.demo_es), which is NOT Elasticsearch" in local.mode_note
    with_elasticsearch = scheduler_core(_local_mode_engine(elasticsearchBinaryUrl=sys.executable)).cluster()
    assert with_elasticsearch.mode_note is not None and "NOT Elasticsearch" not in with_elasticsearch.mode_note
    assert with_elasticsearch.mode_note.endswith(f"the nodes run Elasticsearch from {sys.executable}")


def test_the_local_mode_answer_keeps_to_the_openapi_document() -> None:
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", ApiApp(scheduler_core(_local_mode_engine()), token="t"))
    case = schema["/v1/cluster"]["GET"].Case()
    response = case.call()
    assert response.json()["mode"] == "local" and "NOT Elasticsearch" in response.json()["mode_note"]
    case.validate_response(response)


def test_a_scheduler_that_does_not_lead_never_marks_an_agent_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1)
    engine.on_update(status(tasks[1], "TASK_UNREACHABLE", "agent-1-S0", uuid=None))
    posts: list[Any] = []
    monkeypatch.setattr("es_framework.app.operator_api.requests.post", lambda *a, **k: posts.append(a))
    lock = FakeLock()
    lock.status = Leadership.SUSPENDED  # the engine thread sees it: the engine may not act
    shell = SchedulerShell(engine.config, engine, driver_factory=_no_driver, lock=lock)
    shell._subscription._driver = RecordingDriver(shell, {}, "127.0.0.1:5050")
    core = SchedulerCore(engine.config, shell, ClusterMonitor(engine.config, lambda: engine.state, lambda n: None))
    shell._worker.start()
    try:
        with pytest.raises(ApiError) as refused:
            core.declare_gone(1)
        assert refused.value.status == 503 and posts == []
        lock.status = Leadership.LEADER  # leading when the engine thread checks, no longer at the POST

        def address_then_lost() -> str:
            lock.status = Leadership.LOST
            return "127.0.0.1:5050"

        monkeypatch.setattr(shell, "master_address", address_then_lost)
        with pytest.raises(ApiError) as refused:
            core.declare_gone(1)
        assert refused.value.status == 503 and posts == []
        assert engine.state.nodes[1].state is TaskState.UNREACHABLE
    finally:
        shell._stop.set()


def test_the_monitor_drains_only_while_the_engine_may_act() -> None:
    engine, _, _ = make()
    shell = SchedulerShell(engine.config, engine, driver_factory=_no_driver)
    monitor = cluster_monitor(engine.config, shell, lambda node_id: None)
    assert monitor._may_act()
    engine.may_act = False  # the lock held again, the state not read again yet
    assert shell.leading and not monitor._may_act()


def test_the_volume_inventory_is_built_once_per_published_state() -> None:
    engine, _, _ = make(externalVolumeDriver="rexray")
    launched(engine, 1, 2)
    core = scheduler_core(engine)
    first = core.volumes()
    assert core.volumes() is first  # the same state: the inventory is not built again
    assert {row.node_id for row in first.rows} == {1, 2}
    launched(engine, 3)
    core.shell.published = replace(core.shell.published, state=engine.state)
    after = core.volumes()
    assert after is not first and {row.node_id for row in after.rows} == {1, 2, 3}
