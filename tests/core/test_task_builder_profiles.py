"""Storage profiles in the TaskInfo: the resolved options and the driver's name in all three forms."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from es_framework.config import Config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.profile_schema import tables_from_document
from es_framework.core.task_builder import DOCKER_CONFIG_VOLUME_PATH, DOCKER_DATA_PATH, build_task_info
from es_framework.core.volume_profiles import volume_specs
from tests.harness.builders import config, offer

LAUNCH = "0123456789abcdef0123456789abcdef"
VIEW = ClusterView(desired_nodes=3, seed_hosts=("agent1.example.com:31001",))
MESOS = {
    "frameworkUseDocker": "false",
    "elasticsearchBinaryUrl": "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz",
}
GOLD_DATA = "volumetype=io1,encrypted=true,size=100,iops=3000"
FLOCKERISH = {"drivers": {"flockerish": {"profile_in_name": True, "profiles": {"gold": {"data": {"size": 10}}}}}}


def cfg(document: dict[str, Any] | None = None, /, **flags: str) -> Config:
    c = config(**flags)
    return replace(c, volume_profiles=tables_from_document(document, "f.yaml")) if document else c


def build(c: Config, node_id: int = 2) -> dict[str, Any]:
    return build_task_info(parse_offer(offer(5)), node_id, c, VIEW, launch_id=LAUNCH)


def docker_params(task: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["key"], p["value"]) for p in task["executor"]["container"]["docker"]["parameters"]][1:]


def env_of(task: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in task["executor"]["command"]["environment"]["variables"] if "value" in v}


def mesos_volumes(task: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    out = []
    for volume in task["executor"]["container"]["volumes"]:
        docker_volume = volume["source"]["docker_volume"]
        options = {p["key"]: p["value"] for p in docker_volume.get("driver_options", {}).get("parameter", [])}
        out.append((docker_volume["name"], options))
    return out


def volume_opts(mount: str) -> dict[str, str]:
    """The ``volume-opt=k=v`` items of a ``--mount`` value."""
    pairs = (
        item.removeprefix("volume-opt=").split("=", 1) for item in mount.split(",") if item.startswith("volume-opt=")
    )
    return {key: value for key, value in pairs}


def opts(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",")) if text else {}


def test_docker_gold_data_volume_gets_the_profiles_options() -> None:
    task = build(cfg(externalVolumeDriver="rexray", volumeProfile="data=gold"))
    assert docker_params(task) == [
        (
            "mount",
            f"type=volume,source=elasticsearch2config,target={DOCKER_CONFIG_VOLUME_PATH},volume-driver=rexray,volume-opt=size=1",
        ),
        (
            "mount",
            f"type=volume,source=elasticsearch2data,target={DOCKER_DATA_PATH},volume-driver=rexray,"
            "volume-opt=volumetype=io1,volume-opt=encrypted=true,volume-opt=size=100,volume-opt=iops=3000",
        ),
    ]


def test_mesos_docker_volume_driver_options_follow_the_profile() -> None:
    task = build(cfg(**MESOS, externalVolumeDriver="rexray", volumeProfile="data=gold,config=silver"))
    assert mesos_volumes(task) == [
        ("elasticsearch2config", {"volumetype": "gp2", "size": "1"}),
        ("elasticsearch2data", opts(GOLD_DATA)),
    ]


def test_dvdi_opts_follow_the_profile_with_explicit_options_last() -> None:
    c = cfg(
        **MESOS,
        externalVolumeDriver="rexray",
        externalVolumeMethod="dvdi",
        volumeProfile="data=gold",
        externalVolumeOptions="size=200",
    )
    env = env_of(build(c))
    assert env["DVDI_VOLUME_OPTS"] == "size=1"
    assert env["DVDI_VOLUME_OPTS1"] == "volumetype=io1,encrypted=true,iops=3000,size=200"


@pytest.mark.parametrize("driver", ["local", "pxd"])
def test_drivers_without_options_get_none_in_any_form(driver: str) -> None:
    docker = docker_params(build(cfg(externalVolumeDriver=driver)))
    assert docker == [
        ("volume-driver", driver),
        ("volume", f"elasticsearch2config:{DOCKER_CONFIG_VOLUME_PATH}"),
        ("volume", f"elasticsearch2data:{DOCKER_DATA_PATH}"),
    ]
    assert all(not o for _, o in mesos_volumes(build(cfg(**MESOS, externalVolumeDriver=driver))))
    env = env_of(build(cfg(**MESOS, externalVolumeDriver=driver, externalVolumeMethod="dvdi")))
    assert "DVDI_VOLUME_OPTS" not in env and "DVDI_VOLUME_OPTS1" not in env


def test_all_three_forms_carry_the_same_options() -> None:
    flags = {"externalVolumeDriver": "rexray", "volumeProfile": "data=gold", "externalVolumeOptions": "iops=4000"}
    specs = volume_specs(cfg(**flags), 2)
    docker = docker_params(build(cfg(**flags)))
    from_docker_opts = [volume_opts(v) for _, v in docker]
    from_mesos = [o for _, o in mesos_volumes(build(cfg(**MESOS, **flags)))]
    env = env_of(build(cfg(**MESOS, **flags, externalVolumeMethod="dvdi")))
    from_dvdi = [opts(env.get("DVDI_VOLUME_OPTS", "")), opts(env.get("DVDI_VOLUME_OPTS1", ""))]
    wanted = [dict(s.options) for s in specs]
    assert from_docker_opts == from_mesos == from_dvdi == wanted
    assert wanted[1]["iops"] == "4000"


def test_name_at_profile_reaches_the_driver_in_every_form_but_not_our_paths() -> None:
    flags = {"externalVolumeDriver": "flockerish", "volumeProfile": "data=gold"}
    docker = docker_params(build(cfg(FLOCKERISH, **flags)))
    assert docker[0][1].startswith("type=volume,source=elasticsearch2config,")  # name@default is name
    assert docker[1][1].startswith("type=volume,source=elasticsearch2data@gold,")
    mesos = build(cfg(FLOCKERISH, **MESOS, **flags))
    assert [n for n, _ in mesos_volumes(mesos)] == ["elasticsearch2config", "elasticsearch2data@gold"]
    env = env_of(build(cfg(FLOCKERISH, **MESOS, **flags, externalVolumeMethod="dvdi")))
    assert env["DVDI_VOLUME_NAME1"] == "elasticsearch2data@gold"
    assert env["DVDI_VOLUME_NAME"] == "elasticsearch2config"
    # Our mount point and the executor's data path keep the bare name.
    assert env["DVDI_VOLUME_CONTAINERPATH1"] == "/var/lib/es-mesos/volumes/elasticsearch2data"
    assert env["ELASTICSEARCH_DATA_PATH"] == "/var/lib/es-mesos/volumes/elasticsearch2data"


def test_without_options_name_at_profile_uses_the_volume_form() -> None:
    document = {"drivers": {"flockerish": {"profile_in_name": True, "profiles": {"gold": {}}}}}
    docker = docker_params(build(cfg(document, externalVolumeDriver="flockerish", volumeProfile="data=gold")))
    assert docker == [
        ("volume-driver", "flockerish"),
        ("volume", f"elasticsearch2config:{DOCKER_CONFIG_VOLUME_PATH}"),
        ("volume", f"elasticsearch2data@gold:{DOCKER_DATA_PATH}"),
    ]
