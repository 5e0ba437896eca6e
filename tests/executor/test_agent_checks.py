"""The executor checks its agent before it starts Elasticsearch: a short agent (injected limits) ends the
task with TASK_FAILED naming the agent, the values and the fixes, and an AgentCheckReport as data; in
development mode the same agent only gets warnings; an Elasticsearch that exits 78 naming an agent
check gets the same report."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from es_framework import contract
from es_framework.contract import AgentCheckReport, NodeReport
from es_framework.dev.ports import free_port
from es_framework.executor.bootstrap_checks import UNLIMITED, AgentLimits
from es_framework.executor.node_executor import NodeExecutor
from tests.executor.test_executor import RecordingDriver, node_env, task_info
from tests.harness.demo_nodes import DEMO_COMMAND, wait_until

#: What the system says besides the injected values: a prepared agent (this machine is not one).
PREPARED = AgentLimits(262144, 65535, 4096, UNLIMITED, UNLIMITED, UNLIMITED)
#: Every limit injected as a prepared agent's, for the demo node too (it reads the same variables).
PREPARED_ENV = {
    contract.ENV_AGENT_MAX_MAP_COUNT: "262144",
    contract.ENV_AGENT_MAX_FILE_DESCRIPTORS: "65535",
    contract.ENV_AGENT_MAX_THREADS: "4096",
    contract.ENV_AGENT_MEMLOCK_LIMIT: "unlimited",
    contract.ENV_AGENT_MAX_VIRTUAL_MEMORY: "unlimited",
    contract.ENV_AGENT_MAX_FILE_SIZE: "unlimited",
}
AGENT_INFO = {"id": {"value": "agent-7-S0"}, "hostname": "agent7.example.com"}


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    started: list[NodeExecutor] = []

    def start(env: dict[str, str], process_env: dict[str, str]) -> tuple[NodeExecutor, RecordingDriver]:
        executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path), **process_env}, system_limits=lambda: PREPARED)
        driver = RecordingDriver()
        executor.registered(driver, {"executor_id": {"value": "ex1"}}, {"id": {"value": "fw"}}, AGENT_INFO)
        executor.launchTask(driver, task_info(env))
        started.append(executor)
        return executor, driver

    yield start
    for executor in started:
        executor.killTask(None, {"value": "x"})
        executor.finished.wait(10)


def test_a_short_agent_in_production_mode_fails_the_task_before_elasticsearch_starts(tmp_path: Path, run: Any) -> None:
    short_agent = {contract.ENV_AGENT_MAX_MAP_COUNT: "65530", contract.ENV_ENFORCE_BOOTSTRAP_CHECKS: "true"}
    executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND), short_agent)
    assert executor.finished.wait(15)
    assert driver.states() == ["TASK_FAILED"]
    failed = driver.last("TASK_FAILED")
    message = failed["message"]
    assert message.startswith("agent agent7.example.com fails Elasticsearch's bootstrap checks (")
    assert "es.enforce.bootstrap.checks=true forces the bootstrap checks" in message
    assert "vm.max_map_count is 65530, Elasticsearch needs at least 262144" in message
    assert "(fix: on the agent: sysctl -w vm.max_map_count=262144" in message
    report = AgentCheckReport.decode_wire(failed["data"])
    assert report is not None and report.agent == "agent7.example.com"
    assert [(c.name, c.found, c.needed) for c in report.checks] == [("vm.max_map_count", "65530", "at least 262144")]
    assert NodeReport.decode_wire(failed["data"]) is None  # never read as a running node's identity
    assert not (tmp_path / "elasticsearch.log").exists()  # Elasticsearch was never started


def test_without_a_registration_the_agent_is_named_by_the_schedulers_hostname(tmp_path: Path) -> None:
    executor = NodeExecutor(
        {"MESOS_SANDBOX": str(tmp_path), contract.ENV_AGENT_MAX_THREADS: "1024"}, system_limits=lambda: PREPARED
    )
    driver = RecordingDriver()
    env = node_env(
        free_port(),
        free_port(),
        ELASTICSEARCH_COMMAND=DEMO_COMMAND,
        ELASTICSEARCH_NETWORK_HOST="0.0.0.0",
        ELASTICSEARCH_PUBLISH_HOST="localhost",
    )
    executor.launchTask(driver, task_info(env))
    assert executor.finished.wait(15)
    failed = driver.last("TASK_FAILED")
    assert "non-loopback address (0.0.0.0)" in failed["message"]
    report = AgentCheckReport.decode_wire(failed["data"])
    assert report is not None and report.agent == "localhost"
    assert [c.found for c in report.checks] == ["1024"]


def test_the_same_agent_in_development_mode_gets_warnings_and_runs(
    tmp_path: Path, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _, driver = run(
            node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND),
            {contract.ENV_AGENT_MAX_MAP_COUNT: "65530"},
        )
        wait_until(lambda: "TASK_RUNNING" in driver.states(), 20, "TASK_RUNNING")
    assert "bootstrap check, a warning only (the transport binds and publishes loopback addresses only" in caplog.text
    assert "vm.max_map_count is 65530" in caplog.text
    # The demo node sees the same injected value and, bound to loopback, only warns too.
    log = (tmp_path / "elasticsearch.log").read_text()
    assert "max virtual memory areas vm.max_map_count [65530] is too low" in log
    assert "bootstrap check failure" not in log


def test_a_prepared_agent_runs_in_production_mode(tmp_path: Path, run: Any) -> None:
    env = node_env(
        free_port(),
        free_port(),
        ELASTICSEARCH_COMMAND=DEMO_COMMAND,
        ELASTICSEARCH_NETWORK_HOST="0.0.0.0",
    )
    _, driver = run(env, PREPARED_ENV)
    wait_until(lambda: "TASK_RUNNING" in driver.states(), 20, "TASK_RUNNING")
    log = (tmp_path / "elasticsearch.log").read_text()
    assert "bound or publishing to a non-loopback address, enforcing bootstrap checks" in log


def test_elasticsearch_exiting_78_on_an_agent_check_gets_the_same_report(tmp_path: Path, run: Any) -> None:
    command = DEMO_COMMAND + " -Edemo.fail_bootstrap_check=true"
    executor, driver = run(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=command), {})
    assert executor.finished.wait(15)
    failed = driver.last("TASK_FAILED")
    assert failed["message"].startswith(
        "agent agent7.example.com fails Elasticsearch's bootstrap checks (Elasticsearch exited with code 78): "
        "vm.max_map_count is 65530, Elasticsearch needs at least 262144 (fix: on the agent: sysctl -w"
    )
    assert (
        "Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: max virtual memory" in failed["message"]
    )
    report = AgentCheckReport.decode_wire(failed["data"])
    assert report is not None
    assert [(c.name, c.found) for c in report.checks] == [("vm.max_map_count", "65530")]
