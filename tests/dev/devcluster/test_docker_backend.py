"""The Docker executor backend and the routing backend: launches that fail without Docker, routing between
backends, and real containers run through the backend on a private dockerd (``docker``-marked)."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from es_framework.dev.devcluster import (
    AgentSpec,
    DevMaster,
    DockerExecutorBackend,
    FakeExecutorBackend,
    ProcessExecutorBackend,
    RoutingExecutorBackend,
)
from es_framework.dev.devcluster.docker_run import SANDBOX_IN_CONTAINER, container_name
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import ExecutorRef
from tests.dev.devcluster.conftest import FAST
from tests.dev.devcluster.test_docker_run import task
from tests.harness.devcluster import wait_for
from tests.harness.volume_plugin import VolumePlugin, shared_volume_plugin


class RecordingAgent:
    """An AgentSide that records what executors report."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.updates: list[tuple[str, str, str | None, str | None]] = []
        self.messages: list[bytes] = []
        self.data: list[str | None] = []

    def executor_update(
        self,
        ref: ExecutorRef,
        task_id: str,
        state: str,
        *,
        message: str | None = None,
        reason: str | None = None,
        healthy: bool | None = None,
        data: str | None = None,
    ) -> None:
        with self.lock:
            self.updates.append((task_id, state, message, reason))
            self.data.append(data)

    def executor_message(self, ref: ExecutorRef, data: bytes) -> None:
        with self.lock:
            self.messages.append(data)

    def states(self, task_id: str) -> list[str]:
        with self.lock:
            return [u[1] for u in self.updates if u[0] == task_id]

    def last(self, task_id: str) -> tuple[str, str, str | None, str | None] | None:
        with self.lock:
            return next((u for u in reversed(self.updates) if u[0] == task_id), None)


def test_routing_sends_docker_executors_to_docker_and_the_rest_elsewhere(tmp_path: Path) -> None:
    docker, default = FakeExecutorBackend(), FakeExecutorBackend()
    router = RoutingExecutorBackend(docker=docker, default=default)
    agent = RecordingAgent()
    docker_ref, plain_ref = ExecutorRef("f", "a1", "e1"), ExecutorRef("f", "a1", "e2")
    router.launch(agent, docker_ref, task())
    plain = {"task_id": {"value": "t2"}, "executor": {"executor_id": {"value": "e2"}, "command": {"value": "x"}}}
    router.launch(agent, plain_ref, plain)
    assert docker.running == {docker_ref}
    assert default.running == {plain_ref}
    router.shutdown(docker_ref)
    assert docker.running == set() and default.running == {plain_ref}
    assert router.backend_for("f", "e2") is default
    assert router.backend_for("f", "never") is default
    # Neither fake serves the executor API: calls for their executors are refused, not crashed on.
    with pytest.raises(CallError):
        router.executor_call({"framework_id": {"value": "f"}, "executor_id": {"value": "e1"}, "type": "MESSAGE"})


def test_routing_with_a_process_backend_serves_its_executor_api(tmp_path: Path) -> None:
    process = ProcessExecutorBackend(tmp_path / "work", default_grace_period=0.5)
    router = RoutingExecutorBackend(docker=FakeExecutorBackend(), default=process)
    assert router.executor_api is router
    master = DevMaster([AgentSpec(id="a1", hostname="127.0.0.1")], backend=router, **FAST).start()
    try:
        agent = RecordingAgent()
        ref = ExecutorRef("f", "a1", "e3")
        script = "import time; time.sleep(30)"
        info = {
            "task_id": {"value": "t3"},
            "executor": {
                "executor_id": {"value": "e3"},
                "command": {"shell": False, "value": "python3", "arguments": ["python3", "-c", script]},
            },
        }
        router.launch(agent, ref, info)
        assert process.owns("f", "e3")
        subscribed = router.executor_subscribe(
            {"type": "SUBSCRIBE", "framework_id": {"value": "f"}, "executor_id": {"value": "e3"}, "subscribe": {}}
        )
        router.executor_call(
            {
                "type": "UPDATE",
                "framework_id": {"value": "f"},
                "executor_id": {"value": "e3"},
                "update": {"status": {"task_id": {"value": "t3"}, "state": "TASK_RUNNING", "data": "aGk="}},
            }
        )
        assert agent.states("t3") == ["TASK_RUNNING"]
        assert agent.data == ["aGk="]  # TaskStatus.data passes through to the master
        router.executor_stream_closed(subscribed)
        assert [e["executor_id"] for e in router.state()] == ["e3"]
    finally:
        master.stop()


