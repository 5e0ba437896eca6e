from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.resources import CarveError, PortsUnavailableError
from es_framework.core.task_builder import (
    DOCKER_CONFIG_VOLUME_PATH,
    DOCKER_DATA_PATH,
    EXECUTOR_COMMAND,
    GRACE_PERIOD_NS,
    build_task_info,
)
from identity import node_id_from_task_id
from tests.harness.builders import config, offer, ports, scalar

LAUNCH = "0123456789abcdef0123456789abcdef"
VIEW = ClusterView(desired_nodes=3, seed_hosts=("agent1.example.com:31001", "agent2.example.com:31001"))


def build(node_id: int = 2, raw: dict[str, Any] | None = None, /, **flags: str) -> dict[str, Any]:
    cfg = config(**flags)
    return build_task_info(parse_offer(raw or offer(5)), node_id, cfg, VIEW, launch_id=LAUNCH)


def env_of(task: dict[str, Any]) -> dict[str, str]:
    """The plain variables (secret ones carry no ``value``)."""
    return {v["name"]: v["value"] for v in task["executor"]["command"]["environment"]["variables"] if "value" in v}


def secrets_of(task: dict[str, Any]) -> dict[str, str]:
    return {
        v["name"]: base64.b64decode(v["secret"]["value"]["data"]).decode()
        for v in task["executor"]["command"]["environment"]["variables"]
        if v.get("type") == "SECRET"
    }


def params_of(task: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["key"], p["value"]) for p in task["executor"]["container"]["docker"]["parameters"]]


def scalar_total(task: dict[str, Any], name: str) -> float:
    return float(sum(r["scalar"]["value"] for r in task["resources"] if r["name"] == name))


def test_identity_in_task_id_label_env_and_names() -> None:
    task = build(2)
    assert task["task_id"]["value"] == f"elasticsearch-node2-{LAUNCH}"
    assert node_id_from_task_id(task["task_id"]["value"], "elasticsearch") == 2
    assert task["name"] == "elasticsearch2"
    assert task["agent_id"] == {"value": "agent-5-S0"}
    assert {"key": "es-mesos.node-id", "value": "2"} in task["labels"]["labels"]
    assert {"key": "es-mesos.cluster", "value": "mesos-ha"} in task["labels"]["labels"]
    env = env_of(task)
    assert env["ELASTICSEARCH_NODE_ID"] == "2"
    assert env["ELASTICSEARCH_NODE_NAME"] == "elasticsearch2"
    assert env["ELASTICSEARCH_CLUSTER_NAME"] == "mesos-ha"
    assert env["ELASTICSEARCH_FRAMEWORK_NAME"] == "elasticsearch"
    assert env["ELASTICSEARCH_PUBLISH_HOST"] == "agent5.example.com"
    assert env["ELASTICSEARCH_USE_IP_ADDRESS"] == "false"
    assert env["ELASTICSEARCH_SEED_HOSTS"] == "agent1.example.com:31001,agent2.example.com:31001"
    assert env["ES_JAVA_OPTS"] == "-Xms942m -Xmx942m"  # half of 2048 MB less the executor's 164 MB
    executor = task["executor"]
    assert executor["executor_id"]["value"] == f"elasticsearch-executor-node2-{LAUNCH}"
    assert executor["type"] == "CUSTOM"
    assert executor["shutdown_grace_period"] == {"nanoseconds": GRACE_PERIOD_NS}
    assert task["kill_policy"] == {"grace_period": {"nanoseconds": GRACE_PERIOD_NS}}


def test_ports_reach_env_and_discovery() -> None:
    task = build(1, offer(port_ranges=((9200, 9200), (9300, 9300))), elasticsearchPorts="9200,9300")
    env = env_of(task)
    assert (env["ELASTICSEARCH_HTTP_PORT"], env["ELASTICSEARCH_TRANSPORT_PORT"]) == ("9200", "9300")
    assert task["discovery"]["ports"]["ports"] == [
        {"number": 9200, "name": "http", "protocol": "tcp"},
        {"number": 9300, "name": "transport", "protocol": "tcp"},
    ]
    ranges = [r["ranges"]["range"] for r in task["resources"] if r["name"] == "ports"]
    assert ranges == [[{"begin": 9200, "end": 9200}, {"begin": 9300, "end": 9300}]]


def test_heap_is_half_the_memory_left_and_resources_match_flags() -> None:
    task = build(1, elasticsearchRam="4096", elasticsearchCpu="2.5", useIpAddress="true")
    assert env_of(task)["ES_JAVA_OPTS"] == "-Xms1966m -Xmx1966m"
    assert env_of(task)["ELASTICSEARCH_USE_IP_ADDRESS"] == "true"
    assert scalar_total(task, "cpus") == 2.5
    assert scalar_total(task, "mem") == 4096
    assert scalar_total(task, "disk") == 1024


