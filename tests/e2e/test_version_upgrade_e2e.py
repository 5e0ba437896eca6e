"""A version upgrade 7.17 → 8.x through a rollout, and a downgrade refused, end to end: the real
``es-framework`` process with real ZooKeeper, the development master whose agents run the real
executor as a process with demo nodes of the version their image names (tests/harness/versioned_images.py).

Three master-eligible nodes on 7.17.24 hold replicated documents. The scheduler is started again
with the 8.15.1 image and ``--elasticsearchVersion 8.15.1``: the configuration rollout is a version
upgrade. After its first step the operator pauses it and creates an index: its primaries on the
upgraded node cannot have replicas on the 7.17 nodes (Elasticsearch's ``NodeVersionAllocationDecider``,
as the demo node plays it), so the cluster stays yellow until another node runs 8.x — and the
rollout, resumed, goes on while yellow (every primary assigned, nothing moving), where a rollout
that is no upgrade would wait for green for ever. Every node restarts once, not a document lost.
Then a scheduler started with 7.17.24 again (a downgrade) refuses to start, and the state is as it was."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.e2e.test_rolling_restart_e2e import cluster_of, green, node_get
from tests.harness.demo_agents import demo_agent
from tests.harness.demo_nodes import DEMO_COMMAND
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, stored_state, wait_for
from tests.harness.rollout_watch import MasterWatcher, api_json, finished_rollout
from tests.harness.versioned_images import ImageVersionBackend

OLD, NEW = "7.17.24", "8.15.1"
DOCS = 300
NODES = (1, 2, 3)
IMAGE = "example/es-mesos-elasticsearch:{}"
TOKEN = "version-upgrade-e2e-token"
IN_PROGRESS = {"draining", "restarting", "waiting-healthy"}


def versions(api: str) -> dict[int, str | None]:
    try:
        return {int(t["node_id"]): t.get("version") for t in api_json(api, "/v1/tasks")}
    except (requests.RequestException, ValueError):
        return {}


def current(api: str) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] | None = api_json(api, "/v1/rollouts")["current"]
    except (requests.RequestException, ValueError):
        return None
    return answer


def steps(rollout: dict[str, Any] | None) -> dict[int, str]:
    return {s["node_id"]: s["state"] for s in rollout["steps"]} if rollout else {}


def es(addresses: Sequence[str], method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of the first node that answers (plain HTTP: the Python client of 8.x asks for
    8.x compatibility, which a 7.17 node refuses)."""
    for address in addresses:
        with contextlib.suppress(requests.RequestException):
            response = requests.request(method, f"http://{address}{path}", timeout=10, **kwargs)
            if response.status_code < 300:
                return response.json()
    raise AssertionError(f"no node answered {method} {path}")


