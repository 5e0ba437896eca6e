"""The chaos runner's faults of Mesos itself, injected through the development master's fault switches
(:mod:`es_framework.dev.devcluster.faults`) and its operator API: status updates duplicated, delayed
and reordered across tasks; offers rescinded, also just after they were sent; malformed and enormous
offers among good ones; a maintenance window on an agent that runs a node; a master failover.

A converged cluster sends no status updates and takes no offers, so each switch's window opens with
a node's task failing (as :data:`~.kinds.FaultKind.KILL_TASK` does): its TASK_FAILED, the relaunch's
offers and the new task's TASK_STARTING and TASK_RUNNING all pass through the window.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from es_framework.dev.chaos import invariants as inv
from es_framework.dev.chaos.kinds import CheckLost, Fault, Outcome
from es_framework.dev.chaos.world import World, running_nodes
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.faults import FaultSwitches

#: How long a switch stays on: at least this, plus up to :data:`WINDOW_SPREAD_S` (the seed's choice).
#: With fake executors a failed node's TASK_FAILED, the relaunch's offers and its TASK_STARTING and
#: TASK_RUNNING all pass within about 0.1 s, so half a second holds them; a demo node takes seconds
#: to start (``PROCESS_WINDOW_*``).
WINDOW_MIN_S = 0.5
WINDOW_SPREAD_S = 0.5
PROCESS_WINDOW_MIN_S = 1.0
PROCESS_WINDOW_SPREAD_S = 1.0
#: Per forwarded update: the chance of a second copy, and (per copy) of a delay of up to
#: :data:`MAX_UPDATE_DELAY_S`.
UPDATE_CHANCE = 0.5
MAX_UPDATE_DELAY_S = 1.0
#: Per offer sent: the chance it is rescinded at once, or that a malformed copy joins it.
RESCIND_CHANCE = 0.5
MALFORMED_CHANCE = 0.6
#: How long the runner waits for the scheduler to decline the malformed offers of a window.
DECLINE_WAIT_S = 10.0
#: The maintenance window starts this long after it is scheduled (at least the minimum, plus up to
#: the spread: the seed's choice), and lasts an hour. With fake executors the scheduler cannot move a
#: node off before the window (its disruption planner fails closed without Elasticsearch), so the lead
#: is only the time to see the window in offers and inverse offers; with demo nodes the planner may
#: start the move, so the lead is longer.
MAINTENANCE_LEAD_S = (0.3, 1.0)
PROCESS_MAINTENANCE_LEAD_S = (2.0, 3.0)
MAINTENANCE_DURATION_S = 3600
#: A failed-over master answers nothing for up to this long.
MASTER_DOWN_MAX_S = 1.0


def _counts(world: World) -> Counter[str]:
    counts: Counter[str] = world.master.faults(lambda f: Counter(f.counts))
    return counts


def _fail_nodes(world: World, fault: Fault, how_many: int) -> list[str]:
    """Fail ``how_many`` running nodes' tasks (chosen by the seed); what was failed, for the history."""
    nodes = list(running_nodes(world))
    failed = []
    for n in range(min(how_many, len(nodes))):
        node_id, task_id = nodes[(fault.pick + n) % len(nodes)]
        try:
            world.kill_task(task_id)
        except (LookupError, ValueError):
            continue
        failed.append(f"node {node_id} task {task_id}")
    return failed


def _window(world: World, fault: Fault) -> float:
    if world.processes is not None:
        return PROCESS_WINDOW_MIN_S + PROCESS_WINDOW_SPREAD_S * fault.chance[0]
    return WINDOW_MIN_S + WINDOW_SPREAD_S * fault.chance[0]


def _done(counts: Counter[str], *names: str) -> str:
    return ", ".join(f"{counts[n]} {n}" for n in names)


