"""Bootstrapping a brand-new cluster exactly once, cluster uuids, and node roles."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from es_framework.contract import NodeReport
from es_framework.core.bootstrap import (
    DATA_ROLES,
    MASTER_ROLES,
    decide_bootstrap,
    initial_master_nodes_for,
    is_master_eligible,
    node_roles,
)
from es_framework.core.describe import describe
from es_framework.core.node_state import ClusterState, TaskState, split_clusters
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.status_updates import Action, StatusUpdate, apply_status, parse_status
from tests.core.test_node_state import FW, cluster, running, tid, update


def data(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def reported(node_id: int, uuid: str, state: TaskState = TaskState.RUNNING, version: str = "8.15.3") -> StatusUpdate:
    return update(node_id, state, report=NodeReport(cluster_uuid=uuid, version=version, node_name=f"{FW}{node_id}"))


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("node_id", "masters", "eligible"), [(1, 3, True), (3, 3, True), (4, 3, False), (2, 1, False)])
def test_low_ids_are_master_eligible(node_id: int, masters: int, eligible: bool) -> None:
    assert is_master_eligible(node_id, masters) is eligible
    assert node_roles(node_id, masters) == (MASTER_ROLES if eligible else DATA_ROLES)
    assert "master" not in DATA_ROLES and "data" in MASTER_ROLES


# --- deciding the bootstrap list ----------------------------------------------------------------


def test_brand_new_cluster_decides_its_masters_once() -> None:
    state = decide_bootstrap(ClusterState(desired_nodes=5), FW, 3)
    assert state.bootstrap_masters == (f"{FW}1", f"{FW}2", f"{FW}3")
    # Deciding again changes nothing, even with other numbers.
    assert decide_bootstrap(replace(state, desired_nodes=1), FW, 1) is not None
    assert decide_bootstrap(replace(state, desired_nodes=1), FW, 1).bootstrap_masters == state.bootstrap_masters


def test_fewer_nodes_than_masters_bootstraps_with_all_nodes() -> None:
    assert decide_bootstrap(ClusterState(desired_nodes=1), FW, 3).bootstrap_masters == (f"{FW}1",)


@pytest.mark.parametrize(
    "state",
    [
        cluster(1, desired=3),  # a node exists: not brand-new
        ClusterState(desired_nodes=3, cluster_uuid="abc"),
        ClusterState(desired_nodes=3, bootstrap_masters=()),
    ],
)
def test_no_bootstrap_for_a_cluster_that_is_not_brand_new(state: ClusterState) -> None:
    assert decide_bootstrap(state, FW, 3).bootstrap_masters == state.bootstrap_masters


def test_view_offers_the_list_only_while_no_uuid_is_known() -> None:
    state = ClusterState(desired_nodes=3, bootstrap_masters=(f"{FW}1",))
    assert state.view(3).initial_master_nodes == (f"{FW}1",)
    assert replace(state, bootstrap_masters=()).view(3).initial_master_nodes == ()
    assert initial_master_nodes_for(1, (f"{FW}1",), 3) == (f"{FW}1",)
    assert initial_master_nodes_for(4, (f"{FW}1",), 3) == ()


def test_seed_hosts_follow_the_master_count() -> None:
    state = running(1, 2, 3)
    assert len(state.view(3).seed_hosts) == 3
    assert len(state.view(1).seed_hosts) == 1


# --- the uuid a node reports ---------------------------------------------------------------------


def test_status_data_is_read_as_the_contracts_node_report() -> None:
    def parsed(raw_data: object) -> NodeReport | None:
        raw = {"task_id": {"value": tid(1)}, "state": "TASK_RUNNING", "data": raw_data}
        return parse_status(raw).report

    assert parsed(data({"cluster_uuid": "u1", "version": "8.15.3", "node_name": "es1"})) == NodeReport(
        "u1", "8.15.3", "es1"
    )
    # A forming node says _na_: not a uuid.
    assert parsed(data({"cluster_uuid": "_na_"})) is None
    for bad in ("", "%%%", data([1]), data({"cluster_uuid": 5}), base64.b64encode(b"\xff").decode(), None, 3):
        assert parsed(bad) is None
    # A contract-2 executor names its contract; the scheduler reads it and decides as before.
    assert parsed(data({"cluster_uuid": "u", "contract": 2})) == NodeReport(cluster_uuid="u", contract=2)
    update = parse_status({"task_id": {"value": tid(1)}, "state": "TASK_RUNNING", "data": data({"cluster_uuid": "u"})})
    assert update.report == NodeReport(cluster_uuid="u")


def test_first_uuid_is_recorded_and_ends_bootstrapping() -> None:
    state = replace(running(1, 2, 3), bootstrap_masters=(f"{FW}1", f"{FW}2", f"{FW}3"))
    state, decision = apply_status(state, reported(2, "uuid-a"), FW)
    assert decision.action is Action.UPDATE and "uuid-a recorded" in decision.reason
    assert state.cluster_uuid == "uuid-a" and state.bootstrap_masters == ()
    assert state.nodes[2].cluster_uuid == "uuid-a" and state.nodes[2].version == "8.15.3"
    assert state.view(3).initial_master_nodes == ()
    # The same report again is a duplicate; the others joining are recorded per node only.
    assert apply_status(state, reported(2, "uuid-a"), FW)[1].action is Action.IGNORE
    state, decision = apply_status(state, reported(1, "uuid-a"), FW)
    assert decision.action is Action.UPDATE and state.nodes[1].cluster_uuid == "uuid-a"


def test_a_node_of_another_cluster_is_flagged_and_never_recorded_as_the_cluster() -> None:
    state, _ = apply_status(running(1, 2, 3), reported(1, "uuid-a"), FW)
    state, decision = apply_status(state, reported(3, "uuid-b"), FW)
    assert "NOT part of the cluster" in decision.reason
    assert state.cluster_uuid == "uuid-a"
    assert [r.node_id for r in split_clusters(state)] == [3]
    assert "node 3 is in another cluster (uuid uuid-b, not uuid-a)" in describe(state)


def test_started_at_is_the_first_running_time() -> None:
    state = cluster(1)
    state, _ = apply_status(state, update(1, TaskState.RUNNING), FW, now=100.0)
    state, _ = apply_status(state, update(1, TaskState.RUNNING, healthy=True), FW, now=200.0)
    assert state.nodes[1].started_at == 100.0


def test_adopted_task_brings_its_uuid() -> None:
    state, decision = apply_status(ClusterState(desired_nodes=3), reported(2, "uuid-z"), FW, now=5.0)
    assert decision.action is Action.ADOPT
    assert state.cluster_uuid == "uuid-z" and state.nodes[2].started_at == 5.0


# --- persistence -----------------------------------------------------------------------------------


def test_bootstrap_record_round_trips() -> None:
    state = replace(running(1), bootstrap_masters=(f"{FW}1",))
    assert state_from_json(json.loads(json.dumps(state_to_json(state))), FW) == state
    formed, _ = apply_status(state, reported(1, "u"), FW)
    assert state_from_json(json.loads(json.dumps(state_to_json(formed))), FW) == formed


def test_schema_1_state_with_nodes_is_never_bootstrapped() -> None:
    document = state_to_json(running(1, 2))
    document["schema"] = 1
    for key in ("bootstrap_masters", "cluster_uuid"):
        del document[key]
    old = state_from_json(document, FW)
    assert old.bootstrap_masters == () and old.cluster_uuid is None
    assert decide_bootstrap(replace(old, nodes={}), FW, 3).bootstrap_masters == ()


def test_schema_1_state_of_a_new_cluster_may_still_bootstrap() -> None:
    document = state_to_json(ClusterState(desired_nodes=3))
    document["schema"] = 1
    assert state_from_json(document, FW).bootstrap_masters is None
