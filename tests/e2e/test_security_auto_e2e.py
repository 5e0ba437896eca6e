"""--elasticsearchSecurity auto end to end: the real ``es-framework`` process with real ZooKeeper and the
development master, whose three agents run the real executor with demo nodes (which enforce Elasticsearch
8's security). The scheduler creates the CA and the ``elastic`` password at leadership (sealed with
--secretKeyFile), issues each node a certificate for its agent at launch, and delivers key and password
as Mesos SECRET variables: the nodes form over mutual TLS, answer HTTPS with basic authentication only,
and the API proxy and elasticsearch-py (with GET /v1/cluster/ca.pem and GET /v1/cluster/credentials)
reach them. Neither the password nor a private key shows in the scheduler's log, a task's labels or
plain variables, the development master's state endpoint or the stored state."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from elasticsearch import Elasticsearch

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import Scheduler, new_cluster_name, stored_state, wait_for

TOKEN = "security-auto-e2e-token"
NODES = (1, 2, 3)
PRIVATE = "PRIVATE KEY"


class LaunchedTasks:
    """Every TaskInfo the master was asked to launch (wraps ``handle_call`` on the instance)."""

    def __init__(self, master: DevMaster) -> None:
        self.task_infos: list[dict[str, Any]] = []
        lock = threading.Lock()
        handle_call = master.handle_call

        def recording(call: object, stream_id: str | None) -> None:
            if isinstance(call, dict) and call.get("type") == "ACCEPT":
                for operation in (call.get("accept") or {}).get("operations") or []:
                    with lock:
                        self.task_infos.extend((operation.get("launch") or {}).get("task_infos") or [])
            handle_call(call, stream_id)

        master.handle_call = recording  # type: ignore[method-assign]


def node_tasks(api: str) -> list[dict[str, Any]]:
    try:
        answer = requests.get(api + "/v1/tasks", timeout=5)
        return list(answer.json()) if answer.status_code == 200 else []
    except (requests.RequestException, ValueError):
        return []


def test_nodes_form_over_tls_clients_reach_them_with_the_ca_and_no_secret_leaks(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    key_file = tmp_path / "secret.key"
    key_file.write_text(Fernet.generate_key().decode())
    with demo_cluster(tmp_path / "work", [demo_agent(n) for n in NODES]) as master:
        launched = LaunchedTasks(master)
        scheduler = Scheduler(
            master,
            zookeeper,
            new_cluster_name(),
            tmp_path,
            len(NODES),
            extra=(
                "--elasticsearchSecurity",
                "auto",
                "--secretKeyFile",
                str(key_file),
                "--apiTokenFile",
                str(token_file),
            ),
        )
        try:
            scheduler.start()
            check_secured_cluster(master, scheduler, launched, zookeeper, tmp_path)
        finally:
            scheduler.stop()


def check_secured_cluster(
    master: DevMaster, scheduler: Scheduler, launched: LaunchedTasks, zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    api = scheduler.api
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(
        "3 running nodes",
        lambda: sorted(t["node_id"] for t in node_tasks(api) if t["state"] == "TASK_RUNNING") == list(NODES),
        scheduler,
        timeout=60,
    )
    ca_pem = requests.get(api + "/v1/cluster/ca.pem", timeout=5).text
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca_pem)
    assert requests.get(api + "/v1/cluster/credentials", timeout=5).status_code == 401
    credentials = requests.get(api + "/v1/cluster/credentials", headers=auth, timeout=5).json()
    assert credentials["username"] == "elastic"
    password = credentials["password"]
    addresses = requests.get(api + "/v1/cluster/endpoints", timeout=5).json()["http"]
    assert len(addresses) == 3

    # elasticsearch-py over HTTPS, verifying the nodes' certificates (host names included) with the CA.
    client = Elasticsearch(
        [f"https://{a}" for a in addresses], ca_certs=str(ca_file), basic_auth=("elastic", password), max_retries=3
    )
    try:
        wait_for(
            "a cluster of 3 over TLS",
            lambda: client.cluster.health(wait_for_nodes="3", timeout="1s").get("number_of_nodes") == 3,
            scheduler,
            timeout=40,
        )
        client.index(index="secured", id="1", document={"n": 1}, refresh=True)
        assert client.count(index="secured")["count"] == 1
    finally:
        client.close()

    # The nodes answer HTTPS only, and only to the elastic user.
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        urllib.request.urlopen(f"https://{addresses[0]}/", timeout=5, context=context)
        raise AssertionError("a request without credentials was answered")
    except urllib.error.HTTPError as refused:
        assert refused.code == 401
    try:
        requests.get(f"http://{addresses[0]}/", timeout=5)
        raise AssertionError("a node answered plain HTTP")
    except requests.RequestException:
        pass

    # The scheduler's own client (the monitor) reads the cluster's health over HTTPS with the CA.
    wait_for(
        "the monitor's health over HTTPS",
        lambda: requests.get(api + "/v1/cluster", timeout=5).json()["health"] in ("green", "yellow"),
        scheduler,
        timeout=20,
    )
    assert requests.get(api + "/v1/cluster", timeout=5).json()["security_warning"] is None

    # The scheduler's proxy reaches them over HTTPS as elastic, behind the token.
    proxied = requests.get(api + "/v1/es/_cluster/health", headers=auth, timeout=10)
    assert proxied.status_code == 200 and proxied.json()["number_of_nodes"] == 3, proxied.text

    # Nothing secret where it must not be.
    assert len(launched.task_infos) == 3
    for task_info in launched.task_infos:
        variables = task_info["executor"]["command"]["environment"]["variables"]
        secret = {v["name"] for v in variables if v.get("type") == "SECRET"}
        assert secret == {"ELASTIC_PASSWORD", "ELASTICSEARCH_TLS_KEY"}
        command = task_info["executor"]["command"]
        plain = [v for v in variables if v.get("type") != "SECRET"]
        visible = json.dumps([plain, task_info["labels"], task_info["executor"]["labels"], command.get("arguments")])
        assert password not in visible and PRIVATE not in visible
    master_state = requests.get(master.url + "/devcluster/state", timeout=5).text
    assert password not in master_state and PRIVATE not in master_state
    log = scheduler.log()
    assert password not in log and PRIVATE not in log and "issued certificate" in log
    stored = json.dumps(stored_state(zookeeper, scheduler.cluster))
    assert password not in stored and PRIVATE not in stored
