"""es-mesos-executor against a recording driver, with the demo Elasticsearch node as Elasticsearch."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from es_framework.contract import NodeReport
from es_framework.dev.ports import free_port
from es_framework.executor.node_executor import NodeExecutor
from es_framework.executor.process import failure_message
from es_framework.executor.settings import NodeSettings
from es_framework.executor.volumes import UNFORMED_MARKER, existing_cluster, render_elasticsearch_yml
from tests.harness.demo_nodes import DEMO_COMMAND, wait_until


class RecordingDriver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.updates: list[dict[str, Any]] = []

    def sendStatusUpdate(self, status: dict[str, Any]) -> None:
        with self.lock:
            self.updates.append(status)

    def states(self) -> list[str]:
        with self.lock:
            return [u["state"] for u in self.updates]

    def last(self, state: str) -> dict[str, Any]:
        with self.lock:
            return next(u for u in reversed(self.updates) if u["state"] == state)


def task_info(env: dict[str, str], task_id: str = "elasticsearch-node1-abc") -> dict[str, Any]:
    return {
        "task_id": {"value": task_id},
        "name": "elasticsearch1",
        "executor": {
            "executor_id": {"value": "ex1"},
            "command": {
                "value": "es-mesos-executor",
                "environment": {"variables": [{"name": k, "value": v} for k, v in env.items()]},
            },
        },
        "kill_policy": {"grace_period": {"nanoseconds": 120 * 10**9}},
    }


def node_env(http_port: int, transport_port: int, **extra: str) -> dict[str, str]:
    return {
        "ELASTICSEARCH_NODE_ID": "1",
        "ELASTICSEARCH_NODE_NAME": "elasticsearch1",
        "ELASTICSEARCH_CLUSTER_NAME": "mesos-ha",
        "ELASTICSEARCH_FRAMEWORK_NAME": "elasticsearch",
        "ELASTICSEARCH_HTTP_PORT": str(http_port),
        "ELASTICSEARCH_TRANSPORT_PORT": str(transport_port),
        "ELASTICSEARCH_PUBLISH_HOST": "127.0.0.1",
        "ELASTICSEARCH_SEED_HOSTS": "127.0.0.1:1,127.0.0.1:2",
        "ELASTICSEARCH_DATA_PATH": "data",
        "ELASTICSEARCH_CONFIG_VOLUME_PATH": "config-volume",
        "ELASTICSEARCH_INITIAL_MASTER_NODES": "elasticsearch1",
        "ELASTICSEARCH_NETWORK_HOST": "127.0.0.1",
        **extra,
    }


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    started: list[NodeExecutor] = []

    def start(env: dict[str, str], process_env: dict[str, str] | None = None) -> tuple[NodeExecutor, RecordingDriver]:
        environ = {"MESOS_SANDBOX": str(tmp_path), **(process_env or {})}
        executor = NodeExecutor(environ)
        driver = RecordingDriver()
        executor.launchTask(driver, task_info(env))
        started.append(executor)
        return executor, driver

    yield start
    for executor in started:
        executor.killTask(None, {"value": "x"})
        executor.finished.wait(10)


def test_settings_paths_are_relative_to_the_sandbox_and_the_process_env_wins(tmp_path: Path) -> None:
    env = node_env(9200, 9300)
    settings = NodeSettings.from_task(
        task_info(env), {"MESOS_SANDBOX": str(tmp_path), "ELASTICSEARCH_DATA_PATH": "/volumes/es1data"}
    )
    assert settings.data_path == Path("/volumes/es1data")
    assert settings.config_path == tmp_path / "config-volume" / "config"
    assert settings.seed_hosts == ("127.0.0.1:1", "127.0.0.1:2")
    assert settings.grace_period == 120.0
    text, _ = render_elasticsearch_yml(settings, 8)
    assert 'cluster.name: "mesos-ha"' in text
    assert 'discovery.seed_providers: ["file"]' in text
    assert 'network.publish_host: "127.0.0.1"' in text
    grace = NodeSettings.from_task(task_info(env), {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "7secs"})
    assert grace.grace_period == 7.0
    by_ip = NodeSettings.from_task(
        task_info(env), {"ELASTICSEARCH_PUBLISH_HOST": "localhost", "ELASTICSEARCH_USE_IP_ADDRESS": "true"}
    )
    assert by_ip.publish_host in ("127.0.0.1", "::1")


def test_failure_message_names_the_bootstrap_check() -> None:
    lines = ["starting", "bootstrap check failure [1] of [1]: max file descriptors [4096] is too low", "bye"]
    message = failure_message(78, lines)
    assert message.startswith("Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: max file")
    assert "Last log lines: starting | " in message


def test_running_only_after_http_then_killed_gracefully(tmp_path: Path, run: Any) -> None:
    http = free_port()
    executor, driver = run(node_env(http, free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND))
    wait_until(lambda: "TASK_RUNNING" in driver.states(), 15, "TASK_RUNNING")
    assert driver.states()[0] == "TASK_STARTING"
    # The first RUNNING may come while the demo node still forms its cluster (uuid _na_, not healthy).
    wait_until(lambda: driver.last("TASK_RUNNING").get("healthy") is True, 15, "a healthy TASK_RUNNING")
    running = driver.last("TASK_RUNNING")
    identity = json.loads(base64.b64decode(running["data"]))
    assert identity["node_name"] == "elasticsearch1"
    assert identity["version"] == "8.x-demo"
    assert identity["cluster_uuid"] not in ("", "_na_")
    config = tmp_path / "config-volume" / "config"
    assert (config / "unicast_hosts.txt").read_text().splitlines()[1:] == ["127.0.0.1:1", "127.0.0.1:2"]
    assert (tmp_path / "data" / "node.lock").exists()
    executor.killTask(driver, {"value": "elasticsearch-node1-abc"})
    assert executor.finished.wait(15)
    killed = driver.last("TASK_KILLED")
    assert "stopped gracefully (exit code 0)" in killed["message"]
    assert "stopped demo node" in (tmp_path / "elasticsearch.log").read_text()


def test_exit_78_fails_the_task_with_the_check(tmp_path: Path, run: Any) -> None:
    command = DEMO_COMMAND + " -Edemo.fail_bootstrap_check=true"
    executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=command))
    assert executor.finished.wait(15)
    failed = driver.last("TASK_FAILED")
    assert "exited with code 78: bootstrap check failure [1] of [1]: max virtual memory areas" in failed["message"]
    assert "TASK_RUNNING" not in driver.states()


def test_kill_escalates_to_sigkill_after_the_grace_period(run: Any) -> None:
    command = DEMO_COMMAND + " -Edemo.shutdown_delay=30"
    executor, driver = run(
        node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=command),
        {"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "500ms"},
    )
    wait_until(lambda: "TASK_RUNNING" in driver.states(), 15, "TASK_RUNNING")
    executor.killTask(driver, {"value": "elasticsearch-node1-abc"})
    assert executor.finished.wait(10)
    assert "did not stop within 0.5s and was killed (exit code -9)" in driver.last("TASK_KILLED")["message"]


def test_seed_host_messages_apply_newer_versions_only(tmp_path: Path, run: Any) -> None:
    executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND))
    wait_until(lambda: "TASK_RUNNING" in driver.states(), 15, "TASK_RUNNING")
    hosts = tmp_path / "config-volume" / "config" / "unicast_hosts.txt"

    def send(document: object) -> None:
        executor.frameworkMessage(driver, base64.b64encode(json.dumps(document).encode()).decode())

    send({"version": 2, "seed_hosts": ["10.0.0.1:9300", "10.0.0.2:9300"]})
    assert hosts.read_text().splitlines()[1:] == ["10.0.0.1:9300", "10.0.0.2:9300"]
    send({"version": 1, "seed_hosts": ["old:1"]})
    send({"version": 2, "seed_hosts": ["same:1"]})
    assert hosts.read_text().splitlines()[1:] == ["10.0.0.1:9300", "10.0.0.2:9300"]
    executor.frameworkMessage(driver, "not base64 json!")  # logged and ignored, never raised
    send({"version": 3, "seed_hosts": []})
    assert hosts.read_text().splitlines()[1:] == []


def test_missing_environment_fails_the_task_and_callbacks_never_raise(run: Any) -> None:
    env = node_env(free_port(), free_port())
    del env["ELASTICSEARCH_NODE_NAME"]
    executor, driver = run(env)
    assert executor.finished.wait(10)
    assert "lacks ELASTICSEARCH_NODE_NAME" in driver.last("TASK_FAILED")["message"]
    # A callback given nonsense logs and returns.
    executor.launchTask(driver, None)
    executor.registered(driver, None, None, None)
    executor.shutdown(None)


def test_no_running_while_elasticsearch_does_not_answer(run: Any) -> None:
    executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND="sleep 30"))
    wait_until(lambda: "TASK_STARTING" in driver.states(), 10, "TASK_STARTING")
    assert not executor.finished.wait(1.0)
    assert driver.states() == ["TASK_STARTING"]
    executor.killTask(driver, {"value": "elasticsearch-node1-abc"})
    assert executor.finished.wait(10)
    assert driver.states() == ["TASK_STARTING", "TASK_KILLED"]


# ---------------------------------------------------------------------- bootstrap over a real node's data
# The executor knows no development node: the demo node keeps its state under <data>/_state/ as
# Elasticsearch 8 does, so the generic check and the executor's marker decide for it too.


def reported(driver: RecordingDriver) -> NodeReport | None:
    """The NodeReport of the last TASK_RUNNING, as the scheduler reads it (None: none yet)."""
    running = [u for u in driver.updates if u["state"] == "TASK_RUNNING"]
    return NodeReport.decode_wire(running[-1].get("data")) if running else None


def initial_masters_written(sandbox: Path) -> list[str]:
    document = yaml.safe_load((sandbox / "config-volume" / "config" / "elasticsearch.yml").read_text())
    return list(document.get("cluster.initial_master_nodes") or [])


def test_a_node_that_formed_its_cluster_never_bootstraps_over_its_data_again(
    tmp_path: Path, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND))
    running = wait_until(lambda: reported(driver), 15, "a cluster uuid")
    assert initial_masters_written(tmp_path) == ["elasticsearch1"]
    assert not (tmp_path / "data" / UNFORMED_MARKER).exists()  # a uuid was seen
    executor.killTask(driver, {"value": "elasticsearch-node1-abc"})
    assert executor.finished.wait(15)

    with caplog.at_level(logging.INFO, logger="es_framework.executor"):
        executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND))
        again = wait_until(lambda: reported(driver), 15, "a cluster uuid")
    assert initial_masters_written(tmp_path) == []
    assert "not writing cluster.initial_master_nodes ['elasticsearch1']" in caplog.text
    assert again.cluster_uuid == running.cluster_uuid


def test_a_node_that_never_formed_a_cluster_keeps_bootstrapping(
    tmp_path: Path, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Three initial masters and only one node: no majority, so no cluster forms.
    masters = "elasticsearch1,elasticsearch2,elasticsearch3"
    env = node_env(
        free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND, ELASTICSEARCH_INITIAL_MASTER_NODES=masters
    )
    executor, driver = run(env)
    wait_until(lambda: "TASK_RUNNING" in driver.states(), 15, "TASK_RUNNING")
    assert "data" not in driver.last("TASK_RUNNING")
    assert existing_cluster(tmp_path / "data") is not None  # the node wrote its state at once
    assert (tmp_path / "data" / UNFORMED_MARKER).exists()
    executor.killTask(driver, {"value": "elasticsearch-node1-abc"})
    assert executor.finished.wait(15)

    with caplog.at_level(logging.INFO, logger="es_framework.executor"):
        env = node_env(
            free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND, ELASTICSEARCH_INITIAL_MASTER_NODES=masters
        )
        executor, driver = run(env)
        wait_until(lambda: "TASK_RUNNING" in driver.states(), 15, "TASK_RUNNING")
    assert initial_masters_written(tmp_path) == masters.split(",")
    assert "but this node never joined a cluster" in caplog.text
