"""Local mode's pieces (``es_framework.dev.local``); the whole of it runs in tests/e2e/test_local_mode.py."""

from __future__ import annotations

import io
import json
import shlex
import sys
import tarfile
from pathlib import Path

import pytest

from es_framework.app.store import state_url
from es_framework.config import Config, resolve_config
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.dev.local import (
    DEMO_COMMAND,
    LocalModeError,
    agent_port_ranges,
    elasticsearch_command,
    leftover_processes,
    local_agents,
    release_previous_nodes,
)
from es_framework.shell.state_store import FileStateStore


def local(tmp_path: Path, **flags: str) -> Config:
    return resolve_config({"mesosMaster": "local", "localWorkDir": str(tmp_path), **flags}, {})


def test_default_state_url_is_in_the_work_dir(tmp_path: Path) -> None:
    assert state_url(local(tmp_path)) == f"file://{tmp_path}/state"
    assert state_url(local(tmp_path, frameworkStateUrl="file:///srv/state")) == "file:///srv/state"


def test_relative_work_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = resolve_config({"mesosMaster": "local"}, {})
    assert state_url(config) == f"file://{tmp_path}/.es-mesos-local/state"


def test_agents_have_room_for_one_node_and_ports_of_their_own(tmp_path: Path) -> None:
    agents = local_agents(local(tmp_path, localAgents="12", elasticsearchCpu="0.5", elasticsearchRam="256"))
    assert [a.id for a in agents] == [f"local-agent{n}" for n in range(1, 13)]
    assert [a.hostname for a in agents] == [f"127.0.0.{n}" for n in range(1, 13)]
    assert all(a.cpus == 0.5 and a.mem == 256 for a in agents)
    ports = [p for a in agents for low, high in a.ports for p in range(low, high + 1)]
    assert len(ports) == len(set(ports))  # no two agents share a port
    assert agents[0].ports == ((31000, 31009),)
    assert 31100 not in ports  # --webUiPort's default
    assert agents[10].ports == ((31101, 31109),)


def test_port_ranges_leave_the_web_ui_port_out() -> None:
    assert agent_port_ranges(1, 31000) == ((31001, 31009),)
    assert agent_port_ranges(1, 31005) == ((31000, 31004), (31006, 31009))
    assert agent_port_ranges(1, 31009) == ((31000, 31008),)
    assert agent_port_ranges(2, 8080) == ((31010, 31019),)


def test_the_demo_node_runs_unless_elasticsearch_is_given(tmp_path: Path) -> None:
    assert elasticsearch_command(local(tmp_path), tmp_path) == DEMO_COMMAND
    assert shlex.split(DEMO_COMMAND) == [sys.executable, "-m", "es_framework.dev.demo_es"]


def test_elasticsearch_from_a_directory(tmp_path: Path) -> None:
    home = tmp_path / "my es" / "elasticsearch-8.15.0"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "elasticsearch").write_text("#!/bin/sh\n")
    command = elasticsearch_command(local(tmp_path, elasticsearchBinaryUrl=str(home)), tmp_path)
    assert shlex.split(command) == [str(home / "bin" / "elasticsearch")]
    command = elasticsearch_command(local(tmp_path, elasticsearchBinaryUrl=f"file://{home}"), tmp_path)
    assert shlex.split(command) == [str(home / "bin" / "elasticsearch")]


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return path


def test_elasticsearch_from_a_tarball_is_extracted_once(tmp_path: Path) -> None:
    tarball = _tarball(
        tmp_path / "elasticsearch-8.15.0.tar.gz", {"elasticsearch-8.15.0/bin/elasticsearch": b"#!/bin/sh\n"}
    )
    workdir = tmp_path / "work"
    config = local(workdir, elasticsearchBinaryUrl=str(tarball))
    command = elasticsearch_command(config, workdir)
    expected = workdir / "elasticsearch" / tarball.name / "elasticsearch-8.15.0" / "bin" / "elasticsearch"
    assert shlex.split(command) == [str(expected)] and expected.is_file()
    tarball.unlink()  # a second start does not need the tarball again
    (tmp_path / "elasticsearch-8.15.0.tar.gz").write_bytes(b"")
    assert elasticsearch_command(config, workdir) == command


def test_a_tarball_without_elasticsearch_is_refused(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "other.tar.gz", {"README": b"x"})
    with pytest.raises(LocalModeError, match="has no bin/elasticsearch"):
        elasticsearch_command(local(tmp_path, elasticsearchBinaryUrl=str(tarball)), tmp_path / "work")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(LocalModeError, match="cannot extract it"):
        elasticsearch_command(local(tmp_path, elasticsearchBinaryUrl=str(junk)), tmp_path / "work")


def _record(node_id: int, state: TaskState, seen_running: bool) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=f"elasticsearch-node{node_id}-{'b' * 32}",
        agent_id=f"local-agent{node_id}",
        hostname=f"127.0.0.{node_id}",
        http_port=31000,
        transport_port=31001,
        state=state,
        seen_running=seen_running,
        volumes=(f"elasticsearch{node_id}config", f"elasticsearch{node_id}data"),
    )


def test_restart_releases_every_node_of_the_previous_run(tmp_path: Path) -> None:
    """The old master is gone and its nodes with it: records last seen RUNNING, which UNKNOWN would
    keep reserved for the operator, are released so that nodes 1..N are launched again."""
    config = local(tmp_path)
    store = FileStateStore(tmp_path / "state", "elasticsearch", "mesos-ha")
    nodes = {
        1: _record(1, TaskState.RUNNING, True),
        2: _record(2, TaskState.RUNNING, True),
        3: _record(3, TaskState.LAUNCHING, False),
    }
    store.create(state_to_json(ClusterState(desired_nodes=3, nodes=nodes, framework_id="fw-local")))
    assert release_previous_nodes(config) == [1, 2, 3]
    stored = store.read()
    assert stored is not None and stored.version == 1
    state = state_from_json(stored.document, "elasticsearch")
    assert dict(state.nodes) == {}
    assert state.framework_id == "fw-local" and state.desired_nodes == 3
    assert release_previous_nodes(config) == []  # nothing left: no write
    assert store.read() == stored


def test_release_with_no_state_writes_nothing(tmp_path: Path) -> None:
    assert release_previous_nodes(local(tmp_path)) == []
    assert not (tmp_path / "state" / "elasticsearch" / "mesos-ha" / "state.json").exists()


def test_release_leaves_torn_down_state_alone(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state", "elasticsearch", "mesos-ha")
    document = state_to_json(
        ClusterState(desired_nodes=3, nodes={1: _record(1, TaskState.RUNNING, True)}, torn_down_at=1.0)
    )
    store.create(document)
    assert release_previous_nodes(local(tmp_path)) == []
    stored = store.read()
    assert stored is not None and stored.version == 0 and stored.document == json.loads(json.dumps(document))


def test_release_refuses_while_another_scheduler_leads(tmp_path: Path) -> None:
    running = FileStateStore(tmp_path / "state", "elasticsearch", "mesos-ha")
    assert running.acquire_leadership(timeout=1)
    try:
        with pytest.raises(LocalModeError, match="already running on this work directory"):
            release_previous_nodes(local(tmp_path), lock_timeout=0.1)
    finally:
        running.close()


def test_no_leftover_processes_in_a_fresh_work_dir(tmp_path: Path) -> None:
    assert leftover_processes(tmp_path) == []
