"""End to end in real containers: the real ``es-framework`` process and real ZooKeeper; the development
master's agents run every node's executor as a container of a private Docker engine, built from the
production ``docker/executor/Dockerfile`` on the local stand-in Elasticsearch base (the demo node in
place of Elasticsearch), with the tests' REX-Ray-like volume plugin as the volume driver
(``tests/harness/volume_plugin.py``). What the plugin records is what a block-storage driver would see.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from es_framework.dev.devcluster import AgentSpec, DevMaster, DockerExecutorBackend
from es_framework.dev.docker_engine import DockerEngine
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import FW, Scheduler, new_cluster_name, running_tasks, wait_for
from tests.harness.images import STANDIN_VERSIONS
from tests.harness.volume_plugin import VolumePlugin

pytestmark = pytest.mark.docker

DOCS = 1000


def agents(count: int) -> list[AgentSpec]:
    # Each agent a loopback address and a port range of its own: the containers share the host network.
    return [
        AgentSpec(
            id=f"agent{i}-S0",
            hostname=f"127.0.0.{i}",
            ip=f"127.0.0.{i}",
            cpus=4,
            mem=8192,
            ports=((32000 + 100 * i, 32099 + 100 * i),),
        )
        for i in range(1, count + 1)
    ]


@dataclass
class World:
    engine: DockerEngine
    plugin: VolumePlugin
    master: DevMaster
    backend: DockerExecutorBackend
    zookeeper: ZooKeeperServer
    log_dir: Path

    def scheduler(
        self, image: str, *, nodes: int = 3, driver: str | None = None, extra: tuple[str, ...] = ()
    ) -> Scheduler:
        return Scheduler(
            self.master,
            self.zookeeper,
            new_cluster_name(),
            self.log_dir,
            nodes,
            driver=driver,
            extra=("--elasticsearchDockerImage", image, "--elasticsearchRam", "1024", *extra),
        )

    def container(self, task: dict[str, Any]) -> str:
        """The container running ``task``'s executor."""
        answer = self.engine.docker(
            "ps", "-a", "--filter", f"name={task['executor_id']}", "--format", "{{.Names}}"
        ).stdout.split()
        assert len(answer) == 1, answer
        return answer[0]

    def env_of(self, task: dict[str, Any]) -> dict[str, str]:
        raw = self.engine.docker("inspect", "--format", "{{json .Config.Env}}", self.container(task)).stdout
        return dict(item.split("=", 1) for item in json.loads(raw))


@pytest.fixture
def world(
    docker_engine: DockerEngine, volume_plugin: VolumePlugin, zookeeper: ZooKeeperServer, tmp_path: Path
) -> Iterator[World]:
    backend = DockerExecutorBackend(docker_engine.host, tmp_path / "work", default_grace_period=20.0)
    master = DevMaster(agents(4), backend=backend, heartbeat_interval=1.0, status_update_resend_interval=1.0)
    master.start()
    try:
        yield World(docker_engine, volume_plugin, master, backend, zookeeper, tmp_path)
    finally:
        master.stop()
        # The plugin's reset deletes the volumes: no container may still use them.
        with contextlib.suppress(Exception):
            backend.close()


def http_of(task_state: dict[int, dict[str, Any]], scheduler: Scheduler) -> dict[int, str]:
    listed = requests.get(scheduler.api + "/v1/tasks", timeout=10).json()
    return {t["node_id"]: f"http://{t['http_address']}" for t in listed if t["node_id"] in task_state}


def get_json(url: str) -> Any:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


def cluster_of(url: str) -> dict[str, Any] | None:
    try:
        return dict(get_json(url + "/"))
    except requests.RequestException:
        return None


