"""--elasticsearchSecurity auto at launch (es_framework/app/node_certificates.py, core/node_tls.py): the
generated elastic password kept with the CA (sealed like its key), every launched node's certificate
issued for its agent's host and IP, and the key and the password delivered only as Mesos SECRET
variables, never in a label, a plain variable, the state or the log; the API's credentials behind the
token and the proxy over HTTPS."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.x509.oid import ExtendedKeyUsageOID

from es_framework.api.app import ApiApp
from es_framework.api.proxy import forward
from es_framework.app.node_certificates import NodeIssuer
from es_framework.app.security import ensure_certificate_authority
from es_framework.core.cluster_ca import StoredCa
from es_framework.core.node_tls import ENV_TLS_CA, ENV_TLS_CERTIFICATE, ENV_TLS_KEY, NodeTrust
from es_framework.dev.fake_api import FakeCore
from es_framework.shell import es_client
from es_framework.shell.secret_box import SecretBox
from tests.api.http_call import call
from tests.core.test_engine import MemoryStore, accepts, make
from tests.harness.builders import offer

NOW = 1_800_000_000.0
PASSWORD = "generated-password-for-the-test-0123456789"


def agent_offer(n: int) -> dict[str, Any]:
    raw = offer(n)
    raw["url"] = {"scheme": "http", "address": {"hostname": raw["hostname"], "ip": f"10.0.0.{n}", "port": 5051}}
    return raw


def variables(task_info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in task_info["executor"]["command"]["environment"]["variables"]}


def secret_of(variable: dict[str, Any]) -> str:
    assert variable["type"] == "SECRET" and "value" not in variable
    assert variable["secret"]["type"] == "VALUE"
    return base64.b64decode(variable["secret"]["value"]["data"]).decode()


def test_the_password_is_made_once_with_the_ca_and_sealed_like_its_key(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text(Fernet.generate_key().decode())
    engine, store, _ = make(elasticsearchSecurity="auto", secretKeyFile=str(key_file))
    stored = ensure_certificate_authority(engine.config, engine, clock=lambda: NOW, password=lambda: PASSWORD)
    assert stored is not None and stored.sealed and stored.elastic_password is not None
    assert len(store.writes) == 1 and PASSWORD not in json.dumps(store.document)
    assert engine.config.secret_key is not None
    assert SecretBox(engine.config.secret_key).unseal(stored.elastic_password) == PASSWORD
    assert PASSWORD not in repr(stored)
    # The next leader keeps it: no new password, no write.
    again, _, _ = make(MemoryStore(store.document), elasticsearchSecurity="auto", secretKeyFile=str(key_file))
    assert ensure_certificate_authority(again.config, again, clock=lambda: NOW, password=lambda: "other") == stored
    assert len(store.writes) == 1


def test_a_ca_stored_without_a_password_gets_one_unsealed_without_a_key(caplog: pytest.LogCaptureFixture) -> None:
    engine, store, _ = make(elasticsearchSecurity="auto")
    first = ensure_certificate_authority(engine.config, engine, clock=lambda: NOW, password=lambda: PASSWORD)
    assert first is not None and first.elastic_password == PASSWORD and not first.sealed
    # As the release before stored it: the CA alone.
    assert store.document is not None
    del store.document["certificate_authority"]["elastic_password"]
    later, later_store, _ = make(MemoryStore(store.document), elasticsearchSecurity="auto")
    with caplog.at_level(logging.DEBUG):
        updated = ensure_certificate_authority(later.config, later, clock=lambda: NOW, password=lambda: "second-one")
    assert updated is not None and updated.elastic_password == "second-one"
    assert updated.certificate_pem == first.certificate_pem and len(later_store.writes) == 1
    assert "second-one" not in caplog.text and "PRIVATE KEY" not in caplog.text


def test_each_launch_gets_a_certificate_for_its_agent_and_the_secrets_only_as_secret_variables(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, store, _ = make(elasticsearchSecurity="auto")
    stored = ensure_certificate_authority(engine.config, engine, clock=lambda: NOW, password=lambda: PASSWORD)
    assert stored is not None and isinstance(engine.finish_launch, NodeIssuer)
    with caplog.at_level(logging.DEBUG):
        launches = accepts(engine.on_offers([agent_offer(1), agent_offer(2)]))
    assert len(launches) == 2
    ca = x509.load_pem_x509_certificate(stored.certificate_pem.encode())
    keys = set()
    for n, launch in enumerate(launches, start=1):
        task_info = launch.task_infos[0]
        env = variables(task_info)
        assert env["ELASTICSEARCH_SECURITY"]["value"] == "auto"
        assert secret_of(env["ELASTIC_PASSWORD"]) == PASSWORD
        key = secret_of(env[ENV_TLS_KEY])
        assert key.startswith("-----BEGIN PRIVATE KEY-----")
        keys.add(key)
        assert env[ENV_TLS_CA]["value"] == stored.certificate_pem
        certificate = x509.load_pem_x509_certificate(env[ENV_TLS_CERTIFICATE]["value"].encode())
        certificate.verify_directly_issued_by(ca)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [task_info["name"], f"agent{n}.example.com"]
        assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(f"10.0.0.{n}")]
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert certificate.not_valid_before_utc < datetime.datetime.fromtimestamp(NOW, datetime.UTC)
        # Nowhere else: not in a plain variable, a label, the command line.
        plain = json.dumps(
            [
                [v for v in env.values() if v.get("type") != "SECRET"],
                task_info["labels"],
                task_info["executor"]["labels"],
                task_info["executor"]["command"].get("arguments"),
                task_info["executor"]["command"]["value"],
            ]
        )
        assert PASSWORD not in plain and "PRIVATE KEY" not in plain
    assert len(keys) == 2  # a key of its own per node
    # The state holds the CA's key (unsealed: no --secretKeyFile) and no node's.
    assert json.dumps(store.document).count("BEGIN PRIVATE KEY") == 1
    assert PASSWORD not in caplog.text and "PRIVATE KEY" not in caplog.text
    assert "issued certificate" in caplog.text


def test_off_and_the_users_bundle_issue_nothing() -> None:
    engine, _, _ = make()
    assert ensure_certificate_authority(engine.config, engine, clock=lambda: NOW) is None
    assert engine.finish_launch is None
    task_info = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    assert variables(task_info)["ELASTICSEARCH_SECURITY"]["value"] == "disabled"
    assert ENV_TLS_KEY not in variables(task_info)


def test_a_host_name_no_certificate_can_hold_launches_without_material(caplog: pytest.LogCaptureFixture) -> None:
    engine, _, _ = make(elasticsearchSecurity="auto")
    ensure_certificate_authority(engine.config, engine, clock=lambda: NOW, password=lambda: PASSWORD)
    raw = agent_offer(1)
    raw["hostname"] = "not a host name"
    with caplog.at_level(logging.ERROR):
        task_info = accepts(engine.on_offers([raw]))[0].task_infos[0]
    assert ENV_TLS_KEY not in variables(task_info) and "ELASTIC_PASSWORD" not in variables(task_info)
    assert "no certificate issued" in caplog.text and "node 1 task" in caplog.text


def test_the_credentials_need_the_token_and_exist_only_with_auto(tmp_path: Path) -> None:
    trust = NodeTrust(str(tmp_path / "ca.pem"), PASSWORD)
    app = ApiApp(FakeCore(), token="t", node_trust=lambda: trust)
    assert call(app, "GET", "/v1/cluster/credentials").status == 401
    answer = call(app, "GET", "/v1/cluster/credentials", token="t")
    assert answer.status == 200 and answer.json() == {"username": "elastic", "password": PASSWORD}
    assert answer.headers["Cache-Control"] == "no-store"
    assert call(ApiApp(FakeCore(), token="t"), "GET", "/v1/cluster/credentials", token="t").status == 404
    document = call(app, "GET", "/v1/openapi.json").json()
    assert set(document["paths"]["/v1/cluster/credentials"]["get"]["responses"]) == {"200", "401", "404"}


class RecordingSession:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls.append((url, kwargs))
        raise requests.ConnectionError("recorded")


def test_the_proxy_and_the_schedulers_client_use_https_with_the_ca_and_the_password(tmp_path: Path) -> None:
    trust = NodeTrust(str(tmp_path / "ca.pem"), PASSWORD)
    session = RecordingSession()
    answer = forward(
        session,  # type: ignore[arg-type]
        "h:9200",
        "GET",
        "_cluster/health",
        query="",
        body=b"",
        content_type=None,
        timeout=1,
        trust=trust,
    )
    assert answer.status == 502
    url, kwargs = session.calls[0]
    assert url == "https://h:9200/_cluster/health" and kwargs["verify"] == trust.ca_file
    assert kwargs["auth"] == ("elastic", PASSWORD)
    assert es_client.ElasticsearchClient("h:9200").base == "http://h:9200"
    made = es_client.trust_cluster(StoredCa("-----BEGIN CERTIFICATE-----\n", "k", False, NOW).certificate_pem, PASSWORD)
    client = es_client.ElasticsearchClient("h:9200", password=None)
    assert client.base == "https://h:9200" and client._verify == made.ca_file
    assert client._session.auth == ("elastic", PASSWORD)
    assert Path(made.ca_file).read_text() == "-----BEGIN CERTIFICATE-----\n"
    # The next leadership of this process: the same CA, the same file; the password as stored now.
    again = es_client.trust_cluster("-----BEGIN CERTIFICATE-----\n", "other")
    assert again.ca_file == made.ca_file and es_client.cluster_trust() == again
