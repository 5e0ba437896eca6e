"""The maintenance model of the development master (pure): validation texts recorded from a real
Mesos 1.12 master (shared/notes/mesos-maintenance-domains-reservations.md §2.9) and the mode rules
of apache/mesos src/master/http.cpp."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.dev.devcluster import maintenance as m
from es_framework.dev.devcluster.maintenance import MachineId, Maintenance, MaintenanceError, Mode

A = MachineId("127.0.0.7", "127.0.0.7")
B = MachineId("127.0.0.8", "127.0.0.8")
WINDOW = m.Unavailability(1796617094977680384, 3600000000000)


def schedule(*machines: MachineId) -> m.Schedule:
    return m.Schedule((m.Window(machines, WINDOW),))


def test_machine_text_is_compact_json_in_proto_order() -> None:
    assert A.text() == '{"hostname":"127.0.0.7","ip":"127.0.0.7"}'
    assert MachineId(ip="10.0.0.1").text() == '{"ip":"10.0.0.1"}'


@pytest.mark.parametrize(
    ("windows", "text"),
    [
        (
            (m.Window((A, A), WINDOW),),
            """Machine '{"hostname":"127.0.0.7","ip":"127.0.0.7"}' appears more than once in the schedule""",
        ),
        (
            (m.Window((A,), WINDOW), m.Window((A,), WINDOW)),
            """Machine '{"hostname":"127.0.0.7","ip":"127.0.0.7"}' appears more than once in the schedule""",
        ),
        ((m.Window((), WINDOW),), "List of machines in the maintenance window is empty"),
        ((m.Window((MachineId(),), WINDOW),), "Both 'hostname' and 'ip' for a machine are empty"),
        ((m.Window((A,), m.Unavailability(0, -1)),), "Unavailability 'duration' is negative"),
    ],
)
def test_invalid_schedules_are_refused_with_mesos_texts(windows: tuple[m.Window, ...], text: str) -> None:
    with pytest.raises(MaintenanceError) as error:
        m.validate_schedule(m.Schedule(windows), Maintenance())
    assert str(error.value) == text


def test_start_and_stop_refusals() -> None:
    drained = m.update_schedule(Maintenance(), schedule(A))
    with pytest.raises(
        MaintenanceError, match=r"^Machine '\{.*\}' is not in DRAINING mode and cannot be brought down$"
    ):
        m.start_maintenance(Maintenance(), (A,), known=[A])  # an agent runs there, not scheduled: UP
    with pytest.raises(MaintenanceError, match="is not part of a maintenance schedule"):
        m.start_maintenance(Maintenance(), (B,), known=[A])
    with pytest.raises(MaintenanceError, match="is not in DOWN mode and cannot be brought up"):
        m.stop_maintenance(drained, (A,), known=[A])
    down = m.start_maintenance(drained, (A,), known=[A])
    with pytest.raises(MaintenanceError, match="is not in DRAINING mode and cannot be brought down"):
        m.start_maintenance(down, (A,), known=[A])
    with pytest.raises(MaintenanceError) as error:
        m.validate_schedule(m.Schedule(), down)
    assert str(error.value) == (
        """Machine '{"hostname":"127.0.0.7","ip":"127.0.0.7"}' is deactivated and cannot be removed from the schedule"""
    )
    with pytest.raises(MaintenanceError, match=r"^List of machines is empty$"):
        m.start_maintenance(drained, (), known=[A])


def test_status_and_schedule_json_as_recorded() -> None:
    drained = m.update_schedule(Maintenance(), schedule(A))
    assert drained.schedule.to_json() == {
        "windows": [
            {
                "machine_ids": [{"hostname": "127.0.0.7", "ip": "127.0.0.7"}],
                "unavailability": {
                    "start": {"nanoseconds": 1796617094977680384},
                    "duration": {"nanoseconds": 3600000000000},
                },
            }
        ]
    }
    assert drained.status_json() == {"draining_machines": [{"id": {"hostname": "127.0.0.7", "ip": "127.0.0.7"}}]}
    declined = m.record_response(drained, A, "f0", "DECLINE", 1)
    accepted = m.record_response(m.record_response(declined, A, "f1", "DECLINE", 2), A, "f0", "ACCEPT", 3)
    assert accepted.status_json()["draining_machines"][0]["statuses"] == [
        {"status": "ACCEPT", "framework_id": {"value": "f0"}, "timestamp": {"nanoseconds": 3}},
        {"status": "DECLINE", "framework_id": {"value": "f1"}, "timestamp": {"nanoseconds": 2}},
    ]
    down = m.start_maintenance(accepted, (A,), known=[A])
    assert down.status_json() == {"down_machines": [{"hostname": "127.0.0.7", "ip": "127.0.0.7"}]}
    assert down.schedule == drained.schedule
    up = m.stop_maintenance(down, (A,), known=[A])
    assert (up.status_json(), up.schedule.to_json()) == ({}, {})


machines = st.builds(MachineId, st.sampled_from(["a", "b", "c", ""]), st.sampled_from(["10.0.0.1", "10.0.0.2", ""]))
windows = st.builds(
    m.Window,
    st.lists(machines, max_size=3).map(tuple),
    st.builds(m.Unavailability, st.integers(0, 10**18), st.none() | st.integers(-5, 10**13)),
)
schedules = st.lists(windows, max_size=3).map(lambda ws: m.Schedule(tuple(ws)))


@given(st.lists(schedules, min_size=1, max_size=4), st.lists(machines, max_size=2))
def test_schedule_updates_keep_modes_consistent(updates: list[m.Schedule], downs: list[MachineId]) -> None:
    """Whatever is posted: an accepted schedule holds every machine once, every scheduled machine is
    DRAINING or DOWN, nothing unscheduled is not UP, and a DOWN machine never leaves the schedule."""
    state = Maintenance()
    for n, new in enumerate(updates):
        try:
            m.validate_schedule(new, state)
        except MaintenanceError:
            continue
        was_down = {x for x, mode in state.modes.items() if mode is Mode.DOWN}
        state = m.update_schedule(state, new)
        scheduled = [x for w in new.windows for x in w.machines]
        assert len(scheduled) == len(set(scheduled)) and all(w.machines for w in new.windows)
        assert set(state.modes) == set(scheduled)
        assert was_down <= {x for x, mode in state.modes.items() if mode is Mode.DOWN}
        if n == 0 and downs:
            try:
                state = m.start_maintenance(state, tuple(dict.fromkeys(downs)), known=())
            except MaintenanceError:
                pass
            else:
                assert all(state.mode(x) is Mode.DOWN for x in downs)
                assert all(state.unavailability(x) is not None for x in downs)