def formed(urls: dict[int, str], size: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return all(len(get_json(u + "/_nodes")["nodes"]) == size for u in urls.values()) and all(
                (cluster_of(u) or {}).get("cluster_uuid", "_na_") != "_na_" for u in urls.values()
            )
        except (requests.RequestException, KeyError, ValueError):
            return False

    return check


def index_documents(url: str, count: int, *, replicas: int) -> None:
    requests.put(
        f"{url}/books", json={"settings": {"number_of_shards": 2, "number_of_replicas": replicas}}, timeout=10
    ).raise_for_status()
    lines = []
    for i in range(count):
        lines.append(json.dumps({"index": {"_index": "books", "_id": str(i)}}))
        lines.append(json.dumps({"title": f"book {i}", "n": i}))
    answer = requests.post(
        f"{url}/_bulk",
        data="\n".join(lines) + "\n",
        headers={"Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    answer.raise_for_status()
    assert answer.json()["errors"] is False


def count(url: str) -> int | None:
    try:
        return int(get_json(f"{url}/books/_count")["count"])
    except (requests.RequestException, KeyError, ValueError):
        return None


def wait_count(urls: dict[int, str], expected: int, scheduler: Scheduler) -> None:
    wait_for(
        f"count {expected} on every node",
        lambda: all(count(u) == expected for u in urls.values()),
        scheduler,
        timeout=60,
    )


def test_three_nodes_on_external_volumes_survive_replacement_and_a_full_restart(
    world: World, executor_image: str, tmp_path: Path
) -> None:
    settings = tmp_path / "elasticsearch.yml"
    settings.write_text("node.attr.rack: rack-a\nnode.name: not-the-frameworks\n")
    scheduler = world.scheduler(
        executor_image, driver=world.plugin.name, extra=("--elasticsearchSettingsLocation", str(settings))
    )
    try:
        scheduler.start()
        tasks = wait_for("3 nodes running", lambda: len(running_tasks(world.master)) == 3, scheduler, 180)
        tasks = running_tasks(world.master)
        urls = http_of(tasks, scheduler)
        wait_for("a formed 3-node cluster", formed(urls, 3), scheduler, 90)

        # 1. Volumes exist in the driver, each attached exactly once; every node sees all three by name.
        names = {f"{FW}{n}{kind}" for n in (1, 2, 3) for kind in ("config", "data")}
        assert names <= set(world.plugin.volume_names())
        for name in names:
            assert len(world.plugin.attachments(name)) == 1
        for url in urls.values():
            listed = sorted(n["name"] for n in get_json(url + "/_nodes")["nodes"].values())
            assert listed == [f"{FW}1", f"{FW}2", f"{FW}3"]
        uuid = cluster_of(urls[1])["cluster_uuid"]  # type: ignore[index]
        assert all(cluster_of(u)["cluster_uuid"] == uuid for u in urls.values())  # type: ignore[index]
        # The first launch bootstrapped; the scheduler recorded the uuid.
        assert "ELASTICSEARCH_INITIAL_MASTER_NODES" in world.env_of(tasks[1])
        wait_for("the uuid recorded", lambda: f"uuid {uuid} recorded" in scheduler.log(), scheduler, 30)

        # 5. The operator's settings are applied; the framework-owned one is ignored, with a warning.
        config_yml = world.plugin.volume_path(f"{FW}1config") / "config" / "elasticsearch.yml"
        text = config_yml.read_text()
        assert "rack-a" in text and "not-the-frameworks" not in text and f'"{FW}1"' in text
        assert "ignoring [node.name]" in scheduler.log()

        # 2. 1,000 documents; node 2's container killed: node 2 again, same volume, count unchanged.
        index_documents(urls[1], DOCS, replicas=1)
        wait_count(urls, DOCS, scheduler)
        old_2 = tasks[2]
        world.engine.docker("kill", world.container(old_2))
        wait_for(
            "node 2 relaunched",
            lambda: running_tasks(world.master).get(2, {}).get("task_id") not in (None, old_2["task_id"]),
            scheduler,
            120,
        )
        urls = http_of(running_tasks(world.master), scheduler)
        wait_for("the cluster whole again", formed(urls, 3), scheduler, 90)
        mounts = [c.method for c in world.plugin.calls(f"{FW}2data") if c.method in ("Mount", "Unmount")]
        assert mounts[-3:] == ["Mount", "Unmount", "Mount"], mounts
        assert world.plugin.max_concurrent_attachments(f"{FW}2data") == 1
        wait_count(urls, DOCS, scheduler)

        # 3. Every container killed: the same names and data come back, no bootstrap, the same uuid.
        before = running_tasks(world.master)
        for task in before.values():
            world.engine.docker("kill", world.container(task))
        wait_for(
            "all three relaunched",
            lambda: (
                (t := running_tasks(world.master)).keys() == {1, 2, 3}
                and all(t[n]["task_id"] != before[n]["task_id"] for n in (1, 2, 3))
            ),
            scheduler,
            180,
        )
        after = running_tasks(world.master)
        urls = http_of(after, scheduler)
        wait_for("the cluster whole again", formed(urls, 3), scheduler, 90)
        for node_id, task in after.items():
            assert "ELASTICSEARCH_INITIAL_MASTER_NODES" not in world.env_of(task), node_id
            assert cluster_of(urls[node_id])["cluster_uuid"] == uuid  # type: ignore[index]
        for name in names:
            assert world.plugin.max_concurrent_attachments(name) == 1
        wait_count(urls, DOCS, scheduler)
    finally:
        scheduler.stop()


def test_normal_mode_keeps_data_on_the_agent_across_a_restart(world: World, executor_image: str) -> None:
    scheduler = world.scheduler(executor_image, nodes=1, driver=None)
    try:
        scheduler.start()
        wait_for("node 1 running", lambda: 1 in running_tasks(world.master), scheduler, 180)
        first = running_tasks(world.master)[1]
        url = http_of({1: first}, scheduler)[1]
        wait_for("a formed 1-node cluster", formed({1: url}, 1), scheduler, 60)
        index_documents(url, 100, replicas=0)
        wait_count({1: url}, 100, scheduler)
        data_dir = world.backend.workdir / "hostpaths" / first["agent_id"]
        assert any(data_dir.rglob("*")), "no data on the agent's disk"
        # The only node: the planner never takes a cluster's last master down, so the operator forces it.
        answer = requests.post(
            f"{scheduler.api}/v1/nodes/1/restart", json={"force": "one-node test cluster"}, timeout=30
        )
        assert answer.status_code == 202, answer.text
        wait_for(
            "node 1 restarted",
            lambda: running_tasks(world.master).get(1, {}).get("task_id") not in (None, first["task_id"]),
            scheduler,
            120,
        )
        second = running_tasks(world.master)[1]
        assert second["agent_id"] == first["agent_id"]
        url = http_of({1: second}, scheduler)[1]
        wait_count({1: url}, 100, scheduler)
    finally:
        scheduler.stop()


def test_an_upgrade_from_a_7x_config_volume_regenerates_the_config_and_keeps_the_keystore(
    world: World, executor_image_for: Callable[[int], str]
) -> None:
    old_image, new_image = executor_image_for(7), executor_image_for(8)
    scheduler = world.scheduler(old_image, nodes=1, driver=world.plugin.name)
    upgraded: Scheduler | None = None  # stopped however the test ends: a failure must not leave it running
    try:
        scheduler.start()
        wait_for("node 1 on 7.x", lambda: 1 in running_tasks(world.master), scheduler, 180)
        config_dir = world.plugin.volume_path(f"{FW}1config") / "config"
        wait_for("the 7.x config written", (config_dir / "jvm.options").is_file, scheduler, 30)
        assert "official Elasticsearch 7 image" in (config_dir / "jvm.options").read_text()
        # What an operator (or an older release) left on the volume: a keystore and a stray file.
        # The keystore must be one the node can read (Elasticsearch, and the demo node in the stand-in
        # image, refuse to start on an unreadable one): the stand-in tool's format, with a setting of its own.
        keystore = b'{"format": "es-mesos-standin-keystore", "version": 1, "entries": {"keystore.seed": "7x"}}'
        (config_dir / "elasticsearch.keystore").write_bytes(keystore)
        (config_dir / "jvm.options.d").mkdir(exist_ok=True)
        (config_dir / "jvm.options.d" / "old-gc.options").write_text("-XX:+UseConcMarkSweepGC\n")
        scheduler.signal(15)
        upgraded = Scheduler(
            world.master,
            world.zookeeper,
            scheduler.cluster,
            world.log_dir,
            1,
            driver=world.plugin.name,
            # The executor image's tag names no version: the target is given, so the path 7.17 -> 8 is checked.
            extra=(
                "--elasticsearchDockerImage",
                new_image,
                "--elasticsearchRam",
                "1024",
                "--elasticsearchVersion",
                STANDIN_VERSIONS[8],
            ),
        )
        upgraded.start()
        wait_for("the API", lambda: _up(upgraded.api), upgraded, 60)
        old_task = running_tasks(world.master)[1]["task_id"]
        # The image changed: the running node is marked outdated, and replaced on request.
        wait_for("node 1 outdated", lambda: "outdated" in upgraded.log(), upgraded, 30)
        # The only node of the cluster: the planner never admits it (no master majority), so forced.
        forced = {"force": "the only node"}
        assert requests.post(f"{upgraded.api}/v1/nodes/1/replace", json=forced, timeout=30).status_code == 202
        wait_for(
            "node 1 on 8.x",
            lambda: running_tasks(world.master).get(1, {}).get("task_id") not in (None, old_task),
            upgraded,
            120,
        )
        wait_for(
            "the 8.x config written",
            lambda: "official Elasticsearch 8 image" in (config_dir / "jvm.options").read_text(),
            upgraded,
            60,
        )
        assert (config_dir / "elasticsearch.keystore").read_bytes() == keystore
        assert not (config_dir / "jvm.options.d" / "old-gc.options").exists()
    finally:
        if upgraded is not None:
            upgraded.stop()
        scheduler.stop()


def _up(api: str) -> bool:
    try:
        return requests.get(api + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        time.sleep(0.2)
        return False
