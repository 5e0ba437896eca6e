"""The node's keystore: the bootstrap password and a protected bundle's password reach it through
stdin only, and no password is ever on a command line, in a plain variable, a label or a log."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from es_framework import contract
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.executor.keystore import BUNDLE_PASSWORD_SETTINGS, KEYSTORE_FILE, fill_keystore, secure_settings
from es_framework.executor.logs import NodeLog
from es_framework.executor.settings import ExecutorError, NodeSettings
from es_framework.executor.volumes import prepare_node
from tests.executor.test_executor_node import make_home, settings_for
from tests.harness.builders import config, offer

LOG = NodeLog("1", "t")
ELASTIC = "elastic-Pw-4711"
BUNDLE = "bundle-Pw-0815"
TRANSPORT_KEYSTORE, TRANSPORT_TRUSTSTORE = BUNDLE_PASSWORD_SETTINGS

#: A stand-in for elasticsearch-keystore: one JSON line per call (its arguments, ES_PATH_CONF, what
#: it read on stdin), and a keystore file holding one setting name a line.
FAKE_TOOL = """#!{python}
import json, os, sys
args = sys.argv[1:]
stdin = sys.stdin.read()
with open({record!r}, "a") as out:
    out.write(json.dumps({{"args": args, "conf": os.environ.get("ES_PATH_CONF"), "stdin": stdin}}) + "\\n")
store = os.path.join(os.environ["ES_PATH_CONF"], "elasticsearch.keystore")
names = open(store).read().split() if os.path.exists(store) else None
if args[0] == "create":
    if names is not None:
        sys.exit(1)
    names = ["keystore.seed"]
elif names is None:
    print("ERROR: Elasticsearch keystore not found"); sys.exit(65)
elif args[0] == "list":
    print("\\n".join(names))
elif args[0] == "add":
    if stdin == "fail":
        print("bad value " + stdin); sys.exit(3)
    names = [n for n in names if n != args[-1]] + [args[-1]]
elif args[0] == "remove":
    if args[1] not in names:
        sys.exit(78)
    names.remove(args[1])
