from __future__ import annotations

import logging

import pytest

from es_framework.core.failures import HINTS, Backoff, FailureKind, classify_failure, failure_report
from es_framework.core.node_state import NodeRecord, TaskState
from es_framework.core.status_updates import StatusUpdate

T = "elasticsearch-node1-" + "0" * 32


def running(task_id: str = T, healthy: bool | None = None) -> StatusUpdate:
    return StatusUpdate(task_id=task_id, state=TaskState.RUNNING, healthy=healthy)


def holder(since: float | None, task_id: str = T, node_id: int = 1) -> NodeRecord:
    """Node ``node_id``'s record as the state holds it after a TASK_RUNNING first seen at ``since``."""
    return NodeRecord(node_id, task_id, "agent-1-S0", "agent1", 31000, 31001, TaskState.RUNNING, True, started_at=since)


def failed(message: str | None = None, reason: str | None = None, state: TaskState = TaskState.FAILED) -> StatusUpdate:
    return StatusUpdate(task_id=T, state=state, message=message, reason=reason)


@pytest.mark.parametrize(
    ("update", "kind"),
    [
        (failed("Elasticsearch exited with code 78: bootstrap checks failed"), FailureKind.BOOTSTRAP_CHECK),
        (failed("Process exited with status 78"), FailureKind.BOOTSTRAP_CHECK),
        (
            failed("docker: Error response from daemon: VolumeDriver.Mount: 503 Service Unavailable"),
            FailureKind.VOLUME,
        ),
        (failed("Failed to launch container: Failed to mount volume elasticsearch2data"), FailureKind.VOLUME),
        (
            failed("Failed to run 'docker -H ... pull es-mesos/x:1': exit status = 1 manifest unknown"),
            FailureKind.IMAGE,
        ),
        (failed("Error: No such image: es-mesos/elasticsearch-executor:0.1.0"), FailureKind.IMAGE),
        (failed("Executor terminated", "REASON_EXECUTOR_TERMINATED"), FailureKind.EXECUTOR_LOST),
        (failed(None, "REASON_AGENT_REMOVED", TaskState.LOST), FailureKind.AGENT_LOST),
        (failed(None, None, TaskState.GONE), FailureKind.AGENT_LOST),
        (failed("Killed by the scheduler", None, TaskState.KILLED), FailureKind.KILLED),
        (failed("exit status 1"), FailureKind.OTHER),
        (failed(None), FailureKind.OTHER),
    ],
)
def test_classify_failure(update: StatusUpdate, kind: FailureKind) -> None:
    assert classify_failure(update) is kind
    assert HINTS[kind]


def test_exit_code_178_is_not_a_bootstrap_check() -> None:
    assert classify_failure(failed("exited with code 178")) is FailureKind.OTHER


def test_backoff_doubles_up_to_the_cap_for_failures_in_a_row() -> None:
    backoff = Backoff(base_s=5, max_s=60)
    assert backoff.wait(1, now=0) == 0
    delays = []
    for _ in range(6):
        backoff = backoff.failed(1, FailureKind.VOLUME, "503", now=100, task_id=T)
        delays.append(backoff.wait(1, now=100))
    assert delays == [5, 10, 20, 40, 60, 60]
    assert backoff.failures[1].count == 6
    assert backoff.wait(1, now=130) == 30
    assert backoff.wait(1, now=200) == 0
    assert backoff.wait(2, now=100) == 0


#: What a Mesos 1.12 agent with its default isolation (filesystem/posix) reports for a container with a
#: ContainerInfo volume (seen on a real agent; src/slave/containerizer/mesos/isolators/filesystem/posix.cpp).
POSIX_VOLUMES = "Failed to launch container: Volumes in ContainerInfo is not supported"
LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (POSIX_VOLUMES, FailureKind.AGENT_CONFIG),
        ("Failed to launch container: Container root filesystems not supported", FailureKind.AGENT_CONFIG),
        # A volume driver's own failure stays a volume failure (retryable: REX-Ray's 503 on a first create).
        (
            "Failed to launch container: Failed to mount docker volume: dvdcli mount failed: 503",
            FailureKind.VOLUME,
        ),
        ("Failed to launch container: Failed to pull image es-mesos/x: manifest unknown", FailureKind.IMAGE),
        ("Failed to launch container: Failed to fetch all URIs for container", FailureKind.OTHER),
    ],
)
def test_container_launch_failures_are_classified_by_what_they_say(message: str, kind: FailureKind) -> None:
    assert classify_failure(failed(message, LAUNCH_FAILED)) is kind


def test_the_isolation_refusal_is_an_agent_configuration_error_with_the_isolation_hint() -> None:
    kind = classify_failure(failed(POSIX_VOLUMES, LAUNCH_FAILED))
    assert kind is FailureKind.AGENT_CONFIG  # not VOLUME: no volume driver is involved, nothing to retry
    assert "--isolation=filesystem/linux,docker/volume" in HINTS[kind]
    assert "filesystem/posix" in HINTS[kind]
    assert "503" not in HINTS[kind]


def test_an_agent_configuration_error_is_reported_once_per_node_and_change() -> None:
    backoff = Backoff(base_s=5, max_s=60)
    levels = []
    for now in (0, 10, 30):
        backoff = backoff.failed(1, FailureKind.AGENT_CONFIG, POSIX_VOLUMES, now=now)
        levels.append(failure_report(1, T, backoff.failures[1], backoff.wait(1, now))[0])
    assert levels == [logging.ERROR, logging.INFO, logging.INFO]
    level, line = failure_report(1, T, Backoff().failed(1, FailureKind.AGENT_CONFIG, POSIX_VOLUMES, 0).failures[1], 5)
    assert level == logging.ERROR
    assert line.startswith(f"node 1 task {T} failed (agent_config): {POSIX_VOLUMES}")
    assert "--isolation=filesystem/linux,docker/volume" in line and "relaunch in 5s" in line.lower()
    # Another node meeting it is reported too, and so is a change of what node 1's failure says.
    other = backoff.failed(2, FailureKind.AGENT_CONFIG, POSIX_VOLUMES, now=40)
    assert failure_report(2, T, other.failures[2], 5)[0] == logging.ERROR
    changed = backoff.failed(
        1, FailureKind.AGENT_CONFIG, "Failed to launch container: Container root filesystems not supported", now=40
    )
    assert failure_report(1, T, changed.failures[1], 5)[0] == logging.ERROR
    # After a healthy period the next failure starts afresh, loudly.
    again = backoff.running(running(healthy=True), holder(since=45), now=45).failed(
        1, FailureKind.AGENT_CONFIG, POSIX_VOLUMES, now=50, task_id=T
    )
    assert failure_report(1, T, again.failures[1], 5)[0] == logging.ERROR


def test_other_failures_are_warnings_every_time() -> None:
    backoff = Backoff()
    for now in (0, 10):
        backoff = backoff.failed(1, FailureKind.VOLUME, "VolumeDriver.Mount: 503", now=now)
        level, line = failure_report(1, T, backoff.failures[1], 7)
        assert level == logging.WARNING
        assert line == f"node 1 task {T} failed (volume): VolumeDriver.Mount: 503; relaunch in 7s"
    record = Backoff().failed(1, FailureKind.EXECUTOR_LOST, "", 0).failures[1]
    assert failure_report(1, T, record, 5, "REASON_EXECUTOR_TERMINATED")[1].endswith(
        "failed (executor_lost): REASON_EXECUTOR_TERMINATED; relaunch in 5s"
    )
