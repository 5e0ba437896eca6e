"""Limits and users in the TaskInfo: ``ulimit`` parameters (Docker), ``rlimit_info`` (Mesos), memory
locking from the user's settings, and whom the executor runs as."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework import contract
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import EXECUTOR_USER, build_task_info, memory_lock_requested, rlimit_info
from es_framework.dev.devcluster.isolation import (
    DEFAULT_ISOLATION,
    VOLUMES_NOT_SUPPORTED,
    isolators,
    launch_failure,
)
from tests.harness.builders import config, offer

LAUNCH = "0123456789abcdef0123456789abcdef"
VIEW = ClusterView(desired_nodes=3)
MESOS: dict[str, str] = {
    "frameworkUseDocker": "false",
    "elasticsearchBinaryUrl": "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz",
}
#: The three Mesos containerizer forms: normal, external through the docker/volume isolator, dvdi.
MESOS_FORMS: list[dict[str, str]] = [
    {},
    {"externalVolumeDriver": "rexray"},
    {"externalVolumeDriver": "rexray", "externalVolumeMethod": "dvdi"},
]
LOCKED: dict[str, str | list[str]] = {"bootstrap.memory_lock": "true"}
NOFILE = {"type": "RLMT_NOFILE", "soft": 65535, "hard": 65535}
#: Neither soft nor hard: unlimited (mesos.proto, RLimitInfo.RLimit).
MEMLOCK_UNLIMITED = {"type": "RLMT_MEMLOCK"}


def build(user_settings: Mapping[str, str | list[str]] | None = None, **flags: str) -> dict[str, Any]:
    cfg = dataclasses.replace(config(**flags), user_settings=dict(user_settings or {}))
    return build_task_info(parse_offer(offer(5)), 2, cfg, VIEW, launch_id=LAUNCH)


def container_of(task: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = task["executor"]["container"]
    return container


def ulimits(task: dict[str, Any]) -> list[str]:
    return [p["value"] for p in container_of(task)["docker"]["parameters"] if p["key"] == "ulimit"]


def env_of(task: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in task["executor"]["command"]["environment"]["variables"] if "value" in v}


# --- Docker -------------------------------------------------------------------------------------


def test_docker_has_nofile_and_memlock_only_when_memory_locking_is_asked_for() -> None:
    assert ulimits(build()) == ["nofile=65535:65535"]
    assert ulimits(build(LOCKED, elasticsearchNofile="70000")) == ["nofile=70000:70000", "memlock=-1:-1"]
    assert "rlimit_info" not in container_of(build(LOCKED))  # Docker's own ulimits carry the limits


def test_docker_runs_the_executor_as_the_frameworks_user_and_names_no_agent_user() -> None:
    task = build()
    assert "user" not in task["executor"]["command"]  # FrameworkInfo.user: root for Docker
    assert contract.ENV_USER not in env_of(task)  # the image's own user (ELASTICSEARCH_UID's default)


# --- the Mesos containerizer --------------------------------------------------------------------


@pytest.mark.parametrize("form", MESOS_FORMS)
def test_mesos_containers_carry_rlimit_info_on_every_form(form: dict[str, str]) -> None:
    plain = container_of(build(None, **MESOS, **form))
    assert plain["type"] == "MESOS"
    assert plain["rlimit_info"] == {"rlimits": [NOFILE]}
    locked = container_of(build(LOCKED, **MESOS, **form, elasticsearchNofile="100000"))
    assert locked["rlimit_info"] == {
        "rlimits": [{"type": "RLMT_NOFILE", "soft": 100000, "hard": 100000}, MEMLOCK_UNLIMITED]
    }
    assert "docker" not in locked


@pytest.mark.parametrize("form", MESOS_FORMS)
def test_mesos_runs_the_executor_as_root_and_names_the_elasticsearch_user(form: dict[str, str]) -> None:
    task = build(None, **MESOS, **form, elasticsearchUser="search")
    assert task["executor"]["command"]["user"] == EXECUTOR_USER == "root"
    assert env_of(task)[contract.ENV_USER] == "search"


def test_rlimit_info_changes_nothing_the_default_isolation_refuses() -> None:
    """filesystem/posix refuses images and volumes only (isolators/filesystem/posix.cpp, prepare): a
    Mesos container with rlimit_info but no volume still launches under Mesos' default isolation."""
    posix = isolators(DEFAULT_ISOLATION)
    normal = build(LOCKED, **MESOS)
    assert container_of(normal)["rlimit_info"]["rlimits"] == [NOFILE, MEMLOCK_UNLIMITED]
    assert launch_failure(posix, normal) is None
    # And a refused container is refused for its volumes, as before.
    assert launch_failure(posix, build(LOCKED, **MESOS, externalVolumeDriver="rexray")) == VOLUMES_NOT_SUPPORTED


# --- bootstrap.memory_lock ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "locked"),
    [
        ({}, False),
        ({"bootstrap.memory_lock": "true"}, True),
        ({"bootstrap.memory_lock": "false"}, False),
        # Elasticsearch's Booleans.parseBoolean refuses these at start: nothing to ask the agent for.
        ({"bootstrap.memory_lock": "yes"}, False),
        ({"bootstrap.memory_lock": "TRUE"}, False),
        ({"bootstrap.memory_lock": ["true"]}, False),
        ({"bootstrap.memory_lockx": "true"}, False),
    ],
)
def test_memory_lock_is_asked_for_only_by_the_value_true(settings: dict[str, Any], locked: bool) -> None:
    assert memory_lock_requested(settings) is locked


@given(
    nofile=st.integers(min_value=1, max_value=2**20),
    value=st.one_of(st.none(), st.sampled_from(["true", "false", "yes", "1", ""]), st.text(max_size=6)),
)
def test_limits_agree_on_both_containerizers(nofile: int, value: str | None) -> None:
    settings: dict[str, str | list[str]] = {} if value is None else {"bootstrap.memory_lock": value}
    cfg = dataclasses.replace(config(**MESOS, elasticsearchNofile=str(nofile)), user_settings=settings)
    limits = rlimit_info(cfg)["rlimits"]
    assert limits[0] == {"type": "RLMT_NOFILE", "soft": nofile, "hard": nofile}
    assert (MEMLOCK_UNLIMITED in limits) is (value == "true")
    assert len(limits) == (2 if value == "true" else 1)
    docker = dataclasses.replace(cfg, use_docker=True)
    task = build_task_info(parse_offer(offer(5)), 1, docker, VIEW, launch_id=LAUNCH)
    assert ulimits(task) == [f"nofile={nofile}:{nofile}"] + (["memlock=-1:-1"] if value == "true" else [])