open(store, "w").write("\\n".join(names) + "\\n")
"""


def tool_home(root: Path) -> tuple[Path, Path]:
    """A distribution whose bin/elasticsearch-keystore is :data:`FAKE_TOOL`; and its record file."""
    home = make_home(root)
    record = root / "keystore-calls.jsonl"
    tool = home / "bin" / "elasticsearch-keystore"
    tool.write_text(FAKE_TOOL.format(python=sys.executable, record=str(record)))
    tool.chmod(0o755)
    return home, record


def calls(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def names_in(settings: NodeSettings) -> list[str]:
    return (settings.config_path / KEYSTORE_FILE).read_text().split()


def secured(sandbox: Path, **extra: str) -> NodeSettings:
    return settings_for(
        sandbox,
        ELASTICSEARCH_SECURITY="enabled",
        ELASTIC_PASSWORD=ELASTIC,
        ELASTICSEARCH_CERTIFICATES="elastic-certificates.p12",
        **extra,
    )


def test_both_bundle_passwords_reach_the_keystore_through_stdin_only(tmp_path: Path) -> None:
    home, record = tool_home(tmp_path)
    settings = secured(tmp_path, ELASTICSEARCH_CERTIFICATES_PASSWORD=BUNDLE)
    settings.config_path.mkdir(parents=True)
    assert secure_settings(settings) == {
        "bootstrap.password": ELASTIC,
        TRANSPORT_KEYSTORE: BUNDLE,
        TRANSPORT_TRUSTSTORE: BUNDLE,
    }
    fill_keystore(home, settings, None, LOG)
    made = calls(record)
    assert [c["args"] for c in made] == [
        ["create"],
        ["add", "-x", "-f", "bootstrap.password"],
        ["add", "-x", "-f", TRANSPORT_KEYSTORE],
        ["add", "-x", "-f", TRANSPORT_TRUSTSTORE],
    ]
    assert [c["stdin"] for c in made[1:]] == [ELASTIC, BUNDLE, BUNDLE]
    assert all(c["conf"] == str(settings.config_path) for c in made)
    assert not any(secret in arg for c in made for arg in c["args"] for secret in (ELASTIC, BUNDLE))
    assert names_in(settings) == ["keystore.seed", "bootstrap.password", TRANSPORT_KEYSTORE, TRANSPORT_TRUSTSTORE]


def test_a_bundle_password_left_from_an_earlier_start_is_removed(tmp_path: Path) -> None:
    home, record = tool_home(tmp_path)
    protected = secured(tmp_path, ELASTICSEARCH_CERTIFICATES_PASSWORD=BUNDLE)
    protected.config_path.mkdir(parents=True)
    fill_keystore(home, protected, None, LOG)
    record.unlink()
    # The operator switched to a bundle without a password: Elasticsearch must not try the old one.
    fill_keystore(home, secured(tmp_path), None, LOG)
    assert [c["args"][0] for c in calls(record)] == ["list", "remove", "remove", "add"]
    assert names_in(protected) == ["keystore.seed", "bootstrap.password"]
    record.unlink()
    fill_keystore(home, secured(tmp_path), None, LOG)  # nothing stale any more: nothing removed
    assert [c["args"][0] for c in calls(record)] == ["list", "add"]


def test_a_failing_tool_says_why_without_any_password(tmp_path: Path) -> None:
    home, _ = tool_home(tmp_path)
    settings = secured(tmp_path, ELASTICSEARCH_CERTIFICATES_PASSWORD="fail")
    settings.config_path.mkdir(parents=True)
    with pytest.raises(
        ExecutorError,
        match=r"add -x -f xpack\.security\.transport\.ssl\.keystore\.secure_password "
        r"exited with code 3: bad value \*\*\*\*\*\*",
    ) as error:
        fill_keystore(home, settings, None, LOG)
    assert ELASTIC not in str(error.value) and "value fail" not in str(error.value)


def test_without_the_tool_only_the_names_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fill_keystore(None, secured(tmp_path, ELASTICSEARCH_CERTIFICATES_PASSWORD=BUNDLE), None, LOG)
    assert TRANSPORT_TRUSTSTORE in caplog.text
    assert ELASTIC not in caplog.text and BUNDLE not in caplog.text


def test_without_security_the_bundle_password_is_not_read(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ELASTICSEARCH_CERTIFICATES_PASSWORD=BUNDLE)
    assert settings.certificates_password is None and secure_settings(settings) == {}


def test_the_bundle_password_travels_as_a_secret_variable_and_stdin_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Scheduler to keystore: the TaskInfo holds the password only as a base64 SECRET variable (no
    plain variable, label or command line); the executor reads it, hides it from Elasticsearch's
    environment, and gives it to elasticsearch-keystore on stdin; no log line shows it."""
    caplog.set_level(logging.DEBUG)
    files = tmp_path / "flags"
    files.mkdir()
    (files / "elastic").write_text(ELASTIC)
    (files / "bundle").write_text(BUNDLE)
    cfg = config(
        elasticsearchPasswordFile=str(files / "elastic"),
        elasticsearchCertificatesUrl="https://certs.example.com/elastic-certificates.p12",
        elasticsearchCertificatesPasswordFile=str(files / "bundle"),
    )
    task = build_task_info(parse_offer(offer(5)), 1, cfg, ClusterView(desired_nodes=3), launch_id="0" * 32)
    shown = json.dumps(task)
    assert BUNDLE not in shown and ELASTIC not in shown  # only base64 in a SECRET variable
    command = task["executor"]["command"]
    variables = {v["name"]: v for v in command["environment"]["variables"]}
    assert variables[contract.ENV_CERTIFICATES_PASSWORD]["type"] == "SECRET"
    assert "value" not in variables[contract.ENV_CERTIFICATES_PASSWORD]

    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "elastic-certificates.p12").write_bytes(b"p12")
    settings = NodeSettings.from_task(task, {"MESOS_SANDBOX": str(sandbox), "ELASTICSEARCH_NETWORK_HOST": "127.0.0.1"})
    assert settings.certificates_password == BUNDLE and settings.elastic_password == ELASTIC
    assert contract.ENV_CERTIFICATES_PASSWORD not in settings.child_env
    assert BUNDLE not in repr(settings)

    home, record = tool_home(tmp_path)
    prepare_node(settings, home, LOG)
    made = calls(record)
    assert {c["args"][-1]: c["stdin"] for c in made if c["args"][0] == "add"} == {
        "bootstrap.password": ELASTIC,
        TRANSPORT_KEYSTORE: BUNDLE,
        TRANSPORT_TRUSTSTORE: BUNDLE,
    }
    assert not any(BUNDLE in arg for c in made for arg in c["args"])
    assert BUNDLE not in (settings.config_path / "elasticsearch.yml").read_text()
    assert BUNDLE not in caplog.text and ELASTIC not in caplog.text
