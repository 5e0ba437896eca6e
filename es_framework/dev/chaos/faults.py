"""The faults the chaos runner injects: how each is done to the :class:`~.world.World`
(:func:`inject`); the kinds and the sequence drawn from the seed are :mod:`.kinds`, the development
master's own faults :mod:`.mesos_faults`.

The whole sequence (kinds, delays, which node or agent, every choice made inside a fault) is drawn
up front from the seed, so a seed names one sequence of faults; the instants at which the system
answers still vary from run to run. A fault's target is chosen when it is injected, as
``pick`` modulo the candidates of that moment, sorted: the same state gives the same target.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter

from es_framework.dev.chaos import invariants as inv
from es_framework.dev.chaos import mesos_faults
from es_framework.dev.chaos.kinds import (
    AGENT_AWAY_MIN_S,
    AGENT_AWAY_SPREAD_S,
    DELAY_S,
    PAUSE_AFTER_SUBSCRIBED_S,
    WEIGHTS,
    ZOOKEEPER_DOWN_MAX_S,
    CheckLost,
    Fault,
    FaultKind,
    Injector,
    Outcome,
    draw_faults,
)
from es_framework.dev.chaos.world import World, running_nodes

__all__ = ["DELAY_S", "WEIGHTS", "Fault", "FaultKind", "Outcome", "draw_faults", "inject"]

logger = logging.getLogger(__name__)


def inject(world: World, fault: Fault, check_lost: CheckLost) -> Outcome:
    """Do ``fault`` to ``world``; ``check_lost`` is called while an agent is unreachable."""
    return _INJECTORS[fault.kind](world, fault, check_lost)


def _kill_task(world: World, fault: Fault, _: CheckLost) -> Outcome:
    nodes = running_nodes(world)
    if not nodes:
        return Outcome("no running node to kill", skipped=True)
    node_id, task_id = nodes[fault.pick % len(nodes)]
    try:
        world.kill_task(task_id)
    except (LookupError, ValueError) as problem:
        return Outcome(f"node {node_id} task {task_id}: not killed ({problem})", skipped=True)
    how = "executor process group SIGKILLed" if world.processes is not None else "executor reported TASK_FAILED"
    return Outcome(f"node {node_id} task {task_id}: {how}")


def _agent_lost(world: World, fault: Fault, check_lost: CheckLost) -> Outcome:
    by_agent = world.running_by_agent()
    candidates = sorted(by_agent)
    if not candidates:
        return Outcome("no agent runs a node", skipped=True)
    agent = candidates[fault.pick % len(candidates)]
    held = dict(by_agent[agent])
    world.master.lose_agent(agent)
    time.sleep(AGENT_AWAY_MIN_S + AGENT_AWAY_SPREAD_S * fault.chance[0])
    check_lost(held)
    # Marking it gone must leave an agent for every node and one to spare.
    gone = fault.chance[1] < 0.3 and len(world.usable_agents()) - 1 >= world.desired + 1
    nodes = ", ".join(f"node {n} task {t}" for n, t in sorted(held.items()))
    if gone:
        world.kill_agent_processes(agent)  # a machine marked gone runs nothing any more
        world.master.gone_agent(agent)
        world.gone_agents.add(agent)
        return Outcome(f"agent {agent} ({nodes}) unreachable, then marked gone", on_lost_agent=held)
    world.master.return_agent(agent)
    return Outcome(f"agent {agent} ({nodes}) unreachable, then back", on_lost_agent=held)


def _scheduler_signal(signum: int) -> Injector:
    def injector(world: World, fault: Fault, _: CheckLost) -> Outcome:
        alive = [s for s in world.schedulers if s.pid is not None]
        leader = world.leader()
        # Mostly the leader (the interesting case), sometimes the standby.
        target = leader if leader is not None and fault.chance[0] < 0.75 else alive[fault.pick % len(alive)]
        role = "leader" if target is leader else "standby"
        pid = target.pid
        target.signal(signum)
        status = target.wait(timeout=20)
        if status is None:
            target.kill()
            status = -9
        target.start()
        return Outcome(
            f"scheduler {target.name} ({role}, pid {pid}) {signal.Signals(signum).name}: exit {status}; started again"
        )

    return injector


def _leader_pause(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """SIGSTOP the leader until the standby holds the lock (so the paused leader's ZooKeeper session
    has expired: the pause outlasts it by exactly what the takeover takes), then SIGCONT: at once one
    time in two (the new leader may not have subscribed yet, so the old one wakes beside a leader
    still connecting), else once the new leader has subscribed and up to
    :data:`~.kinds.PAUSE_AFTER_SUBSCRIBED_S` more. Either way the old one must not act on stale state."""
    leader = world.leader()
    if leader is None or leader.pid is None:
        return Outcome("no leader to pause", skipped=True)
    pid = leader.pid
    leader.signal(signal.SIGSTOP)
    started = time.monotonic()
    took_over: float | None = None
    subscribed: float | None = None
    try:
        deadline = started + 30
        while time.monotonic() < deadline:
            holder = world.lock.latest() if world.lock is not None else None
            if holder is not None and holder != pid:
                took_over = time.monotonic() - started
                break
            time.sleep(0.02)
        if took_over is not None and fault.chance[0] >= 0.5:
            while time.monotonic() < deadline and not world.subscribed():
                time.sleep(0.02)
            subscribed = time.monotonic() - started
            time.sleep((fault.chance[0] - 0.5) * 2 * PAUSE_AFTER_SUBSCRIBED_S)
    finally:
        leader.signal(signal.SIGCONT)
    paused = time.monotonic() - started
    taken = f"the standby took the lock after {took_over:.1f} s" if took_over is not None else "nobody took the lock"
    if subscribed is not None:
        taken += f" and subscribed after {subscribed:.1f} s"
    return Outcome(f"scheduler {leader.name} (leader, pid {pid}) paused {paused:.1f} s; {taken}")


#: The fewest nodes a ``process``-mode scale-down leaves.
PROCESS_FLOOR = 3


def _scale(world: World, fault: Fault, _: CheckLost) -> Outcome:
    ceiling = max(1, min(len(world.usable_agents()) - 1, world.spec.nodes + 2))
    # With fake executors no Elasticsearch answers how many copies the data keeps, so a scale-down
    # is refused (fail closed, 503): scale up while there is room, else expect that refusal. With
    # demo nodes a scale-down drains the node first; never below 3 nodes: with 2 master-eligible
    # nodes no node can stop without losing the master majority, so a rollout would wait for ever.
    ups = [n for n in range(world.desired + 1, ceiling + 1)]
    downs = [n for n in range(PROCESS_FLOOR if world.processes is not None else 1, world.desired)]
    choices = ((ups + downs) if world.processes is not None else (ups or downs)) or [world.desired]
    value = choices[fault.pick % len(choices)]
    status, body = _api_retrying(world, "PUT", "/v1/cluster/elasticsearchNodes", {"value": value})
    if status == 200:
        before = world.desired
        world.set_desired(value)
        return Outcome(f"scaled {before} -> {value}")
    expected = value < world.desired and status == 503
    why = "as expected without Elasticsearch" if expected else "UNEXPECTEDLY"
    return Outcome(f"scale {world.desired} -> {value} refused {why}: {status} {str(body)[:200]}", skipped=True)


#: At once, past the disruption planner (``{"force": "<why>"}``): with fake executors no Elasticsearch
#: answers, so the planner fails closed and a queued restart or replacement (an empty body) would wait
#: for ever.
_OPERATOR_BODY: dict[str, object] = {
    "restart": {"force": "chaos runner: no Elasticsearch answers the planner"},
    "replace": {"force": "chaos runner: no Elasticsearch answers the planner"},
}


def _operator(action: str) -> Injector:
    def injector(world: World, fault: Fault, _: CheckLost) -> Outcome:
        nodes = running_nodes(world)
        if not nodes:
            return Outcome(f"no running node to {action}", skipped=True)
        node_id, task_id = nodes[fault.pick % len(nodes)]
        # With demo nodes, mostly queued for the disruption planner (it drains and restarts the node
        # when the cluster is green and the budget allows, so the request crosses later faults);
        # with fake executors always forced.
        forced = world.processes is None or fault.chance[1] < 0.3
        body = _OPERATOR_BODY[action] if forced else None
        status, answer = _api_retrying(world, "POST", f"/v1/nodes/{node_id}/{action}", body)
        done = status in (200, 202)
        how = "forced" if forced else "queued"
        return Outcome(
            f"node {node_id} task {task_id}: {action} ({how}) -> {status} {answer}",
            skipped=not done,
            ending_task=task_id if done and forced else None,
            forced=forced,
        )

    return injector


def _zookeeper_restart(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """ZooKeeper killed (SIGKILL: a crash, not a shutdown; it acknowledges a write only once it is in
    its transaction log, so nothing acknowledged is lost), down for up to
    :data:`~.kinds.ZOOKEEPER_DOWN_MAX_S`, started again on its data. Each client's session survives
    when it reconnects within its timeout after the start (the server restores sessions and restarts
    their clocks); one that does not loses its session, and a leader that does loses the lock."""
    started = time.monotonic()
    world.zookeeper.stop(timeout=0.0)  # SIGTERM and at once SIGKILL
    time.sleep(fault.chance[0] * ZOOKEEPER_DOWN_MAX_S)
    down = time.monotonic() - started
    world.zookeeper.start()
    return Outcome(f"ZooKeeper killed, down {down:.1f} s, serving again after {time.monotonic() - started:.1f} s")


def _two_schedulers_at_once(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """Both schedulers SIGKILLed, then started at the same instant: they race for the lock (and,
    for a moment, both may try to subscribe) on one state."""
    pids = [s.pid for s in world.schedulers]
    for scheduler in world.schedulers:
        scheduler.signal(signal.SIGKILL)
    for scheduler in world.schedulers:
        if scheduler.wait(timeout=20) is None:
            scheduler.kill()
    # The order of the two starts is the seed's: the first to start has a head start of microseconds.
    order = world.schedulers if fault.chance[0] < 0.5 else list(reversed(world.schedulers))
    started = time.monotonic()
    for scheduler in order:
        scheduler.start()
    # Until one of the new processes leads and has subscribed: right after the kill the master may
    # not have seen the old stream close yet, and the lock's last sample still names the old leader,
    # which would pass for convergence.
    new = set(world.scheduler_pids())
    leader = None
    while time.monotonic() - started < 30 and leader is None:
        holder = world.lock.latest() if world.lock is not None else None
        leader = next((s.name for s in world.schedulers if holder in new and s.pid == holder), None)
        if leader is None or not world.subscribed():
            leader = None
            time.sleep(0.02)
    names = " and ".join(f"{s.name} (pid {pid})" for s, pid in zip(world.schedulers, pids, strict=True))
    led = f"{leader} leads after {time.monotonic() - started:.1f} s" if leader else "no new leader within 30 s"
    return Outcome(f"schedulers {names} SIGKILLed; started together, {order[0].name} first; {led}")


#: A 503 that is the answer, not a scheduler that cannot act yet: without Elasticsearch no node says
#: how many copies the data keeps, so every scale-down is refused (fail closed); asking again for
#: 15 s would only get the same answer.
FINAL_503 = "cannot scale down now"


def _api_retrying(world: World, method: str, path: str, body: object) -> tuple[int, object]:
    """The leader's API, retried for up to 15 s while there is no leader or it cannot act yet."""
    deadline = time.monotonic() + 15
    while True:
        status, answer = world.api(method, path, body)
        retry = status == 0 or (status == 503 and FINAL_503 not in str(answer))
        if not retry or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.1)


