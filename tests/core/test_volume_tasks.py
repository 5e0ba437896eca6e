"""Volume removal through volume tasks (es_framework/core/volume_tasks.py): examples, then properties
over random states."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.offers import parse_offer
from es_framework.core.volume_removal_json import removal_from_json, removal_to_json
from es_framework.core.volume_tasks import (
    RETRY_CAP_SECONDS,
    VOLUME_TASK_LABEL,
    assign_removals,
    build_removal_task,
    ids_held_by_removals,
    mark_volumes_removed,
    offer_can_remove,
    release_for_removal,
    removal_command,
    removal_refusal,
    removal_result,
    removals_due,
    retry_delay,
    settle_removal,
)
from es_framework.core.volumes import MAX_ATTEMPTS, VolumeRemoval, VolumeSet, VolumeSpec, reconcile_removal_tasks
from identity.naming import volume_names
from identity.task_ids import TaskKind, parse_task_id, task_id_for
from tests.harness.builders import config, offer, scalar

FW = "elasticsearch"
T0 = 1_790_000_000.0
LAUNCH = "ab" * 16
DELETE = config(externalVolumeDriver="rexray", volumeRetention="delete", externalVolumeAttribute="rexray:true")


def volume_set(node_id: int, *, driver: str = "rexray", agent: str = "agent-1-S0", launched: float = T0) -> VolumeSet:
    config_name, data_name = volume_names(FW, node_id)
    return VolumeSet(
        node_id,
        driver,
        VolumeSpec(config_name, "config"),
        VolumeSpec(data_name, "data"),
        T0,
        agent,
        "agent1.example.com",
        launched,
    )


def node(node_id: int, state: TaskState = TaskState.RUNNING, **kw: Any) -> NodeRecord:
    return NodeRecord(
        node_id, task_id_for(FW, node_id, f"{node_id:032x}"), "agent-9", "h9", 31000, 31001, state=state, **kw
    )


def cluster(desired: int, volume_ids: list[int], records: list[NodeRecord] = ()) -> ClusterState:  # type: ignore[assignment]
    return ClusterState(
        desired_nodes=desired,
        nodes=MappingProxyType({r.node_id: r for r in records}),
        volumes=MappingProxyType({i: volume_set(i) for i in volume_ids}),
    )


def released(*ids: int, at: float = T0 + 100) -> dict[int, VolumeRemoval]:
    out: dict[int, VolumeRemoval] = {}
    for i in ids:
        out.update(release_for_removal(out, volume_set(i), reason="scale-down", now=at))
    return out


def storage_offer(n: int = 1, *, attribute: tuple[str, str] | None = ("rexray", "true"), **kw: Any) -> Any:
    raw = offer(n, **kw)
    if attribute is not None:
        raw["attributes"] = [{"name": attribute[0], "type": "TEXT", "text": {"value": attribute[1]}}]
    return parse_offer(raw)


# --- removals_due ------------------------------------------------------------------------------------


def test_a_released_id_above_the_desired_count_without_a_record_is_due() -> None:
    state = cluster(3, [1, 2, 3, 4, 5])
    assert removals_due(state, DELETE, T0 + 200, removals=released(4, 5)) == [4, 5]


def test_nothing_is_due_with_keep_retention_or_without_a_driver() -> None:
    state = cluster(3, [4])
    for other in (
        config(externalVolumeDriver="rexray"),
        config(externalVolumeDriver="rexray", volumeRetention="keep"),
        replace(DELETE, external_volume_driver=None),
    ):
        assert removals_due(state, other, T0 + 200, removals=released(4)) == []


def test_an_id_the_desired_count_keeps_is_never_due() -> None:
    assert removals_due(cluster(4, [4]), DELETE, T0 + 200, removals=released(4)) == []


@pytest.mark.parametrize("state", list(TaskState))
def test_any_record_holding_the_id_blocks_removal(state: TaskState) -> None:
    # Unreachable, unknown, killing, even a record in a terminal state not yet freed: only a freed id
    # (no record) is certainly dead.
    records = [node(4, state, stopping="scale-down")]
    assert removals_due(cluster(3, [4], records), DELETE, T0 + 200, removals=released(4)) == []


def test_an_id_never_released_is_not_due() -> None:
    # E.g. a leaving node that failed before its drain finished: its data may be the only copy.
    assert removals_due(cluster(3, [4]), DELETE, T0 + 200, removals={}) == []


def test_a_release_older_than_the_last_launch_is_stale() -> None:
    state = replace(cluster(3, []), volumes=MappingProxyType({4: volume_set(4, launched=T0 + 500)}))
    assert removals_due(state, DELETE, T0 + 600, removals=released(4, at=T0 + 100)) == []
    assert removals_due(state, DELETE, T0 + 600, removals=released(4, at=T0 + 550)) == [4]


def test_removed_volumes_and_unknown_volume_sets_are_not_due() -> None:
    state = cluster(3, [4])
    gone = replace(state, volumes=mark_volumes_removed(state.volumes, 4, T0 + 50))
    assert removals_due(gone, DELETE, T0 + 200, removals=released(4)) == []
    assert removals_due(cluster(3, []), DELETE, T0 + 200, removals=released(4)) == []


def test_in_flight_then_back_off_then_due_again_then_gave_up() -> None:
    state = cluster(3, [4])
    removals = released(4)
    _, removal = build_removal_task(4, volume_set(4), storage_offer(), DELETE, T0 + 200, launch_id=LAUNCH)
    removals[4] = removal
    assert removals_due(state, DELETE, T0 + 201, removals=removals) == []
    assert ids_held_by_removals(removals) == {4}
    failed = settle_removal(
        removal, removal.task_id or "", False, "TASK_FAILED: Command exited with status 1", T0 + 210
    )
    assert failed.status() == "failed" and not failed.in_flight and ids_held_by_removals({4: failed}) == set()
    assert removals_due(state, DELETE, T0 + 210 + retry_delay(1) - 1, removals={4: failed}) == []
    assert removals_due(state, DELETE, T0 + 210 + retry_delay(1), removals={4: failed}) == [4]
    exhausted = replace(failed, attempts=MAX_ATTEMPTS)
    assert exhausted.status() == "gave-up"
    assert removals_due(state, DELETE, T0 + 10**7, removals={4: exhausted}) == []


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(n) for n in range(5)] == [0.0, 30.0, 60.0, 120.0, 240.0]
    assert retry_delay(50) == RETRY_CAP_SECONDS == retry_delay(10**6)


# Random states: the safety properties, whatever the mix of records, releases and removals.
records_strategy = st.builds(
    lambda i, s, stop: node(i, s, stopping=stop),
    st.integers(1, 12),
    st.sampled_from(list(TaskState)),
    st.sampled_from([None, "scale-down", "restart"]),
)
removal_strategy = st.builds(
    lambda i, released_at, task, ended, attempts, error: VolumeRemoval(
        i,
        "scale-down",
        released_at,
        volume_names(FW, i),
        task_id=task,
        agent_id="agent-1-S0" if task else None,
        started_at=released_at if task else None,
        ended_at=ended,
        attempts=attempts,
        last_error=error,
    ),
    st.integers(1, 12),
    st.floats(T0 - 1000, T0 + 1000),
    st.sampled_from([None, f"{FW}-volumes1-{LAUNCH}"]),
    st.sampled_from([None, T0, T0 + 5000]),
    st.integers(0, MAX_ATTEMPTS + 1),
    st.sampled_from([None, "TASK_FAILED: Command exited with status 1"]),
)


@settings(max_examples=300, deadline=None)
@given(
    desired=st.integers(0, 12),
    records=st.lists(records_strategy, max_size=12),
    volume_ids=st.sets(st.integers(1, 12)),
    removals=st.lists(removal_strategy, max_size=12),
    now=st.floats(T0 - 2000, T0 + 20000),
    retention=st.sampled_from(["keep", "delete"]),
)
def test_never_due_for_a_possibly_live_task_or_a_kept_id(
    *,
    desired: int,
    records: list[NodeRecord],
    volume_ids: set[int],
    removals: list[VolumeRemoval],
    now: float,
    retention: str,
) -> None:
    state = cluster(desired, sorted(volume_ids), list({r.node_id: r for r in records}.values()))
    by_id = {r.node_id: r for r in removals}
    cfg = DELETE if retention == "delete" else config(externalVolumeDriver="rexray")
    due = removals_due(state, cfg, now, removals=by_id)
    assert due == sorted(set(due))
    for node_id in due:
        assert retention == "delete"
        assert node_id > desired
        assert node_id not in state.nodes  # no record: no task that may still run
        assert node_id in state.volumes and state.volumes[node_id].removed_at is None
        removal = by_id[node_id]
        assert not removal.in_flight and removal.attempts < MAX_ATTEMPTS
        assert removal.released_at >= state.volumes[node_id].last_launched_at
        if removal.last_error is not None and removal.ended_at is not None:
            assert now >= removal.ended_at + retry_delay(removal.attempts)


# --- offers --------------------------------------------------------------------------------------------


def test_offer_must_have_the_storage_attribute() -> None:
    assert offer_can_remove(storage_offer(), DELETE)
    assert not offer_can_remove(storage_offer(attribute=None), DELETE)
    assert "rexray: missing" in (removal_refusal(storage_offer(attribute=None), DELETE) or "")
    assert "rexray: 'false'" in (removal_refusal(storage_offer(attribute=("rexray", "false")), DELETE) or "")


def test_a_bare_attribute_name_takes_any_value_and_no_flag_takes_any_agent() -> None:
    any_value = config(externalVolumeDriver="rexray", volumeRetention="delete", externalVolumeAttribute="scaleio")
    assert offer_can_remove(storage_offer(attribute=("scaleio", "row8~pool-hdd")), any_value)
    assert not offer_can_remove(storage_offer(attribute=("rexray", "true")), any_value)
    no_flag = config(externalVolumeDriver="rexray", volumeRetention="delete")
    assert offer_can_remove(storage_offer(attribute=None), no_flag)


def test_offer_needs_the_tiny_resources_of_our_role() -> None:
    assert not offer_can_remove(storage_offer(cpus=0.05), DELETE)
    assert not offer_can_remove(storage_offer(mem=31), DELETE)
    assert offer_can_remove(storage_offer(cpus=0.1, mem=32, disk=0, port_ranges=()), DELETE)
    reserved_elsewhere = storage_offer(resources=[scalar("cpus", 4, "other"), scalar("mem", 4096, "other")])
    assert "offered to role *: 0 cpus, 0 mem" in (removal_refusal(reserved_elsewhere, DELETE) or "")


def test_local_driver_volumes_are_removed_only_on_their_agent() -> None:
    local = volume_set(4, driver="local", agent="agent-1-S0")
    assert offer_can_remove(storage_offer(1), DELETE, local)
    assert not offer_can_remove(storage_offer(2), DELETE, local)
    assert offer_can_remove(storage_offer(2), DELETE, volume_set(4))  # a global driver: any storage agent


# --- the task ------------------------------------------------------------------------------------------


def test_the_removal_task_is_a_plain_docker_volume_rm_command() -> None:
    task, removal = build_removal_task(4, volume_set(4), storage_offer(), DELETE, T0 + 200, launch_id=LAUNCH)
    assert task["command"] == {
        "shell": False,
        "value": "docker",
        "arguments": ["docker", "volume", "rm", "elasticsearch4config", "elasticsearch4data"],
    }
    assert "executor" not in task and "container" not in task
    assert task["task_id"] == {"value": f"elasticsearch-volumes4-{LAUNCH}"}
    assert parse_task_id(task["task_id"]["value"], FW).kind is TaskKind.VOLUMES
    assert task["agent_id"] == {"value": "agent-1-S0"}
    amounts = {r["name"]: r["scalar"]["value"] for r in task["resources"]}
    assert amounts == {"cpus": 0.1, "mem": 32.0}
    assert all(r["role"] == "*" and r["allocation_info"] == {"role": "*"} for r in task["resources"])
    labels = {item["key"]: item["value"] for item in task["labels"]["labels"]}
    assert labels[VOLUME_TASK_LABEL] == "remove" and "es-mesos.node-id" not in labels
    assert task["max_completion_time"]["nanoseconds"] > 0
    assert removal == VolumeRemoval(
        4,
        "scale-down",
        T0 + 200,
        ("elasticsearch4config", "elasticsearch4data"),
        task_id=task["task_id"]["value"],
        agent_id="agent-1-S0",
        hostname="agent1.example.com",
        started_at=T0 + 200,
        attempts=1,
    )
    assert removal.in_flight and removal.status() == "in-flight"


def test_reserved_resources_of_our_role_are_carved_with_their_reservation() -> None:
    role = config(
        externalVolumeDriver="rexray", volumeRetention="delete", frameworkRole="es", externalVolumeAttribute="rexray"
    )
    raw = offer(
        1, resources=[scalar("cpus", 1, "es", allocation_role="es"), scalar("mem", 64, "es", allocation_role="es")]
    )
    raw["attributes"] = [{"name": "rexray", "type": "TEXT", "text": {"value": "true"}}]
    task, _ = build_removal_task(4, volume_set(4), parse_offer(raw), role, T0, launch_id=LAUNCH)
    assert all(r["reservations"] == [{"type": "STATIC", "role": "es"}] for r in task["resources"])
    assert all(r["allocation_info"] == {"role": "es"} for r in task["resources"])


def test_a_retry_carries_the_release_and_counts_attempts() -> None:
    first = released(4)[4]
    failed = replace(first, task_id="t", agent_id="a", started_at=T0, ended_at=T0 + 1, attempts=2, last_error="x")
    _, again = build_removal_task(
        4, volume_set(4), storage_offer(), DELETE, T0 + 500, launch_id=LAUNCH, previous=failed
    )
    assert (again.attempts, again.released_at, again.last_error, again.ended_at) == (3, first.released_at, "x", None)


def test_build_refuses_an_offer_that_cannot_take_it_and_mismatched_ids() -> None:
    with pytest.raises(ValueError, match="externalVolumeAttribute"):
        build_removal_task(4, volume_set(4), storage_offer(attribute=None), DELETE, T0, launch_id=LAUNCH)
    with pytest.raises(ValueError, match="node 5"):
        build_removal_task(4, volume_set(5), storage_offer(), DELETE, T0, launch_id=LAUNCH)
    with pytest.raises(ValueError, match="launch id"):
        build_removal_task(4, volume_set(4), storage_offer(), DELETE, T0, launch_id="nope")
    with pytest.raises(ValueError):
        removal_command([])


def test_assign_puts_one_task_per_fitting_offer() -> None:
    state = cluster(3, [4, 5, 6])
    offers = [storage_offer(1, attribute=None), storage_offer(2), storage_offer(3)]
    launches = assign_removals(
        [4, 5, 6], state, offers, DELETE, removals=released(4, 5, 6), now=T0 + 200, launch_ids=iter([LAUNCH, "cd" * 16])
    )
    assert [(launch.offer_id, launch.removal.node_id) for launch in launches] == [("offer-2", 4), ("offer-3", 5)]
    assert all(launch.removal.in_flight for launch in launches)


# --- results -------------------------------------------------------------------------------------------


def status(state: str, message: str | None = None, reason: str | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"task_id": {"value": f"{FW}-volumes4-{LAUNCH}"}, "state": state, "source": "SOURCE_EXECUTOR"}
    if message:
        raw["message"] = message
    if reason:
        raw["reason"] = reason
    return raw


def test_finished_means_removed() -> None:
    assert removal_result(status("TASK_FINISHED", "Command exited with status 0")) == (True, None)


@pytest.mark.parametrize(
    ("state", "message", "reason", "expected"),
    [
        ("TASK_FAILED", "Command exited with status 1", None, "TASK_FAILED: Command exited with status 1 (docker"),
        (
            "TASK_FAILED",
            "Command terminated with signal Killed",
            "REASON_MAX_COMPLETION_TIME_REACHED",
            "TASK_FAILED (REASON_MAX",
        ),
        (
            "TASK_ERROR",
            "Task uses more resources",
            "REASON_TASK_INVALID",
            "TASK_ERROR (REASON_TASK_INVALID): Task uses",
        ),
        ("TASK_DROPPED", None, "REASON_INVALID_OFFERS", "TASK_DROPPED (REASON_INVALID_OFFERS)"),
        ("TASK_LOST", "agent removed", None, "TASK_LOST: agent removed"),
        ("TASK_GONE", None, None, "TASK_GONE"),
        ("TASK_GONE_BY_OPERATOR", None, None, "TASK_GONE_BY_OPERATOR"),
        ("TASK_KILLED", "Command terminated with signal Terminated", None, "TASK_KILLED"),
        ("TASK_UNKNOWN", None, "REASON_RECONCILIATION", "TASK_UNKNOWN"),
    ],
)
def test_terminal_failures_carry_state_reason_and_message(
    state: str, message: str | None, reason: str | None, expected: str
) -> None:
    done, error = removal_result(status(state, message, reason))
    assert not done and error is not None and error.startswith(expected)


@pytest.mark.parametrize(
    "state", ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", "bogus"]
)
def test_live_or_unreachable_settles_nothing(state: str) -> None:
    assert removal_result(status(state)) == (False, None)
    assert removal_result({}) == (False, None)


def test_settle_only_the_current_task() -> None:
    _, removal = build_removal_task(4, volume_set(4), storage_offer(), DELETE, T0, launch_id=LAUNCH)
    task_id = removal.task_id or ""
    assert settle_removal(removal, "another", True, None, T0 + 1) is removal
    assert settle_removal(removal, task_id, False, None, T0 + 1) is removal
    done = settle_removal(removal, task_id, True, None, T0 + 1)
    assert (done.removed_at, done.ended_at, done.status()) == (T0 + 1, T0 + 1, "removed")
    assert settle_removal(done, task_id, False, "late", T0 + 2) is done


def test_mark_removed_keeps_the_set_listed() -> None:
    volumes = MappingProxyType({4: volume_set(4)})
    after = mark_volumes_removed(volumes, 4, T0 + 9)
    assert after[4].removed_at == T0 + 9 and volumes[4].removed_at is None
    assert mark_volumes_removed(after, 4, T0 + 99)[4].removed_at == T0 + 9
    assert mark_volumes_removed(after, 7, T0) is after


def test_release_keeps_a_removal_in_flight() -> None:
    _, removal = build_removal_task(4, volume_set(4), storage_offer(), DELETE, T0, launch_id=LAUNCH)
    removals = {4: removal}
    assert release_for_removal(removals, volume_set(4), reason="teardown", now=T0 + 5) is removals
    after = release_for_removal({4: replace(removal, ended_at=T0 + 1)}, volume_set(4), reason="teardown", now=T0 + 5)
    assert (after[4].reason, after[4].attempts, after[4].task_id) == ("teardown", 0, None)


def test_reconcile_lists_in_flight_tasks_with_their_agents() -> None:
    _, removal = build_removal_task(4, volume_set(4), storage_offer(), DELETE, T0, launch_id=LAUNCH)
    assert reconcile_removal_tasks({4: removal, 5: released(5)[5]}) == [
        {"task_id": {"value": removal.task_id}, "agent_id": {"value": "agent-1-S0"}}
    ]


# --- JSON ----------------------------------------------------------------------------------------------


@given(removal=removal_strategy)
def test_json_round_trip(removal: VolumeRemoval) -> None:
    assert removal_from_json(removal_to_json(removal)) == removal


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"node_id": 0}, "node_id"),
        ({"volumes": []}, "volumes"),
        ({"attempts": -1}, "attempts"),
        ({"released_at": "x"}, "released_at"),
        ({"reason": ""}, "reason"),
        ({"task_id": 3}, "task_id"),
    ],
)
def test_bad_json_names_the_field(change: dict[str, Any], field: str) -> None:
    good = removal_to_json(released(4)[4])
    with pytest.raises(ValueError, match=field):
        removal_from_json({**good, **change})
    with pytest.raises(ValueError, match="object"):
        removal_from_json([])
