"""The executor with --elasticsearchSecurity auto (es_framework/executor/settings.py, volumes.py,
keystore.py, probes.py): the node's key, certificate and the CA from the TaskInfo (a SECRET value is read
from the TaskInfo where the agent left the variable empty, as the Docker containerizer does) into
<config>/certs (the key 0600), Elasticsearch 8's PEM TLS settings on the transport and HTTP, the
bootstrap password to the node only, and nothing secret in Elasticsearch's environment otherwise."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from es_framework.contract import NodeReport
from es_framework.core.certificates import create_ca, issue_node_certificate
from es_framework.core.node_tls import ENV_TLS_CA, ENV_TLS_CERTIFICATE, ENV_TLS_KEY, with_node_tls
from es_framework.executor.keystore import password_for_node
from es_framework.executor.logs import NodeLog
from es_framework.executor.probes import basic_authorization, node_identity, probe_context
from es_framework.executor.settings import CHILD_ENV_HIDDEN, ExecutorError, NodeSettings
from es_framework.executor.volumes import prepare_node
from tests.executor.test_executor import node_env, task_info
from tests.executor.test_executor_node import make_home

PASSWORD = "auto-generated-elastic-pw"
#: The certificates must be valid now: the probe's TLS checks their time.
NOW = time.time()


@pytest.fixture(scope="module")
def material() -> dict[str, str]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = create_ca(ca_key, cluster_name="mesos-ha", now=NOW, serial=1)
    node_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    node = issue_node_certificate(
        ca, node_key, node_name="elasticsearch1", hostname="127.0.0.1", ip="127.0.0.1", now=NOW, serial=2
    )
    return {"certificate": node.certificate_pem(), "ca": ca.certificate_pem(), "key": node.key_pem()}


def auto_task(material: dict[str, str]) -> dict[str, Any]:
    plain = task_info(node_env(9200, 9300, ELASTICSEARCH_SECURITY="auto"))
    return with_node_tls(
        plain,
        certificate_pem=material["certificate"],
        ca_pem=material["ca"],
        key_pem=material["key"],
        password=PASSWORD,
    )


def test_secrets_come_from_the_taskinfo_when_the_agent_left_them_empty(
    material: dict[str, str], tmp_path: Path
) -> None:
    # The Docker containerizer's environment: every variable present, a SECRET one empty.
    environ = {"MESOS_SANDBOX": str(tmp_path), ENV_TLS_KEY: "", "ELASTIC_PASSWORD": ""}
    settings = NodeSettings.from_task(auto_task(material), environ)
    assert settings.tls is not None and settings.tls.key == material["key"]
    assert settings.elastic_password == PASSWORD and settings.security_enabled
    assert settings.local_http.startswith("https://")
    assert material["key"] not in repr(settings) and PASSWORD not in repr(settings)
    assert not set(settings.child_env) & CHILD_ENV_HIDDEN


def test_auto_without_material_fails_naming_what_is_missing(tmp_path: Path) -> None:
    plain = task_info(node_env(9200, 9300, ELASTICSEARCH_SECURITY="auto", ELASTIC_PASSWORD=PASSWORD))
    with pytest.raises(ExecutorError) as refused:
        NodeSettings.from_task(plain, {"MESOS_SANDBOX": str(tmp_path)})
    message = str(refused.value)
    assert ENV_TLS_KEY in message and ENV_TLS_CERTIFICATE in message and ENV_TLS_CA in message
    assert PASSWORD not in message


def test_the_files_and_the_settings_and_the_password_for_a_node_without_a_keystore_tool(
    material: dict[str, str], tmp_path: Path
) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    settings = NodeSettings.from_task(auto_task(material), {"MESOS_SANDBOX": str(sandbox)})
    home = make_home(tmp_path)
    prepare_node(settings, home, NodeLog("1", "t"))
    certs = settings.config_path / "certs"
    key = certs / "node.key"
    assert key.read_text() == material["key"] and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert (certs / "node.crt").read_text() == material["certificate"]
    assert (certs / "ca.crt").read_text() == material["ca"]
    assert not list(certs.glob("*.tmp"))
    written = yaml.safe_load((settings.config_path / "elasticsearch.yml").read_text())
    for layer in ("transport", "http"):
        assert written[f"xpack.security.{layer}.ssl.enabled"] is True
        assert written[f"xpack.security.{layer}.ssl.key"] == "certs/node.key"
        assert written[f"xpack.security.{layer}.ssl.certificate"] == "certs/node.crt"
        assert written[f"xpack.security.{layer}.ssl.certificate_authorities"] == ["certs/ca.crt"]
    assert written["xpack.security.enabled"] is True
    assert written["xpack.security.transport.ssl.verification_mode"] == "full"
    text = (settings.config_path / "elasticsearch.yml").read_text()
    assert PASSWORD not in text and "PRIVATE KEY" not in text
    # No elasticsearch-keystore in this home: the password goes to the node's own environment only.
    assert settings.child_env.get("ELASTIC_PASSWORD") is None
    assert password_for_node(settings, home).child_env["ELASTIC_PASSWORD"] == PASSWORD
    tool = home / "bin" / "elasticsearch-keystore"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    assert "ELASTIC_PASSWORD" not in password_for_node(settings, home).child_env


def test_the_probes_verify_the_node_against_the_cluster_ca_and_authenticate(
    material: dict[str, str], tmp_path: Path
) -> None:
    seen: list[str | None] = []

    class Node(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"name": "elasticsearch1", "cluster_uuid": "u1", "version": {"number": "8.15.1"}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    (tmp_path / "node.crt").write_text(material["certificate"])
    (tmp_path / "node.key").write_text(material["key"])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "node.crt", tmp_path / "node.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Node)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        answer = node_identity(url, basic_authorization(PASSWORD), probe_context(material["ca"]))
        assert isinstance(answer, NodeReport) and answer.cluster_uuid == "u1"
        assert seen == [basic_authorization(PASSWORD)]
        # Another CA's context refuses the node: the probe sees no answer at all.
        other = create_ca(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), cluster_name="x", now=NOW, serial=3
        )
        assert node_identity(url, None, probe_context(other.certificate_pem())) is None
        assert len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()
