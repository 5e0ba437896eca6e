"""The demo node runs Elasticsearch's production-mode bootstrap checks: bound to a non-loopback address
(or forced) a short machine stops it with exit 78 and Elasticsearch's messages; on loopback they are
warnings. The limits it reads can be injected, as the executor's can."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework import contract
from es_framework.core import agent_checks
from es_framework.dev.demo_es import bootstrap_checks as demo
from es_framework.dev.demo_es.bootstrap_checks import UNLIMITED, Limits
from es_framework.dev.demo_es.settings import Settings
from es_framework.executor import bootstrap_checks as executor_checks
from es_framework.executor.bootstrap_checks import AgentLimits
from tests.dev.test_demo_es import node_settings
from tests.harness.demo_nodes import DemoNodeProcess

#: A machine prepared for production, but for vm.max_map_count (the Linux default).
SHORT_MAP_COUNT = {
    "ES_MESOS_AGENT_VM_MAX_MAP_COUNT": "65530",
    "ES_MESOS_AGENT_MAX_FILE_DESCRIPTORS": "65535",
    "ES_MESOS_AGENT_MAX_THREADS": "4096",
    "ES_MESOS_AGENT_MEMLOCK_LIMIT": "unlimited",
    "ES_MESOS_AGENT_MAX_VIRTUAL_MEMORY": "unlimited",
    "ES_MESOS_AGENT_MAX_FILE_SIZE": "unlimited",
}
MAP_COUNT_FAILURE = (
    "bootstrap check failure [1] of [1]: max virtual memory areas vm.max_map_count [65530] is too low, "
    "increase to at least [262144]"
)
PREPARED = Limits(262144, 65535, 4096, UNLIMITED, UNLIMITED, UNLIMITED)


@pytest.fixture
def nodes() -> Iterator[list[DemoNodeProcess]]:
    started: list[DemoNodeProcess] = []
    yield started
    for node in started:
        node.stop()


def settings(**values: str | list[str]) -> Settings:
    return Settings(dict(values), None)


def test_the_injected_variables_are_the_contracts() -> None:
    assert (
        demo.ENV_MAX_MAP_COUNT,
        demo.ENV_MAX_FILE_DESCRIPTORS,
        demo.ENV_MAX_THREADS,
        demo.ENV_MEMLOCK,
        demo.ENV_MAX_VIRTUAL_MEMORY,
        demo.ENV_MAX_FILE_SIZE,
    ) == (
        contract.ENV_AGENT_MAX_MAP_COUNT,
        contract.ENV_AGENT_MAX_FILE_DESCRIPTORS,
        contract.ENV_AGENT_MAX_THREADS,
        contract.ENV_AGENT_MEMLOCK_LIMIT,
        contract.ENV_AGENT_MAX_VIRTUAL_MEMORY,
        contract.ENV_AGENT_MAX_FILE_SIZE,
    )
    assert (demo.MIN_MAX_MAP_COUNT, demo.MIN_FILE_DESCRIPTORS, demo.MIN_THREADS) == (
        agent_checks.MIN_MAX_MAP_COUNT,
        agent_checks.MIN_FILE_DESCRIPTORS,
        agent_checks.MIN_THREADS,
    )


@pytest.mark.parametrize(
    ("values", "enforced"),
    [
        ({"network.host": "127.0.0.1"}, False),
        ({}, False),
        ({"network.host": "0.0.0.0"}, True),
        ({"network.host": "0.0.0.0", "discovery.type": "single-node"}, False),
        ({"network.host": "127.0.0.1", "network.publish_host": "10.0.0.1"}, True),
        ({"network.host": "0.0.0.0", "transport.host": "127.0.0.1"}, False),
        ({"network.host": "127.0.0.1", "transport.bind_host": "_site_"}, True),
        ({"network.host": "localhost"}, False),
    ],
)
def test_enforced_when_the_transport_leaves_loopback(values: dict[str, str], enforced: bool) -> None:
    assert demo.enforce_limits(settings(**values), demo.system_resolver) is enforced


def test_forced_by_the_java_property_and_a_bad_value_refused() -> None:
    loopback = settings(**{"network.host": "127.0.0.1"})
    short = {**SHORT_MAP_COUNT, "ES_JAVA_OPTS": "-Xms1g -Des.enforce.bootstrap.checks=true"}
    outcome = demo.run_checks(loopback, short)
    assert outcome.info == ("explicitly enforcing bootstrap checks",)
    assert len(outcome.errors) == 1 and not outcome.warnings
    assert demo.run_checks(loopback, SHORT_MAP_COUNT).warnings == outcome.errors
    with pytest.raises(demo.BootstrapCheckError, match=r"must be \[true\] but was \[false\]"):
        demo.run_checks(loopback, {"ES_JAVA_OPTS": "-Des.enforce.bootstrap.checks=false"})


@given(
    map_count=st.integers(0, 2**20),
    descriptors=st.integers(0, 2**20),
    threads=st.integers(0, 2**14),
    memlock=st.sampled_from([0, 65536, UNLIMITED]),
    size=st.sampled_from([1, 2**40, UNLIMITED]),
    memory_lock=st.booleans(),
    mmap=st.sampled_from([None, "true", "false"]),
)
def test_the_demo_node_and_the_executor_fail_the_same_agents(
    *, map_count: int, descriptors: int, threads: int, memlock: int, size: int, memory_lock: bool, mmap: str | None
) -> None:
    """What the demo node prints reads back, in the executor, as exactly the checks the executor finds
    (``node.store.allow_mmap: false`` turns the vm.max_map_count check off in both)."""
    values = {"bootstrap.memory_lock": "true" if memory_lock else "false"}
    if mmap is not None:
        values["node.store.allow_mmap"] = mmap
    printed = demo.failures(Limits(map_count, descriptors, threads, memlock, size, size), settings(**values), "es")
    lines = [f"bootstrap check failure [{i}] of [{len(printed)}]: {m}" for i, m in enumerate(printed, start=1)]
    own = executor_checks.failures(AgentLimits(map_count, descriptors, threads, memlock, size, size), values)
    assert [c.name for c in executor_checks.parse_failures(lines)] == [c.name for c in own]


def test_a_short_machine_on_a_non_loopback_address_exits_78(tmp_path: Path) -> None:
    node = DemoNodeProcess(
        tmp_path / "n", node_settings(tmp_path, "n", [], **{"network.host": "0.0.0.0"}), env=SHORT_MAP_COUNT
    )
    assert node.process.wait(timeout=15) == 78
    log = node.log()
    assert "bound or publishing to a non-loopback address, enforcing bootstrap checks" in log
    assert "[1] bootstrap checks failed. You must address the points described in the following [1] lines" in log
    assert MAP_COUNT_FAILURE in log


def test_every_failure_is_numbered(tmp_path: Path) -> None:
    short = {**SHORT_MAP_COUNT, "ES_MESOS_AGENT_MAX_FILE_DESCRIPTORS": "4096", "ES_MESOS_AGENT_MAX_FILE_SIZE": "1024"}
    node = DemoNodeProcess(tmp_path / "n", node_settings(tmp_path, "n", [], **{"network.host": "0.0.0.0"}), env=short)
    assert node.process.wait(timeout=15) == 78
    log = node.log()
    assert (
        "bootstrap check failure [1] of [3]: max file descriptors [4096] for elasticsearch process is too low, "
        "increase to at least [65535]"
    ) in log
    assert "bootstrap check failure [2] of [3]: max file size [1024] for user [" in log
    assert "bootstrap check failure [3] of [3]: max virtual memory areas vm.max_map_count [65530]" in log


def test_on_loopback_the_same_machine_gets_warnings_and_runs(tmp_path: Path, nodes: list[DemoNodeProcess]) -> None:
    nodes.append(DemoNodeProcess(tmp_path / "n", node_settings(tmp_path, "n", []), env=SHORT_MAP_COUNT))
    nodes[0].wait_http()
    log = nodes[0].log()
    assert "max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]" in log
    assert "bootstrap check failure" not in log and "enforcing bootstrap checks" not in log


def test_single_node_discovery_on_a_non_loopback_address_only_warns(
    tmp_path: Path, nodes: list[DemoNodeProcess]
) -> None:
    values = node_settings(tmp_path, "n", [], **{"network.host": "0.0.0.0", "discovery.type": "single-node"})
    nodes.append(DemoNodeProcess(tmp_path / "n", values, env=SHORT_MAP_COUNT))
    nodes[0].wait_http()
    assert "bootstrap check failure" not in nodes[0].log()


def test_forced_on_loopback_exits_78_and_a_bad_property_exits_1(tmp_path: Path) -> None:
    forced = DemoNodeProcess(
        tmp_path / "f",
        node_settings(tmp_path, "f", []),
        env={**SHORT_MAP_COUNT, "ES_JAVA_OPTS": "-Des.enforce.bootstrap.checks=true"},
    )
    assert forced.process.wait(timeout=15) == 78
    assert "explicitly enforcing bootstrap checks" in forced.log()
    assert MAP_COUNT_FAILURE in forced.log()
    bad = DemoNodeProcess(
        tmp_path / "b", node_settings(tmp_path, "b", []), env={"ES_JAVA_OPTS": "-Des.enforce.bootstrap.checks=yes"}
    )
    assert bad.process.wait(timeout=15) == 1
    assert "[es.enforce.bootstrap.checks] must be [true] but was [yes]" in bad.log()


def test_the_demo_switch_still_fails_on_loopback_with_the_machine_prepared(tmp_path: Path) -> None:
    prepared = {**SHORT_MAP_COUNT, "ES_MESOS_AGENT_VM_MAX_MAP_COUNT": "262144"}
    values = node_settings(tmp_path, "n", [], **{"demo.fail_bootstrap_check": "true"})
    node = DemoNodeProcess(tmp_path / "n", values, env=prepared)
    assert node.process.wait(timeout=15) == 78
    assert MAP_COUNT_FAILURE in node.log()


def test_the_machine_values_are_what_a_jvm_would_see(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {
        resource.RLIMIT_NOFILE: (1024, 65536),
        resource.RLIMIT_NPROC: (2048, 8192),
        resource.RLIMIT_MEMLOCK: (64, 64),
        resource.RLIMIT_AS: (UNLIMITED, UNLIMITED),
        resource.RLIMIT_FSIZE: (UNLIMITED, UNLIMITED),
    }
    monkeypatch.setattr(resource, "getrlimit", limits.__getitem__)
    read = demo.machine_limits()
    assert (read.max_file_descriptors, read.max_threads, read.memlock) == (65536, 2048, 64)
    assert demo.read_limits({"ES_MESOS_AGENT_MAX_THREADS": "9"}, lambda: PREPARED).max_threads == 9
    with pytest.raises(demo.BootstrapCheckError, match="ES_MESOS_AGENT_MAX_THREADS"):
        demo.read_limits({"ES_MESOS_AGENT_MAX_THREADS": "many"}, lambda: PREPARED)


def test_without_mmap_a_short_map_count_is_no_failure() -> None:
    short = Limits(65530, 65535, 4096, UNLIMITED, UNLIMITED, UNLIMITED)
    assert [m for m in demo.failures(short, settings(), "es") if "vm.max_map_count" in m]
    assert demo.failures(short, settings(**{"node.store.allow_mmap": "false"}), "es") == []
