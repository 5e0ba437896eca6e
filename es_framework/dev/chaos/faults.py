"""The faults the chaos runner injects: what each kind is, how the sequence is drawn from the seed
(:func:`draw_faults`, pure), and how each is done to the :class:`~.world.World` (:func:`inject`).

The whole sequence (kinds, delays, which node or agent, every choice made inside a fault) is drawn
up front from the seed, so a seed names one sequence of faults; the instants at which the system
answers still vary from run to run. A fault's target is chosen when it is injected, as
``pick`` modulo the candidates of that moment, sorted: the same state gives the same target.
"""

from __future__ import annotations

import enum
import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from es_framework.dev.chaos.world import World, running_nodes

logger = logging.getLogger(__name__)


class FaultKind(enum.Enum):
    KILL_TASK = "kill a node's task"
    AGENT_LOST = "agent unreachable, then back or gone"
    SCHEDULER_SIGKILL = "SIGKILL a scheduler, start it again"
    SCHEDULER_SIGTERM = "SIGTERM a scheduler, start it again"
    LEADER_PAUSE = "SIGSTOP the leader past its session, SIGCONT"
    SCALE = "scale through the API"
    OPERATOR_RESTART = "restart a node through the API"
    OPERATOR_REPLACE = "replace a node through the API"
    ZOOKEEPER_RESTART = "restart ZooKeeper"


#: How often each kind is drawn (weights).
WEIGHTS: dict[FaultKind, int] = {
    FaultKind.KILL_TASK: 5,
    FaultKind.AGENT_LOST: 3,
    FaultKind.SCHEDULER_SIGKILL: 2,
    FaultKind.SCHEDULER_SIGTERM: 2,
    FaultKind.LEADER_PAUSE: 1,
    FaultKind.SCALE: 2,
    FaultKind.OPERATOR_RESTART: 2,
    FaultKind.OPERATOR_REPLACE: 1,
    FaultKind.ZOOKEEPER_RESTART: 1,
}


#: The random pause before each fault (seconds): the cluster sits converged for that long. Short,
#: because a converged cluster does nothing while it waits; a fault's own waits (an agent away, a
#: leader paused past its session, ZooKeeper down) are drawn separately.
DELAY_S = (0.05, 0.5)
#: How long an agent stays unreachable: at least this, plus up to :data:`AGENT_AWAY_SPREAD_S`.
AGENT_AWAY_MIN_S = 0.5
AGENT_AWAY_SPREAD_S = 1.5


#: Called by the agent fault while the agent is away, with its nodes (node id → task id).
CheckLost = Callable[[dict[int, str]], None]


@dataclass(frozen=True)
class Fault:
    index: int
    kind: FaultKind
    #: Seconds to wait before injecting it.
    delay_s: float
    #: Chooses the target among the candidates of the moment.
    pick: int
    #: Further choices inside the fault, each in [0, 1).
    chance: tuple[float, float] = (0.0, 0.0)


@dataclass
class Outcome:
    """What an injected fault did: a line for the history, and node ids of an unreachable agent
    (node id → task id) to check against the stored state while the agent is away."""

    description: str
    on_lost_agent: dict[int, str] = field(default_factory=dict)
    skipped: bool = False
    #: A task the fault ends through the scheduler: convergence is timed from its end.
    ending_task: str | None = None


_Injector = Callable[["World", "Fault", CheckLost], "Outcome"]


def draw_faults(seed: int, count: int) -> list[Fault]:
    """The run's faults, from the seed alone."""
    rng = random.Random(seed)
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    return [
        Fault(
            index=i,
            kind=rng.choices(kinds, weights)[0],
            delay_s=round(rng.uniform(*DELAY_S), 2),
            pick=rng.randrange(1 << 30),
            chance=(rng.random(), rng.random()),
        )
        for i in range(count)
    ]


def inject(world: World, fault: Fault, check_lost: CheckLost) -> Outcome:
    """Do ``fault`` to ``world``; ``check_lost`` is called while an agent is unreachable."""
    return _INJECTORS[fault.kind](world, fault, check_lost)


