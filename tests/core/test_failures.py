from __future__ import annotations

import pytest

from es_framework.core.failures import HINTS, Backoff, FailureKind, classify_failure
from es_framework.core.node_state import TaskState
from es_framework.core.status_updates import StatusUpdate

T = "elasticsearch-node1-" + "0" * 32


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


def test_backoff_doubles_up_to_the_cap_and_resets_on_success() -> None:
    backoff = Backoff(base_s=5, max_s=60)
    assert backoff.wait(1, now=0) == 0
    delays = []
    for _ in range(6):
        backoff = backoff.failed(1, FailureKind.VOLUME, "503", now=100)
        delays.append(backoff.wait(1, now=100))
    assert delays == [5, 10, 20, 40, 60, 60]
    assert backoff.failures[1].count == 6
    assert backoff.wait(1, now=130) == 30
    assert backoff.wait(1, now=200) == 0
    assert backoff.wait(2, now=100) == 0
    reset = backoff.succeeded(1)
    assert 1 not in reset.failures and 1 in backoff.failures
    assert reset.failed(1, FailureKind.OTHER, "x", now=0).wait(1, now=0) == 5
    assert reset.succeeded(1) is reset
