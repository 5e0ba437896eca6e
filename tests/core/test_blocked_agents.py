"""Agents that failed an agent check (es_framework/core/blocked_agents.py): which failures count, the
block's life (record, extend, expire, clear, lost), the ``agent_check`` rule's decline and refusal,
and the status parsing that carries the executor's report."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.contract import AgentCheck, AgentCheckReport, NodeReport
from es_framework.core.blocked_agents import (
    DEFAULT_BLOCK_S,
    BlockedAgents,
    Source,
    agent_check_failure,
    checks_in_message,
    clock_text,
)
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.core.offers import parse_offer
from es_framework.core.plan import MAX_REFUSE_S, SHORT_REFUSE_S, plan_offer_cycle
from es_framework.core.status_updates import StatusUpdate, parse_status
from strategies import strategy_for
from tests.harness.builders import config, offer

T = "elasticsearch-node1-" + "0" * 32
MAP_COUNT = AgentCheck(
    "vm.max_map_count", "65530", "at least 262144", "on the agent: sysctl -w vm.max_map_count=262144"
)
NOFILE = AgentCheck("max file descriptors (RLIMIT_NOFILE)", "4096", "at least 65535", "LimitNOFILE=65535")
#: What an executor of the previous contract sends for Elasticsearch 8's exit 78 (executor/process.py
#: failure_message), quoting BootstrapChecks' MaxMapCountCheck.
OLD_EXECUTOR_78 = (
    "Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: max virtual memory areas "
    "vm.max_map_count [65530] is too low, increase to at least [262144]; for more information see [https://ela"
)
#: Elasticsearch 7's wording of several failures (one "[n]: …" line each), as a log tail carries them.
ES7_TAIL = (
    "Elasticsearch exited with code 78: ERROR: [3] bootstrap checks failed. Last log lines: "
    "[1]: max file descriptors [4096] for elasticsearch process is too low, increase to at least [65535] | "
    "[2]: max number of threads [1024] for user [elasticsearch] is too low, increase to at least [4096] | "
    "[3]: memory locking requested for elasticsearch process but memory is not locked"
)


def blocked(now: float = 1000.0, block_s: float = DEFAULT_BLOCK_S, agent: str = "a1") -> BlockedAgents:
    agents, new = BlockedAgents(block_s=block_s).block(agent, "host1", (MAP_COUNT,), node_id=1, task_id=T, now=now)
    assert new
    return agents


def failed_update(
    message: str | None = None, report: AgentCheckReport | None = None, state: TaskState = TaskState.FAILED
) -> StatusUpdate:
    return StatusUpdate(task_id=T, state=state, agent_id="a1", message=message, agent_checks=report)


# --- which failures count ------------------------------------------------------------------------


def test_the_executors_report_is_an_agent_check_failure() -> None:
    report = AgentCheckReport("host1", (MAP_COUNT, NOFILE))
    assert agent_check_failure(failed_update("agent host1 fails …", report)) == ((MAP_COUNT, NOFILE), Source.REPORT)


def test_elasticsearchs_exit_78_naming_an_agent_check_counts_for_an_older_executor() -> None:
    checks, source = agent_check_failure(failed_update(OLD_EXECUTOR_78)) or ((), None)
    assert source is Source.MESSAGE
    assert [(c.name, c.found, c.needed) for c in checks] == [("vm.max_map_count", "65530", "at least 262144")]
    assert "sysctl -w vm.max_map_count=262144" in checks[0].fix


def test_elasticsearch_7s_numbered_lines_name_each_agent_check_once_in_its_order() -> None:
    checks = checks_in_message(ES7_TAIL + " | " + ES7_TAIL.split("Last log lines: ")[1])
    assert [(c.name, c.found, c.needed) for c in checks] == [
        ("max file descriptors (RLIMIT_NOFILE)", "4096", "at least 65535"),
        ("max locked memory (RLIMIT_MEMLOCK)", "too low: memory is not locked", "unlimited"),
        ("max threads (RLIMIT_NPROC)", "1024", "at least 4096"),
    ]


def test_the_scheduler_and_the_executor_read_elasticsearchs_words_into_the_same_checks() -> None:
    from es_framework.executor.bootstrap_checks import parse_failures

    assert checks_in_message(ES7_TAIL) == parse_failures(ES7_TAIL.split(" | "))


@pytest.mark.parametrize(
    "message",
    [
        # A bootstrap check about the node's own settings fails on every agent: no agent is to blame.
        "Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: initial heap size [1] not equal "
        "to maximum heap size [2]; this can cause resize pauses",
        "Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: the default discovery settings "
        "are unsuitable for production use",
        # The words of a check, but no failed bootstrap: a warning in development mode, or any other exit.
        "Elasticsearch exited with code 1. Last log lines: max virtual memory areas vm.max_map_count [65530] is "
        "too low, increase to at least [262144]",
        "",
    ],
)
def test_other_failures_are_the_nodes_own(message: str) -> None:
    assert agent_check_failure(failed_update(message)) is None


@pytest.mark.parametrize("state", [TaskState.KILLED, TaskState.LOST, TaskState.FINISHED, TaskState.RUNNING])
def test_only_a_failed_task_blocks_its_agent(state: TaskState) -> None:
    report = AgentCheckReport("host1", (MAP_COUNT,))
    assert agent_check_failure(failed_update(OLD_EXECUTOR_78, report, state)) is None


def _wire(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_a_failed_status_carries_the_report_and_no_node_report() -> None:
    report = AgentCheckReport("host1", (MAP_COUNT,))
    raw = {"task_id": {"value": T}, "state": "TASK_FAILED", "agent_id": {"value": "a1"}, "data": _wire(report.encode())}
    update = parse_status(raw)
    assert update.agent_checks is not None
    assert update.agent_checks.checks == (MAP_COUNT,)
    assert update.agent_checks.agent == "host1"
    assert update.report is None


def test_only_a_failed_status_is_read_for_a_report() -> None:
    data = _wire(AgentCheckReport("host1", (MAP_COUNT,)).encode())
    raw = {"task_id": {"value": T}, "state": "TASK_RUNNING", "agent_id": {"value": "a1"}, "data": data}
    assert parse_status(raw).agent_checks is None
    # A node report in a failed status (never sent) is no agent-check report.
    node = _wire(NodeReport(cluster_uuid="u1").encode())
    assert parse_status({**raw, "state": "TASK_FAILED", "data": node}).agent_checks is None


# --- the block's life -----------------------------------------------------------------------------


def test_a_block_holds_until_the_backoff_has_passed_then_expires_once() -> None:
    agents = blocked(now=1000.0, block_s=600.0)
    block = agents.active("a1", 1599.9)
    assert block is not None and (block.since, block.until, block.node_id, block.task_id) == (1000.0, 1600.0, 1, T)
    assert agents.active("a2", 1000.0) is None
    assert agents.current(1599.9) == (block,)
    assert agents.expire(1599.9) == (agents, ())
    assert agents.active("a1", 1600.0) is None
    later, ended = agents.expire(1600.0)
    assert ended == (block,)
    assert later.blocks == {}
    assert later.expire(2000.0) == (later, ())


@given(
    block_s=st.floats(min_value=0.001, max_value=10 * 365 * 86400, allow_nan=False),
    since=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    after=st.floats(min_value=0, max_value=20 * 365 * 86400, allow_nan=False),
)
def test_a_block_is_in_force_exactly_until_its_end(block_s: float, since: float, after: float) -> None:
    agents = blocked(now=since, block_s=block_s)
    now = since + after
    in_force = now < since + block_s
    assert (agents.active("a1", now) is not None) is in_force
    remaining, ended = agents.expire(now)
    assert bool(ended) is not in_force
    assert ("a1" in remaining.blocks) is in_force


@given(
    block_s=st.floats(min_value=0.001, max_value=2 * 365 * 86400, allow_nan=False),
    after=st.floats(min_value=0, max_value=3 * 365 * 86400, allow_nan=False),
)
def test_a_blocked_agents_offer_is_refused_until_its_block_ends(block_s: float, after: float) -> None:
    cfg = config()
    since = 1_790_000_000.0
    agents = blocked(now=since, block_s=block_s, agent="agent-1-S0")
    now = since + after
    plan = plan_offer_cycle(
        ClusterState(desired_nodes=3), [parse_offer(offer(1))], cfg, now=now, strategy=strategy_for(cfg), agents=agents
    )
    if after >= block_s:
        assert len(plan.launches) == 1
        return
    (decline,) = plan.declines
    assert decline.rule == "agent_check"
    remaining = since + block_s - now
    # Back when the block ends (Mesos takes at most a year), never sooner than a short refusal.
    assert decline.refuse_seconds == max(SHORT_REFUSE_S, min(remaining, MAX_REFUSE_S))


def test_a_second_failure_extends_the_block_and_merges_the_checks_quietly() -> None:
    agents = blocked(now=1000.0, block_s=600.0)
    agents, new = agents.block("a1", "host1", (NOFILE, MAP_COUNT), node_id=2, task_id="t2", now=1100.0)
    assert not new
    block = agents.blocks["a1"]
    assert (block.since, block.until, block.node_id) == (1000.0, 1700.0, 1)
    assert block.checks == (MAP_COUNT, NOFILE)
    # After its end, a failure is news again.
    _, new = agents.block("a1", "host1", (MAP_COUNT,), node_id=2, task_id="t3", now=1700.0)
    assert new


def test_clearing_lifts_one_agents_block_only() -> None:
    agents = blocked(agent="a1")
    agents, _ = agents.block("a2", "host2", (NOFILE,), node_id=2, task_id="t2", now=1000.0)
    cleared, block = agents.clear("a1")
    assert block is not None and block.agent_id == "a1"
    assert cleared.active("a1", 1001.0) is None
    assert cleared.active("a2", 1001.0) is not None
    assert cleared.clear("a1") == (cleared, None)


def test_agents_that_offered_are_known_and_kept_whole() -> None:
    agents = BlockedAgents()
    seen = agents.offered([("a1", "host1"), ("a2", "host2")])
    assert dict(seen.seen) == {"a1": "host1", "a2": "host2"}
    assert seen.offered([("a1", "host1")]) is seen  # nothing new: the same value, nothing to publish
    assert seen.knows("a2") and not seen.knows("a3")
    assert blocked(agent="a3").knows("a3")


# --- what is said ---------------------------------------------------------------------------------


def test_the_decline_sentence_names_the_agent_the_values_the_end_and_the_fix() -> None:
    block = blocked(now=1_790_000_000.0, block_s=600.0).blocks["a1"]
    assert clock_text(block.until) == "14:23:20 UTC"
    assert block.sentence() == (
        "agent a1 (host1) failed vm.max_map_count is 65530, needs at least 262144; blocked until 14:23:20 UTC; "
        "fix: on the agent: sysctl -w vm.max_map_count=262144"
    )


def test_no_node_can_start_only_when_every_free_agent_that_offered_is_blocked() -> None:
    now = 1000.0
    agents = blocked(now=now).offered([("a1", "host1"), ("a2", "host2"), ("a3", "host3")])
    assert agents.no_start(now, 1) is None  # a2 and a3 may take the node
    assert agents.no_start(now, 1, busy={"a2", "a3"}) is not None
    assert agents.no_start(now, 0, busy={"a2", "a3"}) is None  # nothing missing
    agents, _ = agents.block("a2", "host2", (NOFILE,), node_id=2, task_id="t2", now=now)
    agents, _ = agents.block("a3", "host3", (MAP_COUNT,), node_id=3, task_id="t3", now=now)
    why = agents.no_start(now, 3)
    assert why is not None
    assert why.startswith("no node can start: 3 node(s) missing, and every agent that offered failed an agent check")
    assert "agent a2 (host2) failed max file descriptors (RLIMIT_NOFILE) is 4096, needs at least 65535" in why
    assert why.count("blocked until") == 3
    assert agents.no_start(now + DEFAULT_BLOCK_S, 3) is None
    assert BlockedAgents().no_start(now, 3) is None  # no agent offered yet: nothing to say about agents
