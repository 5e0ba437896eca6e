"""The Docker executor backend: TaskInfo → ``docker run`` as Mesos' Docker containerizer builds it (pure),
the routing backend, and one real container run through the backend on a private dockerd."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from es_framework.config import resolve_config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.dev.devcluster import (
    AgentSpec,
    DevMaster,
    DockerExecutorBackend,
    FakeExecutorBackend,
    ProcessExecutorBackend,
    RoutingExecutorBackend,
)
from es_framework.dev.devcluster.docker_backend import (
    SANDBOX_IN_CONTAINER,
    container_name,
    docker_run_argv,
    is_docker_executor,
)
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import ExecutorRef
from tests.dev.devcluster.conftest import FAST
from tests.harness.devcluster import wait_for
from tests.harness.volume_plugin import VolumePlugin, shared_volume_plugin

SANDBOX = "/work/agents/a1/frameworks/f1/executors/e1/runs/latest"


def task(
    *,
    parameters: list[dict[str, str]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    command: dict[str, Any] | None = None,
    docker: dict[str, Any] | None = None,
    resources: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "name": "elasticsearch1",
        "task_id": {"value": "t1"},
        "agent_id": {"value": "a1"},
        "resources": resources
        if resources is not None
        else [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 512}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}},
        ],
        "executor": {
            "executor_id": {"value": "e1"},
            "command": command
            if command is not None
            else {
                "shell": False,
                "value": "es-mesos-executor",
                "environment": {"variables": [{"name": "ELASTICSEARCH_NODE_ID", "value": "1"}]},
            },
            "container": {
                "type": "DOCKER",
                "docker": {
                    "image": "es-executor:1",
                    "network": "HOST",
                    **(docker or {}),
                    "parameters": parameters or [],
                },
                "volumes": volumes or [],
            },
        },
    }


def argv_of(task_info: dict[str, Any], **kwargs: Any) -> list[str]:
    return docker_run_argv(task_info, name="mesos-a1-e1", sandbox=SANDBOX, **kwargs)


def pairs(argv: list[str], flag: str) -> list[str]:
    """The values of every ``flag value`` pair in ``argv``."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def env_of(argv: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in pairs(argv, "-e"))


def test_a_plain_executor_container_the_mesos_way() -> None:
    argv = argv_of(task())
    assert argv[:2] == ["run", "-d"]
    # The image, then the command: value and arguments after the image's ENTRYPOINT.
    assert argv[-2:] == ["es-executor:1", "es-mesos-executor"]
    assert "--entrypoint" not in argv
    assert pairs(argv, "--net") == ["host"]
    assert pairs(argv, "--name") == ["mesos-a1-e1"]
    assert pairs(argv, "-v") == [f"{SANDBOX}:{SANDBOX_IN_CONTAINER}"]
    assert pairs(argv, "--cpu-shares") == ["1536"]
    assert pairs(argv, "--memory") == [str(512 * 1024 * 1024)]
    assert not any(a in {"--user", "-u"} or a.startswith("--user=") for a in argv)  # the image's USER applies
    assert not any(a.startswith("--volume-driver") for a in argv)
    assert env_of(argv) == {
        "ELASTICSEARCH_NODE_ID": "1",
        "MESOS_SANDBOX": SANDBOX_IN_CONTAINER,
        "MESOS_CONTAINER_NAME": "mesos-a1-e1",
    }


def test_agent_environment_wins_over_the_command_environment() -> None:
    command = {
        "shell": False,
        "value": "es-mesos-executor",
        "environment": {
            "variables": [
                {"name": "MESOS_EXECUTOR_ID", "value": "forged"},
                {"name": "ES_JAVA_OPTS", "value": "-Xms256m -Xmx256m"},
                {"name": "WITH_EQUALS", "value": "a=b=c"},
            ]
        },
    }
    agent_env = {"MESOS_EXECUTOR_ID": "e1", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5050"}
    env = env_of(argv_of(task(command=command), agent_env=agent_env))
    assert env["MESOS_EXECUTOR_ID"] == "e1"
    assert env["MESOS_AGENT_ENDPOINT"] == "127.0.0.1:5050"
    assert env["ES_JAVA_OPTS"] == "-Xms256m -Xmx256m"
    assert env["WITH_EQUALS"] == "a=b=c"
    assert env["MESOS_SANDBOX"] == SANDBOX_IN_CONTAINER


def test_external_volumes_through_volume_driver_and_volume_parameters() -> None:
    parameters = [
        {"key": "volume-driver", "value": "rexray"},
        {"key": "volume", "value": "elasticsearch1config:/var/lib/es-mesos/config"},
        {"key": "volume", "value": "elasticsearch1data:/usr/share/elasticsearch/data"},
    ]
    argv = argv_of(task(parameters=parameters))
    # Every parameter is "--<key>=<value>", in order, after the name and before the image.
    expected = [
        "--volume-driver=rexray",
        "--volume=elasticsearch1config:/var/lib/es-mesos/config",
        "--volume=elasticsearch1data:/usr/share/elasticsearch/data",
    ]
    start = argv.index("--volume-driver=rexray")
    assert argv[start : start + 3] == expected
    assert argv.index("--name") < start < argv.index("es-executor:1")


def test_mount_parameters_carry_per_volume_options_and_ulimit_passes_through() -> None:
    mount = "type=volume,source=es1data,target=/data,volume-driver=rexray,volume-opt=size=5,volume-opt=iops=150"
    argv = argv_of(
        task(parameters=[{"key": "ulimit", "value": "nofile=20000:20000"}, {"key": "mount", "value": mount}])
    )
    assert "--ulimit=nofile=20000:20000" in argv
    assert f"--mount={mount}" in argv


def test_the_frameworks_own_task_info_keeps_every_docker_parameter() -> None:
    config = resolve_config({"externalVolumeDriver": "rexray", "externalVolumeOptions": "size=5"}, {})
    offer = parse_offer(
        {
            "id": {"value": "o1"},
            "framework_id": {"value": "f"},
            "agent_id": {"value": "a1"},
            "hostname": "agent1",
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 8192}},
                {"name": "disk", "type": "SCALAR", "scalar": {"value": 8192}},
                {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31010}]}},
            ],
        }
    )
    info = build_task_info(offer, 1, config, ClusterView(desired_nodes=1), launch_id="0" * 32)
    argv = argv_of(info)
    docker = info["executor"]["container"]["docker"]
    options = [f"--{p['key']}={p['value']}" for p in docker["parameters"]]
    assert options and all(option in argv for option in options)
    assert any("elasticsearch1data" in option and "volume-driver=rexray" in option for option in options)
    assert argv[argv.index(docker["image"]) + 1 :] == ["es-mesos-executor"]
    assert env_of(argv)["ELASTICSEARCH_NODE_NAME"] == "elasticsearch1"


