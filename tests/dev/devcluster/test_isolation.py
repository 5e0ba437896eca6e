"""Agents' ``--isolation`` on the development master: what a Mesos 1.12 agent's Mesos containerizer
refuses, and how the agent reports it (``src/slave/containerizer/mesos/isolators/filesystem/posix.cpp``,
``Slave::executorLaunched`` / ``sendExecutorTerminatedStatusUpdate`` in ``src/slave/slave.cpp``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from es_framework.config import resolve_config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.dev.devcluster import AgentSpec, DevMaster, FakeExecutorBackend
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef
from es_framework.dev.devcluster.isolation import (
    DEFAULT_ISOLATION,
    DOCKER_VOLUME_ISOLATION,
    ROOTFS_NOT_SUPPORTED,
    VOLUMES_NOT_SUPPORTED,
    IsolationError,
    isolators,
    launch_failure,
)
from es_framework.dev.local import local_agents
from tests.dev.devcluster.conftest import FAST
from tests.dev.devcluster.test_wire import ack, command_task, first_offer, launch, offers_of, send, subscribe
from tests.harness.builders import offer as build_offer
from tests.harness.devcluster import wait_for

#: What a real Mesos 1.12 agent with the default isolation answered es-mesos' normal-mode launch under
#: the Mesos containerizer (the notes' facts, section 7).
REFUSAL = "Failed to launch container: Volumes in ContainerInfo is not supported"
#: The fields of the agent's TaskStatus (v1 JSON; no container_status: the container is destroyed).
AGENT_STATUS_FIELDS = {
    "task_id",
    "state",
    "message",
    "source",
    "reason",
    "agent_id",
    "executor_id",
    "timestamp",
    "uuid",
}
HOST_PATH_VOLUME = {"container_path": "data", "host_path": "/var/lib/mesos/slave/elasticsearch/x", "mode": "RW"}
DOCKER_VOLUME = {
    "container_path": "data",
    "mode": "RW",
    "source": {"type": "DOCKER_VOLUME", "docker_volume": {"driver": "rexray", "name": "elasticsearch1data"}},
}


# --- the flag, as Mesos completes it ---------------------------------------------------------------


def test_isolators_as_mesos_completes_the_flag() -> None:
    assert isolators(DEFAULT_ISOLATION) == {"posix/cpu", "posix/mem", "filesystem/posix"}
    assert AgentSpec(id="a", hostname="a").isolators == isolators("posix/cpu,posix/mem")
    assert isolators("process") == {"posix/cpu", "posix/mem", "filesystem/posix"}
    assert isolators("cgroups,posix/disk") == {"cgroups/cpu", "cgroups/mem", "disk/du", "filesystem/posix"}
    linux = isolators(DOCKER_VOLUME_ISOLATION)
    assert linux == {
        "filesystem/linux",
        "docker/volume",
        "volume/host_path",
        "volume/image",
        "volume/sandbox_path",
    }


@pytest.mark.parametrize(
    ("isolation", "error"),
    [
        ("posix/cpu,posix/cpu", "Duplicate entries"),
        ("filesystem/posix,filesystem/linux", "multiple filesystem isolators"),
        ("posix/cpu,volume/host_path", "'filesystem/linux' isolator must be used"),
    ],
)
def test_an_agent_mesos_would_not_start_is_refused(isolation: str, error: str) -> None:
    with pytest.raises(IsolationError, match=error):
        AgentSpec(id="a", hostname="a", isolation=isolation)


# --- what the isolators refuse --------------------------------------------------------------------


def executor_task(container: Mapping[str, Any] | None) -> dict[str, Any]:
    executor: dict[str, Any] = {"executor_id": {"value": "e1"}, "command": {"value": "x"}}
    if container is not None:
        executor["container"] = dict(container)
    return {"task_id": {"value": "t1"}, "executor": executor}


POSIX = isolators(DEFAULT_ISOLATION)
LINUX = isolators(DOCKER_VOLUME_ISOLATION)


@pytest.mark.parametrize(
    ("container", "posix", "linux"),
    [
        (None, None, None),
        ({"type": "MESOS"}, None, None),
        ({"type": "MESOS", "volumes": [HOST_PATH_VOLUME]}, VOLUMES_NOT_SUPPORTED, None),
        ({"type": "MESOS", "volumes": [DOCKER_VOLUME]}, VOLUMES_NOT_SUPPORTED, None),
        (
            {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "x"}}}},
            ROOTFS_NOT_SUPPORTED,
            None,
        ),
        # The Docker containerizer runs it: the Mesos containerizer's isolators never see it.
        ({"type": "DOCKER", "docker": {"image": "x"}, "volumes": [HOST_PATH_VOLUME]}, None, None),
    ],
)
def test_launch_failure_by_isolation(container: Mapping[str, Any] | None, posix: str | None, linux: str | None) -> None:
    assert launch_failure(POSIX, executor_task(container)) == posix
    assert launch_failure(LINUX, executor_task(container)) == linux


def test_a_command_task_container_is_what_its_command_executor_gets() -> None:
    task = {"task_id": {"value": "t1"}, "command": {"value": "x"}, "container": {"type": "MESOS", "volumes": [{}]}}
    assert launch_failure(POSIX, task) == VOLUMES_NOT_SUPPORTED


# --- on the wire ----------------------------------------------------------------------------------


class RecordingBackend(FakeExecutorBackend):
    """Fake executors that remember the TaskInfo each launch was given."""

    def __init__(self) -> None:
        super().__init__()
        self.launched: list[dict[str, Any]] = []

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        self.launched.append(copy.deepcopy(dict(task_info)))
        super().launch(agent, ref, task_info)


MESOS_FLAGS = {
    "frameworkUseDocker": "false",
    "elasticsearchBinaryUrl": "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz",
    "elasticsearchRam": "256",
}


def es_task(offer: dict[str, Any], container: dict[str, Any] | None = None, **flags: str) -> dict[str, Any]:
    """es-mesos' node 1 for this offer under the Mesos containerizer (``container`` replaces its
    executor's ContainerInfo)."""
    config = resolve_config({**MESOS_FLAGS, **flags}, {})
    task = build_task_info(
        parse_offer(json.loads(json.dumps(offer))), 1, config, ClusterView(desired_nodes=1), launch_id="0" * 32
    )
    if container is not None:
        task["executor"]["container"] = container
    return task


