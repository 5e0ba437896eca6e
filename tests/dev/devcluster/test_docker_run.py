"""TaskInfo → ``docker run`` as Mesos' Docker containerizer builds it (pure; the development master's
Docker executor backend runs what it builds)."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.config import resolve_config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.dev.devcluster.docker_run import (
    SANDBOX_IN_CONTAINER,
    container_name,
    docker_run_argv,
    is_docker_executor,
)

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
