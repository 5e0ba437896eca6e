"""Local mode end to end: ``python -m es_framework --mesosMaster local`` as a real process, its
development cluster, executor processes and demo nodes; stopped with SIGTERM and started again on
the same work directory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from es_framework.config import LOCAL_MODE_WARNING
from es_framework.dev.demo_es.node import write_launcher
from es_framework.dev.local import leftover_processes
from tests.harness.e2e import ROOT, _env

ENDPOINT = re.compile(r"es_framework\.dev\.local: node (?P<id>\d+) (?P<url>http://\S+)$", re.M)

#: Local mode's agents offer fixed ports from 31000 (es_framework/dev/local.py), and its API listens on
#: 31100 by default: the tests that run it share one pytest-xdist worker (tests/conftest.py).
LOCAL_MODE_PORTS = pytest.mark.xdist_group("local-mode-ports")
pytestmark = LOCAL_MODE_PORTS


class LocalMode:
    def __init__(self, workdir: Path, log_dir: Path, *extra: str) -> None:
        self.extra = extra
        self.workdir = workdir
        self.log_dir = log_dir
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / "local-0.log"

    def start(self) -> None:
        self.runs += 1
        self.log_path = self.log_dir / f"local-{self.runs}.log"
        argv = [
            sys.executable,
            "-m",
            "es_framework",
            "--mesosMaster",
            "local",
            "--externalVolumeDriver",
            "rexray",
            "--elasticsearchNodes",
            "3",
            "--localWorkDir",
            str(self.workdir),
            "--elasticsearchNofile",
            "20000",
            *self.extra,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_env(None))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def endpoints(self) -> dict[int, str]:
        return {int(m["id"]): m["url"] for m in ENDPOINT.finditer(self.log())}

    def wait_for(self, what: str, predicate: Any, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"waiting for {what} (exit {self.process.poll()})\n--- log ---\n{self.log()[-6000:]}")
            time.sleep(0.2)

    def three_nodes(self) -> dict[int, dict[str, Any]]:
        """Each node's ``GET /`` and ``GET /_nodes`` once all three answer."""
        endpoints: dict[int, str] = self.wait_for(
            "three node endpoints in the log", lambda: self.endpoints() if len(self.endpoints()) >= 3 else None
        )
        assert sorted(endpoints) == [1, 2, 3]
        return {
            node_id: self.wait_for(f"node {node_id}", lambda u=url: _answers(u)) for node_id, url in endpoints.items()
        }

    def terminate(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        """Clean-up: SIGTERM (which stops every node), SIGKILL only if that hangs, then any leftovers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in leftover_processes(self.workdir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as response:
        document: dict[str, Any] = json.load(response)
        return document


def _answers(url: str) -> dict[str, Any] | None:
    try:
        return {"root": _get(url + "/"), "nodes": _get(url + "/_nodes")}
    except OSError:
        return None


def _stats_of(api: str, nodes: int) -> dict[str, Any] | None:
    """``GET /v1/es/_cluster/stats`` through the scheduler's proxy once it counts ``nodes`` nodes."""
    try:
        stats = _get(api + "/v1/es/_cluster/stats")
    except OSError:
        return None
    return stats if stats["nodes"]["count"]["total"] == nodes else None


def _own_node_id(answer: dict[str, Any]) -> str:
    """The demo node's persistent id (kept in its path.data) from its ``/_nodes``."""
    name = answer["root"]["name"]
    (node_id,) = [k for k, v in answer["nodes"]["nodes"].items() if v["name"] == name]
    return str(node_id)


def _put(url: str, document: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, json.dumps(document).encode("utf-8"), {"Content-Type": "application/json"}, method="PUT"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def _waiting(api: str, node_id: int) -> dict[str, Any] | None:
    """``waiting`` of ``GET /v1/cluster`` once it names ``node_id``."""
    try:
        waiting = _get(api + "/v1/cluster").get("waiting")
    except OSError:
        return None
    return waiting if waiting and waiting["node_ids"] == [node_id] else None


def test_local_mode_runs_stops_and_recovers(tmp_path: Path) -> None:
    workdir = tmp_path / "local work"  # a space, on purpose
    # Three agents for three nodes: a fourth node has nowhere to go (issue 15).
    local = LocalMode(workdir, tmp_path, "--localAgents", "3")
    try:
        local.start()
        first = local.three_nodes()
        log = local.log()
        assert LOCAL_MODE_WARNING in log and "WARNING es_framework.dev.local: local mode:" in log
        assert "containers are simulated: no Docker runs" in log
        # Local mode's own short hold of the lock (releasing the previous run's nodes) is not shown as
        # leadership flapping at start: the scheduler's hold is the one line.
        assert log.count("holds the leader lock") == 1 and "released the leader lock" not in log
        for node_id, answer in first.items():
            assert answer["root"]["name"] == f"elasticsearch{node_id}"
            assert answer["root"]["tagline"] == "es-mesos demo node — not Elasticsearch"
            assert answer["root"]["cluster_name"] == "mesos-ha"
        assert "elasticsearch1" in [n["name"] for n in first[1]["nodes"]["nodes"].values()]
        # The scheduler bootstraps the brand-new cluster once: the nodes find each other and form it.
        local.wait_for(
            "one cluster of three",
            lambda: all(
                len((_answers(u) or {}).get("nodes", {}).get("nodes", {})) == 3 for u in local.endpoints().values()
            ),
            timeout=60,
        )
        endpoints = local.endpoints()
        assert endpoints[1] == "http://127.0.0.1:31000"
        assert len({url.rsplit(":", 1)[1] for url in endpoints.values()}) == 3  # ports never clash

        # Issue 15: the README's proxy example answers, the mode says demo nodes, the events say
        # "demo node answers on", and a node beyond the agents says that it waits and why.
        api = "http://127.0.0.1:31100"
        stats = local.wait_for("cluster stats of three", lambda: _stats_of(api, 3), timeout=30)
        assert stats["cluster_name"] == "mesos-ha" and stats["status"] in ("green", "yellow")
        cluster = _get(api + "/v1/cluster")
        assert (cluster["mode"], cluster["demo_nodes"]) == ("local", True)
        assert cluster["mode_label"] == "local mode · demo nodes, not Elasticsearch"
        events = [e["message"] for e in cluster["events"]]
        assert any("demo node answers on 127.0.0.1:" in m for m in events), events
        assert not any("Elasticsearch answers on" in m for m in events), events
        assert _put(api + "/v1/cluster/elasticsearchNodes", {"value": 4}) == 200
        waiting = local.wait_for("node 4 waiting", lambda: _waiting(api, 4))
        # Each agent has room for one node: a busy agent offers nothing, and the answer says why.
        why = "no offer fits: all 3 known agent(s) run 1 node(s) each already (--maxNodesPerAgent 1)"
        assert why in waiting["message"], waiting
        assert f"INFO es_framework.core.engine: node 4 waiting for an offer: {why}" in local.log()
        assert _put(api + "/v1/cluster/elasticsearchNodes", {"value": 3}) == 200
        local.wait_for("nothing waiting", lambda: _get(api + "/v1/cluster")["waiting"] is None)

        volumes = workdir / "volumes"
        assert sorted(p.name for p in volumes.iterdir()) == [
            f"elasticsearch{n}{kind}" for n in (1, 2, 3) for kind in ("config", "data")
        ]
        (volumes / "elasticsearch2data" / "kept.txt").write_text("written in the first run")
        assert leftover_processes(workdir)  # the executors and nodes run in its sandboxes

        assert local.terminate() == 0
        assert "local mode stopped" in local.log()
        assert leftover_processes(workdir) == []
        for url in endpoints.values():
            assert _answers(url) is None

        local.start()
        second = local.three_nodes()
        assert "released node(s) [1, 2, 3] of the previous local run" in local.log()
        for node_id in (1, 2, 3):
            assert second[node_id]["root"]["name"] == f"elasticsearch{node_id}"
            # The same data directory: the demo node's persistent id is the same.
            assert _own_node_id(second[node_id]) == _own_node_id(first[node_id])
        assert (volumes / "elasticsearch2data" / "kept.txt").read_text() == "written in the first run"
        assert local.log().count("holds the leader lock") == 1
        assert local.terminate(signal.SIGINT) == 0  # Ctrl-C
        log = local.log()
        assert "interrupted" in log and "local mode stopped" in log
        # Ctrl-C stops every node in local mode, and the log says so: nothing claims they keep running,
        # and the driver this scheduler stopped is no disconnection to warn about.
        assert "keep running" not in log and "disconnected from the Mesos master" not in log
        assert "local mode stops the development master and every executor and node next" in log
        assert leftover_processes(workdir) == []
    finally:
        local.stop()


def test_local_mode_cleans_up_after_a_run_that_was_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the executors and nodes running (their own sessions); the next start kills them
    and launches nodes 1..3 again."""
    workdir = tmp_path / "work"
    local = LocalMode(workdir, tmp_path)
    try:
        local.start()
        local.three_nodes()
        assert local.process is not None
        local.process.kill()
        local.process.wait(timeout=10)
        orphans = leftover_processes(workdir)
        assert orphans
        local.start()
        second = local.three_nodes()
        assert sorted(second) == [1, 2, 3]
        log = local.log()
        assert all(f"killing process {pid}, left over in {workdir}" in log for pid in orphans)
        assert not set(orphans) & set(leftover_processes(workdir))
    finally:
        local.stop()


def test_local_mode_runs_elasticsearch_from_a_directory(tmp_path: Path) -> None:
    """--elasticsearchBinaryUrl naming a directory with bin/elasticsearch (here the demo node's launcher
    stands in for an Elasticsearch distribution), under the Mesos containerizer and the normal
    strategy (an empty --externalVolumeDriver): each agent keeps its own data."""
    home = tmp_path / "elasticsearch-8.15.0"
    launcher = write_launcher(home)
    workdir = tmp_path / "work"
    flags = ("--frameworkUseDocker", "false", "--elasticsearchBinaryUrl", str(home), "--externalVolumeDriver=")
    local = LocalMode(workdir, tmp_path, *flags)
    try:
        local.start()
        nodes = local.three_nodes()
        assert all(nodes[n]["root"]["name"] == f"elasticsearch{n}" for n in (1, 2, 3))
        assert f"the nodes run {launcher}" in local.log()
        assert "containers are simulated: no Docker runs;" in local.log()
        assert sorted(p.name for p in (workdir / "hostpaths").iterdir()) == [
            "local-agent1",
            "local-agent2",
            "local-agent3",
        ]
        assert local.terminate() == 0
        assert leftover_processes(workdir) == []
    finally:
        local.stop()
