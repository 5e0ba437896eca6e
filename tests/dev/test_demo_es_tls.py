"""Issue 15: demo nodes (real processes on 127.0.0.1) with Elasticsearch 8's security settings: two nodes whose
certificates come from the same CA form a cluster over mutual TLS and serve documents through each other; a node
with a certificate from another CA is refused and never joins; HTTP needs the ``elastic`` user's password, and
with HTTP TLS it is HTTPS that clients verify with the CA; the start-up refusals exit as Elasticsearch does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from es_framework.dev.demo_es import transport
from es_framework.dev.demo_es.security import BASIC_CHALLENGE
from es_framework.dev.ports import free_port
from tests.dev.test_demo_es_tls_config import PASSWORD, add_secure, node_pair, tls_settings, write_pem
from tests.harness.demo_nodes import DemoNodeProcess, wait_until

AUTH = ("elastic", PASSWORD)
#: A machine prepared for production: only the x-pack check can fail (see test_demo_es_bootstrap_checks).
PREPARED_AGENT = {
    "ES_MESOS_AGENT_VM_MAX_MAP_COUNT": "262144",
    "ES_MESOS_AGENT_MAX_FILE_DESCRIPTORS": "65535",
    "ES_MESOS_AGENT_MAX_THREADS": "4096",
    "ES_MESOS_AGENT_MEMLOCK_LIMIT": "unlimited",
    "ES_MESOS_AGENT_MAX_VIRTUAL_MEMORY": "unlimited",
    "ES_MESOS_AGENT_MAX_FILE_SIZE": "unlimited",
}


class SecureNode:
    """One demo node with its certificate from ``authority`` (PEM files in its config directory)."""

    def __init__(
        self, tmp: Path, name: str, authority: str, seeds: list[int], masters: list[str], *, http_tls: bool = False
    ) -> None:
        self.home = tmp / name
        self.config = self.home / "config"
        self.name = name
        self.transport_port = seeds[masters.index(name)] if name in masters else free_port()
        self.http_port = free_port()
        self.scheme = "https" if http_tls else "http"
        pem = write_pem(self.config, node_pair(authority, name), authority)
        add_secure(self.config, "bootstrap.password", PASSWORD)
        self.settings = {
            "cluster.name": "secure",
            "node.name": name,
            "network.host": "127.0.0.1",
            "http.port": str(self.http_port),
            "transport.port": str(self.transport_port),
            "path.data": str(self.home / "data"),
            "discovery.seed_hosts": "[" + ", ".join(f"127.0.0.1:{p}" for p in seeds) + "]",
            "cluster.initial_master_nodes": "[" + ", ".join(masters) + "]",
            **tls_settings(pem, mode="full", http=http_tls),
        }
        self.process: DemoNodeProcess | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def ca(self) -> str:
        return str(self.config / "certs" / "ca.crt")

    def start(self) -> SecureNode:
        self.process = DemoNodeProcess(self.home, self.settings)
        return self

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", AUTH)
        if self.scheme == "https":
            kwargs.setdefault("verify", self.ca)
        return requests.get(self.url + path, timeout=10, **kwargs)

    def wait_up(self) -> None:
        def up() -> bool:
            assert self.process is not None
            if self.process.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.process.returncode}: {self.process.log()}")
            return self.get("/").status_code == 200

        wait_until(up, 60, f"{self.name} answering with the password")

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def started() -> Iterator[list[SecureNode]]:
    nodes: list[SecureNode] = []
    yield nodes
    for node in nodes:
        node.stop()


def test_nodes_of_one_ca_form_a_cluster_over_tls_and_a_node_of_another_ca_never_joins(
    tmp_path: Path, started: list[SecureNode]
) -> None:
    seeds = [free_port(), free_port()]
    masters = ["n1", "n2"]
    n1, n2 = (SecureNode(tmp_path, name, "a", seeds, masters) for name in masters)
    rogue = SecureNode(tmp_path, "rogue", "b", seeds, masters)
    for node in (n1, n2, rogue):
        started.append(node.start())
    for node in (n1, n2, rogue):
        node.wait_up()
    wait_until(lambda: n1.get("/_cluster/health").json().get("number_of_nodes") == 2, 30, "n1 and n2 in one cluster")

    # Publication, master actions and shard operations travel over the transport's TLS: a write through one node
    # is read through the other.
    assert n1.get("/").json()["cluster_uuid"] == n2.get("/").json()["cluster_uuid"]
    created = requests.put(n1.url + "/idx/_doc/1?refresh=true", json={"a": 1}, auth=AUTH, timeout=30)
    assert created.status_code == 201, created.text
    assert n2.get("/idx/_doc/1").json()["_source"] == {"a": 1}

    # The rogue node tried (its probes and theirs fail the handshake) and is in nobody's cluster.
    wait_until(lambda: "TLS handshake" in n1.log() and "TLS handshake" in rogue.log(), 20, "handshakes refused")
    assert sorted(n["name"] for n in n1.get("/_nodes").json()["nodes"].values()) == ["n1", "n2"]
    assert [n["name"] for n in rogue.get("/_nodes").json()["nodes"].values()] == ["rogue"]
    assert rogue.get("/_cluster/health").status_code == 503
    assert n2.get("/_cluster/health").json()["number_of_nodes"] == 2
    # A plain-text probe gets nothing from a TLS transport; the internal paths are not on the HTTP port.
    assert transport.probe(f"127.0.0.1:{n1.transport_port}", "127.0.0.1:1") is None
    refused = n1.get("/_demo/state")
    assert (refused.status_code, refused.json()["error"]["type"]) == (403, "security_exception")

    # HTTP needs the elastic user's password (401 with Elasticsearch's challenge and body otherwise).
    anonymous = requests.get(n1.url + "/_cluster/health", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    error = anonymous.json()["error"]
    assert (error["type"], error["reason"]) == (
        "security_exception",
        "missing authentication credentials for REST request [/_cluster/health]",
    )
    wrong = requests.get(n1.url + "/", auth=("elastic", "nope"), timeout=10)
    assert wrong.status_code == 401
    assert wrong.json()["error"]["reason"] == "unable to authenticate user [elastic] for REST request [/]"


def test_https_answers_clients_that_trust_the_ca(tmp_path: Path, started: list[SecureNode]) -> None:
    node = SecureNode(tmp_path, "n1", "a", [free_port()], ["n1"], http_tls=True)
    started.append(node.start())
    node.wait_up()
    assert node.get("/_cluster/stats").json()["nodes"]["count"]["total"] == 1
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(node.url + "/", auth=AUTH, timeout=10)  # the system's CAs do not know the cluster's
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{node.http_port}/", auth=AUTH, timeout=10)
    assert requests.get(node.url + "/", verify=node.ca, timeout=10).status_code == 401


def _run_until_exit(tmp_path: Path, settings: dict[str, str], env: dict[str, str] | None = None) -> tuple[int, str]:
    process = DemoNodeProcess(tmp_path / "node", settings, env=env)
    try:
        code = process.process.wait(timeout=60)
    finally:
        process.stop()
    return code, process.log()


def _base(tmp_path: Path) -> dict[str, str]:
    return {
        "cluster.name": "secure",
        "node.name": "n1",
        "network.host": "127.0.0.1",
        "http.port": str(free_port()),
        "transport.port": str(free_port()),
        "path.data": str(tmp_path / "node" / "data"),
        "cluster.initial_master_nodes": "[n1]",
    }


def test_security_without_transport_tls_fails_the_bootstrap_check_in_production_mode(tmp_path: Path) -> None:
    settings = {**_base(tmp_path), "xpack.security.enabled": "true", "xpack.security.transport.ssl.enabled": "false"}
    enforced = {**PREPARED_AGENT, "ES_JAVA_OPTS": "-Des.enforce.bootstrap.checks=true"}
    code, log = _run_until_exit(tmp_path, settings, enforced)
    assert code == 78, log
    assert (
        "bootstrap check failure [1] of [1]: Transport SSL must be enabled if security is enabled. Please set "
        "[xpack.security.transport.ssl.enabled] to [true] or disable security by setting [xpack.security.enabled] "
        "to [false]"
    ) in log


def test_a_missing_key_file_refuses_to_start_with_exit_1(tmp_path: Path) -> None:
    pem = write_pem(tmp_path / "node" / "config", node_pair("a", "n1"), "a")
    (tmp_path / "node" / "config" / pem.key).unlink()
    code, log = _run_until_exit(tmp_path, {**_base(tmp_path), **tls_settings(pem)})
    assert code == 1, log
    missing = tmp_path / "node" / "config" / pem.key
    assert (
        "org.elasticsearch.ElasticsearchSecurityException: failed to load SSL configuration "
        f"[xpack.security.transport.ssl] - cannot read configured PEM private key [{missing}] because the file does "
        "not exist"
    ) in log, log
    assert PASSWORD not in log
