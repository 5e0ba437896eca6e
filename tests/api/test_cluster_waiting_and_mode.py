"""Issue 15, through the real API core over a real engine: ``GET /v1/cluster`` says which node waits
for an offer and why none fits, the mode in words (local mode with demo nodes, the development
cluster, production), and whether the nodes run the demo node; the answer keeps to the document."""

from __future__ import annotations

import base64
from dataclasses import replace

import schemathesis

from es_framework.api.app import ApiApp
from es_framework.config import MesosMaster
from es_framework.core.engine import Engine
from tests.api.http_call import call
from tests.api.test_scheduler_api import scheduler_core
from tests.core.test_engine import launched, make, status
from tests.harness.builders import offer


def five_on_four() -> Engine:
    """Five nodes wanted, four agents that hold one each, offering twice more."""
    engine, _, _ = make(elasticsearchNodes="5")
    launched(engine, 1, 2, 3, 4)
    for _ in range(2):
        engine.on_offers([offer(n) for n in (1, 2, 3, 4)])
    return engine


def test_the_cluster_says_which_node_waits_and_why_no_offer_fits() -> None:
    app = ApiApp(scheduler_core(five_on_four()), token="t")
    answer = call(app, "GET", "/v1/cluster")
    assert answer.status == 200
    waiting = answer.json()["waiting"]
    assert (waiting["node_ids"], waiting["missing"]) == ([5], 1)
    assert waiting["reasons"] == [
        {
            "rule": "agent_has_node",
            "count": 8,
            "last_message": "this agent already runs node 4 of cluster mesos-ha (one node per agent)",
        }
    ]
    assert waiting["message"].startswith(
        "node 5 waiting for an offer: declined offers by first failing rule: agent_has_node 8"
    )
    assert waiting["since"].endswith("Z")
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    case = schema["/v1/cluster"]["GET"].Case()
    case.validate_response(case.call())


def test_no_waiting_entry_once_every_node_is_placed() -> None:
    engine, _, _ = make(elasticsearchNodes="3")
    launched(engine, 1, 2, 3)
    assert call(ApiApp(scheduler_core(engine)), "GET", "/v1/cluster").json()["waiting"] is None


def _with_master(engine: Engine, host: str) -> Engine:
    master = MesosMaster(kind="http", url=f"http://{host}:5050", hosts=((host, 5050),))
    engine.config = replace(engine.config, mesos_master=master)
    return engine


def test_the_mode_in_words() -> None:
    local = scheduler_core(_with_master(make(mesosMaster="local")[0], "127.0.0.1")).cluster()
    assert (local.mode, local.demo_nodes, local.mode_label) == (
        "local",
        True,
        "local mode · demo nodes, not Elasticsearch",
    )
    production = scheduler_core(_with_master(make()[0], "10.1.2.3")).cluster()
    assert (production.mode, production.demo_nodes, production.mode_label) == ("mesos", False, "Mesos (production)")

    # The development cluster: a master on the loopback; its nodes report the demo node's version.
    engine = _with_master(make(elasticsearchNodes="1")[0], "127.0.0.1")
    tasks = launched(engine, 1)
    development = scheduler_core(engine).cluster()
    assert (development.mode, development.demo_nodes, development.mode_label) == (
        "development",
        False,
        "development cluster",
    )
    report = '{"cluster_uuid": "_na_", "contract": 2, "version": "8.x-demo"}'
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0", data=_b64(report)))
    development = scheduler_core(engine).cluster()
    assert (development.demo_nodes, development.mode_label) == (
        True,
        "development cluster · demo nodes, not Elasticsearch",
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