def _rollout(world: World, fault: Fault, _: CheckLost) -> Outcome:
    """``POST /v1/cluster/restart``: a rollout restarting every node one at a time, which goes on
    while the next faults hit (scheduler kills and pauses cross its steps). A rollout under way is
    aborted instead: always with fake executors (no Elasticsearch answers its predicates, so it
    never steps), with demo nodes one time in four (else it is left to go on: a no-op)."""
    status, body = _api_retrying(world, "GET", "/v1/rollouts", None)
    if status != 200 or not isinstance(body, dict):
        return Outcome(f"GET /v1/rollouts -> {status} {str(body)[:200]}", skipped=True)
    current = body.get("current")
    finished = [str(r.get("id")) for r in body.get("finished") or [] if isinstance(r, dict)]
    checked = Counter({inv.ROLLOUT_KEPT: 1}) if world.last_rollout is not None else Counter[str]()
    lost = inv.rollout_kept(world.last_rollout, current.get("id") if isinstance(current, dict) else None, finished)
    if isinstance(current, dict):
        done = f"{current.get('done')}/{current.get('total')}"
        progress = f"rollout {current.get('id')} ({current.get('reason')}, {done})"
        if world.processes is not None and fault.chance[0] >= 0.25:
            return Outcome(f"{progress} under way: left to go on", skipped=True, checks=checked, violations=lost)
        status, answer = _api_retrying(world, "POST", f"/v1/rollouts/{current.get('id')}/abort", None)
        return Outcome(
            f"{progress} aborted -> {status} {str(answer)[:200]}",
            skipped=status != 200,
            checks=checked,
            violations=lost,
        )
    status, answer = _api_retrying(world, "POST", "/v1/cluster/restart", None)
    if status == 202 and isinstance(answer, dict):
        world.last_rollout = str(answer.get("id"))
        started = f"rollout {answer.get('id')} started, order {answer.get('order')}"
        return Outcome(started, checks=checked, violations=lost)
    return Outcome(f"rollout refused: {status} {str(answer)[:200]}", skipped=True, checks=checked, violations=lost)


