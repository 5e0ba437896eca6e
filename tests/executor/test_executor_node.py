"""The executor's node preparation: version, config directory, certificates, keystore, bootstrap, users."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from es_framework.contract import CONTRACT_VERSION, NodeReport
from es_framework.dev.ports import free_port
from es_framework.executor import node_executor
from es_framework.executor.logs import NodeLog
from es_framework.executor.node_executor import NodeExecutor, status_data
from es_framework.executor.process import elasticsearch_version, popen_arguments, privileges, run_as_for
from es_framework.executor.settings import ExecutorError, NodeSettings, env_of_task
from es_framework.executor.volumes import (
    UNFORMED_MARKER,
    bootstrap_master_nodes,
    chown_tree,
    existing_cluster,
    prepare_node,
    regenerate_config_dir,
)
from tests.executor.test_executor import RecordingDriver, node_env, task_info
from tests.harness.demo_nodes import DEMO_COMMAND, wait_until

ROOT = os.geteuid() == 0
LOG = NodeLog("1", "t")

FAKE_KEYSTORE = """#!/bin/sh
# A stand-in for elasticsearch-keystore: records how it was called, keeps a keystore file.
{{ echo "args=$*"; echo "conf=$ES_PATH_CONF"; echo "uid=$(id -u) gid=$(id -g) home=$HOME"; }} >> "{record}"
case "$1" in
  create) [ -e "$ES_PATH_CONF/elasticsearch.keystore" ] && exit 1
          echo keystore > "$ES_PATH_CONF/elasticsearch.keystore" ;;
  add) value=$(cat); echo "stdin=$value" >> "{record}"; [ "$value" = "fail" ] && echo "bad value $value" && exit 3
       echo "$4" >> "$ES_PATH_CONF/elasticsearch.keystore" ;;
