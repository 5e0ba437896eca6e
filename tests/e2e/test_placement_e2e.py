"""Placement end to end: the real ``es-framework`` process, real ZooKeeper and the development Mesos
master with agents that carry attributes: GROUP_BY spreads nodes over zones, UNLIKE keeps nodes off an
agent, and an agent without the storage attribute never gets a node. Each scenario's agents are
listed so that today's offer order alone (agent 1 first) would place the nodes wrongly."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import requests

from es_framework.dev.devcluster import AgentSpec, DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, wait_for


@contextlib.contextmanager
def master_with(specs: Sequence[AgentSpec]) -> Iterator[DevMaster]:
    dev = DevMaster(list(specs), heartbeat_interval=1.0, status_update_resend_interval=1.0).start()
    try:
        yield dev
    finally:
        dev.stop()


def agent(i: int, **attributes: str) -> AgentSpec:
    return AgentSpec(
        id=f"agent{i}-S0", hostname=f"agent{i}.example.com", cpus=4, mem=8192, attributes=tuple(attributes.items())
    )


def running(master: DevMaster, count: int) -> dict[int, str] | None:
    """Node id -> agent id once exactly ``count`` nodes run."""
    tasks = running_tasks(master)
    return {n: t["agent_id"] for n, t in tasks.items()} if len(tasks) == count else None


def declined_rules(scheduler: Scheduler) -> set[str]:
    try:
        return {d["reason"] for d in requests.get(scheduler.api + "/v1/cluster", timeout=5).json()["declines"]}
    except (requests.RequestException, ValueError, KeyError):
        return set()


def test_group_by_zone_spreads_four_nodes_two_and_two(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    # Four agents in zone a come first, two in zone b: in offer order all four nodes would go to a.
    specs = [agent(i, zone="a") for i in range(1, 5)] + [agent(i, zone="b") for i in range(5, 7)]
    zone_of = {s.id: dict(s.attributes)["zone"] for s in specs}
    with master_with(specs) as master:
        scheduler = Scheduler(
            master, zookeeper, new_cluster_name(), tmp_path, nodes=4, extra=("--constraints", "zone:GROUP_BY:2")
        )
        try:
            scheduler.start()
            placed = wait_for("4 nodes running", lambda: running(master, 4), scheduler)
            assert Counter(zone_of[a] for a in placed.values()) == {"a": 2, "b": 2}, placed
        finally:
            scheduler.stop()


def test_unlike_and_the_storage_attribute_keep_nodes_off_agents(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    # Agent 1 cannot attach REX-Ray volumes, agent 2 is excluded by name; agents 3-5 take the nodes.
    specs = [agent(1), agent(2, rexray="true"), *(agent(i, rexray="true") for i in range(3, 6))]
    with master_with(specs) as master:
        scheduler = Scheduler(
            master,
            zookeeper,
            new_cluster_name(),
            tmp_path,
            nodes=3,
            extra=(
                "--externalVolumeAttribute",
                "rexray:true",
                "--constraints",
                "hostname:UNLIKE:agent2\\..*",
            ),
        )
        try:
            scheduler.start()
            placed = wait_for("3 nodes running", lambda: running(master, 3), scheduler)
            assert sorted(placed.values()) == ["agent3-S0", "agent4-S0", "agent5-S0"]
            # The declines are counted under the rules that made them.
            wait_for(
                "declines by volume_attribute and constraints",
                lambda: {"volume_attribute", "constraints"} <= declined_rules(scheduler),
                scheduler,
                timeout=15,
            )
            launched = {t["agent_id"] for t in master.state()["tasks"]}
            assert not launched & {"agent1-S0", "agent2-S0"}
        finally:
            scheduler.stop()
