"""The pure half of a password rotation (es_framework/core/credentials.py): the pending password is
recorded before Elasticsearch is asked and becomes the password only once Elasticsearch took it; a
pending one is settled by what Elasticsearch takes; task tokens prove one task id only; the
framework message carries only an address."""

from __future__ import annotations

import pytest

from es_framework.contract import SeedHosts
from es_framework.core.cluster_ca import StoredCa, ca_from_json, ca_to_json
from es_framework.core.credentials import (
    Accepted,
    CredentialsSource,
    RotationError,
    abandon_rotation,
    bearer,
    begin_rotation,
    finish_rotation,
    settle,
    task_of_bearer,
    task_token,
    token_key,
)

CA = StoredCa("-----BEGIN CERTIFICATE-----\nx\n", "key", False, 1.0, "old-password")


def test_a_rotation_records_the_new_password_first_and_swaps_only_when_finished() -> None:
    pending = begin_rotation(CA, "new-password")
    assert (pending.elastic_password, pending.pending_password) == ("old-password", "new-password")
    assert ca_from_json(ca_to_json(pending)) == pending  # the pending password survives a new leader
    done = finish_rotation(pending)
    assert (done.elastic_password, done.pending_password) == ("new-password", None)
    assert abandon_rotation(pending) == CA
    with pytest.raises(RotationError, match="pending"):
        begin_rotation(pending, "third")
    with pytest.raises(RotationError, match="no rotation"):
        finish_rotation(CA)
    with pytest.raises(RotationError, match="no generated"):
        begin_rotation(StoredCa(CA.certificate_pem, "key", False, 1.0), "new")
    assert "new-password" not in repr(pending)


def test_a_pending_password_is_settled_by_what_elasticsearch_takes() -> None:
    pending = begin_rotation(CA, "new")
    assert settle(pending, Accepted.PENDING) == finish_rotation(pending)
    assert settle(pending, Accepted.CURRENT) == CA
    assert settle(pending, Accepted.UNKNOWN) is None
    assert settle(CA, Accepted.UNKNOWN) is CA  # nothing pending: nothing to settle


def test_a_task_token_proves_its_task_id_only() -> None:
    key = token_key("-----BEGIN PRIVATE KEY-----\nabc\n")
    assert key == token_key("-----BEGIN PRIVATE KEY-----\nabc\n") != token_key("another key")
    header = "Bearer " + bearer(key, "es-node1-abc")
    assert task_of_bearer(key, header) == "es-node1-abc"
    assert task_of_bearer(key, header.replace("node1", "node2")) is None  # another task's id, same mac
    assert task_of_bearer(token_key("other"), header) is None
    assert task_of_bearer(key, None) is None
    assert task_of_bearer(key, "Basic " + bearer(key, "es-node1-abc")) is None
    assert task_of_bearer(key, "Bearer " + task_token(key, "es-node1-abc")) is None  # no task id
    assert "." not in task_token(key, "t")


def test_the_source_message_carries_an_address_and_is_told_from_seed_hosts() -> None:
    message = CredentialsSource("http://scheduler:31100/v1/executor/credentials")
    assert CredentialsSource.decode(message.encode()) == message
    assert CredentialsSource.decode(SeedHosts(1, ("a:9300",)).encode()) is None
    assert CredentialsSource.decode(b"not json") is None
    assert CredentialsSource.decode(b'{"kind": "credentials_source", "credentials_url": "file:///etc"}') is None
