"""The demo node's change-password API (``POST|PUT /_security/user/<username>/_password``): the new password is
kept in the cluster state like Elasticsearch's ``.security`` index, so every node of the cluster accepts it, a
restarted node too, and the bootstrap password stops counting; refusals in Elasticsearch's words."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests

from es_framework.dev.demo_es.actions.security_api import change_password
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.security import Security, hash_password, password_matches
from es_framework.dev.ports import free_port
from tests.dev.test_demo_es_tls import AUTH, SecureNode, started  # noqa: F401 - the fixture
from tests.dev.test_demo_es_tls_config import PASSWORD
from tests.harness.demo_nodes import wait_until

NEW = "a-new-password-of-the-elastic-user"


def test_a_hash_accepts_its_password_only() -> None:
    hashed = hash_password("secret-one")
    assert hashed.startswith("{PBKDF2}10000$")
    assert password_matches("secret-one", hashed)
    assert not password_matches("secret-two", hashed)
    assert not password_matches("secret-one", "{PBKDF2}garbage")
    assert hash_password("secret-one") != hashed  # salted


def test_once_the_state_holds_a_hash_the_bootstrap_password_is_refused() -> None:
    security = Security(enabled=True, password="bootstrap")
    basic = "Basic " + base64.b64encode(b"elastic:bootstrap").decode()
    security.authenticate(basic, "/")
    with pytest.raises(EsError) as refused:
        security.authenticate(basic, "/", hash_password("changed"))
    assert refused.value.status == 401
    changed = "Basic " + base64.b64encode(b"elastic:changed").decode()
    security.authenticate(changed, "/", hash_password("changed"))


class _NoMaster:
    """A node that must never be asked: every refusal happens before the master action."""

    def master_action(self, action: str, payload: dict[str, object]) -> int:
        raise AssertionError("a refused request reached the master")


@pytest.mark.parametrize(
    ("user", "body", "status", "kind", "reason"),
    [
        ("elastic", {"password": "short"}, 400, "validation_exception", "passwords must be at least [6] characters"),
        ("elastic", {}, 400, "action_request_validation_exception", "password is missing"),
        ("elastic", {"password": "long-enough", "pw": 1}, 400, "parse_exception", "unexpected field [pw]"),
        ("elastic", {"password": "long-enough", "password_hash": "x"}, 400, "action_request_validation_exception", ""),
        ("kibana", {"password": "long-enough"}, 400, "validation_exception", "user must exist"),
    ],
)
def test_refusals(user: str, body: dict[str, object], status: int, kind: str, reason: str) -> None:
    with pytest.raises(EsError) as refused:
        change_password(_NoMaster(), user, json.dumps(body).encode())  # type: ignore[arg-type]
    error = refused.value.body()["error"]
    assert (refused.value.status, error["type"]) == (status, kind)
    assert reason in error["reason"]


def test_every_node_and_a_restarted_one_accept_the_new_password_only(
    tmp_path: Path,
    started: list[SecureNode],  # noqa: F811
) -> None:
    seeds = [free_port(), free_port()]
    masters = ["n1", "n2"]
    n1, n2 = (SecureNode(tmp_path, name, "a", seeds, masters, http_tls=True) for name in masters)
    for node in (n1, n2):
        started.append(node.start())
    for node in (n1, n2):
        node.wait_up()
    wait_until(lambda: n1.get("/_cluster/health").json().get("number_of_nodes") == 2, 30, "n1 and n2 in one cluster")

    short = requests.post(
        n1.url + "/_security/user/elastic/_password", json={"password": "abc"}, auth=AUTH, verify=n1.ca, timeout=10
    )
    assert short.status_code == 400
    assert n2.get("/").status_code == 200  # a refused change changes nothing

    changed = requests.post(
        n1.url + "/_security/user/elastic/_password", json={"password": NEW}, auth=AUTH, verify=n1.ca, timeout=30
    )
    assert (changed.status_code, changed.json()) == (200, {})
    for node in (n1, n2):
        assert node.get("/", auth=("elastic", NEW)).status_code == 200
        assert node.get("/").status_code == 401  # the bootstrap password no longer counts
    # PUT works too, without a username (the authenticated user's own password).
    again = requests.put(
        n2.url + "/_security/user/_password",
        json={"password": NEW + "2"},
        auth=("elastic", NEW),
        verify=n2.ca,
        timeout=30,
    )
    assert again.status_code == 200, again.text
    assert n1.get("/", auth=("elastic", NEW + "2")).status_code == 200

    n2.stop()
    started.append(n2.start())  # same data path, same keystore with the old bootstrap password
    wait_until(lambda: n2.process is not None and _status(n2, NEW + "2") == 200, 60, "n2 back, with the new password")
    assert n2.get("/").status_code == 401
    assert PASSWORD not in NEW


def _status(node: SecureNode, password: str) -> int:
    try:
        return node.get("/", auth=("elastic", password)).status_code
    except requests.RequestException:
        return 0
