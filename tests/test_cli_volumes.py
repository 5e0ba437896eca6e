"""``es-framework volumes``: the volume inventory offline from a file:// state, read-only."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from es_framework.cli import main
from es_framework.config import resolve_config
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.volume_inventory import volume_inventory
from es_framework.core.volumes import VolumeSet, VolumeSpec
from es_framework.shell.state_store import FileStateStore
from identity import task_id_for, volume_names

FW = "elasticsearch"
T0 = 1_790_000_000.0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), env={})
    out, err = capsys.readouterr()
    return code, out, err


def volume_set(node_id: int, data_profile: str = "default") -> VolumeSet:
    config_name, data_name = volume_names(FW, node_id)
    return VolumeSet(
        node_id,
        "rexray",
        VolumeSpec(config_name, "config", "default", (("size", "1"),)),
        VolumeSpec(data_name, "data", data_profile, ()),
        T0,
        f"agent-{node_id}-S0",
        f"agent{node_id}.example.com",
        T0 + 60 * node_id,
        "zone-a" if node_id % 2 else "zone-b",
    )


def record(node_id: int, state: TaskState) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=task_id_for(FW, node_id, f"{node_id:032x}"),
        agent_id=f"agent-{node_id}-S0",
        hostname=f"agent{node_id}.example.com",
        http_port=31000,
        transport_port=31001,
        state=state,
        volumes=volume_names(FW, node_id),
    )


def scaled_down(torn_down_at: float | None = None) -> ClusterState:
    """Scaled from 4 to 2 nodes: node 3 still stopping, node 4 gone; node 2 unreachable."""
    return ClusterState(
        desired_nodes=2,
        nodes=MappingProxyType(
            {
                1: record(1, TaskState.RUNNING),
                2: record(2, TaskState.UNREACHABLE),
                3: record(3, TaskState.KILLING),
            }
        ),
        volumes=MappingProxyType({i: volume_set(i, "gold" if i == 1 else "default") for i in (1, 2, 3, 4)}),
        framework_id="fw-1",
        torn_down_at=torn_down_at,
    )


def store(tmp_path: Path, state: ClusterState) -> Path:
    """``state`` stored where the scheduler with ``--frameworkStateUrl file://<tmp_path>`` keeps it."""
    files = FileStateStore(tmp_path, FW, "mesos-ha")
    files.start()
    files.create(state_to_json(state))
    return files.state_file


def flags(tmp_path: Path, *extra: str) -> list[str]:
    return ["--frameworkStateUrl", f"file://{tmp_path}", "--externalVolumeDriver", "rexray", *extra]


