"""``--volumeRetention delete`` end to end in local mode (the real ``es-framework`` process, its
development cluster, executor processes and demo nodes): a scale-down drains the leaving node, stops
it, and only then removes exactly its two volumes through a volume task (a Mesos command task
running ``docker volume rm``, answered by the development agent's stand-in driver); the kept nodes'
volumes stay, and the inventory says what happened."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from es_framework.dev.ports import free_port
from tests.e2e.test_local_mode import LOCAL_MODE_PORTS, LocalMode
from tests.e2e.test_scaling_e2e import DRAINED, KILLING, api_json, running_ids

pytestmark = LOCAL_MODE_PORTS

REMOVING = re.compile(r"node 4 task (\S+): removing volumes elasticsearch4config, elasticsearch4data")
REMOVED = re.compile(r"node 4's volumes elasticsearch4config, elasticsearch4data were removed")


def test_scale_down_removes_exactly_the_leaving_nodes_volumes_after_its_drain(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    work = tmp_path / "work"
    local = LocalMode(
        work,
        tmp_path,
        "--localAgents",
        "5",
        "--webUiPort",
        str(port),
        "--elasticsearchNodes",
        "4",
        "--volumeRetention",
        "delete",
    )
    volumes = work / "volumes"
    try:
        local.start()
        local.wait_for("4 running nodes", lambda: running_ids(api) == [1, 2, 3, 4], timeout=90)
        names = {f"elasticsearch{n}{role}" for n in range(1, 5) for role in ("config", "data")}
        local.wait_for("8 volumes", lambda: names <= {p.name for p in volumes.iterdir()}, timeout=30)

        answer = requests.put(api + "/v1/cluster/elasticsearchNodes", json={"value": 3}, timeout=30)
        assert answer.status_code == 200, answer.text
        local.wait_for("node 4's volumes removed", lambda: REMOVED.search(local.log()), timeout=120)

        left = {p.name for p in volumes.iterdir()}
        assert names - left == {"elasticsearch4config", "elasticsearch4data"}, sorted(left)
        assert running_ids(api) == [1, 2, 3]
        log = local.log()
        drained = [m.start() for m in DRAINED.finditer(log) if m.group(1) == "4"]
        killed = [m.start() for m in KILLING.finditer(log) if m.group(1) == "4"]
        removing = [m.start() for m in REMOVING.finditer(log)]
        assert drained and killed and removing, log[-4000:]
        assert drained[0] < killed[0] < removing[0], "the volumes went before the drain and the stop"
        assert len(removing) == 1  # one task did it, and nothing else was removed

        # The engine logs the removal while it handles the status update; the API shows the state it
        # publishes once the update is handled and written, a moment later.
        def removed_rows() -> dict[tuple[int, str], Any] | None:
            rows = {(r["node_id"], r["role"]): r for r in api_json(api, "/v1/volumes")["volumes"]}
            return rows if rows[(4, "data")]["removed_at"] and rows[(4, "config")]["removed_at"] else None

        rows = local.wait_for("the removal in /v1/volumes", removed_rows, timeout=10)
        assert rows[(4, "data")]["removal_status"] == "removed" and rows[(4, "data")]["removal_attempts"] == 1
        assert not any(rows[(n, role)]["removed_at"] for n in (1, 2, 3) for role in ("config", "data"))
    finally:
        local.stop()
