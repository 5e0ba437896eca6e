"""What a development agent puts into its executors' environment, as a Mesos agent does: its IP as
``LIBPROCESS_IP``, its ``--executor_environment_variables`` (``AgentSpec.executor_environment_variables``)
and the ``MESOS_*`` variables, merged with the CommandInfo's the way each containerizer merges them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from es_framework.dev.devcluster import AgentSpec, DevMaster, DockerExecutorBackend, ProcessExecutorBackend
from es_framework.dev.devcluster.agent import executor_environment
from es_framework.dev.devcluster.docker_backend import ContainerRecord
from es_framework.dev.devcluster.executors import ExecutorRef
from tests.dev.devcluster.conftest import FAST
from tests.dev.devcluster.test_docker_backend import RecordingAgent
from tests.dev.devcluster.test_docker_run import task
from tests.harness.devcluster import wait_for

SHORT_AGENT = AgentSpec(
    id="agent-env-S0",
    hostname="short.devcluster.test",
    ip="127.0.0.7",
    ports=((33000, 33010),),
    executor_environment_variables=(
        ("ES_MESOS_AGENT_VM_MAX_MAP_COUNT", "65530"),
        ("SHARED", "from the agent flag"),
    ),
)


def test_the_agent_flag_replaces_libprocess_ip_and_the_mesos_variables_replace_the_flag() -> None:
    spec = AgentSpec(
        id="a",
        hostname="h",
        ip="10.0.0.5",
        executor_environment_variables=(("LIBPROCESS_IP", "10.9.9.9"), ("MESOS_FRAMEWORK_ID", "mine"), ("X", "1")),
    )
    env = executor_environment(spec, {"MESOS_FRAMEWORK_ID": "fw-1", "MESOS_AGENT_ENDPOINT": "10.0.0.5:5051"})
    assert env == {
        "LIBPROCESS_IP": "10.9.9.9",
        "X": "1",
        "MESOS_FRAMEWORK_ID": "fw-1",
        "MESOS_AGENT_ENDPOINT": "10.0.0.5:5051",
    }
    assert executor_environment(AgentSpec(id="b", hostname="h", ip="127.0.0.3"), {})["LIBPROCESS_IP"] == "127.0.0.3"


@pytest.mark.parametrize("pair", [("NAME", 1), ("", "v"), ("ONLY",)])
def test_an_agent_refuses_an_environment_flag_that_is_not_name_and_string(pair: Any) -> None:
    with pytest.raises(ValueError, match="executor_environment_variables"):
        AgentSpec(id="a", hostname="h", executor_environment_variables=(pair,))


def _command(name: str = "SHARED", value: str = "from the task") -> dict[str, Any]:
    return {
        "shell": True,
        "value": 'env > "$MESOS_SANDBOX/env.txt"',
        "environment": {"variables": [{"name": name, "value": value}]},
    }


def test_a_process_executor_gets_the_agent_ip_and_flag_and_its_command_variables_win(tmp_path: Path) -> None:
    backend = ProcessExecutorBackend(tmp_path / "work", commands={"es-mesos-executor": (sys.executable, "-c", "")})
    agent = RecordingAgent()
    ref = ExecutorRef("fw-1", SHORT_AGENT.id, "ex1")
    info = {"task_id": {"value": "task-ex1"}, "executor": {"executor_id": {"value": "ex1"}, "command": _command()}}
    with DevMaster([SHORT_AGENT], backend=backend, **FAST):
        backend.launch(agent, ref, info)
        written = backend.sandbox_of(ref) / "env.txt"
        wait_for(lambda: written.is_file() and "LIBPROCESS_IP" in written.read_text(), what="the executor's env")
        env = dict(line.split("=", 1) for line in written.read_text().splitlines() if "=" in line)
    assert env["LIBPROCESS_IP"] == "127.0.0.7"
    assert env["ES_MESOS_AGENT_VM_MAX_MAP_COUNT"] == "65530"
    # The Mesos containerizer: the CommandInfo's variables win over the agent's environment.
    assert env["SHARED"] == "from the task"
    assert env["MESOS_EXECUTOR_ID"] == "ex1"


class CapturingDockerBackend(DockerExecutorBackend):
    """Builds the ``docker run`` command line and keeps it instead of running it."""

    argv: list[str] | None = None

    def _run(self, record: ContainerRecord, argv: list[str]) -> None:
        self.argv = argv
        record.exit_code = 0  # as if the container ran and exited: nothing to wait for at close
        record.starting = False


def test_a_docker_executor_gets_the_agent_ip_and_flag_which_win_over_its_command(tmp_path: Path) -> None:
    backend = CapturingDockerBackend("unix:///nonexistent/docker.sock", tmp_path / "work")
    info = task(command={**_command(), "shell": False, "value": "es-mesos-executor"})
    info["task_id"] = {"value": "task-e1"}
    with DevMaster([SHORT_AGENT], backend=backend, **FAST):
        backend.launch(RecordingAgent(), ExecutorRef("fw-1", SHORT_AGENT.id, "e1"), info)
        wait_for(lambda: backend.argv, what="the docker run command line")
    assert backend.argv is not None
    env = dict(backend.argv[i + 1].split("=", 1) for i, arg in enumerate(backend.argv) if arg == "-e")
    assert env["LIBPROCESS_IP"] == "127.0.0.7"
    assert env["ES_MESOS_AGENT_VM_MAX_MAP_COUNT"] == "65530"
    # The Docker containerizer: the agent's environment wins over the CommandInfo's (RunOptions::create).
    assert env["SHARED"] == "from the agent flag"
