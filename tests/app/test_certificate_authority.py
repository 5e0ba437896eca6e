"""The cluster's CA at leadership (es_framework/app/security.py): created once with
--elasticsearchSecurity auto, stored through the engine's fenced write (sealed with --secretKeyFile,
or unsealed), kept across leaders, refused when its key cannot be opened; GET /v1/cluster/ca.pem
serves the certificate and never the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.fernet import Fernet

from es_framework.api.app import ApiApp
from es_framework.app.security import ensure_certificate_authority
from es_framework.app.startup import RefusedError
from es_framework.core.certificates import key_pair_from_pem
from es_framework.core.cluster_ca import ca_certificate_pem
from es_framework.core.state_document import state_from_json
from es_framework.dev.fake_api import FakeCore
from es_framework.shell.secret_box import SecretBox
from tests.api.http_call import call
from tests.core.test_engine import MemoryStore, make

NOW = 1_800_000_000.0


def key_file(tmp_path: Path, name: str = "secret.key") -> str:
    path = tmp_path / name
    path.write_text(Fernet.generate_key().decode())
    return str(path)


def test_off_creates_nothing_and_writes_nothing() -> None:
    engine, store, _ = make()
    assert ensure_certificate_authority(engine.config, engine, clock=lambda: NOW) is None
    assert store.writes == [] and ca_certificate_pem(engine.state.certificate_authority) is None


def test_auto_without_a_key_stores_the_ca_unsealed_once_and_a_new_leader_keeps_it() -> None:
    engine, store, _ = make(elasticsearchSecurity="auto")
    stored = ensure_certificate_authority(engine.config, engine, clock=lambda: NOW)
    assert stored is not None and not stored.sealed and stored.created_at == NOW
    assert len(store.writes) == 1
    document = store.writes[0]["certificate_authority"]
    assert document["sealed"] is False and document["key"].startswith("-----BEGIN PRIVATE KEY-----")
    pair = key_pair_from_pem(document["certificate"], document["key"])
    assert pair.certificate.not_valid_before_utc.timestamp() < NOW
    # The next leader reads it back and keeps it: no second CA, no write.
    again, _, _ = make(MemoryStore(store.document), elasticsearchSecurity="auto")
    assert ensure_certificate_authority(again.config, again, clock=lambda: NOW + 5) == stored
    assert len(store.writes) == 1
    assert state_from_json(store.document, "elasticsearch").certificate_authority == stored


def test_with_a_key_the_ca_key_is_sealed_and_opens_only_with_that_key(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    engine, store, _ = make(elasticsearchSecurity="auto", secretKeyFile=path)
    stored = ensure_certificate_authority(engine.config, engine, clock=lambda: NOW)
    assert stored is not None and stored.sealed
    raw = json.dumps(store.document)
    assert "PRIVATE KEY" not in raw
    assert engine.config.secret_key is not None
    opened = SecretBox(engine.config.secret_key).unseal(stored.key)
    key_pair_from_pem(stored.certificate_pem, opened)
    # Another key, or none, refuses to start before anything is written.
    other, _, _ = make(MemoryStore(store.document), elasticsearchSecurity="auto", secretKeyFile=key_file(tmp_path, "b"))
    with pytest.raises(RefusedError, match="--secretKeyFile") as refused:
        ensure_certificate_authority(other.config, other, clock=lambda: NOW)
    assert opened not in str(refused.value)
    keyless, keyless_store, _ = make(MemoryStore(store.document), elasticsearchSecurity="auto")
    with pytest.raises(RefusedError, match="sealed"):
        ensure_certificate_authority(keyless.config, keyless, clock=lambda: NOW)
    assert keyless_store.writes == []


def test_a_key_given_later_seals_the_stored_key(tmp_path: Path) -> None:
    engine, store, _ = make(elasticsearchSecurity="auto")
    plain = ensure_certificate_authority(engine.config, engine, clock=lambda: NOW)
    assert plain is not None
    later, later_store, _ = make(
        MemoryStore(store.document), elasticsearchSecurity="auto", secretKeyFile=key_file(tmp_path)
    )
    sealed = ensure_certificate_authority(later.config, later, clock=lambda: NOW + 60)
    assert sealed is not None and sealed.sealed and sealed.certificate_pem == plain.certificate_pem
    assert later.config.secret_key is not None
    assert SecretBox(later.config.secret_key).unseal(sealed.key) == plain.key
    assert len(later_store.writes) == 1 and "PRIVATE KEY" not in json.dumps(later_store.document)


def test_a_failed_write_serves_no_ca_and_the_next_leader_tries_again() -> None:
    engine, store, _ = make(elasticsearchSecurity="auto")
    store.fail_next = OSError("ZooKeeper connection lost")
    assert ensure_certificate_authority(engine.config, engine, clock=lambda: NOW) is None
    assert ca_certificate_pem(engine.state.certificate_authority) is None
    assert ensure_certificate_authority(engine.config, engine, clock=lambda: NOW) is not None


def test_the_api_serves_the_certificate_never_the_key_and_404_without_a_ca() -> None:
    engine, _, _ = make(elasticsearchSecurity="auto")
    ensure_certificate_authority(engine.config, engine, clock=lambda: NOW)
    app = ApiApp(FakeCore(), token="t", ca_certificate=lambda: ca_certificate_pem(engine.state.certificate_authority))
    answer = call(app, "GET", "/v1/cluster/ca.pem")  # no token: a certificate is public
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/x-pem-file"
    assert (
        x509.load_pem_x509_certificate(answer.body).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    )
    assert b"PRIVATE KEY" not in answer.body
    missing = call(ApiApp(FakeCore(), token="t"), "GET", "/v1/cluster/ca.pem")
    assert missing.status == 404 and "--elasticsearchSecurity auto" in missing.json()["error"]
    assert call(app, "POST", "/v1/cluster/ca.pem", token="t").status == 405
    document = call(app, "GET", "/v1/openapi.json").json()
    assert set(document["paths"]["/v1/cluster/ca.pem"]["get"]["responses"]) == {"200", "404"}
