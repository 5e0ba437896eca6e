"""A rollout in the ZooKeeper layout against a real ZooKeeper: its header in the cluster znode, each
step with its node's znode, and the state read back equal (issue 13: no znode grows with N)."""

from __future__ import annotations

import json
from dataclasses import replace

from kazoo.client import KazooClient

from es_framework.core.rollouts import RolloutReason, plan_rollout
from es_framework.core.state_document import state_from_json, state_to_json
from tests.core.test_node_state import FW, running
from tests.shell.conftest import StoreFactory


def test_a_rollout_is_stored_per_node_and_read_back(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    state = running(1, 2, 3)
    rollout = plan_rollout(state, RolloutReason.RESTART, 50.0, 3, master_nodes=3, target="fp")
    state = replace(state, rollout=rollout, rollout_history=({"id": "restart-1", "outcome": "completed"},))
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    store.create(state_to_json(state))
    node2 = json.loads(raw.get(f"/{names[0]}/{names[1]}/nodes/2")[0])
    assert node2["rollout_steps"]["state"] == "pending" and node2["rollout_steps"]["position"] == 1
    cluster = json.loads(raw.get(f"/{names[0]}/{names[1]}/cluster")[0])
    assert cluster["state"]["rollout"]["id"] == rollout.id and "rollout_steps" not in cluster["state"]
    fresh = make_store().read()
    assert fresh is not None
    back = state_from_json(fresh.document, FW)
    assert back.rollout == rollout and back.rollout_history == state.rollout_history