def cpus_of(offer: dict[str, Any]) -> float:
    return float(sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus"))


def agents(isolation: str) -> list[AgentSpec]:
    return [AgentSpec(id="agent-a-S0", hostname="a", cpus=4, mem=4096, isolation=isolation)]


def test_a_posix_agent_fails_a_launch_with_container_volumes_as_mesos_does() -> None:
    backend = RecordingBackend()
    with DevMaster(agents(DEFAULT_ISOLATION), backend=backend, **FAST) as master:
        stream = subscribe(master)
        try:
            offer = first_offer(stream)
            # What es-mesos sent in normal mode under the Mesos containerizer before it passed the path.
            task = es_task(offer, {"type": "MESOS", "volumes": [HOST_PATH_VOLUME]})
            task_id = task["task_id"]["value"]
            launch(master, stream, offer, task)
            failed = wait_for(lambda: stream.updates(task_id), what="the agent's update")[0]
            assert set(failed) == AGENT_STATUS_FIELDS
            assert failed["state"] == "TASK_FAILED"
            assert failed["message"] == REFUSAL
            assert failed["source"] == "SOURCE_AGENT"
            assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
            assert failed["agent_id"] == {"value": "agent-a-S0"}
            assert failed["executor_id"] == task["executor"]["executor_id"]
            assert backend.launched == [] and backend.running == set()  # no executor ever ran
            # An agent update: re-sent with the same uuid until acknowledged, then the task is forgotten.
            wait_for(lambda: len(stream.updates(task_id)) >= 2, what="a re-send")
            assert {u["uuid"] for u in stream.updates(task_id)} == {failed["uuid"]}
            assert [u["state"] for u in stream.updates(task_id)] == ["TASK_FAILED"] * len(stream.updates(task_id))
            ack(master, stream, failed)
            wait_for(lambda: master.state()["tasks"] == [], what="the task forgotten")
            # Its resources went back to the agent: offered again whole.
            wait_for(
                lambda: [o for o in offers_of(stream)[1:] if cpus_of(o) == 4.0],
                what="the agent's resources offered again",
            )
            assert next(a["isolation"] for a in master.state()["agents"]) == DEFAULT_ISOLATION
        finally:
            stream.close()


def test_the_normal_mode_task_without_volumes_runs_on_a_posix_agent() -> None:
    backend = RecordingBackend()
    with DevMaster(agents(DEFAULT_ISOLATION), backend=backend, **FAST) as master:
        stream = subscribe(master)
        try:
            offer = first_offer(stream)
            task = es_task(offer)
            assert "volumes" not in task["executor"]["container"]
            launch(master, stream, offer, task)
            task_id = task["task_id"]["value"]
            starting = wait_for(lambda: stream.updates(task_id), what="TASK_STARTING")[0]
            assert starting["state"] == "TASK_STARTING" and starting["source"] == "SOURCE_EXECUTOR"
            ack(master, stream, starting)
            wait_for(lambda: [u for u in stream.updates(task_id) if u["state"] == "TASK_RUNNING"], what="RUNNING")
        finally:
            stream.close()


def test_external_volumes_need_the_docker_volume_isolator() -> None:
    """The same DOCKER_VOLUME task: refused by Mesos' default, launched with filesystem/linux,docker/volume,
    and launched without its volume (so into the sandbox) by filesystem/linux alone, as Mesos skips it."""
    for isolation, expected in (
        (DEFAULT_ISOLATION, "TASK_FAILED"),
        (DOCKER_VOLUME_ISOLATION, "TASK_STARTING"),
        ("filesystem/linux", "TASK_STARTING"),
    ):
        backend = RecordingBackend()
        with DevMaster(agents(isolation), backend=backend, **FAST) as master:
            stream = subscribe(master)
            try:
                offer = first_offer(stream)
                task = es_task(offer, externalVolumeDriver="rexray")
                assert task["executor"]["container"]["volumes"][1]["source"]["type"] == "DOCKER_VOLUME"
                launch(master, stream, offer, task)
                task_id = task["task_id"]["value"]
                first = wait_for(partial(stream.updates, task_id), what="an update")[0]
                assert first["state"] == expected, isolation
                if isolation == DOCKER_VOLUME_ISOLATION:
                    # Both volumes mounted; rlimit_info left out: no posix/rlimits isolator applies it.
                    sent = {k: v for k, v in task["executor"]["container"].items() if k != "rlimit_info"}
                    assert backend.launched[0]["executor"]["container"] == sent
                elif isolation == "filesystem/linux":
                    # The backend gets neither volume (both DOCKER_VOLUME); the master keeps the task as sent.
                    assert backend.launched[0]["executor"]["container"]["volumes"] == []
                    (recorded,) = master.state()["tasks"]
                    assert recorded["task_id"] == task_id
                else:
                    assert first["message"] == REFUSAL
            finally:
                stream.close()


def test_refusals_and_launches_share_one_accept() -> None:
    """Each task of an ACCEPT is launched or refused on its own."""
    with DevMaster(agents(DEFAULT_ISOLATION), **FAST) as master:
        stream = subscribe(master)
        try:
            offer = first_offer(stream)
            bad = es_task(offer, {"type": "MESOS", "volumes": [HOST_PATH_VOLUME]})
            good = command_task(offer, "good")
            assert send(
                master,
                stream,
                "ACCEPT",
                {
                    "offer_ids": [offer["id"]],
                    "operations": [{"type": "LAUNCH", "launch": {"task_infos": [bad, good]}}],
                    "filters": {"refuse_seconds": 0.0},
                },
            ) == (202, "")
            assert wait_for(lambda: stream.updates(bad["task_id"]["value"]))[0]["state"] == "TASK_FAILED"
            assert wait_for(lambda: stream.updates("good"))[0]["state"] == "TASK_STARTING"
        finally:
            stream.close()


# --- the agents local mode configures take what the scheduler sends in every mode -------------------

#: What the Mesos containerizer fetches (local mode wants a local directory instead: see below).
BINARY = "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz"
MODES = [
    {},
    {"externalVolumeDriver": "rexray"},
    {"frameworkUseDocker": "false", "elasticsearchBinaryUrl": BINARY},
    {"frameworkUseDocker": "false", "elasticsearchBinaryUrl": BINARY, "externalVolumeDriver": "rexray"},
    {
        "frameworkUseDocker": "false",
        "elasticsearchBinaryUrl": BINARY,
        "externalVolumeDriver": "rexray",
        "externalVolumeMethod": "dvdi",
    },
]


@pytest.mark.parametrize("flags", MODES)
def test_local_mode_agents_take_every_mode(flags: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "elasticsearch"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "elasticsearch").write_text("#!/bin/sh\n")
    local = {k: str(home) if v == BINARY else v for k, v in flags.items()}  # local mode runs a local one
    config = resolve_config({"mesosMaster": "local", "localWorkDir": str(tmp_path), "localAgents": "1", **local}, {})
    (agent,) = local_agents(config)
    expected = DOCKER_VOLUME_ISOLATION if flags.get("externalVolumeDriver") else DEFAULT_ISOLATION
    assert agent.isolation == expected
    task = build_task_info(parse_offer(build_offer(1)), 1, config, ClusterView(desired_nodes=1), launch_id="0" * 32)
    assert launch_failure(agent.isolators, task) is None


@pytest.mark.parametrize("flags", MODES)
def test_only_external_volumes_on_the_mesos_containerizer_need_more_than_mesos_defaults(flags: dict[str, str]) -> None:
    config = resolve_config(flags, {})
    task = build_task_info(parse_offer(build_offer(1)), 1, config, ClusterView(desired_nodes=1), launch_id="0" * 32)
    needs_more = (
        not config.use_docker
        and config.external_volume_method == "dockerVolume"
        and bool(config.external_volume_driver)
    )
    assert launch_failure(POSIX, task) == (VOLUMES_NOT_SUPPORTED if needs_more else None)