def status_chaos(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """For 1–2 s the master duplicates and delays forwarded status updates (one or two tasks failing
    in it): one task's updates keep their order, updates of different tasks overtake each other."""
    before = _counts(world)
    window = _window(world, fault)
    until = time.monotonic() + window
    world.master.faults(lambda f: f.status_chaos(until, UPDATE_CHANCE, MAX_UPDATE_DELAY_S, fault.pick))
    failed = _fail_nodes(world, fault, 2 if fault.chance[1] < 0.5 else 1)
    time.sleep(max(0.0, until - time.monotonic()))
    deadline = time.monotonic() + MAX_UPDATE_DELAY_S + 1.0
    while world.master.faults(FaultSwitches.held_updates) and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = _counts(world) - before
    done = _done(counts, "duplicated", "delayed", "reordered")
    return Outcome(
        f"status updates for {window:.1f} s, {', '.join(failed) or 'no node'} failed: {done}",
        skipped=not (counts["duplicated"] or counts["delayed"]),
    )


def rescind_offers(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """Every outstanding offer rescinded; then for 1–2 s (a node failing in it) each offer sent is
    rescinded at once with probability 1/2: the scheduler's ACCEPT may name an offer already gone."""
    before = _counts(world)
    window = _window(world, fault)
    until = time.monotonic() + window
    world.master.faults(lambda f: f.rescind_chaos(until, RESCIND_CHANCE, fault.pick))
    outstanding = world.master.rescind_offers()
    failed = _fail_nodes(world, fault, 1)
    time.sleep(max(0.0, until - time.monotonic()))
    rescinded = (_counts(world) - before)["rescinded"]
    return Outcome(
        f"{outstanding} outstanding offer(s) rescinded, then {rescinded - outstanding} just after sending "
        f"in {window:.1f} s ({', '.join(failed) or 'no node'} failed)",
        skipped=rescinded == 0,
    )


def malformed_offers(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """For 1–2 s (a node failing in it) malformed copies join the good offers, and some good ones are
    enormous; then every malformed one with an id must be declined, none accepted."""
    start = world.master.faults(lambda f: len(f.malformed_offers))
    before = _counts(world)
    window = _window(world, fault)
    until = time.monotonic() + window
    world.master.faults(lambda f: f.malformed_chaos(until, MALFORMED_CHANCE, fault.pick))
    failed = _fail_nodes(world, fault, 1)
    time.sleep(max(0.0, until - time.monotonic()))
    deadline = time.monotonic() + DECLINE_WAIT_S
    while True:
        sent = world.master.faults(lambda f: _sent_malformed(f, start))
        found = inv.malformed_offers_declined(sent)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    counts = _counts(world) - before
    variants = Counter(s.variant for s in sent)
    declined = sum(s.declined for s in sent)
    status, cluster = world.api("GET", "/v1/cluster")
    named = _declines(cluster, "malformed") if status == 200 else "unknown"
    return Outcome(
        f"{len(sent)} malformed offer(s) ({', '.join(f'{v}: {n}' for v, n in sorted(variants.items())) or 'none'}), "
        f"{declined} declined; {counts['enormous']} enormous; the leader counts {named} `malformed` declines "
        f"({', '.join(failed) or 'no node'} failed)",
        skipped=not sent and not counts["enormous"],
        checks=Counter({inv.MALFORMED_OFFERS_DECLINED: 1}),
        violations=found,
    )


def _sent_malformed(switches: FaultSwitches, start: int) -> list[inv.SentMalformed]:
    return [
        inv.SentMalformed(o.offer_id, o.variant, o.declined, o.accepted, not o.subscription.closed)
        for o in switches.malformed_offers[start:]
    ]


def _declines(cluster: Any, reason: str) -> str:
    for row in cluster.get("declines", []) if isinstance(cluster, dict) else []:
        if row.get("reason") == reason:
            return str(row.get("count"))
    return "0"


def maintenance_window(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """A window on an agent that runs a node, starting in 0.3–1 s (2–3 s in ``process`` mode, where the
    scheduler may move the node off first); once it starts the machine goes down (START_MAINTENANCE:
    its task is lost and must be relaunched elsewhere; in ``process`` mode its executor processes are
    killed with it), then comes back up (STOP_MAINTENANCE) once every node runs elsewhere. Only while
    the other agents can run every node."""
    by_agent = world.running_by_agent()
    candidates = sorted(by_agent)
    if not candidates or len(world.usable_agents()) - 1 < world.desired:
        return Outcome("no agent to take down: the others could not run every node", skipped=True)
    agent_id = candidates[fault.pick % len(candidates)]
    spec = world.master.agent_spec(agent_id)
    assert spec is not None
    machine = {"hostname": spec.hostname, "ip": spec.ip}
    held = ", ".join(f"node {n} task {t}" for n, t in sorted(by_agent[agent_id]))
    low, high = PROCESS_MAINTENANCE_LEAD_S if world.processes is not None else MAINTENANCE_LEAD_S
    start_ns = time.time_ns() + int((low + (high - low) * fault.chance[0]) * 1e9)
    window = {
        "machine_ids": [machine],
        "unavailability": {
            "start": {"nanoseconds": start_ns},
            "duration": {"nanoseconds": MAINTENANCE_DURATION_S * 10**9},
        },
    }
    steps: list[str] = []
    found: list[inv.Violation] = []
    try:
        world.master.maintenance_call(
            {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [window]}}}
        )
        steps.append("scheduled")
        time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9))
        moved = agent_id not in world.running_by_agent()
        steps.append("node moved before the window" if moved else "node still there at the window")
        # The machine goes down: in ``process`` mode its executor processes die first (Mesos' master
        # tells the agent to shut down, and it kills every executor), so that no demo node on it outlives
        # its task's end in the ledger, holding its volume while the node starts elsewhere.
        world.kill_agent_processes(agent_id)
        world.master.maintenance_call({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [machine]}})
        down = time.monotonic()
        relaunched = _wait_relaunched(world, agent_id)
        if relaunched:
            steps.append(f"machine down, every node running elsewhere after {time.monotonic() - down:.1f} s")
        else:
            steps.append(f"machine down, NOT every node running elsewhere after {RELAUNCH_WAIT_S:.0f} s")
            found.append(
                inv.Violation(
                    inv.IDS_EXACT,
                    f"agent {agent_id} down for maintenance ({held}): nodes 1..{world.desired} not all running "
                    f"elsewhere within {RELAUNCH_WAIT_S:.0f} s",
                )
            )
        world.master.maintenance_call({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [machine]}})
        steps.append("machine up")
    except CallError as refused:
        steps.append(f"refused: {refused}")
    return Outcome(f"agent {agent_id} ({held}): {', '.join(steps)}", violations=found)


