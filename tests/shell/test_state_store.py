"""The file state store (local mode): round trip, compare-and-set, concurrent writers in threads and
processes, atomic replacement, and the flock leader lock; and which store a state URL opens. The state
URLs themselves are tested with the one URL grammar, in tests/config/test_urls.py."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from es_framework.shell.state_store import (
    MAX_STATE_BYTES,
    FileStateStore,
    Leadership,
    StateConflictError,
    StateCorruptError,
    StateStore,
    StateStoreError,
    ZooKeeperStateStore,
    open_state_store,
)
from tests.harness.state_store_helpers import increment


def test_open_state_store_picks_the_implementation(tmp_path: Path) -> None:
    zk = open_state_store("zk://127.0.0.1:1/es", framework_name="elasticsearch", cluster_name="mesos-ha")
    assert isinstance(zk, ZooKeeperStateStore)
    assert zk.cluster_path == "/es/elasticsearch/mesos-ha/cluster"
    assert zk.nodes_path == "/es/elasticsearch/mesos-ha/nodes"
    assert zk.legacy_path == "/es/elasticsearch/mesos-ha/state"
    assert zk.session_timeout_s == 20.0
    zk.close()
    local = open_state_store(f"file://{tmp_path}", framework_name="elasticsearch", cluster_name="mesos-ha")
    assert isinstance(local, FileStateStore) and isinstance(local, StateStore)
    assert local.state_file == tmp_path / "elasticsearch" / "mesos-ha" / "state.json"
    with pytest.raises(ValueError, match="cluster name"):
        open_state_store(f"file://{tmp_path}", framework_name="elasticsearch", cluster_name="a/b")


# --- the file store ------------------------------------------------------------------------------


def file_store(tmp_path: Path, **kwargs: object) -> FileStateStore:
    store = FileStateStore(tmp_path, "elasticsearch", "mesos-ha", **kwargs)  # type: ignore[arg-type]
    store.start()
    return store


def test_both_stores_share_one_leadership_status(tmp_path: Path) -> None:
    for name in ("may_act", "leadership", "__enter__", "__exit__"):
        assert getattr(FileStateStore, name) is getattr(ZooKeeperStateStore, name), name
    with file_store(tmp_path) as store:
        assert store.acquire_leadership(timeout=1) and store.may_act.is_set()
    assert store.leadership is Leadership.NOT_LEADER and not store.may_act.is_set()


def test_round_trip_and_compare_and_set(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    assert store.read() is None
    with pytest.raises(StateConflictError):
        store.write({"a": 1}, 0)  # nothing to replace yet
    assert store.create({"nodes": {"1": "running"}}).version == 0
    with pytest.raises(StateConflictError, match="exists already"):
        store.create({})
    current = store.read()
    assert current is not None and current.document == {"nodes": {"1": "running"}} and current.version == 0
    assert store.write({"nodes": {}}, 0).version == 1
    with pytest.raises(StateConflictError, match="no longer at version 0"):
        store.write({"nodes": {"2": "x"}}, 0)
    assert json.loads(store.state_file.read_text()) == {"schema": 1, "version": 1, "state": {"nodes": {}}}
    # Another instance (another scheduler process) sees the same state.
    other = file_store(tmp_path)
    assert other.read() == store.read()


def test_documents_must_be_json_objects_within_the_size_limit(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    with pytest.raises(TypeError, match="not JSON"):
        store.create({"when": object()})
    with pytest.raises(TypeError, match="not JSON"):
        store.create({"x": float("nan")})
    with pytest.raises(TypeError, match="must be a dict"):
        store.create([1, 2])  # type: ignore[arg-type]
    with pytest.raises(StateStoreError, match="limit"):
        store.create({"big": "x" * MAX_STATE_BYTES})
    assert store.read() is None and not store.state_file.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "schema"),
        (b'{"schema": 1, "version": 0}', "schema"),
        (b'{"schema": 2, "version": 0, "state": {}}', "newer es-mesos"),
        (b'{"schema": 1, "version": -1, "state": {}}', "no valid version"),
        (b'{"schema": 1, "version": true, "state": {}}', "no valid version"),
    ],
)
def test_corrupt_or_newer_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    store = file_store(tmp_path)
    store.state_file.write_bytes(content)
    with pytest.raises(StateCorruptError, match=message):
        store.read()


def test_a_failed_replace_leaves_the_old_state_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = file_store(tmp_path)
    store.create({"v": 0})
    before = store.state_file.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space"):
        store.write({"v": 1}, 0)
    monkeypatch.undo()
    assert store.state_file.read_bytes() == before
    assert sorted(p.name for p in store.root.iterdir()) == ["state.json", "state.lock"]
    assert store.write({"v": 1}, 0).version == 1


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    writer, reader = file_store(tmp_path), file_store(tmp_path)
    writer.create({"blob": ""})
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read_forever() -> None:
        while not stop.is_set():
            try:
                state = reader.read()
                assert state is not None and state.document["blob"] == "x" * (1000 * state.version)
                seen.append(state.version)
            except BaseException as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=read_forever)
    thread.start()
    for version in range(60):
        writer.write({"blob": "x" * (1000 * (version + 1))}, version)
    stop.set()
    thread.join(10)
    assert errors == [] and seen


def _increment_in_process(directory: str, times: int) -> None:
    increment(file_store(Path(directory)), times)


def test_concurrent_writers_in_threads_lose_no_update(tmp_path: Path) -> None:
    file_store(tmp_path).create({"count": 0})
    threads = [threading.Thread(target=increment, args=(file_store(tmp_path), 100)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    final = file_store(tmp_path).read()
    assert final is not None and final.document == {"count": 300} and final.version == 300


def test_concurrent_writers_in_processes_lose_no_update(tmp_path: Path) -> None:
    file_store(tmp_path).create({"count": 0})
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_increment_in_process, args=(str(tmp_path), 50)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
        assert p.exitcode == 0
    final = file_store(tmp_path).read()
    assert final is not None and final.document == {"count": 100} and final.version == 100


def test_file_leader_lock(tmp_path: Path) -> None:
    events: list[Leadership] = []
    first = file_store(tmp_path, identifier="first", on_leadership_change=events.append)
    second = file_store(tmp_path, identifier="second")
    assert first.acquire_leadership(timeout=1)
    assert first.acquire_leadership(timeout=1)  # already held: no-op
    assert first.may_act.is_set() and first.leadership is Leadership.LEADER
    assert (first.root / "leader.lock").read_text() == "first\n"
    started = time.monotonic()
    assert not second.acquire_leadership(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    assert not second.may_act.is_set()
    first.release_leadership()
    assert not first.may_act.is_set()
    assert events == [Leadership.LEADER, Leadership.NOT_LEADER]
    assert second.acquire_leadership(timeout=1)
    second.close()
    assert second.leadership is Leadership.NOT_LEADER
    with pytest.raises(StateStoreError, match="closed"):
        second.acquire_leadership(timeout=0)


def _store_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "es_framework.shell.state_store"]


def test_a_brief_lead_before_the_scheduler_leads_does_not_read_as_a_flapping_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Local mode's start: the previous run's nodes are released under the lock (a lead of its own),
    # then the scheduler takes the lock. The log said "leadership not_leader -> leader -> not_leader
    # -> leader"; now it says who took and released which lock, once each.
    caplog.set_level(logging.INFO)
    lock = tmp_path / "elasticsearch" / "mesos-ha" / "leader.lock"
    with file_store(tmp_path, identifier="release-step") as brief:
        assert brief.acquire_leadership(timeout=1)
    scheduler = file_store(tmp_path, identifier="scheduler")
    assert scheduler.acquire_leadership(timeout=1)
    scheduler.close()
    assert _store_lines(caplog) == [
        (logging.INFO, f"state store: release-step holds the leader lock {lock}"),
        (logging.INFO, f"state store: release-step released the leader lock {lock}"),
        (logging.INFO, f"state store: scheduler holds the leader lock {lock}"),
        (logging.INFO, f"state store: scheduler released the leader lock {lock}"),
    ]


def test_what_happens_to_the_lock_is_loud_and_its_return_is_said() -> None:
    from es_framework.shell.state_store.base import LeadershipTracker

    tracker = LeadershipTracker("state x", None)
    levels = []
    handler = logging.Handler()
    handler.emit = lambda record: levels.append((record.levelno, record.getMessage()))  # type: ignore[method-assign]
    logger = logging.getLogger("es_framework.shell.state_store")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        for status in (
            Leadership.LEADER,
            Leadership.SUSPENDED,
            Leadership.LEADER,
            Leadership.LOST,
            Leadership.NOT_LEADER,
        ):
            tracker.set(status)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert levels == [
        (logging.DEBUG, "state x: leadership not_leader -> leader"),
        (logging.WARNING, "state x: leadership leader -> suspended"),
        (logging.INFO, "state x: leadership suspended -> leader"),
        (logging.WARNING, "state x: leadership leader -> lost"),
        (logging.INFO, "state x: leadership lost -> not_leader"),
    ]


def test_file_leader_lock_ends_with_the_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib\n"
            "from es_framework.shell.state_store import FileStateStore\n"
            "s = FileStateStore(pathlib.Path(sys.argv[1]), 'elasticsearch', 'mesos-ha')\n"
            "assert s.acquire_leadership(timeout=5)\n"
            "print('leading', flush=True)\n"
            "sys.stdin.read()\n",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"leading\n"
        store = file_store(tmp_path)
        assert not store.acquire_leadership(timeout=0.1)
        holder.kill()
        holder.wait(10)
        assert store.acquire_leadership(timeout=5)
    finally:
        holder.kill()
        holder.wait(10)


def test_delete_removes_the_document_and_is_idempotent(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.create({"n": 1})
    store.delete()
    assert store.read() is None and not store.state_file.exists()
    store.delete()
    assert store.create({"n": 2}).version == 0