def _kill_task(world: World, fault: Fault, _: CheckLost) -> Outcome:
    nodes = running_nodes(world)
    if not nodes:
        return Outcome("no running node to kill", skipped=True)
    node_id, task_id = nodes[fault.pick % len(nodes)]
    try:
        world.master.fail_task(task_id, message="chaos: Elasticsearch exited with code 137")
    except (LookupError, ValueError) as problem:
        return Outcome(f"node {node_id} task {task_id}: not killed ({problem})", skipped=True)
    return Outcome(f"node {node_id} task {task_id}: executor reported TASK_FAILED")


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
        world.master.gone_agent(agent)
        world.gone_agents.add(agent)
        return Outcome(f"agent {agent} ({nodes}) unreachable, then marked gone", on_lost_agent=held)
    world.master.return_agent(agent)
    return Outcome(f"agent {agent} ({nodes}) unreachable, then back", on_lost_agent=held)


def _scheduler_signal(signum: int) -> _Injector:
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
    leader = world.leader()
    if leader is None or leader.pid is None:
        return Outcome("no leader to pause", skipped=True)
    pid = leader.pid
    leader.signal(signal.SIGSTOP)
    started = time.monotonic()
    took_over = None
    try:
        deadline = started + 30
        while time.monotonic() < deadline:
            holder = world.lock.latest() if world.lock is not None else None
            if holder is not None and holder != pid:
                took_over = time.monotonic() - started
                break
            time.sleep(0.05)
        time.sleep(fault.chance[0] * 2.0)  # the new leader may or may not have subscribed yet
    finally:
        leader.signal(signal.SIGCONT)
    paused = time.monotonic() - started
    taken = f"the standby took the lock after {took_over:.1f} s" if took_over is not None else "nobody took the lock"
    return Outcome(f"scheduler {leader.name} (leader, pid {pid}) paused {paused:.1f} s; {taken}")


def _scale(world: World, fault: Fault, _: CheckLost) -> Outcome:
    ceiling = max(1, min(len(world.usable_agents()) - 1, world.spec.nodes + 2))
    # With fake executors no Elasticsearch answers how many copies the data keeps, so a scale-down
    # is refused (fail closed, 503): scale up while there is room, else expect that refusal.
    ups = [n for n in range(world.desired + 1, ceiling + 1)]
    downs = [n for n in range(1, world.desired)]
    choices = ups or downs or [world.desired]
    value = choices[fault.pick % len(choices)]
    status, body = _api_retrying(world, "PUT", "/v1/cluster/elasticsearchNodes", {"value": value})
    if status == 200:
        before, world.desired = world.desired, value
        return Outcome(f"scaled {before} -> {value}")
    expected = value < world.desired and status == 503
    why = "as expected without Elasticsearch" if expected else "UNEXPECTEDLY"
    return Outcome(f"scale {world.desired} -> {value} refused {why}: {status} {str(body)[:200]}", skipped=True)


def _operator(action: str) -> _Injector:
    def injector(world: World, fault: Fault, _: CheckLost) -> Outcome:
        nodes = running_nodes(world)
        if not nodes:
            return Outcome(f"no running node to {action}", skipped=True)
        node_id, task_id = nodes[fault.pick % len(nodes)]
        status, body = _api_retrying(world, "POST", f"/v1/nodes/{node_id}/{action}", {})
        done = status in (200, 202)
        return Outcome(
            f"node {node_id} task {task_id}: {action} -> {status} {body}",
            skipped=not done,
            ending_task=task_id if done else None,
        )

    return injector


def _zookeeper_restart(world: World, fault: Fault, _: CheckLost) -> Outcome:
    started = time.monotonic()
    world.zookeeper.stop()
    time.sleep(fault.chance[0] * 2.0)
    world.zookeeper.start()
    return Outcome(f"ZooKeeper down {time.monotonic() - started:.1f} s")


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


_INJECTORS: dict[FaultKind, _Injector] = {
    FaultKind.KILL_TASK: _kill_task,
    FaultKind.AGENT_LOST: _agent_lost,
    FaultKind.SCHEDULER_SIGKILL: _scheduler_signal(signal.SIGKILL),
    FaultKind.SCHEDULER_SIGTERM: _scheduler_signal(signal.SIGTERM),
    FaultKind.LEADER_PAUSE: _leader_pause,
    FaultKind.SCALE: _scale,
    FaultKind.OPERATOR_RESTART: _operator("restart"),
    FaultKind.OPERATOR_REPLACE: _operator("replace"),
    FaultKind.ZOOKEEPER_RESTART: _zookeeper_restart,
}
