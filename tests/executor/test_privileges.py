"""Whom Elasticsearch runs as, and a root-owned volume made writable for it: the executor, started as
root on both containerizers, prepares the node's directories and drops privileges."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from es_framework import contract
from es_framework.executor.logs import NodeLog
from es_framework.executor.process import (
    ElasticsearchProcess,
    agent_user,
    elasticsearch_user,
    find_elasticsearch,
    run_as_for,
)
from es_framework.executor.settings import ExecutorError, NodeSettings
from es_framework.executor.volumes import owned_roots, prepare_node
from tests.executor.test_executor import node_env, task_info

ROOT = os.geteuid() == 0
LOG = NodeLog("1", "t")
#: Elasticsearch's user as the agent's /etc/passwd would give it (uid 1000, its own group).
AGENT_USER = pwd.struct_passwd(("search", "x", 1000, 1000, "", "/home/search", "/bin/sh"))


def lookup(name: str) -> pwd.struct_passwd:
    if name == "search":
        return AGENT_USER
    if name == "toor":
        return pwd.struct_passwd(("toor", "x", 0, 0, "", "/root", "/bin/sh"))
    raise KeyError(name)


def settings_for(sandbox: Path, **extra: str) -> NodeSettings:
    return NodeSettings.from_task(task_info(node_env(9200, 9300, **extra)), {"MESOS_SANDBOX": str(sandbox)})


def distribution(sandbox: Path, script: str = "#!/bin/sh\nexit 0\n") -> Path:
    """A distribution stand-in extracted into the sandbox, as the Mesos fetcher leaves it."""
    home = sandbox / "elasticsearch-8.15.1"
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "lib" / "elasticsearch-8.15.1.jar").write_text("")
    (home / "config").mkdir()
    (home / "config" / "jvm.options").write_text("# jvm options\n")
    launcher = home / "bin" / "elasticsearch"
    launcher.write_text(script)
    launcher.chmod(0o755)
    return home


# ---------------------------------------------------------------------- whom (pure)


def test_as_root_the_mesos_containerizer_names_an_agent_user_and_docker_uses_the_images(tmp_path: Path) -> None:
    home = distribution(tmp_path)
    docker = settings_for(tmp_path)
    assert elasticsearch_user(docker) is None
    assert run_as_for(docker, home, euid=0, lookup=lookup) == {
        "user": 1000,
        "group": 0,
        "extra_groups": [],
        "env_updates": {"HOME": str(home)},
    }
    mesos = settings_for(tmp_path, **{contract.ENV_USER: "search"})
    assert elasticsearch_user(mesos) == "search"
    run_as = run_as_for(mesos, home, euid=0, lookup=lookup)
    assert run_as is not None
    # Its own uid and primary group, as Mesos switches to a CommandInfo.user; never group 0.
    assert (run_as["user"], run_as["group"]) == (1000, 1000)
    assert 1000 not in run_as["extra_groups"] and 0 not in run_as["extra_groups"]


def test_the_explicit_uid_wins_and_a_development_command_keeps_the_executors_user(tmp_path: Path) -> None:
    home = distribution(tmp_path)
    both = settings_for(tmp_path, **{contract.ENV_USER: "search", contract.ENV_UID: "1234"})
    assert (run_as_for(both, home, euid=0, lookup=lookup) or {})["group"] == 0
    assert (run_as_for(both, home, euid=0, lookup=lookup) or {})["user"] == 1234
    # ELASTICSEARCH_COMMAND, no distribution: today's rule, whatever the containerizer.
    assert run_as_for(settings_for(tmp_path, **{contract.ENV_USER: "search"}), None, euid=0, lookup=lookup) is None
    # Not root (an agent with --switch_user=false, local mode, a contract-1 task definition): itself.
    assert run_as_for(settings_for(tmp_path, **{contract.ENV_USER: "search"}), home, euid=1000, lookup=lookup) is None


def test_a_user_missing_on_the_agent_or_root_fails_the_task_with_the_fix(tmp_path: Path) -> None:
    home = distribution(tmp_path)
    with pytest.raises(ExecutorError, match=r"'nobody-here'.*does not exist on this agent.*ELASTICSEARCH_UID"):
        run_as_for(settings_for(tmp_path, **{contract.ENV_USER: "nobody-here"}), home, euid=0, lookup=lookup)
    with pytest.raises(ExecutorError, match="never runs as root"):
        run_as_for(settings_for(tmp_path, **{contract.ENV_USER: "toor"}), home, euid=0, lookup=lookup)
    with pytest.raises(ExecutorError, match="never runs as root"):
        run_as_for(settings_for(tmp_path, **{contract.ENV_UID: "0"}), home, euid=0, lookup=lookup)


def test_an_agent_user_has_its_groups() -> None:
    me = pwd.getpwuid(os.getuid())
    uid, gid, groups = agent_user(me.pw_name)
    assert (uid, gid) == (me.pw_uid, me.pw_gid)
    assert gid in groups and sorted(os.getgrouplist(me.pw_name, me.pw_gid)) == groups


def test_a_fetched_distribution_is_given_to_elasticsearch_but_not_the_images(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    home = distribution(tmp_path)
    assert owned_roots(settings, home) == [settings.data_path, settings.config_volume, home]
    assert owned_roots(settings, Path("/usr/share/elasticsearch")) == [settings.data_path, settings.config_volume]
    assert owned_roots(settings, None) == [settings.data_path, settings.config_volume]


# ---------------------------------------------------------------------- a root-owned volume, for real


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory uid 1000 can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="es-mesos-test-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


#: Stands in for bin/elasticsearch: writes where Elasticsearch writes, as whoever it runs as.
WRITER = """#!/bin/sh
set -e
echo "ran as $(id -u):$(id -g)"
echo appended >> "$ELASTICSEARCH_DATA_PATH/old-segment"
mkdir -p "$ELASTICSEARCH_DATA_PATH/nodes/0"
echo new > "$ELASTICSEARCH_DATA_PATH/nodes/0/node.lock"
echo keystore > "$ES_PATH_CONF/elasticsearch.keystore.tmp"
mkdir -p "$(dirname "$0")/../logs"
echo started > "$(dirname "$0")/../logs/mesos-ha.log"
echo written
"""


def root_owned(path: Path, content: str | None = None) -> Path:
    """``path`` as a freshly attached volume or an operator's directory: root's, 0755, maybe a root file."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 0, 0)
    path.chmod(0o755)
    if content is not None:
        (path / "old-segment").write_text(content)
        os.chown(path / "old-segment", 0, 0)
        (path / "old-segment").chmod(0o644)
    return path


