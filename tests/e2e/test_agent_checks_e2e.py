"""End to end: agents whose limits fail Elasticsearch's production-mode bootstrap checks. The real
``es-framework`` process and ZooKeeper; the development master's agents run the real executor as a
local process (demo nodes), each agent's executors getting its limits through the agent's
``--executor_environment_variables`` with the checks forced (``ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS``).

A short agent (``vm.max_map_count`` 65530, this machine's own value) fails its node once, with a
message naming the agent, the value and the fix; the scheduler blocks that agent, places the node on
another one without back-off, and says so in its log, ``/v1/cluster`` and ``/v1/agents``. With every
free agent short, ``/v1/cluster`` says why no node can start, and nothing is launched again.

The state lives in a file (``--frameworkStateUrl file://``): blocks are kept in the scheduler's memory,
so nothing here depends on the store, and the test runs where ZooKeeper is not installed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from es_framework.contract import (
    ENV_AGENT_MAX_FILE_DESCRIPTORS,
    ENV_AGENT_MAX_FILE_SIZE,
    ENV_AGENT_MAX_MAP_COUNT,
    ENV_AGENT_MAX_THREADS,
    ENV_AGENT_MAX_VIRTUAL_MEMORY,
    ENV_ENFORCE_BOOTSTRAP_CHECKS,
)
from es_framework.dev.devcluster import DevMaster
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, wait_for

SHORT_MAP_COUNT = "65530"


def agent_environment(max_map_count: str) -> tuple[tuple[str, str], ...]:
    """Every limit a production-mode node checks, as a well-prepared agent has them, but
    ``vm.max_map_count``; the checks forced even on the loopback address the agent binds."""
    return (
        (ENV_ENFORCE_BOOTSTRAP_CHECKS, "true"),
        (ENV_AGENT_MAX_MAP_COUNT, max_map_count),
        (ENV_AGENT_MAX_FILE_DESCRIPTORS, "65535"),
        (ENV_AGENT_MAX_THREADS, "4096"),
        (ENV_AGENT_MAX_VIRTUAL_MEMORY, "unlimited"),
        (ENV_AGENT_MAX_FILE_SIZE, "unlimited"),
    )


@contextlib.contextmanager
def agents_with(work: Path, max_map_counts: Sequence[str]) -> Iterator[DevMaster]:
    """One agent per ``vm.max_map_count``, in order (agent 1 is offered first), each mounting external
    volumes as a REX-Ray agent does, with two reserved ports for one demo node."""
    agents = [
        demo_agent(n, executor_environment_variables=agent_environment(count))
        for n, count in enumerate(max_map_counts, start=1)
    ]
    with demo_cluster(work, agents) as dev:
        yield dev


class _FileState:
    """Stands in for the ZooKeeper fixture: the scheduler's state goes to a file instead."""

    hosts = "unused"


def scheduler_for(master: DevMaster, tmp_path: Path, nodes: int) -> Scheduler:
    scheduler = Scheduler(master, _FileState(), new_cluster_name(), tmp_path, nodes)  # type: ignore[arg-type]
    scheduler.args[scheduler.args.index("--frameworkStateUrl") + 1] = f"file://{tmp_path / 'state'}"
    return scheduler


def get(scheduler: Scheduler, path: str) -> Any:
    try:
        answer = requests.get(scheduler.api + path, timeout=5)
        return answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def launches(master: DevMaster) -> list[tuple[str, str]]:
    """(task id, agent id) of every task the master ever took, live or ended."""
    return sorted({(t["task_id"], t["agent_id"]) for t in master.state()["tasks"]} | ended_tasks(master))


def ended_tasks(master: DevMaster) -> set[tuple[str, str]]:
    ended = set()
    for event in master.events(event_type="UPDATE"):
        status = event["update"]["status"]
        ended.add((status["task_id"]["value"], status["agent_id"]["value"]))
    return ended


def failed_messages(master: DevMaster) -> list[str]:
    """The message of each task that failed (once per task: an update resent before its
    acknowledgement is the same failure)."""
    failed = {
        e["update"]["status"]["task_id"]["value"]: e["update"]["status"].get("message", "")
        for e in master.events(event_type="UPDATE")
        if e["update"]["status"]["state"] == "TASK_FAILED"
    }
    return list(failed.values())