_INJECTORS: dict[FaultKind, Injector] = {
    FaultKind.KILL_TASK: _kill_task,
    FaultKind.AGENT_LOST: _agent_lost,
    FaultKind.SCHEDULER_SIGKILL: _scheduler_signal(signal.SIGKILL),
    FaultKind.SCHEDULER_SIGTERM: _scheduler_signal(signal.SIGTERM),
    FaultKind.LEADER_PAUSE: _leader_pause,
    FaultKind.SCALE: _scale,
    FaultKind.OPERATOR_RESTART: _operator("restart"),
    FaultKind.OPERATOR_REPLACE: _operator("replace"),
    FaultKind.ZOOKEEPER_RESTART: _zookeeper_restart,
    FaultKind.STATUS_CHAOS: mesos_faults.status_chaos,
    FaultKind.RESCIND_OFFERS: mesos_faults.rescind_offers,
    FaultKind.MALFORMED_OFFERS: mesos_faults.malformed_offers,
    FaultKind.TWO_SCHEDULERS_AT_ONCE: _two_schedulers_at_once,
    FaultKind.MAINTENANCE_WINDOW: mesos_faults.maintenance_window,
    FaultKind.MASTER_RESTART: mesos_faults.master_restart,
    FaultKind.ROLLOUT: _rollout,
}