def test_launch_failures_fail_the_task_without_any_docker(tmp_path: Path) -> None:
    backend = DockerExecutorBackend("unix:///nonexistent.sock", tmp_path / "work", docker_binary="/nonexistent/docker")
    master = DevMaster([AgentSpec(id="a1", hostname="127.0.0.1")], backend=backend, **FAST).start()
    try:
        agent = RecordingAgent()
        backend.launch(agent, ExecutorRef("f", "a1", "e1"), task())  # docker run fails in its thread
        wait_for(lambda: agent.states("t1"), what="TASK_FAILED of the container that could not run")
        failed = agent.last("t1")
        assert failed is not None
        _, state, message, reason = failed
        assert (state, reason) == ("TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED")
        assert message is not None and "could not run docker" in message
        (described,) = backend.state()
        assert described["container"] == "mesos-a1-e1" and described["exit_code"] == 125

        plain = {"task_id": {"value": "t2"}, "executor": {"executor_id": {"value": "e2"}, "command": {"value": "x"}}}
        backend.launch(agent, ExecutorRef("f", "a1", "e2"), plain)  # refused at once: not a DOCKER executor
        assert agent.states("t2") == ["TASK_FAILED"]
        refused = agent.last("t2")
        assert refused is not None and refused[2] is not None and "not DOCKER" in refused[2]
    finally:
        master.stop()


# ---------------------------------------------------------------------- a real container


EXECUTOR_SCRIPT = textwrap.dedent(
    """
    # A minimal v1 executor (stdlib only): subscribe, report TASK_RUNNING, exit on SHUTDOWN.
    import base64, http.client, json, os, sys, uuid
    host, port = os.environ["MESOS_AGENT_ENDPOINT"].split(":")
    ids = {"framework_id": {"value": os.environ["MESOS_FRAMEWORK_ID"]},
           "executor_id": {"value": os.environ["MESOS_EXECUTOR_ID"]}}

    def post(body):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("POST", "/api/v1/executor", json.dumps(body), {"Content-Type": "application/json"})
        return conn.getresponse()

    stream = post({**ids, "type": "SUBSCRIBE", "subscribe": {}})
    while True:
        size = stream.readline()
        if not size:
            break
        event = json.loads(stream.read(int(size)))
        print("event", event["type"], flush=True)
        if event["type"] == "LAUNCH":
            status = {"task_id": event["launch"]["task"]["task_id"], "state": "TASK_RUNNING",
                      "source": "SOURCE_EXECUTOR", "message": "running as uid %d" % os.getuid(),
                      "uuid": base64.b64encode(uuid.uuid4().bytes).decode()}
            post({**ids, "type": "UPDATE", "update": {"status": status}}).read()
        elif event["type"] == "SHUTDOWN":
            print("shutting down", flush=True)
            sys.exit(0)
    """
)


@pytest.fixture
def docker_cluster(
    docker_engine: Any, tmp_path: Path
) -> Iterator[tuple[DevMaster, DockerExecutorBackend, RecordingAgent, VolumePlugin]]:
    plugin = shared_volume_plugin()  # what the volume_plugin fixture gives: one name per session, reset
    plugin.reset()
    backend = DockerExecutorBackend(docker_engine.host, tmp_path / "work", default_grace_period=1.0)
    master = DevMaster([AgentSpec(id="agent-d-S0", hostname="127.0.0.1")], backend=backend, **FAST).start()
    try:
        yield master, backend, RecordingAgent(), plugin
    finally:
        master.stop()  # removes the containers before their volumes go
        plugin.reset()