esac
exit 0
"""


def make_home(root: Path, version: str = "8.15.1", record: Path | None = None) -> Path:
    """A distribution stand-in: bin/elasticsearch, lib/elasticsearch-<version>.jar, config defaults."""
    home = root / "es-home"
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "lib" / f"elasticsearch-{version}.jar").write_text("")
    (home / "lib" / f"elasticsearch-x-content-{version}.jar").write_text("")
    config = home / "config"
    (config / "jvm.options.d").mkdir(parents=True)
    (config / "jvm.options").write_text(f"# jvm options {version}\n")
    (config / "log4j2.properties").write_text(f"# log4j {version}\n")
    (config / "elasticsearch.yml").write_text("cluster.name: docker-cluster\n")
    (config / "role_mapping.yml").write_text("")
    launcher = home / "bin" / "elasticsearch"
    launcher.write_text("#!/bin/sh\nexit 0\n")
    launcher.chmod(0o755)
    if record is not None:
        tool = home / "bin" / "elasticsearch-keystore"
        tool.write_text(FAKE_KEYSTORE.format(record=record))
        tool.chmod(0o755)
    return home


def settings_for(sandbox: Path, **extra: str) -> NodeSettings:
    env = node_env(9200, 9300, **extra)
    return NodeSettings.from_task(task_info(env), {"MESOS_SANDBOX": str(sandbox)})


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory uid 1000 can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="es-mesos-test-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


# ---------------------------------------------------------------------- version


def test_version_from_the_jar_the_override_and_the_demo_default(tmp_path: Path) -> None:
    assert elasticsearch_version(make_home(tmp_path, "7.17.24"), None) == (7, "7.17.24")
    assert elasticsearch_version(make_home(tmp_path / "b", "8.15.1"), "7.17.0") == (7, "7.17.0")
    assert elasticsearch_version(None, None)[0] == 8
    assert elasticsearch_version(None, "7") == (7, "7")
    with pytest.raises(ExecutorError, match=r"no lib/elasticsearch-<version>\.jar"):
        elasticsearch_version(tmp_path, None)
    with pytest.raises(ExecutorError, match=r"7\.9 or later"):
        elasticsearch_version(make_home(tmp_path / "c", "7.8.1"), None)
    with pytest.raises(ExecutorError, match="not supported"):
        elasticsearch_version(None, "6.8.0")
    with pytest.raises(ExecutorError, match="not a version"):
        elasticsearch_version(None, "latest")


# ---------------------------------------------------------------------- config directory


def test_an_upgrade_keeps_only_the_new_defaults_and_the_keystore(tmp_path: Path) -> None:
    config = tmp_path / "volume" / "config"
    (config / "jvm.options.d").mkdir(parents=True)
    (config / "jvm.options.d" / "heap.options").write_text("-Xms1g\n")
    (config / "jvm.options").write_text("# jvm options 7.17.24\n-XX:+UseConcMarkSweepGC\n")
    (config / "log4j2.properties").write_text("# log4j 7.17.24\n")
    (config / "stray.txt").write_text("left behind\n")
    (config / "elasticsearch.keystore").write_text("secret keystore\n")
    (config / "certs").mkdir()
    (config / "certs" / "elastic-certificates.p12").write_text("p12")
    home = make_home(tmp_path, "8.15.1")
    (home / "config" / "elasticsearch.keystore").write_text("the image's keystore\n")

    regenerate_config_dir(config, home / "config", {"elasticsearch.yml": "a.b: 1\n", "unicast_hosts.txt": "\n"})

    files = sorted(str(p.relative_to(config)) for p in config.rglob("*"))
    assert files == [
        "certs",
        "certs/elastic-certificates.p12",
        "elasticsearch.keystore",
        "elasticsearch.yml",
        "jvm.options",
        "jvm.options.d",
        "log4j2.properties",
        "role_mapping.yml",
        "unicast_hosts.txt",
    ]
    assert (config / "jvm.options").read_text() == "# jvm options 8.15.1\n"
    assert (config / "log4j2.properties").read_text() == "# log4j 8.15.1\n"
    assert (config / "elasticsearch.keystore").read_text() == "secret keystore\n"
    assert (config / "elasticsearch.yml").read_text() == "a.b: 1\n"


def test_prepare_node_writes_settings_hosts_and_certificates(tmp_path: Path) -> None:
    home = make_home(tmp_path, "7.17.24")
    (tmp_path / "elastic-certificates.p12").write_bytes(b"\x30\x82bundle")
    user = json.dumps({"indices.memory.index_buffer_size": "20%", "cluster.name": "theirs"})
    settings = settings_for(
        tmp_path,
        ELASTICSEARCH_NODE_ROLES="master,data",
        ELASTICSEARCH_USER_SETTINGS=user,
        ELASTICSEARCH_SECURITY="enabled",
        ELASTIC_PASSWORD="s3cret-pw",
        ELASTICSEARCH_CERTIFICATES="elastic-certificates.p12",
    )
    assert "s3cret-pw" not in repr(settings)
    assert "ELASTIC_PASSWORD" not in settings.child_env
    assert prepare_node(settings, home, LOG) == 7
    config = settings.config_path
    written = yaml.safe_load((config / "elasticsearch.yml").read_text())
    assert written["cluster.name"] == "mesos-ha"
    assert written["node.roles"] == ["master", "data"]
    assert written["indices.memory.index_buffer_size"] == "20%"
    assert written["xpack.security.transport.ssl.keystore.path"] == "certs/elastic-certificates.p12"
    assert written["cluster.initial_master_nodes"] == ["elasticsearch1"]
    bundle = config / "certs" / "elastic-certificates.p12"
    assert bundle.read_bytes() == b"\x30\x82bundle"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o640
    assert (config / "unicast_hosts.txt").read_text().splitlines()[1:] == ["127.0.0.1:1", "127.0.0.1:2"]
    assert (config / "jvm.options").read_text() == "# jvm options 7.17.24\n"


def test_user_settings_refused_by_the_major_fail_the_node(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ELASTICSEARCH_USER_SETTINGS=json.dumps({"node.master": "true"}))
    with pytest.raises(ExecutorError, match=r"refused by Elasticsearch 8\.15\.1, .*: \[node.master\] was removed"):
        prepare_node(settings, make_home(tmp_path, "8.15.1"), LOG)
    # The same file is only deprecated for 7 (and node.master is es-mesos' to decide anyway).
    assert prepare_node(settings, make_home(tmp_path / "seven", "7.17.24"), LOG) == 7
    assert "node.master" not in (settings.config_path / "elasticsearch.yml").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ELASTICSEARCH_SECURITY": "enabled", "ELASTICSEARCH_CERTIFICATES": "c.p12"}, "lacks ELASTIC_PASSWORD"),
        ({"ELASTICSEARCH_SECURITY": "enabled", "ELASTIC_PASSWORD": "pw"}, "lacks ELASTICSEARCH_CERTIFICATES"),
        ({"ELASTICSEARCH_SECURITY": "maybe"}, "expected one of enabled, disabled, auto"),
        ({"ELASTICSEARCH_USER_SETTINGS": "[1]"}, "must be a JSON object"),
        ({"ELASTICSEARCH_USER_SETTINGS": '{"a.b": 1}'}, "must be a string or a list of strings"),
        ({"ELASTICSEARCH_UID": "elastic"}, "is not a user id"),
    ],
)
def test_bad_environment_is_an_error(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    with pytest.raises(ExecutorError, match=message):
        settings_for(tmp_path, **extra)


def test_security_enabled_without_password_fails_the_task(tmp_path: Path) -> None:
    executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path)})
    driver = RecordingDriver()
    env = node_env(free_port(), free_port(), ELASTICSEARCH_SECURITY="enabled", ELASTICSEARCH_CERTIFICATES="c.p12")
    executor.launchTask(driver, task_info(env))
    assert executor.finished.wait(10)
    assert driver.states() == ["TASK_FAILED"]
    assert "security is enabled but the executor's environment lacks ELASTIC_PASSWORD" in driver.updates[0]["message"]


def test_missing_certificate_bundle_is_an_error(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, ELASTICSEARCH_SECURITY="enabled", ELASTIC_PASSWORD="pw", ELASTICSEARCH_CERTIFICATES="none.p12"
    )
    with pytest.raises(ExecutorError, match=r"none\.p12 .* is not in the sandbox"):
        prepare_node(settings, None, LOG)


def test_secret_variables_of_the_task_are_read() -> None:
    info = task_info({"ELASTICSEARCH_NODE_ID": "1"})
    variables = info["executor"]["command"]["environment"]["variables"]
    secret = {"type": "VALUE", "value": {"data": base64.b64encode(b"pa ss").decode()}}
    variables.append({"name": "ELASTIC_PASSWORD", "type": "SECRET", "secret": secret})
    assert env_of_task(info)["ELASTIC_PASSWORD"] == "pa ss"


# ---------------------------------------------------------------------- keystore


def test_keystore_created_once_and_password_given_on_stdin_only(tmp_path: Path) -> None:
    record = tmp_path / "keystore-calls.txt"
    home = make_home(tmp_path, "8.15.1", record)
    settings = settings_for(tmp_path, ELASTIC_PASSWORD="pw-on-stdin")
    prepare_node(settings, home, LOG)
    calls = record.read_text()
    assert "args=create\n" in calls
    assert "args=add -x -f bootstrap.password\n" in calls
    assert "stdin=pw-on-stdin\n" in calls
    assert not any("pw-on-stdin" in line for line in calls.splitlines() if line.startswith("args="))
    assert f"conf={settings.config_path}\n" in calls
    keystore = settings.config_path / "elasticsearch.keystore"
    assert keystore.read_text() == "keystore\nbootstrap.password\n"
    # Second start: the keystore survives regeneration and is not created again.
    record.unlink()
    prepare_node(settings, home, LOG)
    assert "args=create" not in record.read_text()
    assert keystore.read_text() == "keystore\nbootstrap.password\nbootstrap.password\n"


def test_keystore_failure_is_an_error_without_the_password(tmp_path: Path) -> None:
    home = make_home(tmp_path, "8.15.1", tmp_path / "calls.txt")
    settings = settings_for(tmp_path, ELASTIC_PASSWORD="fail")
    with pytest.raises(ExecutorError, match=r"exited with code 3: bad value \*\*\*\*\*\*") as error:
        prepare_node(settings, home, LOG)
    assert "fail" not in str(error.value).replace("failed", "")


def test_no_keystore_tool_no_password_no_calls(tmp_path: Path) -> None:
    record = tmp_path / "calls.txt"
    prepare_node(settings_for(tmp_path), make_home(tmp_path, "8.15.1", record), LOG)
    assert not record.exists()
    prepare_node(settings_for(tmp_path / "demo", ELASTIC_PASSWORD="pw"), None, LOG)  # demo node: nothing to do


# ---------------------------------------------------------------------- bootstrap over existing data


@pytest.mark.parametrize("state", ["nodes/0/_state", "_state"])
def test_existing_elasticsearch_state_drops_the_initial_masters(
    tmp_path: Path, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    (settings.data_path / state).mkdir(parents=True)
    (settings.data_path / state / "node-0.st").write_bytes(b"state")
    assert existing_cluster(settings.data_path) is not None
    with caplog.at_level(logging.WARNING):
        assert bootstrap_master_nodes(settings, LOG) == ()
    assert "not writing cluster.initial_master_nodes" in caplog.text and state in caplog.text


def test_state_from_a_start_that_never_formed_a_cluster_keeps_bootstrapping(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_path.mkdir(parents=True)
    assert bootstrap_master_nodes(settings, LOG) == ("elasticsearch1",)  # empty: marker written
    assert (settings.data_path / UNFORMED_MARKER).exists()
    (settings.data_path / "_state").mkdir()
    (settings.data_path / "_state" / "node-0.st").write_bytes(b"state")  # e.g. a failed bootstrap check
    assert bootstrap_master_nodes(settings, LOG) == ("elasticsearch1",)
    (settings.data_path / UNFORMED_MARKER).unlink()  # what the executor does once a uuid is seen
    assert bootstrap_master_nodes(settings, LOG) == ()


# ---------------------------------------------------------------------- status data


def test_identity_is_a_contract_node_report_and_only_sent_with_a_uuid(tmp_path: Path) -> None:
    identity = NodeReport("Zx9", "8.15.1", "elasticsearch1")
    assert json.loads(base64.b64decode(status_data(identity), validate=True)) == {
        "cluster_uuid": "Zx9",
        "version": "8.15.1",
        "node_name": "elasticsearch1",
        "contract": CONTRACT_VERSION,
    }
    executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path)})
    executor.driver = RecordingDriver()
    executor._update("TASK_RUNNING", healthy=True, identity=NodeReport(None, "8.15.1", "elasticsearch1"))
    executor._update("TASK_RUNNING", healthy=True, identity=identity)
    first, second = executor.driver.updates
    assert "data" not in first and second["data"] == status_data(identity)
    assert NodeReport.decode_wire(second["data"]) == NodeReport("Zx9", "8.15.1", "elasticsearch1", CONTRACT_VERSION)


# ---------------------------------------------------------------------- users


def test_run_as_only_when_root_and_never_as_root(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    settings = settings_for(tmp_path)
    assert run_as_for(settings, home, euid=1000) is None
    assert run_as_for(settings, None, euid=0) is None  # development command, no ELASTICSEARCH_UID
    assert run_as_for(settings, home, euid=0) == {
        "user": 1000,
        "group": 0,
        "extra_groups": [],
        "env_updates": {"HOME": str(home)},
    }
    explicit = settings_for(tmp_path, ELASTICSEARCH_UID="1234")
    assert (run_as_for(explicit, None, euid=0) or {})["user"] == 1234
    with pytest.raises(ExecutorError, match="never runs as root"):
        run_as_for(settings_for(tmp_path, ELASTICSEARCH_UID="0"), home, euid=0)
    arguments = popen_arguments(privileges(1000, home), {"PATH": "/bin", "HOME": "/root"})
    assert arguments == {
        "env": {"PATH": "/bin", "HOME": str(home)},
        "user": 1000,
        "group": 0,
        "extra_groups": [],
    }
    assert popen_arguments(None, {"A": "b"}) == {"env": {"A": "b"}}


@pytest.mark.skipif(not ROOT, reason="needs root to change users")
def test_a_child_really_runs_as_uid_1000_group_0(shared_dir: Path) -> None:
    output = subprocess.run(
        ["/bin/sh", "-c", 'echo "$(id -u) $(id -g) [$(id -G)] $HOME"'],
        stdout=subprocess.PIPE,
        check=True,
        cwd=shared_dir,
        **popen_arguments(privileges(1000, shared_dir), dict(os.environ)),
    ).stdout.decode()
    # No supplementary group but the primary one (id -G always lists that).
    assert output.split() == ["1000", "0", "[0]", str(shared_dir)]


@pytest.mark.skipif(not ROOT, reason="needs root to change owners")
def test_volumes_given_to_the_elasticsearch_user_except_lost_and_found(shared_dir: Path) -> None:
    record = shared_dir / "calls.txt"
    record.touch(mode=0o666)
    record.chmod(0o666)  # the fake tool writes it as uid 1000
    home = make_home(shared_dir, "8.15.1", record)
    data = shared_dir / "volumes" / "data"
    (data / "lost+found").mkdir(parents=True)
    (data / "_state").mkdir()
    (data / "_state" / "old.st").write_text("x")
    volume = shared_dir / "volumes" / "config"
    volume.mkdir()
    (shared_dir / "certs.p12").write_bytes(b"p12")
    settings = settings_for(
        shared_dir,
        ELASTICSEARCH_DATA_PATH=str(data),
        ELASTICSEARCH_CONFIG_VOLUME_PATH=str(volume),
        ELASTICSEARCH_SECURITY="enabled",
        ELASTIC_PASSWORD="pw",
        ELASTICSEARCH_CERTIFICATES="certs.p12",
    )
    run_as = run_as_for(settings, home)
    assert run_as is not None
    prepare_node(settings, home, LOG, run_as=run_as)
    for path in [data, data / "_state" / "old.st", volume, *volume.rglob("*")]:
        assert (path.stat().st_uid, path.stat().st_gid) == (1000, 0), path
    assert (data / "lost+found").stat().st_uid == 0
    assert "uid=1000 gid=0" in record.read_text()  # the keystore tool ran as Elasticsearch's user
    assert chown_tree(data, 1000, 0, LOG) == 0  # nothing left to change


#: A Python uid 1000 may run (the venv's may live under a private /root), with this checkout importable.
SYSTEM_PYTHON = "/usr/bin/python3.11"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not ROOT or not os.access(SYSTEM_PYTHON, os.X_OK), reason="needs root and a system Python")
def test_the_demo_node_runs_as_the_given_uid(shared_dir: Path) -> None:
    executor = NodeExecutor({"MESOS_SANDBOX": str(shared_dir), "PYTHONPATH": str(REPO)})
    driver = RecordingDriver()
    command = f"{SYSTEM_PYTHON} -m es_framework.dev.demo_es"
    env = node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=command, ELASTICSEARCH_UID="1000")
    executor.launchTask(driver, task_info(env))
    try:
        wait_until(lambda: "TASK_RUNNING" in driver.states(), 15, "TASK_RUNNING")
        assert executor._process is not None
        status = Path(f"/proc/{executor._process.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["1000"] * 4
        assert (shared_dir / "data" / "node.lock").stat().st_uid == 1000
    finally:
        executor.killTask(driver, {"value": "x"})
        assert executor.finished.wait(15)
    assert "TASK_KILLED" in driver.states()


def test_running_update_carries_the_identity(tmp_path: Path) -> None:
    executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path)})
    driver = RecordingDriver()
    executor.launchTask(driver, task_info(node_env(free_port(), free_port(), ELASTICSEARCH_COMMAND=DEMO_COMMAND)))
    try:
        wait_until(lambda: any("data" in u for u in driver.updates), 15, "an update with data")
        with_data: dict[str, Any] = next(u for u in driver.updates if "data" in u)
        assert with_data["state"] == "TASK_RUNNING"
        document = json.loads(base64.b64decode(with_data["data"]))
        assert document["node_name"] == "elasticsearch1" and len(document["cluster_uuid"]) > 4
        # Once a uuid is seen, the data path has joined a cluster: the next start will not bootstrap.
        wait_until(lambda: not (tmp_path / "data" / UNFORMED_MARKER).exists(), 5, "the marker removed")
    finally:
        executor.killTask(driver, {"value": "x"})
        assert executor.finished.wait(15)


class FakeProcess:
    """Stands in for ElasticsearchProcess: runs until stopped."""

    def poll(self) -> int | None:
        return None

    def stop(self, grace_period: float) -> tuple[int, bool]:
        return 0, True


def test_uuid_updates_once_per_change_and_stays_in_health_updates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    answers = [NodeReport(None, "8.15.1", "elasticsearch1")]
    health = [False]
    monkeypatch.setattr(node_executor, "HEALTH_CHECK_INTERVAL", 0.02)
    monkeypatch.setattr(node_executor, "STARTUP_POLL_INTERVAL", 0.01)
    monkeypatch.setattr(node_executor, "node_identity", lambda url, auth=None, context=None: answers[-1])
    monkeypatch.setattr(node_executor, "node_healthy", lambda url, auth=None, context=None: health[-1])
    executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path)})
    driver = RecordingDriver()
    executor.driver = driver
    settings = settings_for(tmp_path)
    settings.data_path.mkdir(parents=True)
    (settings.data_path / UNFORMED_MARKER).write_text("")
    thread = threading.Thread(target=executor._watch, args=(FakeProcess(), settings))
    thread.start()

    def running() -> list[dict[str, Any]]:
        return [u for u in driver.updates if u["state"] == "TASK_RUNNING"]

    try:
        wait_until(lambda: len(running()) == 1, 5, "the first TASK_RUNNING")
        time.sleep(0.1)
        assert len(running()) == 1 and "data" not in running()[0]  # uuid _na_: nothing to report yet
        answers.append(NodeReport("uuid-1", "8.15.1", "elasticsearch1"))
        wait_until(lambda: len(running()) == 2, 5, "the update with the uuid")
        time.sleep(0.1)
        assert len(running()) == 2  # one update for the new uuid, none while nothing changes
        first = json.loads(base64.b64decode(running()[1]["data"]))
        assert first["cluster_uuid"] == "uuid-1"
        assert not (settings.data_path / UNFORMED_MARKER).exists()
        health.append(True)
        wait_until(lambda: len(running()) == 3, 5, "the health change")
        assert running()[2]["healthy"] is True and running()[2]["data"] == running()[1]["data"]
        answers.append(NodeReport("uuid-2", "8.15.1", "elasticsearch1"))
        wait_until(lambda: len(running()) == 4, 5, "the update with the changed uuid")
        assert json.loads(base64.b64decode(running()[3]["data"]))["cluster_uuid"] == "uuid-2"
    finally:
        executor._kill_requested.set()
        thread.join(5)
    assert driver.states()[-1] == "TASK_KILLED"
