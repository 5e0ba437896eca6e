"""Rotating the elastic password (es_framework/app/credentials_rotation.py) and the executors' fetch:
the new password is recorded as pending (sealed) before Elasticsearch is asked, stored as the password
only once Elasticsearch took it, and a failure at any step leaves the old one working and says which
step failed; a pending rotation a leader left is settled by the next; new tasks get the new password;
a task's token answers that cluster's current password only while the task exists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from es_framework.api import credentials as api_credentials
from es_framework.api.app import ApiApp
from es_framework.app.credentials_rotation import CredentialsService, advertised_api_url, direct
from es_framework.app.security import ensure_certificate_authority
from es_framework.core.credentials import (
    ENV_CREDENTIALS_URL,
    ENV_TASK_TOKEN,
    CredentialsSource,
    abandon_rotation,
    begin_rotation,
    finish_rotation,
    task_token,
)
from es_framework.core.engine import Engine
from es_framework.core.engine_credentials import record_credentials
from es_framework.core.mesos_calls import Message
from es_framework.core.node_tls import NodeTrust
from es_framework.dev.fake_api import FakeCore
from es_framework.shell import credentials_client, es_client
from es_framework.shell.es_client import ElasticsearchError
from es_framework.shell.secret_box import SecretBox
from tests.api.http_call import call
from tests.app.test_node_certificates import agent_offer, secret_of, variables
from tests.core.test_engine import MemoryStore, accepts, make, status

NOW = 1_800_000_000.0
OLD = "the-first-generated-password-0123456789"
NEW = "the-rotated-password-abcdefghijklmnopqrs"


class FakeCluster:
    """Elasticsearch as the rotation sees it: which password it takes, and how it answers the change."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine, self.box = engine, box
        self.password = OLD
        self.answer: str = "ok"  # ok | refuse | lost (taken, answer lost) | down (not taken, no answer)
        self.pending_seen: list[str | None] = []

    def change_password(self, address: str, trust: NodeTrust, new: str, **_: Any) -> None:
        if trust.password != self.password:  # an attempt after a lost answer: Elasticsearch's 401
            raise ElasticsearchError(f"POST https://{address}/...: HTTP 401: unable to authenticate user [elastic]")
        stored = self.engine.state.certificate_authority
        assert stored is not None
        # Crash safety: the new password is in the state, sealed, before Elasticsearch is asked.
        self.pending_seen.append(self.box.unseal(stored.pending_password) if stored.pending_password else None)
        if self.answer == "refuse":
            raise credentials_client.PasswordRefusedError(f"POST https://{address}/...: HTTP 400: too short")
        if self.answer in ("ok", "lost"):
            self.password = new
        if self.answer in ("lost", "down"):
            raise ElasticsearchError(f"POST https://{address}/...: no answer: ReadTimeout")

    def accepts(self, address: str, ca_file: str, password: str, **_: Any) -> bool | None:
        return None if self.answer == "silent" else password == self.password


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, MemoryStore, FakeCluster]]:
    key_file = tmp_path / "secret.key"
    key_file.write_text(Fernet.generate_key().decode())
    engine, store, _ = make(elasticsearchSecurity="auto", secretKeyFile=str(key_file))
    assert engine.config.secret_key is not None
    fake = FakeCluster(engine, SecretBox(engine.config.secret_key))
    monkeypatch.setattr(credentials_client, "change_password", fake.change_password)
    monkeypatch.setattr(credentials_client, "accepts", fake.accepts)
    monkeypatch.setattr(CredentialsService, "_addresses", lambda self: ["node1:9200", "node2:9200"])
    ensure_certificate_authority(engine.config, engine, clock=lambda: NOW, password=lambda: OLD)
    yield engine, store, fake
    api_credentials.install(None)
    es_client.forget_cluster_trust()


def service() -> CredentialsService:
    installed = api_credentials._service
    assert isinstance(installed, CredentialsService)
    return installed