def test_a_short_agent_is_avoided_and_with_no_free_agent_left_the_cluster_says_why(tmp_path: Path) -> None:
    with agents_with(tmp_path / "work", [SHORT_MAP_COUNT, "262144", "262144"]) as master:
        scheduler = scheduler_for(master, tmp_path, 2)
        try:
            scheduler.start()
            placed = wait_for(
                "2 nodes running",
                lambda: (t := running_tasks(master)) and len(t) == 2 and t,
                scheduler,
                timeout=90,
            )
            # Node 1 went to agent 1 first (offered first), failed its checks there once, and runs on agent 3.
            assert sorted(t["agent_id"] for t in placed.values()) == ["agent2-S0", "agent3-S0"]
            on_short = [task for task, agent in launches(master) if agent == "agent1-S0"]
            assert len(on_short) == 1, launches(master)
            (failure,) = failed_messages(master)
            assert "127.0.0.1" in failure and "vm.max_map_count is 65530" in failure, failure
            assert "sysctl -w vm.max_map_count=262144" in failure, failure
            log = scheduler.log()
            assert "agent agent1-S0 (127.0.0.1) failed an agent check" in log
            assert "relaunches on another agent without back-off" in log
            assert "failed (bootstrap_check)" not in log  # never taken for the node's crash loop

            cluster = get(scheduler, "/v1/cluster")
            (blocked,) = cluster["blocked_agents"]
            assert (blocked["agent_id"], blocked["hostname"], blocked["node_id"]) == ("agent1-S0", "127.0.0.1", 1)
            assert [(c["name"], c["found"]) for c in blocked["checks"]] == [("vm.max_map_count", "65530")]
            assert cluster["start_blocked"] is None
            agents = {a["agent_id"]: a["blocked"] for a in get(scheduler, "/v1/agents")}
            assert agents["agent2-S0"] is None and agents["agent1-S0"]["message"] == blocked["message"]

            # A third node: the only agent without a node is the short one.
            answer = requests.put(scheduler.api + "/v1/cluster/elasticsearchNodes", json={"value": 3}, timeout=10)
            assert answer.status_code == 200, answer.text
            why = wait_for(
                "the cluster saying why node 3 cannot start",
                lambda: (c := get(scheduler, "/v1/cluster")) and c["start_blocked"],
                scheduler,
                timeout=30,
            )
            assert why.startswith("no node can start: 1 node(s) missing, and every agent that offered"), why
            assert "agent agent1-S0 (127.0.0.1) failed vm.max_map_count is 65530" in why
            assert "sysctl -w vm.max_map_count=262144" in why
            wait_for(
                "offers declined under agent_check",
                lambda: any(d["reason"] == "agent_check" for d in get(scheduler, "/v1/cluster")["declines"]),
                scheduler,
                timeout=30,
            )
            time.sleep(3)  # a few offer rounds: the short agent gets nothing more
            assert len([t for t, a in launches(master) if a == "agent1-S0"]) == 1
        finally:
            scheduler.stop()


def test_with_every_agent_short_nothing_runs_nothing_churns_and_the_cluster_says_why(tmp_path: Path) -> None:
    with agents_with(tmp_path / "work", [SHORT_MAP_COUNT] * 3) as master:
        scheduler = scheduler_for(master, tmp_path, 3)
        try:
            scheduler.start()
            # Until the third agent's node fails too, the cluster says so of the first two only.
            why = wait_for(
                "the cluster saying why none of the 3 nodes can start",
                lambda: (
                    (c := get(scheduler, "/v1/cluster")) and "3 node(s) missing" in (c["start_blocked"] or "") and c
                ),
                scheduler,
                timeout=60,
            )["start_blocked"]
            assert why.startswith("no node can start: 3 node(s) missing, and every agent that offered failed"), why
            for n in (1, 2, 3):
                assert f"agent agent{n}-S0 (127.0.0.{n}) failed vm.max_map_count is 65530" in why
            assert len(get(scheduler, "/v1/cluster")["blocked_agents"]) == 3
            before = launches(master)
            assert len(before) == 3 and not running_tasks(master)
            time.sleep(5)  # several offer rounds: every agent is refused, nothing is launched again
            assert launches(master) == before
            assert "none can start: every agent that offered failed an agent check" in scheduler.log()
        finally:
            scheduler.stop()