class CountingWatcher(MasterWatcher):
    """:class:`MasterWatcher` counting the documents straight from the nodes (their addresses stay: a node
    restarts on its agent with its ports), whichever version they run."""

    def __init__(self, master: DevMaster, api: str, addresses: Sequence[str]) -> None:
        self.addresses = list(addresses)
        super().__init__(master, api, NODES)

    def _count(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(AssertionError, KeyError, ValueError):
                self.counts.append(int(es(self.addresses, "GET", "/books/_count")["count"]))


def post(api: str, path: str) -> requests.Response:
    return requests.post(api + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def yellow_settled(api: str) -> dict[str, Any] | None:
    """Cluster health when yellow with unassigned replicas and nothing initialising or relocating."""
    try:
        h: dict[str, Any] = node_get(api, "/_cluster/health")
    except (AssertionError, requests.RequestException, ValueError):
        return None
    moving = h["initializing_shards"] or h["relocating_shards"]
    return h if h["status"] == "yellow" and h["unassigned_shards"] and not moving else None


def test_upgrade_from_7_17_to_8_goes_on_while_yellow_and_a_downgrade_is_refused(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    backend = ImageVersionBackend(tmp_path / "work", extra_env={"ELASTICSEARCH_COMMAND": DEMO_COMMAND})
    master = DevMaster(
        [demo_agent(n) for n in NODES], backend=backend, heartbeat_interval=1.0, status_update_resend_interval=1.0
    )
    master.start()
    cluster = new_cluster_name()
    scheduler = Scheduler(
        master,
        zookeeper,
        cluster,
        tmp_path,
        3,
        extra=("--elasticsearchMasterNodes", "3", "--apiTokenFile", str(token_file)),
    )
    image = scheduler.args.index("--elasticsearchNofile")
    scheduler.args[image:image] = ["--elasticsearchDockerImage", IMAGE.format(OLD)]
    api = scheduler.api
    try:
        scheduler.start()
        before = wait_for(
            "3 running nodes", lambda: (t := running_tasks(master)) and sorted(t) == list(NODES) and t, scheduler, 90
        )
        wait_for("a cluster of 3", lambda: cluster_of(api, 3), scheduler, 90)
        nodes = api_json(api, "/v1/cluster/endpoints")["http"]
        books = {"settings": {"number_of_shards": 3, "number_of_replicas": 1}}
        es(nodes, "PUT", "/books", json=books)
        bulk = "".join(
            json.dumps({"index": {"_index": "books", "_id": str(i)}}) + "\n" + json.dumps({"n": i}) + "\n"
            for i in range(DOCS)
        )
        answer = es(nodes, "POST", "/_bulk", data=bulk, headers={"Content-Type": "application/x-ndjson"})
        assert not answer["errors"] and len(answer["items"]) == DOCS
        es(nodes, "POST", "/books/_refresh")
        wait_for("green", lambda: green(api), scheduler, 60)
        wait_for(f"every node reporting {OLD}", lambda: set(versions(api).values()) == {OLD}, scheduler, 30)

        with CountingWatcher(master, api, nodes) as watcher:
            assert scheduler.signal(signal.SIGTERM) == 0
            scheduler.args[image + 1] = IMAGE.format(NEW)
            scheduler.args[image:image] = ["--elasticsearchVersion", NEW]
            scheduler.start()
            # Pause while the first step is under way (a restart takes seconds): it finishes, no other starts.
            first = wait_for(
                "the first step under way",
                lambda: (r := current(api)) and any(s in IN_PROGRESS for s in steps(r).values()) and r,
                scheduler,
                60,
            )
            assert post(api, f"/v1/rollouts/{first['id']}/pause").status_code == 200
            done = wait_for(
                "the first step done",
                lambda: (s := steps(current(api))) and set(s.values()) == {"done", "pending"} and s,
                scheduler,
                90,
            )
            (upgraded,) = [i for i, state in done.items() if state == "done"]
            wait_for(f"node {upgraded} reporting {NEW}", lambda: versions(api).get(upgraded) == NEW, scheduler, 30)
            assert f"it upgrades Elasticsearch {OLD} → {NEW} (yellow allowed)" in scheduler.log()

            # An index created now: its primaries on the 8.x node have no node of their version for a replica.
            es(nodes, "PUT", "/fresh", json={"settings": {"number_of_shards": 6, "number_of_replicas": 1}})
            wait_for("yellow, every primary assigned, nothing moving", lambda: yellow_settled(api), scheduler, 30)
            explained = node_get(api, "/_cluster/allocation/explain")  # the first unassigned copy
            assert explained["primary"] is False, explained
            assert f"since this is older than the primary version [{NEW}]" in str(explained), explained

            assert post(api, f"/v1/rollouts/{first['id']}/resume").status_code == 200
            upgraded_all = wait_for(
                "the upgrade to complete", lambda: finished_rollout(api, "configuration"), scheduler, 180
            )
            wait_for("green once every node runs 8.x", lambda: green(api), scheduler, 60)
        assert upgraded_all["state"] == "completed", upgraded_all
        assert (upgraded_all["done"], upgraded_all["total"]) == (3, 3), upgraded_all
        assert versions(api) == {i: NEW for i in NODES}
        after = running_tasks(master)
        for node_id in NODES:
            assert list(watcher.task_ids[node_id]) == [before[node_id]["task_id"], after[node_id]["task_id"]], node_id
        assert max(len(d) for _, d in watcher.down) == 1, [d for d in watcher.down if len(d[1]) > 1]
        assert watcher.counts and set(watcher.counts) == {DOCS}, set(watcher.counts)
        assert es(nodes, "GET", "/books/_count")["count"] == DOCS

        # A downgrade: refused at start, nothing written, the nodes untouched.
        stored = stored_state(zookeeper, cluster)
        assert scheduler.signal(signal.SIGTERM) == 0
        scheduler.args[scheduler.args.index(IMAGE.format(NEW))] = IMAGE.format(OLD)
        scheduler.args[scheduler.args.index(NEW)] = OLD
        scheduler.start()
        assert scheduler.wait(timeout=60) == 2  # refused: the flags must change first
        log = scheduler.log()
        assert f"the target Elasticsearch version ({OLD} from --elasticsearchVersion) is refused" in log, log[-3000:]
        assert f"runs Elasticsearch {NEW}, and the target {OLD} is older" in log
        assert stored_state(zookeeper, cluster) == stored
        assert {i: t["task_id"] for i, t in running_tasks(master).items()} == {
            i: t["task_id"] for i, t in after.items()
        }
    finally:
        scheduler.stop()
        master.stop()
