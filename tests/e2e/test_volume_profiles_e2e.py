"""End to end: a storage profile's options reach the volume driver.

The real ``es-framework`` process and ZooKeeper; the development master's agents run the executor as a
container of a private Docker engine, with the tests' REX-Ray-like volume plugin as the driver
(``tests/harness/volume_plugin.py``), which records the options of every ``Create``. The plugin's name
is the test's own, so ``--volumeProfileFile`` maps it to the shipped ``rexray`` table (as an operator
maps a REX-Ray plugin installed under an alias); ``--volumeProfile data=gold`` must then create the
data volume with the gold profile's options, and the config volume with the default profile's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from es_framework.core.profile_tables import REXRAY
from es_framework.dev.devcluster import AgentSpec, DevMaster, DockerExecutorBackend
from es_framework.dev.docker_engine import DockerEngine
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import FW, Scheduler, new_cluster_name, running_tasks, wait_for
from tests.harness.volume_plugin import VolumePlugin

pytestmark = pytest.mark.docker


@pytest.fixture
def master(docker_engine: DockerEngine, volume_plugin: VolumePlugin, tmp_path: Path) -> Iterator[DevMaster]:
    backend = DockerExecutorBackend(docker_engine.host, tmp_path / "work", default_grace_period=20.0)
    agent = AgentSpec(id="agent1-S0", hostname="127.0.0.1", ip="127.0.0.1", cpus=4, mem=8192, ports=((32100, 32199),))
    dev = DevMaster([agent], backend=backend, heartbeat_interval=1.0, status_update_resend_interval=1.0)
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()
        # The plugin's reset deletes the volumes: no container may still use them.
        with contextlib.suppress(Exception):
            backend.close()


def test_a_gold_data_volume_reaches_the_driver_with_the_gold_options(
    master: DevMaster,
    volume_plugin: VolumePlugin,
    zookeeper: ZooKeeperServer,
    executor_image: str,
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(f"drivers:\n  {volume_plugin.name}:\n    table: rexray\n")
    scheduler = Scheduler(
        master,
        zookeeper,
        new_cluster_name(),
        tmp_path,
        1,
        driver=volume_plugin.name,
        extra=(
            "--elasticsearchDockerImage",
            executor_image,
            "--elasticsearchRam",
            "1024",
            "--volumeProfileFile",
            str(profiles),
            "--volumeProfile",
            "data=gold",
        ),
    )
    try:
        scheduler.start()
        wait_for("the node running", lambda: len(running_tasks(master)) == 1, scheduler, 180)
        data, config = f"{FW}1data", f"{FW}1config"
        created = {call.name: dict(call.opts) for call in volume_plugin.calls(method="Create") if call.ok}
        assert created[data] == dict(REXRAY.profiles["gold"].options_for("data"))
        assert created[config] == {"size": "1"}  # the default profile's config volume, as before profiles
        assert volume_plugin.options(data)["volumetype"] == "io1"
    finally:
        scheduler.stop()
