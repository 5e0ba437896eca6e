"""--elasticsearchSecurity auto end to end, as the default of a new cluster (the flag is not given):
the real ``es-framework`` process with real ZooKeeper and the development master, whose three agents
run the real executor with demo nodes (which enforce Elasticsearch 8's security). The scheduler
records the mode and creates the CA and the ``elastic`` password at leadership (sealed with
--secretKeyFile), issues each node a certificate for its agent at launch, and delivers key and
password as Mesos SECRET variables: the nodes form over mutual TLS, answer HTTPS with basic
authentication only, and the API proxy and elasticsearch-py (with GET /v1/cluster/ca.pem and GET
/v1/cluster/credentials) reach them. Neither the password nor a private key shows in the scheduler's
log, a task's labels or plain variables, the development master's state endpoint or the stored state.
Then the elastic password is rotated (POST /v1/cluster/credentials/rotate): the running executors fetch
it with their task tokens and their probes keep working, a node restarted after it runs with it, and
the new password shows nowhere either."""

from __future__ import annotations

import base64
import contextlib
import io
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
from examples import client as client_example
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
            # No --elasticsearchSecurity: a new cluster outside local mode is secured by default.
            security=None,
            extra=(
                "--secretKeyFile",
                str(key_file),
                "--apiTokenFile",
                str(token_file),
            ),
        )
        try:
            scheduler.start()
            check_secured_cluster(master, scheduler, launched, zookeeper, tmp_path)
            check_rotation(master, scheduler, launched, zookeeper, tmp_path)
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
    # examples/client.py finds the CA and the password through the scheduler, as the README says.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert client_example.main([api, "--apiTokenFile", str(tmp_path / "token")]) == 0
    assert printed.getvalue().endswith(", 3 nodes\n"), printed.getvalue()

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
    # The default's decision is recorded: every later leader keeps this cluster's mode.
    assert stored_state(zookeeper, scheduler.cluster)["security_mode"] == "auto"
    assert "--elasticsearchSecurity auto (the default) is recorded" in scheduler.log()

    # The scheduler's proxy reaches them over HTTPS as elastic, behind the token.
    proxied = requests.get(api + "/v1/es/_cluster/health", headers=auth, timeout=10)
    assert proxied.status_code == 200 and proxied.json()["number_of_nodes"] == 3, proxied.text

    # Nothing secret where it must not be.
    assert len(launched.task_infos) == 3
    for task_info in launched.task_infos:
        variables = task_info["executor"]["command"]["environment"]["variables"]
        secret = {v["name"] for v in variables if v.get("type") == "SECRET"}
        assert secret == {"ELASTIC_PASSWORD", "ELASTICSEARCH_TLS_KEY", "ES_MESOS_TASK_TOKEN"}
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


def secret_value(task_info: dict[str, Any], name: str) -> str:
    variables = task_info["executor"]["command"]["environment"]["variables"]
    (variable,) = [v for v in variables if v["name"] == name and v.get("type") == "SECRET"]
    return base64.b64decode(variable["secret"]["value"]["data"]).decode()


def check_rotation(
    master: DevMaster, scheduler: Scheduler, launched: LaunchedTasks, zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    api = scheduler.api
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ca_file = str(tmp_path / "ca.pem")
    old = requests.get(api + "/v1/cluster/credentials", headers=auth, timeout=5).json()["password"]
    addresses = requests.get(api + "/v1/cluster/endpoints", timeout=5).json()["http"]
    running = {t["node_id"]: t["id"] for t in node_tasks(api) if t["state"] == "TASK_RUNNING"}

    assert requests.post(api + "/v1/cluster/credentials/rotate", timeout=30).status_code == 401
    rotated = requests.post(api + "/v1/cluster/credentials/rotate", headers=auth, timeout=60)
    assert rotated.status_code == 200, rotated.text
    new = requests.get(api + "/v1/cluster/credentials", headers=auth, timeout=5).json()["password"]
    assert new != old and new not in rotated.text
    # Every node takes the new password (Elasticsearch's .security index), none the old one.
    for address in addresses:
        assert requests.get(f"https://{address}/", auth=("elastic", new), verify=ca_file, timeout=5).status_code == 200
        assert requests.get(f"https://{address}/", auth=("elastic", old), verify=ca_file, timeout=5).status_code == 401

    # The running executors' probes were refused once, fetched the password with their task tokens, go on.
    wait_for(
        "every running task fetched the new password",
        lambda: all(
            f"task {task_id} fetched the current elastic password" in scheduler.log() for task_id in running.values()
        ),
        scheduler,
        timeout=30,
    )

    def node(node_id: int) -> dict[str, Any]:
        answer = requests.get(f"{api}/v1/nodes/{node_id}", timeout=5)
        return dict(answer.json()) if answer.status_code == 200 else {}

    for node_id in running:
        assert "refuses the executor's credentials" not in json.dumps(node(node_id))
    wait_for(
        "the cluster's health read with the new password",
        lambda: requests.get(api + "/v1/es/_cluster/health", headers=auth, timeout=10).status_code == 200,
        scheduler,
        timeout=20,
    )

    # A node restarted after the rotation is launched with the new password and reaches RUNNING, healthy.
    restarted = requests.post(f"{api}/v1/nodes/1/restart", json={"force": "rotation e2e"}, headers=auth, timeout=30)
    assert restarted.status_code == 202, restarted.text
    wait_for(
        "node 1 running again, healthy",
        lambda: (
            node(1).get("id") not in (None, running[1]) and node(1)["state"] == "TASK_RUNNING" and node(1)["healthy"]
        ),
        scheduler,
        timeout=60,
    )
    relaunch = [t for t in launched.task_infos if t["task_id"]["value"] == node(1)["id"]]
    assert len(relaunch) == 1 and secret_value(relaunch[0], "ELASTIC_PASSWORD") == new

    # The new password is nowhere it must not be.
    for task_info in launched.task_infos:
        variables = task_info["executor"]["command"]["environment"]["variables"]
        plain = [v for v in variables if v.get("type") != "SECRET"]
        assert new not in json.dumps([plain, task_info["labels"], task_info["executor"]["labels"]])
    assert new not in requests.get(master.url + "/devcluster/state", timeout=5).text
    assert new not in scheduler.log() and new not in json.dumps(stored_state(zookeeper, scheduler.cluster))