def test_user_labels_join_ours() -> None:
    labels = build(1, executorLabels="team=search env=prod")["labels"]["labels"]
    assert labels[:2] == [{"key": "team", "value": "search"}, {"key": "env", "value": "prod"}]
    assert {"key": "es-mesos.node-id", "value": "1"} in labels


# --- Docker containerizer -------------------------------------------------------------------


def test_docker_normal_uses_the_agent_directory() -> None:
    task = build(3, dataDir="/srv/es/", executorForcePullImage="true", elasticsearchNofile="20000")
    container = task["executor"]["container"]
    assert container["type"] == "DOCKER"
    docker = container["docker"]
    assert docker["network"] == "HOST"
    assert docker["force_pull_image"] is True
    assert docker["image"].startswith("es-mesos/elasticsearch-executor:")
    assert params_of(task) == [("ulimit", "nofile=20000:20000")]
    assert container["volumes"] == [
        {"container_path": DOCKER_DATA_PATH, "host_path": "/srv/es/elasticsearch/mesos-ha", "mode": "RW"}
    ]
    assert env_of(task)["ELASTICSEARCH_DATA_PATH"] == DOCKER_DATA_PATH
    assert "ELASTICSEARCH_CONFIG_VOLUME_PATH" not in env_of(task)
    assert task["executor"]["command"]["shell"] is False
    assert task["executor"]["command"]["value"] == EXECUTOR_COMMAND
    assert "arguments" not in task["executor"]["command"]
    assert scalar_total(task, "disk") == 1024


def test_docker_force_pull_defaults_to_false() -> None:
    assert build(1)["executor"]["container"]["docker"]["force_pull_image"] is False


def test_docker_external_with_options_uses_one_mount_per_volume() -> None:
    task = build(2, externalVolumeDriver="rexray", externalVolumeOptions="size=100,volumetype=io1,iops=3000")
    params = params_of(task)
    assert params == [
        ("ulimit", "nofile=65535:65535"),
        (
            "mount",
            f"type=volume,source=elasticsearch2config,target={DOCKER_CONFIG_VOLUME_PATH},volume-driver=rexray,volume-opt=size=1",
        ),
        (
            "mount",
            f"type=volume,source=elasticsearch2data,target={DOCKER_DATA_PATH},volume-driver=rexray,"
            "volume-opt=size=100,volume-opt=volumetype=io1,volume-opt=iops=3000",
        ),
    ]
    assert "volumes" not in task["executor"]["container"]
    assert scalar_total(task, "disk") == 0
    env = env_of(task)
    assert env["ELASTICSEARCH_DATA_PATH"] == DOCKER_DATA_PATH
    assert env["ELASTICSEARCH_CONFIG_VOLUME_PATH"] == DOCKER_CONFIG_VOLUME_PATH


def test_docker_external_without_options_uses_volume_driver_and_volume() -> None:
    # A driver without a profile table: its default profile has no options (rexray's gives config size=1).
    task = build(4, externalVolumeDriver="pxd")
    assert params_of(task) == [
        ("ulimit", "nofile=65535:65535"),
        ("volume-driver", "pxd"),
        ("volume", f"elasticsearch4config:{DOCKER_CONFIG_VOLUME_PATH}"),
        ("volume", f"elasticsearch4data:{DOCKER_DATA_PATH}"),
    ]


@pytest.mark.parametrize(
    "flags",
    [
        {"externalVolumeDriver": "rexray"},
        {"externalVolumeDriver": "pxd"},
        {"externalVolumeDriver": "local"},
        {"externalVolumeDriver": "rexray", "externalVolumeOptions": "size=5"},
    ],
)
def test_docker_never_uses_both_forms_for_one_path(flags: dict[str, str]) -> None:
    task = build(1, **flags)
    params = params_of(task)
    keys = {k for k, _ in params}
    assert not ({"mount", "volume"} <= keys)
    assert ("volume-driver" in keys) == ("volume" in keys)
    targets = [
        v.split("target=")[1].split(",")[0] if k == "mount" else v.split(":", 1)[1]
        for k, v in params
        if k in ("mount", "volume")
    ]
    assert sorted(targets) == sorted([DOCKER_CONFIG_VOLUME_PATH, DOCKER_DATA_PATH])
    assert "volumes" not in task["executor"]["container"]


# --- Mesos containerizer --------------------------------------------------------------------

MESOS = {
    "frameworkUseDocker": "false",
    "elasticsearchBinaryUrl": "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz",
}