#: How long the nodes of a machine taken down may take to run elsewhere.
RELAUNCH_WAIT_S = 30.0


def _wait_relaunched(world: World, agent_id: str) -> bool:
    """Until every node runs again, elsewhere (the machine is taken back up only then, so that the
    relaunch cannot land on it again); ``False`` when that took longer than :data:`RELAUNCH_WAIT_S`."""
    deadline = time.monotonic() + RELAUNCH_WAIT_S
    while time.monotonic() < deadline:
        nodes = {n for n, _ in running_nodes(world)}
        if nodes == set(range(1, world.desired + 1)) and agent_id not in world.running_by_agent():
            return True
        time.sleep(0.05)
    return False


def master_restart(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """The development master fails over with its registry kept (:mod:`es_framework.dev.devcluster.failover`):
    every connection cut, down for 0–1 s, back on the same address with a new id; the fault ends
    once the framework has subscribed again (pymesos reconnects after a back-off of 1.5–2.5 s, which
    is most of the fault's time). In ``process`` mode the executors' connections are cut too (the
    development master serves the agents' executor API on its own address): a real master failover
    leaves them alone, so this is harsher than Mesos; the executors checkpoint (``MESOS_CHECKPOINT``),
    so pymesos reconnects and re-subscribes them with their unacknowledged tasks and updates, as
    after an agent restart."""
    down = MASTER_DOWN_MAX_S * fault.chance[0]
    started = time.monotonic()
    world.master.restart(down_s=down)
    back = time.monotonic()
    while not world.subscribed() and time.monotonic() - back < 30:
        time.sleep(0.02)
    again = (
        f"the framework subscribed again {time.monotonic() - back:.1f} s later"
        if world.subscribed()
        else "the framework did not subscribe again within 30 s"
    )
    return Outcome(f"master down {back - started:.1f} s, then back as {world.master.master_id}; {again}")
