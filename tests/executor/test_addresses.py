"""Where the node binds and what it publishes: the agent's own IP from its environment, loopback agents
in development mode, and the publish host's fallback from a hostname that resolves to loopback or not at
all (resolver injected)."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework import contract
from es_framework.executor.settings import (
    DEFAULT_NETWORK_HOST,
    ExecutorError,
    NodeSettings,
    agent_ip_of,
    network_host_of,
    publish_host_of,
)
from tests.executor.test_executor import node_env, task_info

HOSTS = {
    "agent1.example.com": ("10.0.0.1",),
    "debian-agent": ("127.0.1.1",),
    "127.0.0.3": ("127.0.0.3",),
    "dual": ("::1", "127.0.0.1"),
    "v6only": ("fd00::5",),
}


def resolve(name: str) -> tuple[str, ...]:
    if name not in HOSTS:
        raise OSError(f"[Errno -2] Name or service not known: {name}")
    return HOSTS[name]


def test_the_agent_ip_comes_from_libprocess_ip_else_the_agent_endpoint() -> None:
    assert agent_ip_of({"LIBPROCESS_IP": "10.0.0.1", "MESOS_AGENT_ENDPOINT": "10.9.9.9:5051"}) == "10.0.0.1"
    assert agent_ip_of({"MESOS_AGENT_ENDPOINT": "10.9.9.9:5051"}) == "10.9.9.9"
    assert agent_ip_of({"MESOS_AGENT_ENDPOINT": "[fd00::1]:5051"}) == "fd00::1"
    assert agent_ip_of({"LIBPROCESS_IP": "0.0.0.0", "MESOS_AGENT_ENDPOINT": "agent:5051"}) is None
    assert agent_ip_of({}) is None


def test_a_loopback_agent_binds_its_own_ip_a_real_one_every_interface() -> None:
    assert network_host_of({"LIBPROCESS_IP": "127.0.0.3"}) == "127.0.0.3"
    assert network_host_of({"MESOS_AGENT_ENDPOINT": "127.0.0.1:5051"}) == "127.0.0.1"
    assert network_host_of({"LIBPROCESS_IP": "10.0.0.1"}) == DEFAULT_NETWORK_HOST == "0.0.0.0"
    assert network_host_of({}) == DEFAULT_NETWORK_HOST
    explicit = {contract.ENV_NETWORK_HOST: "_site_", "LIBPROCESS_IP": "127.0.0.3"}
    assert network_host_of(explicit) == "_site_"


def test_a_hostname_on_127_0_1_1_publishes_the_agent_ip_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="es_framework.executor"):
        host = publish_host_of("debian-agent", {"LIBPROCESS_IP": "10.0.0.7"}, resolve, "node 2 task t2")
    assert host == "10.0.0.7"
    assert "node 2 task t2: the agent's hostname debian-agent resolves to the loopback address 127.0.1.1" in caplog.text
    assert "publishing the agent's IP 10.0.0.7" in caplog.text


def test_a_hostname_that_does_not_resolve_publishes_the_agent_ip(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="es_framework.executor"):
        assert publish_host_of("nowhere.invalid", {"MESOS_AGENT_ENDPOINT": "10.0.0.8:5051"}, resolve) == "10.0.0.8"
        assert publish_host_of("nowhere.invalid", {"LIBPROCESS_IP": "127.0.0.2"}, resolve) == "127.0.0.2"
    assert "nowhere.invalid does not resolve" in caplog.text
    # Without any IP of the agent there is nothing better to publish.
    assert publish_host_of("nowhere.invalid", {}, resolve) == "nowhere.invalid"


def test_good_names_and_local_agents_keep_their_names() -> None:
    assert publish_host_of("agent1.example.com", {"LIBPROCESS_IP": "10.0.0.1"}, resolve) == "agent1.example.com"
    assert publish_host_of("127.0.0.3", {"LIBPROCESS_IP": "127.0.0.3"}, resolve) == "127.0.0.3"
    # A name on loopback is kept when the agent itself is on loopback (one machine), or unknown.
    assert publish_host_of("debian-agent", {"LIBPROCESS_IP": "127.0.0.3"}, resolve) == "debian-agent"
    assert publish_host_of("debian-agent", {}, resolve) == "debian-agent"


def test_use_ip_address_stays_the_explicit_choice() -> None:
    use_ip = {contract.ENV_USE_IP_ADDRESS: "true", "LIBPROCESS_IP": "10.0.0.1"}
    assert publish_host_of("agent1.example.com", use_ip, resolve) == "10.0.0.1"
    assert publish_host_of("dual", {contract.ENV_USE_IP_ADDRESS: "true"}, resolve) == "127.0.0.1"
    assert publish_host_of("v6only", {contract.ENV_USE_IP_ADDRESS: "true"}, resolve) == "fd00::5"
    # The same fallback applies: the name's loopback address would be no better than the name.
    assert publish_host_of("debian-agent", {**use_ip, "LIBPROCESS_IP": "10.0.0.9"}, resolve) == "10.0.0.9"


def test_the_settings_read_both_from_the_agent_environment(tmp_path: Path) -> None:
    env = node_env(9200, 9300, ELASTICSEARCH_PUBLISH_HOST="debian-agent")
    del env[contract.ENV_NETWORK_HOST]
    settings = NodeSettings.from_task(
        task_info(env), {"MESOS_SANDBOX": str(tmp_path), "LIBPROCESS_IP": "10.0.0.4"}, resolve
    )
    assert (settings.network_host, settings.publish_host, settings.agent_ip) == ("0.0.0.0", "10.0.0.4", "10.0.0.4")
    assert settings.local_http == "http://127.0.0.1:9200"
    local = NodeSettings.from_task(
        task_info(env), {"MESOS_SANDBOX": str(tmp_path), "LIBPROCESS_IP": "127.0.0.3"}, resolve
    )
    assert (local.network_host, local.publish_host) == ("127.0.0.3", "debian-agent")
    assert local.local_http == "http://127.0.0.3:9200"


@pytest.mark.parametrize(
    ("network_host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9200"),
        ("_local_", "http://127.0.0.1:9200"),
        ("127.0.0.5", "http://127.0.0.5:9200"),
        ("127.0.0.5,_site_", "http://127.0.0.5:9200"),
        ("_site_", "http://agent1.example.com:9200"),  # _site_ binds no loopback address: ask the published one
        ("::1", "http://[::1]:9200"),
    ],
)
def test_the_executor_asks_its_node_where_it_listens(tmp_path: Path, network_host: str, url: str) -> None:
    env = node_env(9200, 9300, ELASTICSEARCH_PUBLISH_HOST="agent1.example.com", ELASTICSEARCH_NETWORK_HOST=network_host)
    settings = NodeSettings.from_task(
        task_info(env), {"MESOS_SANDBOX": str(tmp_path), "LIBPROCESS_IP": "10.0.0.4"}, lambda name: ("10.0.0.4",)
    )
    assert settings.local_http == url


def test_the_enforcement_switch_reaches_elasticsearch_and_a_bad_value_fails_the_task(tmp_path: Path) -> None:
    env = node_env(9200, 9300, ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS="true", ES_JAVA_OPTS="-Xms1g -Xmx1g")
    settings = NodeSettings.from_task(task_info(env), {"MESOS_SANDBOX": str(tmp_path)}, resolve)
    assert settings.enforce_bootstrap_checks
    assert settings.child_env["ES_JAVA_OPTS"] == "-Xms1g -Xmx1g -Des.enforce.bootstrap.checks=true"
    plain = NodeSettings.from_task(task_info(node_env(9200, 9300)), {"MESOS_SANDBOX": str(tmp_path)}, resolve)
    assert not plain.enforce_bootstrap_checks and "ES_JAVA_OPTS" not in plain.child_env
    with pytest.raises(ExecutorError, match="ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS='maybe'"):
        NodeSettings.from_task(task_info(node_env(9200, 9300, ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS="maybe")), {}, resolve)


_IPV4 = st.ip_addresses(v=4).map(str)


@given(
    agent_ip=st.one_of(st.none(), _IPV4),
    addresses=st.one_of(st.none(), st.lists(_IPV4, max_size=3)),
)
def test_the_publish_host_is_the_name_unless_peers_could_not_reach_it(
    agent_ip: str | None, addresses: list[str] | None
) -> None:
    def lookup(name: str) -> tuple[str, ...]:
        if addresses is None:
            raise OSError("Name or service not known")
        return tuple(addresses)

    env = {} if agent_ip is None else {"LIBPROCESS_IP": agent_ip}
    published = publish_host_of("agent.example.com", env, lookup)
    usable_ip = agent_ip is not None and not ipaddress.ip_address(agent_ip).is_unspecified
    unreachable = not addresses or (
        all(ipaddress.ip_address(a).is_loopback for a in addresses)
        and usable_ip
        and not ipaddress.ip_address(str(agent_ip)).is_loopback
    )
    assert published == (agent_ip if unreachable and usable_ip else "agent.example.com")