def test_mesos_normal_runs_the_executor_as_root_and_fetches_the_distribution() -> None:
    task = build(1, **MESOS, elasticsearchUser="es")
    command = task["executor"]["command"]
    assert command["user"] == "root"  # it drops to ELASTICSEARCH_USER for Elasticsearch
    assert env_of(task)["ELASTICSEARCH_USER"] == "es"
    assert command["uris"] == [{"value": MESOS["elasticsearchBinaryUrl"], "extract": True, "cache": False}]
    assert command["shell"] is False and command["arguments"] == [EXECUTOR_COMMAND]
    assert task["executor"]["container"] == {
        "type": "MESOS",
        "rlimit_info": {"rlimits": [{"type": "RLMT_NOFILE", "soft": 65535, "hard": 65535}]},
    }
    assert scalar_total(task, "disk") == 1024
    assert not any(k.startswith("DVDI_") for k in env_of(task))


@pytest.mark.parametrize("node_id", [1, 7])
def test_mesos_normal_has_no_container_volumes_and_the_absolute_agent_directory(node_id: int) -> None:
    """Mesos' default isolation (filesystem/posix) fails any ContainerInfo volume, host_path included;
    without an image the executor shares the agent's filesystem, so it gets the directory itself."""
    task = build(node_id, **MESOS, dataDir="/srv/es/", frameworkName="search", elasticsearchClusterName="logs")
    container = task["executor"]["container"]
    assert "volumes" not in container and "mesos" not in container  # no volume, no image
    assert "volumes" not in json.dumps(task)
    env = env_of(task)
    assert env["ELASTICSEARCH_DATA_PATH"] == "/srv/es/search/logs"
    assert Path(env["ELASTICSEARCH_DATA_PATH"]).is_absolute()
    assert "ELASTICSEARCH_CONFIG_VOLUME_PATH" not in env
    # The same agent directory as the Docker containerizer's host path volume.
    docker = build(node_id, dataDir="/srv/es/", frameworkName="search", elasticsearchClusterName="logs")
    assert docker["executor"]["container"]["volumes"][0]["host_path"] == env["ELASTICSEARCH_DATA_PATH"]


def test_mesos_external_docker_volume_sources() -> None:
    task = build(2, **MESOS, externalVolumeDriver="rexray", externalVolumeOptions="size=100,iops=3000")
    volumes = task["executor"]["container"]["volumes"]
    assert volumes == [
        {
            "container_path": "config-volume",
            "mode": "RW",
            "source": {
                "type": "DOCKER_VOLUME",
                "docker_volume": {
                    "driver": "rexray",
                    "name": "elasticsearch2config",
                    "driver_options": {"parameter": [{"key": "size", "value": "1"}]},
                },
            },
        },
        {
            "container_path": "data",
            "mode": "RW",
            "source": {
                "type": "DOCKER_VOLUME",
                "docker_volume": {
                    "driver": "rexray",
                    "name": "elasticsearch2data",
                    "driver_options": {
                        "parameter": [{"key": "size", "value": "100"}, {"key": "iops", "value": "3000"}]
                    },
                },
            },
        },
    ]
    assert not any(k.startswith("DVDI_") for k in env_of(task))
    assert scalar_total(task, "disk") == 0
    assert "docker" not in task["executor"]["container"]


def test_mesos_external_docker_volume_without_options_has_no_driver_options() -> None:
    task = build(2, **MESOS, externalVolumeDriver="pxd")
    for volume in task["executor"]["container"]["volumes"]:
        assert "driver_options" not in volume["source"]["docker_volume"]


def test_mesos_external_dvdi_environment() -> None:
    task = build(
        3,
        **MESOS,
        externalVolumeDriver="rexray",
        externalVolumeMethod="dvdi",
        externalVolumeOptions="size=5,volumetype=io1,iops=150",
    )
    env = env_of(task)
    dvdi = {k: v for k, v in env.items() if k.startswith("DVDI_")}
    assert dvdi == {
        "DVDI_VOLUME_NAME": "elasticsearch3config",
        "DVDI_VOLUME_DRIVER": "rexray",
        "DVDI_VOLUME_CONTAINERPATH": "/var/lib/es-mesos/volumes/elasticsearch3config",
        "DVDI_VOLUME_OPTS": "size=1",
        "DVDI_VOLUME_NAME1": "elasticsearch3data",
        "DVDI_VOLUME_DRIVER1": "rexray",
        "DVDI_VOLUME_CONTAINERPATH1": "/var/lib/es-mesos/volumes/elasticsearch3data",
        "DVDI_VOLUME_OPTS1": "size=5,volumetype=io1,iops=150",
    }
    # One method per cluster: no DOCKER_VOLUME sources next to the dvdi variables.
    assert "volumes" not in task["executor"]["container"] and task["executor"]["container"]["type"] == "MESOS"
    assert env["ELASTICSEARCH_DATA_PATH"] == "/var/lib/es-mesos/volumes/elasticsearch3data"
    assert env["ELASTICSEARCH_CONFIG_VOLUME_PATH"] == "/var/lib/es-mesos/volumes/elasticsearch3config"