def run_to_the_end(command: list[str], settings: NodeSettings, run_as: dict[str, object]) -> tuple[int, list[str]]:
    process = ElasticsearchProcess(command, settings, LOG, run_as)
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    code = process.poll()
    assert code is not None, "the stand-in did not end"
    return code, process.last_lines()


@pytest.mark.skipif(not ROOT, reason="needs root to own volumes and change users")
@pytest.mark.parametrize(
    ("extra", "owner"),
    [
        ({}, (1000, 0)),  # Docker: the image's user, group 0
        ({contract.ENV_USER: "search"}, (1000, 1000)),  # Mesos: --elasticsearchUser as the agent knows it
    ],
)
def test_a_root_owned_volume_becomes_writable_for_elasticsearch(
    shared_dir: Path, extra: dict[str, str], owner: tuple[int, int]
) -> None:
    data = root_owned(shared_dir / "volumes" / "data", "segment written by an earlier owner\n")
    config = root_owned(shared_dir / "volumes" / "config")
    home = distribution(shared_dir, WRITER)
    os.chown(home, 0, 0)
    settings = settings_for(
        shared_dir, ELASTICSEARCH_DATA_PATH=str(data), ELASTICSEARCH_CONFIG_VOLUME_PATH=str(config), **extra
    )
    command, found = find_elasticsearch(settings)
    assert found == home
    run_as = run_as_for(settings, home, lookup=lookup)
    assert run_as is not None and (run_as["user"], run_as["group"]) == owner
    # Before: Elasticsearch's user cannot write to the volume.
    denied = subprocess.run(
        ["/bin/sh", "-c", f"echo x >> {data / 'old-segment'}"],
        user=owner[0],
        group=owner[1],
        extra_groups=[],
        capture_output=True,
        check=False,
    )
    assert denied.returncode != 0
    prepare_node(settings, home, LOG, run_as=run_as)
    code, lines = run_to_the_end(command, settings, run_as)
    assert code == 0, lines
    assert f"ran as {owner[0]}:{owner[1]}" in lines and "written" in lines
    assert (data / "old-segment").read_text().endswith("appended\n")
    for path in (
        data,
        data / "old-segment",
        data / "nodes" / "0" / "node.lock",
        config,
        home / "logs" / "mesos-ha.log",
    ):
        assert (path.stat().st_uid, path.stat().st_gid) == owner, path
    assert (settings.config_path / "elasticsearch.keystore.tmp").stat().st_uid == owner[0]