def docker_task(image: str, executor_id: str, command: dict[str, Any], driver: str) -> dict[str, Any]:
    info = task(
        command=command,
        parameters=[
            {"key": "ulimit", "value": "nofile=4096:8192"},
            {"key": "volume-driver", "value": driver},
            {"key": "volume", "value": f"{executor_id}data:/usr/share/elasticsearch/data"},
            {
                "key": "mount",
                "value": f"type=volume,source={executor_id}conf,target=/conf,volume-driver={driver},volume-opt=size=5",
            },
        ],
        volumes=[{"container_path": "/hostdata", "host_path": "/var/lib/es-test", "mode": "RW"}],
    )
    info["task_id"] = {"value": f"task-{executor_id}"}
    info["executor"]["executor_id"] = {"value": executor_id}
    info["executor"]["container"]["docker"]["image"] = image
    info["executor"]["shutdown_grace_period"] = {"nanoseconds": 500_000_000}
    return info


@pytest.mark.docker
def test_a_container_executor_runs_reports_and_shuts_down(
    docker_cluster: tuple[DevMaster, DockerExecutorBackend, RecordingAgent, VolumePlugin],
    standin_image: Callable[[int], str],
    docker_engine: Any,
) -> None:
    master, backend, agent, plugin = docker_cluster
    image = standin_image(8)
    ref = ExecutorRef("fw-1", "agent-d-S0", "ex1")
    sandbox = backend.sandbox_of(ref)
    sandbox.mkdir(parents=True)
    (sandbox / "executor.py").write_text(EXECUTOR_SCRIPT)
    command = {
        "shell": False,
        "value": "python3",
        "arguments": [f"{SANDBOX_IN_CONTAINER}/executor.py"],
        "environment": {"variables": [{"name": "ELASTICSEARCH_NODE_ID", "value": "1"}]},
    }
    backend.launch(agent, ref, docker_task(image, "ex1", command, plugin.name))
    wait_for(lambda: "TASK_RUNNING" in agent.states("task-ex1"), timeout=120, what="TASK_RUNNING from the container")
    running = agent.last("task-ex1")
    assert running is not None and running[2] == "running as uid 1000"  # the image's USER, no --user

    name = container_name("agent-d-S0", "ex1")
    (inspected,) = json.loads(docker_engine.docker("inspect", name).stdout)
    assert inspected["HostConfig"]["NetworkMode"] == "host"
    env = dict(e.split("=", 1) for e in inspected["Config"]["Env"])
    assert env["MESOS_AGENT_ENDPOINT"] == master.address
    assert env["MESOS_SANDBOX"] == env["MESOS_DIRECTORY"] == SANDBOX_IN_CONTAINER
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "0.5secs"
    assert env["ELASTICSEARCH_NODE_ID"] == "1"
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in inspected["HostConfig"]["Ulimits"]} == {"nofile": (4096, 8192)}
    mounts = {m["Destination"]: m for m in inspected["Mounts"]}
    assert mounts[SANDBOX_IN_CONTAINER]["Source"] == str(sandbox)
    assert mounts["/hostdata"]["Source"] == str(backend.host_path_dir("agent-d-S0", "/var/lib/es-test"))
    assert (mounts["/usr/share/elasticsearch/data"]["Driver"], mounts["/conf"]["Driver"]) == (plugin.name, plugin.name)
    assert plugin.options("ex1conf") == {"size": "5"}
    assert len(plugin.attachments("ex1data")) == 1 and len(plugin.attachments("ex1conf")) == 1
    assert inspected["Config"]["Labels"]["es-mesos.devcluster.executor"] == "ex1"
    (state,) = backend.state()
    assert state["container"] == name and state["subscribed"] and state["exit_code"] is None

    backend.shutdown(ref)  # the executor exits on SHUTDOWN: the container stops by itself
    wait_for(lambda: not backend.owns("fw-1", "ex1"), timeout=30, what="the container executor gone")
    assert docker_engine.docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name).stdout.split() == [
        "false",
        "0",
    ]
    assert "event SHUTDOWN" in (sandbox / "stdout").read_text()
    assert agent.states("task-ex1") == ["TASK_RUNNING"]  # a shutdown is no failure
    assert plugin.attachments("ex1data") == []  # Docker unmounted the volume when the container stopped