def test_dvdi_suffixes_match_per_volume() -> None:
    task = build(1, **MESOS, externalVolumeDriver="pxd", externalVolumeMethod="dvdi")
    env = env_of(task)
    for suffix in ("", "1"):
        assert {
            f"DVDI_VOLUME_NAME{suffix}",
            f"DVDI_VOLUME_DRIVER{suffix}",
            f"DVDI_VOLUME_CONTAINERPATH{suffix}",
        } <= set(env)
    assert "DVDI_VOLUME_OPTS" not in env
    assert "DVDI_VOLUME_OPTS1" not in env


# --- resources --------------------------------------------------------------------------------


def test_resources_are_carved_from_reserved_and_unreserved_entries() -> None:
    reserved = [
        scalar("cpus", 0.5, "es", allocation_role="es"),
        scalar("mem", 1024, "es", allocation_role="es"),
        ports((31000, 31000), role="es", allocation_role="es"),
    ]
    unreserved = [
        scalar("cpus", 4, allocation_role="es"),
        scalar("mem", 4096, allocation_role="es"),
        scalar("disk", 5000, allocation_role="es"),
        ports((31001, 31100), allocation_role="es"),
    ]
    raw = offer(resources=[*unreserved, *reserved])
    task = build(1, raw, frameworkRole="es")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for resource in task["resources"]:
        by_name.setdefault(resource["name"], []).append(resource)
    assert [r["scalar"]["value"] for r in by_name["cpus"]] == [0.5, 0.5]
    assert by_name["cpus"][0]["reservations"] == [{"type": "STATIC", "role": "es"}]
    assert "reservations" not in by_name["cpus"][1]
    assert all(r["allocation_info"] == {"role": "es"} for r in task["resources"])
    assert [r["scalar"]["value"] for r in by_name["mem"]] == [1024, 1024]
    assert [r["ranges"]["range"] for r in by_name["ports"]] == [
        [{"begin": 31000, "end": 31000}],
        [{"begin": 31001, "end": 31001}],
    ]
    assert by_name["ports"][0]["reservations"][0]["role"] == "es"


def test_task_info_is_json_and_deterministic() -> None:
    first, second = build(1), build(1)
    assert first == second
    assert json.loads(json.dumps(first)) == first


def test_an_offer_that_cannot_hold_the_node_raises() -> None:
    with pytest.raises(PortsUnavailableError):
        build(1, offer(port_ranges=()))
    with pytest.raises(CarveError, match="lacks"):
        build(1, offer(mem=10))


# --- roles, bootstrap, security ---------------------------------------------------------------------


def test_roles_follow_the_master_count() -> None:
    assert env_of(build(3))["ELASTICSEARCH_NODE_ROLES"] == "master,data,ingest"
    assert env_of(build(4))["ELASTICSEARCH_NODE_ROLES"] == "data,ingest"
    view = ClusterView(desired_nodes=3, master_nodes=1)
    task = build_task_info(parse_offer(offer(5)), 2, config(), view, launch_id=LAUNCH)
    assert env_of(task)["ELASTICSEARCH_NODE_ROLES"] == "data,ingest"


def test_initial_master_nodes_only_while_bootstrapping_and_only_to_masters() -> None:
    assert "ELASTICSEARCH_INITIAL_MASTER_NODES" not in env_of(build(1))
    view = ClusterView(desired_nodes=5, initial_master_nodes=("elasticsearch1", "elasticsearch2", "elasticsearch3"))
    for node_id, expected in ((1, "elasticsearch1,elasticsearch2,elasticsearch3"), (4, None)):
        task = build_task_info(parse_offer(offer(5)), node_id, config(), view, launch_id=LAUNCH)
        assert env_of(task).get("ELASTICSEARCH_INITIAL_MASTER_NODES") == expected


def test_security_off_by_default() -> None:
    task = build(1)
    assert env_of(task)["ELASTICSEARCH_SECURITY"] == "disabled"
    assert secrets_of(task) == {} and "uris" not in task["executor"]["command"]


def test_security_on_ships_the_password_as_a_secret_and_fetches_the_bundle(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    url = "https://certs.example.com/bundles/elastic-certificates.p12"
    task = build(1, None, elasticsearchPasswordFile=str(password), elasticsearchCertificatesUrl=url)
    env = env_of(task)
    assert env["ELASTICSEARCH_SECURITY"] == "enabled"
    assert env["ELASTICSEARCH_CERTIFICATES"] == "elastic-certificates.p12"
    assert "s3cret" not in json.dumps(env)  # only in the secret variable
    assert secrets_of(task) == {"ELASTIC_PASSWORD": "s3cret"}
    assert task["executor"]["command"]["uris"] == [{"value": url, "extract": False, "cache": False}]
