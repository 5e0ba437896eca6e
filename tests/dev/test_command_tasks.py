"""Command tasks on the development cluster's process backend, driven through the master's HTTP API:
the updates of Mesos' command executor, and ``docker volume rm`` against the stand-in volume driver
(including the removal task the scheduler builds, es_framework/core/volume_tasks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from es_framework.config import resolve_config
from es_framework.core.offers import parse_offer
from es_framework.core.volume_tasks import build_removal_task, removal_result
from es_framework.core.volumes import VolumeSet, VolumeSpec
from es_framework.dev.devcluster import AgentSpec, DevMaster, ProcessExecutorBackend
from es_framework.dev.devcluster.executors import ExecutorRef
from identity.task_ids import new_launch_id
from tests.dev.devcluster.conftest import FAST
from tests.dev.devcluster.test_wire import ack, command_task, fid, first_offer, launch, send, subscribe
from tests.harness.devcluster import RawStream, wait_for

AGENT = AgentSpec(
    id="agent-c-S0",
    hostname="c.devcluster.test",
    cpus=4,
    mem=4096,
    disk=1000,
    ports=((34000, 34099),),
    attributes=(("rexray", "true"),),
    ip="127.0.0.4",
    port=5071,
    executor_environment_variables=(("AGENT_FLAG", "from --executor_environment_variables"),),
)
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[DevMaster, ProcessExecutorBackend, RawStream]]:
    backend = ProcessExecutorBackend(tmp_path / "work")
    master = DevMaster([AGENT], backend=backend, **FAST).start()
    stream = subscribe(master)
    try:
        yield master, backend, stream
    finally:
        stream.close()
        master.stop()


def run(
    master: DevMaster, stream: RawStream, task: dict[str, Any], *, until: set[str] = TERMINAL
) -> list[dict[str, Any]]:
    """Launch ``task`` and acknowledge each of its updates (the agent forwards the next only then) until
    one in ``until``; every update, in order."""
    offer = first_offer(stream, AGENT.id, master=master)
    task = {**task, "agent_id": offer["agent_id"]}
    launch(master, stream, offer, task)
    task_id = task["task_id"]["value"]
    seen: list[dict[str, Any]] = []

    def next_update() -> dict[str, Any] | None:
        fresh = [u for u in stream.updates(task_id) if u["uuid"] not in {s["uuid"] for s in seen}]
        return fresh[0] if fresh else None

    while not seen or seen[-1]["state"] not in until:
        update = wait_for(next_update, timeout=15, what=f"an update of {task_id} after {[s['state'] for s in seen]}")
        seen.append(update)
        ack(master, stream, update)
    return seen


def argv_task(offer_like: dict[str, Any], task_id: str, *argv: str, **changes: Any) -> dict[str, Any]:
    """``argv`` is CommandInfo.value then its arguments (whose first is argv[0])."""
    return command_task(
        offer_like, task_id, command={"shell": False, "value": argv[0], "arguments": list(argv[1:])}, **changes
    )


def offer_now(master: DevMaster, stream: RawStream) -> dict[str, Any]:
    return first_offer(stream, AGENT.id, master=master)


def sandbox_file(backend: ProcessExecutorBackend, stream: RawStream, task_id: str, name: str) -> str:
    return (backend.sandbox_of(ExecutorRef(fid(stream), AGENT.id, task_id)) / name).read_text()


def states(updates: list[dict[str, Any]]) -> list[str]:
    return [u["state"] for u in updates]


def test_exit_0_finishes_and_exit_3_fails_with_the_command_executors_messages(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    master, backend, stream = cluster
    ok = run(master, stream, argv_task(offer_now(master, stream), "ok", "/bin/sh", "sh", "-c", "echo hello"))
    assert states(ok) == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert ok[-1]["message"] == "Command exited with status 0"
    assert all(u["source"] == "SOURCE_EXECUTOR" for u in ok) and "reason" not in ok[-1]
    assert sandbox_file(backend, stream, "ok", "stdout") == "hello\n"
    bad = run(
        master, stream, command_task(offer_now(master, stream), "bad", command={"value": "echo oops >&2; exit 3"})
    )
    assert states(bad) == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert bad[-1]["message"] == "Command exited with status 3"
    assert "oops" in sandbox_file(backend, stream, "bad", "stderr")


def test_a_program_that_cannot_run_exits_with_status_1(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    master, backend, stream = cluster
    updates = run(master, stream, argv_task(offer_now(master, stream), "nope", "no-such-program-es-mesos"))
    assert (updates[-1]["state"], updates[-1]["message"]) == ("TASK_FAILED", "Command exited with status 1")
    assert "Failed to execute 'no-such-program-es-mesos'" in sandbox_file(backend, stream, "nope", "stderr")


def test_kill_sends_killed_and_max_completion_time_fails(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    master, _, stream = cluster
    running = run(
        master, stream, argv_task(offer_now(master, stream), "long", "sleep", "sleep", "30"), until={"TASK_RUNNING"}
    )
    assert states(running) == ["TASK_STARTING", "TASK_RUNNING"]
    status, _ = send(master, stream, "KILL", {"task_id": {"value": "long"}, "agent_id": {"value": AGENT.id}})
    assert status == 202
    killed = wait_for(lambda: [u for u in stream.updates("long") if u["state"] == "TASK_KILLED"], timeout=10)[0]
    assert killed["message"] == "Command terminated with signal Terminated"
    timed = run(
        master,
        stream,
        argv_task(
            offer_now(master, stream), "slow", "sleep", "sleep", "30", max_completion_time={"nanoseconds": 300_000_000}
        ),
    )
    assert timed[-1]["state"] == "TASK_FAILED"
    assert timed[-1]["reason"] == "REASON_MAX_COMPLETION_TIME_REACHED"
    assert timed[-1]["message"] == "Command terminated with signal Killed"


def test_docker_volume_rm_removes_an_unused_volume_and_fails_on_a_missing_one(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    master, backend, stream = cluster
    for name in ("es4config", "es4data"):
        backend.volume_dir(name).mkdir(parents=True)
    inspect = run(
        master,
        stream,
        argv_task(offer_now(master, stream), "inspect", "docker", "docker", "volume", "inspect", "es4data"),
    )
    assert inspect[-1]["state"] == "TASK_FINISHED" and '"Name": "es4data"' in sandbox_file(
        backend, stream, "inspect", "stdout"
    )
    removed = run(
        master,
        stream,
        argv_task(offer_now(master, stream), "rm1", "docker", "docker", "volume", "rm", "es4config", "es4data"),
    )
    assert removed[-1]["state"] == "TASK_FINISHED"
    assert not backend.volume_dir("es4config").exists() and not backend.volume_dir("es4data").exists()
    assert sandbox_file(backend, stream, "rm1", "stdout") == "es4config\nes4data\n"
    again = run(
        master, stream, argv_task(offer_now(master, stream), "rm2", "docker", "docker", "volume", "rm", "es4data")
    )
    assert (again[-1]["state"], again[-1]["message"]) == ("TASK_FAILED", "Command exited with status 1")
    assert "get es4data: no such volume" in sandbox_file(backend, stream, "rm2", "stderr")
    missing = run(
        master,
        stream,
        argv_task(offer_now(master, stream), "inspect2", "docker", "docker", "volume", "inspect", "es4data"),
    )
    assert missing[-1]["message"] == "Command exited with status 1"


def test_docker_volume_rm_of_a_volume_a_running_task_uses_fails_like_docker(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    master, backend, stream = cluster
    offer = offer_now(master, stream)
    holder = {
        "name": "holder",
        "task_id": {"value": "holder"},
        "agent_id": offer["agent_id"],
        "resources": command_task(offer, "x")["resources"],
        "executor": {
            "executor_id": {"value": "holder-executor"},
            "command": {
                "value": "sleep 30",
                "environment": {
                    "variables": [
                        {"name": "DVDI_VOLUME_NAME", "value": "es5data"},
                        {"name": "DVDI_VOLUME_CONTAINERPATH", "value": "/data"},
                    ]
                },
            },
        },
    }
    launch(master, stream, offer, holder)
    wait_for(lambda: backend.volume_users("es5data"), timeout=10, what="the holder's executor")
    refused = run(
        master, stream, argv_task(offer_now(master, stream), "rm-live", "docker", "docker", "volume", "rm", "es5data")
    )
    assert (refused[-1]["state"], refused[-1]["message"]) == ("TASK_FAILED", "Command exited with status 1")
    assert "remove es5data: volume is in use - [holder]" in sandbox_file(backend, stream, "rm-live", "stderr")
    assert backend.volume_dir("es5data").is_dir()
    # --force does not remove a volume in use either.
    forced = run(
        master,
        stream,
        argv_task(offer_now(master, stream), "rm-f", "docker", "docker", "volume", "rm", "-f", "es5data"),
    )
    assert forced[-1]["state"] == "TASK_FAILED" and backend.volume_dir("es5data").is_dir()


def test_the_schedulers_removal_task_removes_the_node_ids_volumes(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    master, backend, stream = cluster
    config = resolve_config(
        {
            "frameworkName": "elasticsearch",
            "externalVolumeDriver": "rexray",
            "volumeRetention": "delete",
            "externalVolumeAttribute": "rexray:true",
        },
        {},
    )
    volumes = VolumeSet(
        4,
        "rexray",
        VolumeSpec("elasticsearch4config", "config"),
        VolumeSpec("elasticsearch4data", "data"),
        0.0,
        AGENT.id,
        AGENT.hostname,
        0.0,
    )
    for spec in volumes.specs:
        backend.volume_dir(spec.name).mkdir(parents=True)
    offer = offer_now(master, stream)
    task, removal = build_removal_task(4, volumes, parse_offer(offer), config, 1.0, launch_id=new_launch_id())
    launch(master, stream, offer, task)
    task_id = task["task_id"]["value"]

    seen: list[dict[str, Any]] = []

    def next_terminal() -> dict[str, Any] | None:
        for update in stream.updates(task_id):
            if update["uuid"] not in {s["uuid"] for s in seen}:
                seen.append(update)
                ack(master, stream, update)
        return next((u for u in seen if u["state"] in TERMINAL), None)

    final = wait_for(next_terminal, timeout=15, what="the removal's result")
    assert removal_result(final) == (True, None), final
    assert (
        not backend.volume_dir("elasticsearch4config").exists()
        and not backend.volume_dir("elasticsearch4data").exists()
    )
    assert removal.task_id == task_id and removal.agent_id == AGENT.id


def test_a_command_task_gets_the_agents_executor_environment(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RawStream],
) -> None:
    """The command executor is an executor: LIBPROCESS_IP and --executor_environment_variables reach
    its command (apache/mesos src/slave/slave.cpp executorEnvironment), the task's own variables win."""
    master, backend, stream = cluster
    task = command_task(
        offer_now(master, stream),
        "env",
        command={
            "value": 'echo "$LIBPROCESS_IP|$AGENT_FLAG|$MINE"',
            "environment": {"variables": [{"name": "MINE", "value": "the task's"}]},
        },
    )
    assert states(run(master, stream, task))[-1] == "TASK_FINISHED"
    assert (
        sandbox_file(backend, stream, "env", "stdout") == "127.0.0.4|from --executor_environment_variables|the task's\n"
    )