@pytest.mark.docker
def test_container_executor_that_exits_fails_its_task_and_one_that_ignores_shutdown_is_stopped(
    docker_cluster: tuple[DevMaster, DockerExecutorBackend, RecordingAgent, VolumePlugin],
    standin_image: Callable[[int], str],
    docker_engine: Any,
) -> None:
    _master, backend, agent, plugin = docker_cluster
    image = standin_image(8)
    crash = {"shell": True, "value": "echo executor blew up >&2; exit 3"}
    backend.launch(agent, ExecutorRef("fw-1", "agent-d-S0", "crash"), docker_task(image, "crash", crash, plugin.name))
    sleeper = {"shell": False, "value": "python3", "arguments": ["-c", "import time; time.sleep(300)"]}
    sleeper_ref = ExecutorRef("fw-1", "agent-d-S0", "sleeper")
    backend.launch(agent, sleeper_ref, docker_task(image, "sleeper", sleeper, plugin.name))

    wait_for(lambda: agent.states("task-crash"), timeout=120, what="the crashed container's TASK_FAILED")
    failed = agent.last("task-crash")
    assert failed is not None
    _, state, message, reason = failed
    assert (state, reason) == ("TASK_FAILED", "REASON_EXECUTOR_TERMINATED")
    assert message is not None and "exit code 3: executor blew up" in message

    sleeper_name = container_name("agent-d-S0", "sleeper")
    wait_for(
        lambda: (
            docker_engine.docker("inspect", "-f", "{{.State.Running}}", sleeper_name, check=False).stdout.strip()
            == "true"
        ),
        timeout=120,
        what="the sleeper running",
    )
    backend.shutdown(sleeper_ref)  # it never subscribes: SHUTDOWN waits in vain, then docker stop
    wait_for(lambda: not backend.owns("fw-1", "sleeper"), timeout=30, what="the ignoring executor stopped")
    assert docker_engine.docker("inspect", "-f", "{{.State.Running}}", sleeper_name).stdout.strip() == "false"
    assert agent.states("task-sleeper") == []

    # A container on a volume a live container holds cannot start: the driver's refusal is the task's failure.
    holder = {"shell": False, "value": "python3", "arguments": ["-c", "import time; time.sleep(300)"]}
    backend.launch(
        agent, ExecutorRef("fw-1", "agent-d-S0", "holder"), docker_task(image, "holder", holder, plugin.name)
    )
    wait_for(lambda: plugin.attachments("holderdata"), timeout=120, what="the holder attached")
    second = docker_task(image, "second", holder, plugin.name)
    parameters = second["executor"]["container"]["docker"]["parameters"]
    parameters[2] = {"key": "volume", "value": "holderdata:/usr/share/elasticsearch/data"}
    backend.launch(agent, ExecutorRef("fw-1", "agent-d-S0", "second"), second)
    wait_for(lambda: agent.states("task-second"), timeout=120, what="the refused container's TASK_FAILED")
    refused = agent.last("task-second")
    assert refused is not None
    _, state, message, reason = refused
    assert (state, reason) == ("TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED")
    assert message is not None and "attached to another instance" in message
    assert plugin.max_concurrent_attachments("holderdata") == 1
