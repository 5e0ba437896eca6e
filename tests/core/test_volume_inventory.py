"""The volume inventory (es_framework/core/volume_inventory.py): examples, then properties over random states."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.node_state import FREEING_STATES, ClusterState, NodeRecord, TaskState
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.volume_inventory import (
    VolumeInventory,
    VolumeRow,
    inventory_of,
    iso_time,
    volume_inventory,
)
from es_framework.core.volumes import VolumeRemoval, VolumeSet, VolumeSpec, record_volume_launch
from identity import task_id_for, volume_names
from tests.harness.builders import config

FW = "elasticsearch"
T0 = 1_790_000_000.0
PROFILES = ("default", "gold", "silver")


def specs(
    node_id: int, config_profile: str = "default", data_profile: str = "default"
) -> tuple[VolumeSpec, VolumeSpec]:
    config_name, data_name = volume_names(FW, node_id)
    return (
        VolumeSpec(config_name, "config", config_profile, (("size", "1"),)),
        VolumeSpec(data_name, "data", data_profile, ()),
    )


def volume_set(
    node_id: int, *, agent: str | None = None, data_profile: str = "default", removed_at: float | None = None
) -> VolumeSet:
    config_spec, data_spec = specs(node_id, data_profile=data_profile)
    agent = agent or f"agent-{node_id}"
    return VolumeSet(
        node_id, "rexray", config_spec, data_spec, T0, agent, f"host-{agent}", T0 + node_id, "zone-a", removed_at
    )


def record(node_id: int, state: TaskState = TaskState.RUNNING, *, agent: str | None = None, **kw: object) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=task_id_for(FW, node_id, f"{node_id:032x}"),
        agent_id=agent or f"agent-{node_id}",
        hostname=f"host-{agent or f'agent-{node_id}'}",
        http_port=31000,
        transport_port=31001,
        state=state,
        volumes=volume_names(FW, node_id),
        **kw,  # type: ignore[arg-type]
    )


def cluster(
    desired: int, volumes: list[VolumeSet], records: list[NodeRecord], torn_down_at: float | None = None
) -> ClusterState:
    return ClusterState(
        desired_nodes=desired,
        nodes=MappingProxyType({r.node_id: r for r in records}),
        volumes=MappingProxyType({v.node_id: v for v in volumes}),
        torn_down_at=torn_down_at,
    )


def rows_of(inventory: VolumeInventory, node_id: int) -> tuple[VolumeRow, VolumeRow]:
    config_row, data_row = (row for row in inventory.rows if row.node_id == node_id)
    return config_row, data_row


REXRAY = config(externalVolumeDriver="rexray")

# --- examples ----------------------------------------------------------------------------------


def test_a_scale_down_leaves_the_volumes_of_the_ids_above_the_count_as_orphans() -> None:
    state = cluster(
        3,
        [volume_set(i) for i in range(1, 6)],
        [record(1), record(2), record(3), record(4, TaskState.KILLING, stopping="scale-down")],
    )
    inventory = volume_inventory(state, REXRAY)
    assert [row.name for row in inventory.rows] == [name for i in range(1, 6) for name in volume_names(FW, i)]
    assert [row.orphan for row in inventory.rows] == [False] * 6 + [True] * 4
    draining, _ = rows_of(inventory, 4)
    assert draining.held and draining.holder_state == "TASK_KILLING"
    assert draining.orphan_reason == (
        "node 4 is above the desired 3 node(s) (scaled down); its task still holds them until it is stopped"
    )
    gone, _ = rows_of(inventory, 5)
    assert not gone.held and gone.holder_task_id is None and gone.held_since is None
    assert gone.orphan_reason == "node 5 is above the desired 3 node(s) (scaled down)"
    assert (inventory.total, inventory.held, inventory.orphans) == (10, 8, 4)


def test_an_unreachable_task_still_holds_its_volumes() -> None:
    state = cluster(3, [volume_set(2)], [record(2, TaskState.UNREACHABLE)])
    config_row, data_row = rows_of(volume_inventory(state, REXRAY), 2)
    assert config_row.held and data_row.held
    assert data_row.holder_state == "TASK_UNREACHABLE"
    assert data_row.held_since == T0 + 2  # its launch, recorded with the volumes
    assert not data_row.orphan


@pytest.mark.parametrize("state", sorted(FREEING_STATES, key=str))
def test_a_task_in_a_freeing_state_holds_nothing(state: TaskState) -> None:
    inventory = volume_inventory(cluster(3, [volume_set(1)], [record(1, state)]), REXRAY)
    assert inventory.held == 0


@pytest.mark.parametrize(
    "state",
    [TaskState.LAUNCHING, TaskState.STAGING, TaskState.STARTING, TaskState.RUNNING, TaskState.KILLING,
     TaskState.UNREACHABLE, TaskState.UNKNOWN],
)  # fmt: skip
def test_every_state_in_which_the_task_may_run_holds(state: TaskState) -> None:
    assert volume_inventory(cluster(3, [volume_set(1)], [record(1, state)]), REXRAY).held == 2


def test_a_torn_down_framework_leaves_every_volume_an_orphan() -> None:
    state = cluster(3, [volume_set(1), volume_set(2)], [record(1)], torn_down_at=T0 + 3600)
    inventory = volume_inventory(state, REXRAY)
    assert inventory.orphans == 4
    assert {row.orphan_reason for row in inventory.rows} == {"the framework was torn down at 2026-09-21T15:13:20Z"}
    assert inventory.to_json()["torn_down_at"] == "2026-09-21T15:13:20Z"


def test_the_profile_differs_when_the_configuration_names_another_for_the_role() -> None:
    state = cluster(3, [volume_set(1), volume_set(2, data_profile="gold")], [])
    inventory = volume_inventory(state, config(externalVolumeDriver="rexray", volumeProfile="data=gold"))
    one_config, one_data = rows_of(inventory, 1)
    assert not one_config.profile_differs and one_config.configured_profile == "default"
    assert one_data.profile_differs and (one_data.profile, one_data.configured_profile) == ("default", "gold")
    assert not any(row.profile_differs for row in rows_of(inventory, 2))
    assert inventory.profile_differs == 1


def test_without_a_volume_driver_configured_nothing_is_compared() -> None:
    state = cluster(3, [volume_set(1, data_profile="gold")], [])
    inventory = volume_inventory(state, config())
    assert all(row.configured_profile is None and not row.profile_differs for row in inventory.rows)


def test_removed_volumes_are_listed_but_neither_orphans_nor_different() -> None:
    state = cluster(1, [volume_set(2, removed_at=T0 + 99, data_profile="gold")], [])
    inventory = volume_inventory(state, REXRAY)
    assert [row.removed_at for row in inventory.rows] == [T0 + 99] * 2
    assert inventory.orphans == 0 and inventory.profile_differs == 0 and inventory.removed == 2


def test_volumes_whose_launch_was_not_recorded_come_from_the_node_record() -> None:
    # A state written before the inventory existed (schema 2): the record names the volumes.
    state = cluster(3, [], [record(3, zone="zone-b", started_at=T0 + 5)])
    config_row, data_row = rows_of(volume_inventory(state, REXRAY), 3)
    assert not data_row.recorded and data_row.driver is None and data_row.profile is None
    assert data_row.last_agent_id == "agent-3" and data_row.last_zone == "zone-b"
    assert data_row.held and data_row.held_since == T0 + 5
    assert not data_row.profile_differs and data_row.configured_profile == "default"
    assert config_row.name == "elasticsearch3config"


def test_local_disk_records_have_no_volumes_to_list() -> None:
    state = cluster(3, [], [replace(record(1), volumes=None)])
    assert volume_inventory(state, config()).rows == ()


def test_an_adopted_holder_on_another_agent_is_where_the_volumes_are_now() -> None:
    state = cluster(3, [volume_set(1, agent="agent-old")], [record(1, agent="agent-new", started_at=T0 + 50)])
    _, data_row = rows_of(volume_inventory(state, REXRAY), 1)
    assert (data_row.last_agent_id, data_row.last_hostname) == ("agent-new", "host-agent-new")
    assert data_row.held_since == T0 + 50
    assert data_row.last_launched_at == T0 + 1  # the last launch recorded with the volumes


def test_a_row_as_json() -> None:
    state = cluster(3, [volume_set(1)], [record(1, TaskState.RUNNING)])
    config_row, _ = rows_of(volume_inventory(state, REXRAY), 1)
    assert config_row.to_json() == {
        "name": "elasticsearch1config",
        "role": "config",
        "node_id": 1,
        "driver": "rexray",
        "profile": "default",
        "options": {"size": "1"},
        "recorded": True,
        "last_agent_id": "agent-1",
        "last_hostname": "host-agent-1",
        "last_zone": "zone-a",
        "first_launched_at": "2026-09-21T14:13:20Z",
        "last_launched_at": "2026-09-21T14:13:21Z",
        "held": True,
        "holder_task_id": record(1).task_id,
        "holder_state": "TASK_RUNNING",
        "held_since": "2026-09-21T14:13:21Z",
        "orphan": False,
        "orphan_reason": None,
        "profile_differs": False,
        "configured_profile": "default",
        "removed_at": None,
        "removal_status": None,
        "removal_task_id": None,
        "removal_attempts": 0,
        "removal_error": None,
    }


def test_a_pending_removal_shows_on_both_rows_of_its_node() -> None:
    volumes = record_volume_launch(
        MappingProxyType({}), 4, "rexray", specs(4), agent_id="a4", hostname="h4", zone=None, now=T0
    )
    removal = VolumeRemoval(
        node_id=4,
        reason="scale-down",
        released_at=T0 + 10,
        volumes=("elasticsearch4config", "elasticsearch4data"),
        task_id="elasticsearch-volumes4-" + "a" * 32,
        agent_id="a5",
        started_at=T0 + 20,
        ended_at=T0 + 21,
        attempts=1,
        last_error="TASK_FAILED: Command exited with status 1",
    )
    state = ClusterState(desired_nodes=3, volumes=volumes, volume_removals=MappingProxyType({4: removal}))
    rows = volume_inventory(state, config(externalVolumeDriver="rexray")).rows
    assert [(r.role, r.removal_status, r.removal_attempts) for r in rows] == [
        ("config", "failed", 1),
        ("data", "failed", 1),
    ]
    assert rows[1].to_json()["removal_error"] == "TASK_FAILED: Command exited with status 1"


def test_the_inventory_follows_launches_recorded_by_record_volume_launch() -> None:
    volumes = record_volume_launch(
        MappingProxyType({}), 1, "rexray", specs(1, data_profile="gold"), agent_id="a1", hostname="h1", zone="z", now=T0
    )
    volumes = record_volume_launch(volumes, 1, "rexray", specs(1), agent_id="a2", hostname="h2", zone=None, now=T0 + 9)
    state = ClusterState(desired_nodes=1, volumes=volumes)
    _, data_row = rows_of(volume_inventory(state, REXRAY), 1)
    # The volume keeps the profile it was created with; the later launch only moved it.
    assert (data_row.profile, data_row.profile_differs) == ("gold", True)
    assert (data_row.last_agent_id, data_row.last_zone, data_row.last_launched_at) == ("a2", None, T0 + 9)
    assert data_row.first_launched_at == T0


def test_iso_time() -> None:
    assert iso_time(None) is None
    assert iso_time(0) == "1970-01-01T00:00:00Z"


# --- properties over random states ---------------------------------------------------------------


@st.composite
def states(draw: st.DrawFn) -> tuple[ClusterState, dict[str, str] | None]:
    desired = draw(st.integers(1, 6))
    ids = draw(st.sets(st.integers(1, 10), max_size=10))
    volumes, records = [], []
    for node_id in sorted(ids):
        recorded = draw(st.booleans())
        if recorded:
            volumes.append(
                volume_set(
                    node_id,
                    agent=draw(st.sampled_from(["a1", "a2", "a3"])),
                    data_profile=draw(st.sampled_from(PROFILES)),
                    removed_at=draw(st.none() | st.floats(T0, T0 + 1e6)),
                )
            )
        if not recorded or draw(st.booleans()):
            records.append(
                replace(
                    record(node_id, draw(st.sampled_from(list(TaskState))), agent=draw(st.sampled_from(["a1", "a2"]))),
                    started_at=draw(st.none() | st.floats(T0, T0 + 1e6)),
                )
            )
    torn_down_at = draw(st.none() | st.floats(T0, T0 + 1e6))
    current = draw(
        st.none() | st.fixed_dictionaries({"config": st.sampled_from(PROFILES), "data": st.sampled_from(PROFILES)})
    )
    return cluster(desired, volumes, records, torn_down_at), current


def _current(profiles: dict[str, str] | None):  # type: ignore[no-untyped-def]
    if profiles is None:
        return None
    return lambda node_id: specs(node_id, profiles["config"], profiles["data"])


@settings(max_examples=300, deadline=None)
@given(states())
def test_every_row_says_what_the_state_and_the_configuration_say(
    drawn: tuple[ClusterState, dict[str, str] | None],
) -> None:
    state, profiles = drawn
    inventory = inventory_of(state, _current(profiles))
    expected_ids = sorted(set(state.volumes) | {i for i, r in state.nodes.items() if r.volumes})
    assert [(row.node_id, row.role) for row in inventory.rows] == [
        (i, role) for i in expected_ids for role in ("config", "data")
    ]
    for row in inventory.rows:
        assert row.name == volume_names(FW, row.node_id)[0 if row.role == "config" else 1]
        holder = state.nodes.get(row.node_id)
        entry = state.volumes.get(row.node_id)
        held = holder is not None and holder.state not in FREEING_STATES
        assert row.held is held
        assert (row.holder_task_id, row.holder_state) == (
            (holder.task_id, holder.state.value) if held and holder else (None, None)
        )
        if not held:
            assert row.held_since is None
        assert row.recorded is (entry is not None)
        removed = entry is not None and entry.removed_at is not None
        assert row.orphan is (not removed and (state.torn_down_at is not None or row.node_id > state.desired_nodes))
        assert (row.orphan_reason is not None) is row.orphan
        wanted = None if profiles is None else profiles[row.role]
        assert row.configured_profile == wanted
        assert row.profile_differs is (
            entry is not None and not removed and wanted is not None and wanted != row.profile
        )
        if entry is not None:
            assert (row.driver, row.profile) == (
                entry.driver,
                (entry.config if row.role == "config" else entry.data).profile,
            )
            assert row.removed_at == entry.removed_at
        else:
            assert (row.driver, row.profile, row.removed_at) == (None, None, None)
        if held and holder:
            assert row.last_agent_id == holder.agent_id
        elif entry is not None:
            assert row.last_agent_id == entry.last_agent_id


@settings(max_examples=200, deadline=None)
@given(states())
def test_counts_and_json_agree_with_the_rows(drawn: tuple[ClusterState, dict[str, str] | None]) -> None:
    state, profiles = drawn
    inventory = inventory_of(state, _current(profiles))
    document = json.loads(json.dumps(inventory.to_json(), allow_nan=False))
    assert document["counts"] == {
        "total": len(inventory.rows),
        "held": sum(row["held"] for row in document["volumes"]),
        "orphans": sum(row["orphan"] for row in document["volumes"]),
        "profile_differs": sum(row["profile_differs"] for row in document["volumes"]),
        "removed": sum(row["removed_at"] is not None for row in document["volumes"]),
    }
    assert document["desired_nodes"] == state.desired_nodes
    assert [set(row) for row in document["volumes"]] == [set(VolumeRow.__dataclass_fields__)] * len(inventory.rows)
    assert inventory_of(state, _current(profiles)) == inventory  # a function of its inputs only


@settings(max_examples=100, deadline=None)
@given(states())
def test_the_inventory_survives_the_stored_document(drawn: tuple[ClusterState, dict[str, str] | None]) -> None:
    state, profiles = drawn
    restored = state_from_json(json.loads(json.dumps(state_to_json(state))), FW)
    assert inventory_of(restored, _current(profiles)) == inventory_of(state, _current(profiles))


def test_a_configuration_whose_profiles_do_not_resolve_is_compared_with_nothing() -> None:
    # The start-up checks refuse it; the inventory still lists what the state knows.
    state = cluster(3, [volume_set(1, data_profile="gold")], [record(1)])
    inventory = volume_inventory(state, config(externalVolumeDriver="rexray", volumeProfile="data=platinum"))
    assert [(row.configured_profile, row.profile_differs) for row in inventory.rows] == [(None, False)] * 2
    assert inventory.held == 2
