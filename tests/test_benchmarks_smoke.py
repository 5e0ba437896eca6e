"""The benchmark script runs on a fresh checkout (its figures are read by people, not asserted on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from es_framework.dev.zookeeper import ZooKeeperServer

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT.parent,  # not the repository root: the script must find the packages itself
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    keys = {figure["key"] for figure in report["figures"]}
    assert {"alloc.allocate_rate", "alloc.linearity_ratio", "alloc.bytes_per_id_capacity"} <= keys
    assert {"verdicts.n1000.external.ratio_accept", "verdicts.n1000.normal.ratio_decline"} <= keys
    assert all(isinstance(figure["value"], (int, float)) and figure["value"] > 0 for figure in report["figures"])


def test_quick_scheduler_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scheduler_bench.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT.parent,
    )
    assert result.returncode == 0, result.stderr
    keys = {figure["key"] for figure in json.loads(result.stdout)["figures"]}
    assert keys == {
        "reconcile.n100.unchanged",
        "reconcile.n100.changed",
        "reconcile.n100.changed_unbatched",
        "offers.n100.one_launch",
        "offers.n100.complete",
        "update.n100.unchanged",
        "update.n100.changed",
        "update.n100.changed_no_write",
        "write.n100.bytes_per_changed_update",
    }


def test_failover_load_benchmark_runs_against_the_sessions_zookeeper(zookeeper: ZooKeeperServer) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "failover_load.py"),
            *("--nodes", "30", "--repeats", "1", "--json", "--zookeeper", zookeeper.hosts),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT.parent,
    )
    assert result.returncode == 0, result.stderr
    figures = {figure["key"]: figure["value"] for figure in json.loads(result.stdout)["figures"]}
    assert {"failover.n30.total", "failover.n30.read", "failover.n30.rss", "failover.n30.cpu"} <= set(figures)
    assert figures["failover.n30.total"] >= figures["failover.n30.read"] > 0
    assert figures["failover.n30.rss"] > 0
