"""The day-2 operations' flags, a part of the flag table (:data:`es_framework.config.flags.FLAGS`):
the disruption planner's budget and the rollout step's time limit (:mod:`es_framework.core.disruption`,
:mod:`es_framework.core.engine_rollouts`), agent-check back-off, automatic replacement."""

from __future__ import annotations

from es_framework.config.flag_spec import FlagSpec
from es_framework.config.parsers import parse_bool, parse_int_in, parse_positive_number, parse_seconds_or_off

DAY2_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "maxUnavailable",
        "max_unavailable",
        "1",
        lambda t: parse_int_in(t, 1, what="a whole number of nodes"),
        "Most nodes that may be unavailable at once (restarting, draining or missing), counted across scale-down "
        "drains, rollout steps, restarts, replacements and maintenance.",
        "N",
    ),
    FlagSpec(
        "rolloutStepTimeout",
        "rollout_step_timeout_s",
        "1800",
        lambda t: parse_positive_number(t, unit=" (seconds)"),
        "Seconds one rollout step may take (drain, restart, back healthy) before it fails and pauses its rollout; "
        "the rollout never moves on while a node is away. Default 30 minutes.",
        "SECONDS",
    ),
    FlagSpec(
        "agentFailureBackoff",
        "agent_failure_backoff_s",
        "600",
        lambda t: parse_positive_number(t, unit=" (seconds)"),
        "Seconds an agent that failed an agent check (vm.max_map_count, file descriptors, threads, memory lock) "
        "gets no node, unless the operator clears it first (DELETE /v1/agents/<id>/failures); default 10 minutes.",
        "SECONDS",
    ),
    FlagSpec(
        "permanentFailureTimeout",
        "permanent_failure_timeout_s",
        "0",
        parse_seconds_or_off,
        "Seconds a node may stay unreachable (or unknown to Mesos) before it is replaced automatically; 0 (the "
        "default) turns automatic replacement off. It is replaced only once Mesos reports its task gone, or "
        "after the scheduler marked its agent gone (--markAgentGoneAfterTimeout).",
        "SECONDS",
    ),
    FlagSpec(
        "markAgentGoneAfterTimeout",
        "mark_agent_gone_after_timeout",
        "false",
        parse_bool,
        "With --permanentFailureTimeout: mark the agent of a node unreachable past the timeout gone in Mesos "
        "(MARK_AGENT_GONE, which cannot be undone) and replace the node. Off: only an operator does that.",
        "BOOL",
    ),
    FlagSpec(
        "replacementInterval",
        "replacement_interval_s",
        "300",
        lambda t: parse_positive_number(t, unit=" (seconds)"),
        "Least seconds between two automatic replacements (one is in flight at a time); default 5 minutes.",
        "SECONDS",
    ),
)