def test_host_path_and_docker_volume_sources() -> None:
    volumes: list[dict[str, Any]] = [
        {"container_path": "/data", "host_path": "/var/lib/es", "mode": "RW"},
        {"container_path": "/ro", "host_path": "/etc/es", "mode": "RO"},
        {"container_path": "logs", "host_path": "/var/log/es"},
        {"container_path": "/abs", "host_path": "rel"},
        {
            "container_path": "/vol",
            "mode": "RW",
            "source": {"type": "DOCKER_VOLUME", "docker_volume": {"driver": "rexray", "name": "v1"}},
        },
        {"container_path": "/skipped", "source": {"type": "SANDBOX_PATH", "sandbox_path": {"path": "x"}}},
    ]
    mapped: list[str] = []

    def host_path(path: str) -> str:
        mapped.append(path)
        return "/work/hostpaths/a1" + path

    argv = argv_of(task(volumes=volumes), host_path=host_path)
    assert pairs(argv, "-v") == [
        "/work/hostpaths/a1/var/lib/es:/data:rw",
        "/work/hostpaths/a1/etc/es:/ro:ro",
        f"/work/hostpaths/a1/var/log/es:{SANDBOX_IN_CONTAINER}/logs:rw",  # relative container path: in the sandbox
        f"{SANDBOX}/rel:/abs:rw",  # relative host path: in the sandbox
        "v1:/vol:rw",
        f"{SANDBOX}:{SANDBOX_IN_CONTAINER}",
    ]
    assert mapped == ["/var/lib/es", "/etc/es", "/var/log/es"]
    assert argv.count("--volume-driver=rexray") == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "volumes": [
                    {
                        "container_path": "/a",
                        "source": {"type": "DOCKER_VOLUME", "docker_volume": {"driver": "x", "name": "a"}},
                    },
                    {
                        "container_path": "/b",
                        "source": {"type": "DOCKER_VOLUME", "docker_volume": {"driver": "y", "name": "b"}},
                    },
                ]
            },
            "Only one volume driver",
        ),
        ({"volumes": [{"container_path": "rel", "host_path": "rel"}]}, "relative"),
        ({"volumes": [{"container_path": "/x"}]}, "Host path or volume source is required"),
        ({"docker": {"image": ""}}, "No docker image"),
        ({"docker": {"port_mappings": [{"host_port": 1, "container_port": 2}]}}, "Port mappings"),
        ({"command": {"shell": True}}, "no command value"),
    ],
)
def test_what_mesos_refuses_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        argv_of(task(**change))


def test_shell_commands_override_the_entrypoint_and_arguments_all_follow_the_value() -> None:
    shell = argv_of(task(command={"value": "echo $HOME && sleep 1"}))  # shell defaults to true
    assert shell[shell.index("--entrypoint") + 1] == "/bin/sh"
    assert shell[-3:] == ["es-executor:1", "-c", "echo $HOME && sleep 1"]
    plain = argv_of(task(command={"shell": False, "value": "python3", "arguments": ["-c", "print(1)"]}))
    assert plain[-4:] == ["es-executor:1", "python3", "-c", "print(1)"]
    no_value = argv_of(task(command={"shell": False, "arguments": ["--flag"]}))
    assert no_value[-2:] == ["es-executor:1", "--flag"]


def test_bridge_network_port_mappings_labels_privileged_and_limits_off() -> None:
    info = task(
        docker={
            "network": "BRIDGE",
            "privileged": True,
            "port_mappings": [{"host_port": 31000, "container_port": 9200}],
        }
    )
    argv = argv_of(info, labels={"b": "2", "a": "1"}, limit_resources=False)
    assert pairs(argv, "--net") == ["bridge"]
    assert pairs(argv, "-p") == ["31000:9200"]
    assert "--privileged" in argv
    assert pairs(argv, "--label") == ["a=1", "b=2"]
    assert "--memory" not in argv and "--cpu-shares" not in argv
    tiny = argv_of(
        task(
            resources=[
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.001}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 4}},
            ]
        )
    )
    assert pairs(tiny, "--cpu-shares") == ["2"]
    assert pairs(tiny, "--memory") == [str(32 * 1024 * 1024)]


def test_container_names_and_docker_detection() -> None:
    assert (
        container_name("agent-1-S0", "elasticsearch-executor-node1-abc")
        == "mesos-agent-1-S0-elasticsearch-executor-node1-abc"
    )
    assert container_name("a/b", "e:1 x") == "mesos-a_b-e_1_x"
    assert is_docker_executor(task())
    assert not is_docker_executor({"executor": {"container": {"type": "MESOS"}}})
    assert not is_docker_executor({"command": {"value": "true"}})


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
