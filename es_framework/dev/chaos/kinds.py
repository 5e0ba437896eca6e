"""The fault kinds of the chaos runner, their weights, and the sequence drawn from the seed
(:func:`draw_faults`, pure); what an injected fault did (:class:`Outcome`). The injectors are
:mod:`.faults` (processes, agents, the API) and :mod:`.mesos_faults` (the development master's own
faults: status updates, offers, maintenance).
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from es_framework.dev.chaos.invariants import Violation

if TYPE_CHECKING:
    from es_framework.dev.chaos.world import World


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
    STATUS_CHAOS = "duplicate, delay, reorder status updates"
    RESCIND_OFFERS = "rescind offers, also just after sending"
    MALFORMED_OFFERS = "malformed and enormous offers mixed in"
    TWO_SCHEDULERS_AT_ONCE = "SIGKILL both schedulers, start both"
    MAINTENANCE_WINDOW = "maintenance window on a node's agent"
    MASTER_RESTART = "master failover, registry kept"
    ROLLOUT = "start a rollout, or abort the one under way"


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
    FaultKind.STATUS_CHAOS: 2,
    FaultKind.RESCIND_OFFERS: 1,
    FaultKind.MALFORMED_OFFERS: 1,
    FaultKind.TWO_SCHEDULERS_AT_ONCE: 1,
    FaultKind.MAINTENANCE_WINDOW: 1,
    FaultKind.MASTER_RESTART: 1,
    FaultKind.ROLLOUT: 1,
}

#: ``process`` mode draws every kind too, rollouts more often: there they step through the nodes
#: while later faults hit them (with fake executors a rollout cannot step: no Elasticsearch answers
#: its predicates). ``MAINTENANCE_WINDOW`` kills the machine's executor processes as it goes down (as
#: the agent does when Mesos' master shuts it down), and ``MASTER_RESTART`` cuts the executors'
#: connections too (the development master serves the agents' executor API): they re-subscribe with
#: their unacknowledged tasks and updates, as after an agent restart.
PROCESS_WEIGHTS: dict[FaultKind, int] = {**WEIGHTS, FaultKind.ROLLOUT: 3}


#: The random pause before each fault (seconds): the cluster sits converged for that long. Short,
#: because a converged cluster does nothing while it waits (the 0.05–0.5 s of earlier runs were a
#: fifth of a 500-fault run); a fault's own waits (an agent away, a leader paused past its session,
#: ZooKeeper down) are drawn separately.
DELAY_S = (0.01, 0.1)
#: In ``process`` mode the pause is longer: the disruption planner looks every few seconds and
#: starts a rollout step or a queued restart only on a green, settled cluster, which each fault
#: disturbs; with the fake-mode pauses no step would ever start between two faults.
PROCESS_DELAY_S = (0.5, 5.0)
#: One fault in this many is injected on top of the one before: without waiting for the cluster to
#: converge from it (its own delay only), so that two faults' recoveries cross (a task killed while
#: the standby takes over, ZooKeeper restarted while a node relaunches, ...). Drawn from a stream of
#: its own, so that a seed's kinds, delays and targets stay what they were.
OVERLAP_ONE_IN = 8
#: How long an agent stays unreachable: at least this, plus up to :data:`AGENT_AWAY_SPREAD_S`. The
#: scheduler handles the unreachable update within milliseconds; the stored state is checked at the end.
AGENT_AWAY_MIN_S = 0.3
AGENT_AWAY_SPREAD_S = 1.0
#: ``LEADER_PAUSE``: the longest the old leader stays paused after the new one has subscribed.
PAUSE_AFTER_SUBSCRIBED_S = 0.5
#: ``ZOOKEEPER_RESTART``: the longest ZooKeeper stays down (the start itself takes about 1 s more).
ZOOKEEPER_DOWN_MAX_S = 1.0


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
    #: Injected on top of the fault before, without waiting for its convergence (:data:`OVERLAP_ONE_IN`).
    overlaps: bool = False


@dataclass
class Outcome:
    """What an injected fault did: a line for the history, and node ids of an unreachable agent
    (node id → task id) to check against the stored state while the agent is away."""

    description: str
    on_lost_agent: dict[int, str] = field(default_factory=dict)
    skipped: bool = False
    #: A task the fault ends through the scheduler: convergence is timed from its end.
    ending_task: str | None = None
    #: ``ending_task`` ends past the disruption planner (``{"force": ...}``): its KILL is exempt from
    #: ``max_unavailable``.
    forced: bool = False
    #: What the fault itself checked (invariant → checks) and found.
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)


Injector = Callable[["World", "Fault", CheckLost], "Outcome"]


def draw_faults(seed: int, count: int, mode: str = "fake") -> list[Fault]:
    """The run's faults, from the seed and the mode alone."""
    rng = random.Random(seed)
    overlap = random.Random(f"overlap {seed}")
    table = PROCESS_WEIGHTS if mode == "process" else WEIGHTS
    delays = PROCESS_DELAY_S if mode == "process" else DELAY_S
    kinds = list(table)
    weights = [table[k] for k in kinds]
    return [
        Fault(
            index=i,
            kind=rng.choices(kinds, weights)[0],
            delay_s=round(rng.uniform(*delays), 2),
            pick=rng.randrange(1 << 30),
            chance=(rng.random(), rng.random()),
            overlaps=i > 0 and overlap.randrange(OVERLAP_ONE_IN) == 0,
        )
        for i in range(count)
    ]
