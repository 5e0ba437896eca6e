"""The chaos run's table (and the same as JSON): faults by kind, checks made, violations,
convergence times, the seed; the last line is always ``violations: N``."""

from __future__ import annotations

import json
from typing import Any

from es_framework.dev.chaos.faults import FaultKind
from es_framework.dev.chaos.runner import RunResult


def as_json(result: RunResult) -> dict[str, Any]:
    stats = result.convergence_stats()
    return {
        "seed": result.options.seed,
        "faults": result.options.faults,
        "nodes": result.options.nodes,
        "agents": result.options.agents,
        "mode": result.options.mode,
        "zookeeper_session_timeout_ms": result.session_timeout_ms,
        "faults_by_kind": {k.name: result.faults_by_kind.get(k.name, 0) for k in FaultKind},
        "skipped_by_kind": {k: v for k, v in sorted(result.skipped_by_kind.items())},
        "seconds_by_kind": {k.name: round(result.seconds_by_kind.get(k.name, 0.0), 1) for k in FaultKind},
        "delay_s": round(result.delay_s, 1),
        "checks": dict(sorted(result.checks.items())),
        "convergence_s": None
        if stats is None
        else {"min": round(stats[0], 2), "median": round(stats[1], 2), "max": round(stats[2], 2)},
        "documents": result.documents,
        "checkpoints_not_green": result.not_green,
        "store_unreachable_exits": result.store_unreachable_exits,
        "overlapped": result.overlapped,
        "scheduler_kills": result.kills,
        "forced_kills": result.forced_kills,
        "rollouts_at_end": dict(sorted(result.rollouts.items())),
        "elapsed_s": round(result.elapsed_s, 1),
        "stopped_after": result.stopped_after,
        "violation_details": result.details,
        "replay": result.options.replay(),
        "violations": len(result.violations),
    }


def table(result: RunResult) -> str:
    doc = as_json(result)
    lines = [
        f"chaos run: seed {doc['seed']}, {doc['faults']} faults, {doc['nodes']} nodes, {doc['agents']} agents, "
        f"{doc['mode']} mode",
        f"ZooKeeper session timeout shortened to {doc['zookeeper_session_timeout_ms']} ms "
        "(--zookeeperMesosTimeout) for the run",
        "",
        f"{'fault':<24} {'injected':>8} {'no-op':>6} {'mean s':>7}  what",
    ]
    for kind in FaultKind:
        count = doc["faults_by_kind"][kind.name]
        mean = f"{doc['seconds_by_kind'][kind.name] / count:.2f}" if count else "-"
        skipped = doc["skipped_by_kind"].get(kind.name, 0)
        lines.append(f"{kind.name:<24} {count:>8} {skipped:>6} {mean:>7}  {kind.value}")
    lines.append(
        "(mean s: from injection until converged again, or until the next fault when that one overlapped it; "
        f"the random delays before the faults: {doc['delay_s']:.0f} s; faults injected on top of the one before, "
        f"without a convergence wait: {doc['overlapped']})"
    )
    lines += ["", f"{'invariant':<24} {'checks':>8}"]
    for name, count in doc["checks"].items():
        lines.append(f"{name:<24} {count:>8}")
    rollouts = ", ".join(f"{state} {count}" for state, count in doc["rollouts_at_end"].items()) or "none"
    lines.append(
        f"(KILLs by the scheduler: {doc['scheduler_kills']}, {doc['forced_kills']} of them forced by the faults; "
        f"rollouts at the end: {rollouts})"
    )
    if doc["store_unreachable_exits"]:
        lines.append(
            f"(schedulers that exited at their start because ZooKeeper did not answer within 15 s, and were "
            f"started again: {doc['store_unreachable_exits']})"
        )
    if doc["mode"] == "process":
        lines.append(
            f"(documents indexed before the faults: {doc['documents']}; checkpoints not counted because the "
            f"cluster was not green in time: {doc['checkpoints_not_green']})"
        )
    conv = doc["convergence_s"]
    lines.append("")
    lines.append(
        "convergence after a fault: "
        + (
            "none measured"
            if conv is None
            else f"min {conv['min']:.2f} s, median {conv['median']:.2f} s, max {conv['max']:.2f} s"
        )
    )
    injected = sum(doc["faults_by_kind"].values())
    rate = f" ({doc['elapsed_s'] / injected:.2f} s per fault)" if injected else ""
    lines.append(f"elapsed: {doc['elapsed_s']:.0f} s{rate}; replay: {doc['replay']}")
    if doc["stopped_after"] is not None:
        lines.append(f"STOPPED after fault {doc['stopped_after']}: the cluster did not converge")
    for detail in doc["violation_details"]:
        lines += ["", detail]
    lines.append(f"violations: {doc['violations']}")
    return "\n".join(lines)


def as_json_text(result: RunResult) -> str:
    return json.dumps(as_json(result), indent=2)