def test_the_table_lists_every_volume_and_what_is_held_orphaned_or_different(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store(tmp_path, scaled_down())
    code, out, err = run(capsys, "volumes", *flags(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "volumes of cluster mesos-ha (framework elasticsearch): 2 node(s) desired"
    assert lines[1].split() == [
        "NODE",
        "VOLUME",
        "DRIVER",
        "PROFILE",
        "OPTIONS",
        "HELD",
        "BY",
        "LAST",
        "ATTACHED",
        "ON",
        "NOTES",
    ]
    rows = {line.split()[1]: line for line in lines[2:-1]}
    assert list(rows) == [name for i in (1, 2, 3, 4) for name in volume_names(FW, i)]
    assert "TASK_RUNNING since 2026-09-21T14:14:20Z" in rows["elasticsearch1config"]
    assert "agent1.example.com [agent-1-S0] zone zone-a at 2026-09-21T14:14:20Z" in rows["elasticsearch1config"]
    assert "size=1" in rows["elasticsearch1config"]
    assert "profile differs: the configuration names default" in rows["elasticsearch1data"]
    assert "TASK_UNREACHABLE" in rows["elasticsearch2data"]
    assert rows["elasticsearch2data"].rstrip().endswith("-")  # held, kept: nothing to note
    assert (
        "orphan: node 3 is above the desired 2 node(s) (scaled down); its task still holds them"
        in rows["elasticsearch3data"]
    )
    assert rows["elasticsearch4data"].split()[5] == "-"  # held by nobody
    assert "orphan: node 4 is above the desired 2 node(s) (scaled down)" in rows["elasticsearch4data"]
    assert lines[-1] == "8 volume(s): 6 held by a task, 4 orphan(s), 1 with another profile configured, 0 removed"


def test_json_is_the_inventory_the_api_answers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store(tmp_path, scaled_down())
    code, out, err = run(capsys, "volumes", "--json", *flags(tmp_path, "--volumeProfile", "data=gold"))
    assert code == 0, err
    config = resolve_config({"externalVolumeDriver": "rexray", "volumeProfile": "data=gold"}, {})
    stored = state_from_json(state_to_json(scaled_down()), FW)
    assert json.loads(out) == volume_inventory(stored, config).to_json()
    differs = [v["name"] for v in json.loads(out)["volumes"] if v["profile_differs"]]
    assert differs == ["elasticsearch2data", "elasticsearch3data", "elasticsearch4data"]


def test_a_torn_down_framework_leaves_only_orphans(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store(tmp_path, scaled_down(torn_down_at=T0 + 3600))
    code, out, _ = run(capsys, "volumes", *flags(tmp_path))
    assert code == 0
    assert out.splitlines()[0].endswith("; the framework was torn down at 2026-09-21T15:13:20Z")
    assert out.count("orphan: the framework was torn down at 2026-09-21T15:13:20Z") == 8


def test_it_reads_without_the_leader_lock_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state_file = store(tmp_path, scaled_down())
    before = (
        state_file.read_bytes(),
        state_file.stat().st_mtime_ns,
        sorted(p.name for p in state_file.parent.iterdir()),
    )
    scheduler = FileStateStore(tmp_path, FW, "mesos-ha", identifier="running-scheduler")
    assert scheduler.acquire_leadership(timeout=1)  # a scheduler leads the state meanwhile
    try:
        code, _, err = run(capsys, "volumes", *flags(tmp_path))
        assert code == 0, err
    finally:
        scheduler.close()
    # The running scheduler's lock file was there before; nothing else was written or created.
    after = (
        state_file.read_bytes(),
        state_file.stat().st_mtime_ns,
        sorted(p.name for p in state_file.parent.iterdir()),
    )
    assert after[:2] == before[:2]
    assert after[2] == sorted({*before[2], "leader.lock"})


def test_no_state_stored_is_refused_and_creates_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    where = tmp_path / "nowhere"
    code, out, err = run(capsys, "volumes", "--frameworkStateUrl", f"file://{where}")
    assert (code, out) == (2, "")
    assert f"no state stored for cluster mesos-ha of framework elasticsearch at file://{where}" in err
    assert not where.exists()


def test_without_a_place_for_the_state_it_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "volumes", "--mesosMaster", "127.0.0.1:5050")
    assert code == 2
    assert "--frameworkStateUrl is needed with an HTTP Mesos master" in err


def test_a_corrupt_state_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    document: dict[str, Any] = state_to_json(scaled_down())
    document["volumes"]["1"]["volumes"][0]["name"] = "someone-else"
    store_dir = FileStateStore(tmp_path, FW, "mesos-ha")
    store_dir.start()
    store_dir.create(document)
    code, out, err = run(capsys, "volumes", *flags(tmp_path))
    assert (code, out) == (1, "")
    assert err.startswith("es-framework volumes: stored volumes of node 1:")


def test_a_state_without_volumes_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store(tmp_path, ClusterState(desired_nodes=3))
    code, out, _ = run(capsys, "volumes", "--frameworkStateUrl", f"file://{tmp_path}")
    assert code == 0
    assert out.splitlines()[1:] == ["no external volumes recorded"]


def test_local_mode_reads_its_work_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store(tmp_path / "state", scaled_down())
    code, out, err = run(capsys, "volumes", "--json", "--mesosMaster", "local", "--localWorkDir", str(tmp_path))
    assert code == 0, err
    assert json.loads(out)["counts"]["total"] == 8


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"], env={})
    assert "volumes   list the external volumes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["volumes", "--help"], env={})
    assert "--json" in capsys.readouterr().out


def test_a_profile_file_is_read_and_its_profiles_compared(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store(tmp_path, scaled_down())
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"drivers": {"rexray": {"profiles": {"platinum": {"options": {"iops": 100}}}}}}))
    extra = ("--volumeProfile", "data=platinum", "--volumeProfileFile", str(profiles))
    code, out, err = run(capsys, "volumes", "--json", *flags(tmp_path, *extra))
    assert code == 0, err
    data = [v for v in json.loads(out)["volumes"] if v["role"] == "data"]
    assert [(v["configured_profile"], v["profile_differs"]) for v in data] == [("platinum", True)] * 4


def test_an_unknown_profile_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store(tmp_path, scaled_down())
    code, out, err = run(capsys, "volumes", *flags(tmp_path, "--volumeProfile", "data=platinum"))
    assert (code, out) == (2, "")
    assert "--volumeProfile data=platinum: rexray has no profile 'platinum'" in err