def stored_passwords(engine: Engine, box: SecretBox) -> tuple[str | None, str | None]:
    stored = engine.state.certificate_authority
    assert stored is not None and stored.sealed
    opened = (box.unseal(p) if p else None for p in (stored.elastic_password, stored.pending_password))
    return tuple(opened)  # type: ignore[return-value]


def test_a_rotation_stores_the_new_password_only_after_elasticsearch_took_it(
    cluster: tuple[Engine, MemoryStore, FakeCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store, fake = cluster
    monkeypatch.setattr(service(), "_new_password", lambda: NEW)
    status, answer = service().rotate(direct)
    assert status == 200 and "rotated" in answer["message"] and NEW not in json.dumps(answer)
    assert fake.pending_seen == [NEW] and fake.password == NEW
    assert stored_passwords(engine, fake.box) == (NEW, None)
    assert NEW not in json.dumps(store.document)  # sealed at rest
    # The scheduler's own clients, and the tasks launched from now on, use the new password.
    trust = es_client.cluster_trust()
    assert trust is not None and trust.password == NEW
    app = ApiApp(FakeCore(), token="t", node_trust=es_client.cluster_trust)
    assert call(app, "GET", "/v1/cluster/credentials", token="t").json()["password"] == NEW
    launched = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    assert secret_of(variables(launched)["ELASTIC_PASSWORD"]) == NEW


def test_elasticsearch_refusing_leaves_the_old_password_and_says_which_step_failed(
    cluster: tuple[Engine, MemoryStore, FakeCluster],
) -> None:
    engine, _, fake = cluster
    fake.answer = "refuse"
    status, answer = service().rotate(direct)
    assert status == 502 and "step 2 of 3" in answer["message"] and "too short" in answer["message"]
    assert "old password still works" in answer["message"]
    assert stored_passwords(engine, fake.box) == (OLD, None) and fake.password == OLD
    trust = es_client.cluster_trust()
    assert trust is not None and trust.password == OLD


def test_a_lost_answer_is_settled_by_the_password_elasticsearch_takes(
    cluster: tuple[Engine, MemoryStore, FakeCluster],
) -> None:
    engine, _, fake = cluster
    fake.answer = "lost"
    status, _ = service().rotate(direct)
    assert status == 200 and stored_passwords(engine, fake.box)[1] is None
    assert stored_passwords(engine, fake.box)[0] == fake.password != OLD
    fake.answer = "down"
    before = fake.password
    status, _ = service().rotate(direct)
    assert status == 502 and stored_passwords(engine, fake.box) == (before, None)


def test_a_failed_state_write_changes_nothing_in_elasticsearch(
    cluster: tuple[Engine, MemoryStore, FakeCluster],
) -> None:
    engine, store, fake = cluster
    store.fail_next = RuntimeError("ZooKeeper is gone")
    status, answer = service().rotate(direct)
    assert status == 503 and "step 1 of 3" in answer["message"] and fake.pending_seen == []
    assert stored_passwords(engine, fake.box) == (OLD, None)


def test_a_new_leader_finishes_a_rotation_its_predecessor_left_pending(
    cluster: tuple[Engine, MemoryStore, FakeCluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store, fake = cluster
    # The leader died after Elasticsearch took the password and before the state said so: "silent"
    # first (no node answers which one works), so the rotation stays pending and executors get both.
    fake.answer = "lost"
    monkeypatch.setattr(fake, "accepts", lambda *a, **k: None)
    monkeypatch.setattr(credentials_client, "accepts", fake.accepts)
    status, answer = service().rotate(direct)
    assert status == 503 and "not known yet" in answer["message"]
    current, pending = stored_passwords(engine, fake.box)
    assert (current, pending) == (OLD, fake.password)
    launched = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    task_id, env = launched["task_id"]["value"], variables(launched)
    header = f"Bearer {task_id}.{secret_of(env[ENV_TASK_TOKEN])}"
    offered = service().executor_credentials(header)
    assert offered == (200, {"username": "elastic", "password": OLD, "next_password": pending})
    # The next leader asks the nodes, which take the new one: it becomes the password.
    monkeypatch.setattr(credentials_client, "accepts", lambda a, c, password, **k: password == fake.password)
    assert engine.config.secret_key is not None
    key_file = tmp_path / "secret.key"
    later, _, _ = make(MemoryStore(store.document), elasticsearchSecurity="auto", secretKeyFile=str(key_file))
    ensure_certificate_authority(later.config, later, clock=lambda: NOW, password=lambda: "unused")
    assert stored_passwords(later, fake.box) == (pending, None)
    trust = es_client.cluster_trust()
    assert trust is not None and trust.password == pending


def test_a_task_token_answers_its_clusters_password_while_the_task_exists(
    cluster: tuple[Engine, MemoryStore, FakeCluster],
) -> None:
    engine, store, _ = cluster
    launched = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    env = variables(launched)
    token = secret_of(env[ENV_TASK_TOKEN])  # a SECRET variable only
    assert env[ENV_CREDENTIALS_URL]["value"].endswith("/v1/executor/credentials")
    assert token not in json.dumps([v for v in env.values() if v.get("type") != "SECRET"])
    assert token not in json.dumps(store.document)
    task_id = launched["task_id"]["value"]
    assert service().executor_credentials(f"Bearer {task_id}.{token}") == (
        200,
        {"username": "elastic", "password": OLD},
    )
    assert service().executor_credentials(f"Bearer {task_id}.{token[:-2]}xx")[0] == 401
    assert service().executor_credentials(None)[0] == 401
    other = task_token(service()._token_key, "es-node7-gone")
    assert service().executor_credentials(f"Bearer es-node7-gone.{other}")[0] == 403


def test_the_routes_answer_through_the_api(cluster: tuple[Engine, MemoryStore, FakeCluster]) -> None:
    engine, _, _ = cluster
    app = ApiApp(FakeCore(), token="t")
    assert call(app, "POST", "/v1/cluster/credentials/rotate").status == 401  # behind the API token
    # The fake core has no engine thread to write the state on.
    assert call(app, "POST", "/v1/cluster/credentials/rotate", token="t").status == 503
    launched = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    token = secret_of(variables(launched)[ENV_TASK_TOKEN])
    header = {"Authorization": f"Bearer {launched['task_id']['value']}.{token}"}
    answer = call(app, "GET", "/v1/executor/credentials", headers=header)
    assert answer.status == 200 and answer.json()["password"] == OLD
    assert answer.headers["Cache-Control"] == "no-store"
    assert call(app, "GET", "/v1/executor/credentials", token="t").json() == {
        "error": "a task token is needed: Authorization: Bearer <task id>.<token>"
    }
    api_credentials.install(None)
    assert call(app, "GET", "/v1/executor/credentials", headers=header).status == 404


def test_running_executors_are_told_where_to_fetch(cluster: tuple[Engine, MemoryStore, FakeCluster]) -> None:
    engine, _, _ = cluster
    assert advertised_api_url(engine.config, {"ES_MESOS_API_URL": "https://lb:443/"}) == "https://lb:443"
    assert advertised_api_url(engine.config, {"LIBPROCESS_IP": "10.1.2.3"}).startswith("http://10.1.2.3:")
    # Marathon names the agent a task runs on in HOST; LIBPROCESS_IP, when set, says more exactly where.
    assert advertised_api_url(engine.config, {"HOST": "agent-7.example.org"}).startswith("http://agent-7.example.org:")
    assert advertised_api_url(engine.config, {"HOST": "a7", "LIBPROCESS_IP": "10.1.2.3"}).startswith("http://10.1.2.3:")
    launched = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    assert service().source_messages() == []  # launching, not running yet
    engine.on_updates([status(launched["task_id"]["value"], "TASK_RUNNING", launched["agent_id"]["value"])])
    (message,) = service().source_messages()
    assert message.executor_id == launched["executor"]["executor_id"]["value"]
    source = CredentialsSource.decode(message.data)
    assert source is not None and source.credentials_url == service().api_url + "/v1/executor/credentials"
    # And after every (re)registration: a new leader's address, a message Mesos dropped.
    told = [c for c in engine.on_registered("fw-1") if isinstance(c, Message) and CredentialsSource.decode(c.data)]
    assert told == [message]


def test_one_rotation_at_a_time_and_no_step_on_a_record_it_was_not_computed_from(
    cluster: tuple[Engine, MemoryStore, FakeCluster],
) -> None:
    engine, store, fake = cluster
    stored = engine.state.certificate_authority
    assert stored is not None
    pending = begin_rotation(stored, "sealed-a")
    assert record_credentials(engine, stored, pending)
    writes = len(store.writes)
    # A second rotation computed from the record before the first one's step is refused, nothing written.
    assert not record_credentials(engine, stored, begin_rotation(stored, "sealed-b"))
    assert len(store.writes) == writes and engine.state.certificate_authority == pending
    assert record_credentials(engine, pending, abandon_rotation(pending))
    service()._rotating.acquire()
    try:
        status, answer = service().rotate(direct)
    finally:
        service()._rotating.release()
    assert status == 409 and "another rotation is running" in answer["message"] and fake.pending_seen == []


def test_a_key_given_later_seals_a_pending_password_with_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store, _ = make(elasticsearchSecurity="auto")  # no --secretKeyFile: stored unsealed
    monkeypatch.setattr(
        credentials_client, "change_password", lambda *a, **k: (_ for _ in ()).throw(ElasticsearchError("no answer"))
    )
    monkeypatch.setattr(credentials_client, "accepts", lambda *a, **k: None)
    monkeypatch.setattr(CredentialsService, "_addresses", lambda self: ["node1:9200"])
    try:
        ensure_certificate_authority(engine.config, engine, clock=lambda: NOW, password=lambda: OLD)
        monkeypatch.setattr(service(), "_new_password", lambda: NEW)
        assert service().rotate(direct)[0] == 503  # left pending: nobody answered
        assert store.document is not None and store.document["certificate_authority"]["pending_password"] == NEW
        key_file = tmp_path / "secret.key"
        key_file.write_text(Fernet.generate_key().decode())
        later, later_store, _ = make(
            MemoryStore(store.document), elasticsearchSecurity="auto", secretKeyFile=str(key_file)
        )
        ensure_certificate_authority(later.config, later, clock=lambda: NOW, password=lambda: "unused")
        assert later.config.secret_key is not None
        assert stored_passwords(later, SecretBox(later.config.secret_key)) == (OLD, NEW)
        assert NEW not in json.dumps(later_store.document) and OLD not in json.dumps(later_store.document)
    finally:
        api_credentials.install(None)
        es_client.forget_cluster_trust()


def test_a_leader_again_uses_the_password_another_leader_rotated_to(
    cluster: tuple[Engine, MemoryStore, FakeCluster],
) -> None:
    engine, _, fake = cluster
    stored = engine.state.certificate_authority
    assert stored is not None
    # Another leader rotated while this process did not lead; this engine re-read the state.
    rotated = finish_rotation(begin_rotation(stored, fake.box.seal(NEW)))
    assert record_credentials(engine, stored, rotated)
    engine.on_registered("fw-1")  # leading (and registered) again
    trust = es_client.cluster_trust()
    assert trust is not None and trust.password == NEW
    launched = accepts(engine.on_offers([agent_offer(1)]))[0].task_infos[0]
    assert secret_of(variables(launched)["ELASTIC_PASSWORD"]) == NEW
