"""The chaos loop: start the world, wait for the first convergence, then for each fault of the
seed's sequence wait its delay, inject it, check the invariants and wait (bounded) for the cluster
to converge again, timing it.

The invariants on the master's ledger and on the calls (1, 2, 5, ``max_unavailable``) are checked
over the whole history after every fault (the ledger records every launch and end to the instant,
so nothing between checks escapes); invariant 3 after each convergence wait and while an agent is
away; in ``process`` mode the document count (4) at each convergence when the cluster is green, and
after the run.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from es_framework.dev.chaos import invariants as inv
from es_framework.dev.chaos.documents import FINAL_GREEN_WAIT_S, GREEN_WAIT_S, Documents
from es_framework.dev.chaos.faults import Fault, Outcome, draw_faults, inject
from es_framework.dev.chaos.world import World, WorldSpec

logger = logging.getLogger(__name__)

#: How long the cluster may take to converge after a fault.
CONVERGENCE_TIMEOUT_S = 60.0
#: How long the first start may take (two schedulers, the first launch).
START_TIMEOUT_S = 60.0
#: Lines of each scheduler's log a violation shows (room for the thread stacks it dumped).
STACK_LINES = 80
#: How often the convergence wait looks: the master is in this process (a look costs a lock and a
#: list), the stored state one ZooKeeper read, and that only once the master's side has converged.
POLL_S = 0.02
#: The scheduler's ``--maxUnavailable`` in the run (its default), and how long another node must
#: have been down for a KILL to count against it (invariant ``max_unavailable``): shorter, and the
#: node's end may still be a status update on its way to the scheduler.
MAX_UNAVAILABLE = 1
BUDGET_GRACE_S = 2.0
#: The scheduler's last log line when ZooKeeper did not answer its start within 15 s.
STORE_UNREACHABLE = "state store: cannot connect to ZooKeeper"


@dataclass(frozen=True)
class RunOptions:
    seed: int
    faults: int
    nodes: int = 3
    agents: int = 5
    mode: str = "fake"
    workdir: Path | None = None

    def replay(self) -> str:
        return (
            f"python -m es_framework.dev.chaos --seed {self.seed} --faults {self.faults} --nodes {self.nodes} "
            f"--agents {self.agents} --mode {self.mode}"
        )


@dataclass
class RunResult:
    options: RunOptions
    session_timeout_ms: int
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    skipped_by_kind: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[inv.Violation] = field(default_factory=list)
    convergence_s: list[float] = field(default_factory=list)
    #: Seconds each kind took from its injection until the cluster converged again (not its delay).
    seconds_by_kind: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: Seconds spent in the faults' delays (the cluster idle, converged).
    delay_s: float = 0.0
    history: list[tuple[float, str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: The fault after which the run stopped because the cluster did not converge (``None``: ran them all).
    stopped_after: int | None = None
    #: ``process`` mode: documents indexed before the faults, and checkpoints not counted because
    #: the cluster was not green within the wait.
    documents: int = 0
    not_green: int = 0
    #: The scheduler's KILLs the master took, and how many of them the faults forced (past the planner).
    kills: int = 0
    forced_kills: int = 0
    #: The rollouts at the end of the run: state (``completed``, ``aborted``, ``under way``) → count.
    rollouts: Counter[str] = field(default_factory=Counter)
    #: Schedulers that exited at their start because ZooKeeper did not answer within 15 s.
    store_unreachable_exits: int = 0
    #: Faults injected on top of the one before, without a convergence wait between them.
    overlapped: int = 0

    def convergence_stats(self) -> tuple[float, float, float] | None:
        if not self.convergence_s:
            return None
        return min(self.convergence_s), statistics.median(self.convergence_s), max(self.convergence_s)


class ChaosRunner:
    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.world = World(
            WorldSpec(nodes=options.nodes, agents=options.agents, workdir=options.workdir, mode=options.mode)
        )
        self.result = RunResult(options, self.world.spec.session_timeout_ms)
        self._started = 0.0
        self._reported: set[inv.Violation] = set()
        self.documents = Documents(self.world) if options.mode == "process" else None
        #: Tasks the faults ended past the planner (forced): their KILLs are not the planner's.
        self._forced: set[str] = set()

    def run(self) -> RunResult:
        self._started = time.monotonic()
        try:
            self.world.start()
            self._note("started: ZooKeeper, the development master, schedulers a and b")
            waited = self._converge(START_TIMEOUT_S)
            if waited is None:
                self._dump_stacks()
                self._violate(self._not_converged(START_TIMEOUT_S))
            else:
                self._note(f"converged to {self.world.desired} node(s) in {waited:.1f} s")
                if self.documents is not None and not self._index():
                    return self.result
                faults = draw_faults(self.options.seed, self.options.faults, self.options.mode)
                for fault, after in zip(faults, [*faults[1:], None], strict=True):
                    if not self._one(fault, converge=after is None or not after.overlaps):
                        self._note(
                            f"stopped after fault {fault.index + 1}: the cluster did not converge, so every "
                            "later fault would start from a broken cluster"
                        )
                        self.result.stopped_after = fault.index + 1
                        break
                self._final_count()
            self._check_history()
            self._summarise_day2()
        finally:
            self.result.elapsed_s = time.monotonic() - self._started
            self.world.close()
        return self.result

    def _one(self, fault: Fault, converge: bool = True) -> bool:
        """Inject ``fault``, wait for convergence (not when the next fault overlaps it: ``converge``
        false), check; ``False`` when the cluster did not converge."""
        time.sleep(fault.delay_s)
        self.result.delay_s += fault.delay_s
        injected = time.monotonic()
        outcome: Outcome = inject(self.world, fault, self._check_lost)
        kind = fault.kind.name
        self.result.faults_by_kind[kind] += 1
        if outcome.skipped:
            self.result.skipped_by_kind[kind] += 1
        self._note(f"fault {fault.index + 1} {kind}: {outcome.description}")
        self.result.checks.update(outcome.checks)
        if outcome.forced and outcome.ending_task is not None:
            self._forced.add(outcome.ending_task)
        for violation in outcome.violations:
            self._violate(violation)
        if outcome.ending_task is not None:
            self._wait_ended(outcome.ending_task)
        started = time.monotonic()
        if converge:
            waited = self._converge(CONVERGENCE_TIMEOUT_S)
            self.result.checks[inv.IDS_EXACT] += 1
            if waited is None:
                self._dump_stacks()
                self._violate(self._not_converged(CONVERGENCE_TIMEOUT_S))
            else:
                self.result.convergence_s.append(time.monotonic() - started)
                self._checkpoint(GREEN_WAIT_S)
        else:
            waited = 0.0
            self.result.overlapped += 1
            self._note(f"fault {fault.index + 2} overlaps fault {fault.index + 1}: no convergence wait between them")
        done = time.monotonic()
        self.result.seconds_by_kind[kind] += done - injected
        self._check_history()
        logger.info(
            "fault %d %s: injected in %.2f s, converged %.2f s later, checked in %.2f s",
            fault.index + 1,
            kind,
            started - injected,
            done - started,
            time.monotonic() - done,
        )
        return waited is not None

    def _summarise_day2(self) -> None:
        """How many KILLs the scheduler sent, and what became of the rollouts (``GET /v1/rollouts``)."""
        calls = self.world.calls.calls() if self.world.calls is not None else []
        kills = [c for c in calls if c.type == "KILL"]
        self.result.kills = len(kills)
        self.result.forced_kills = sum(1 for c in kills if c.task_id in self._forced)
        status, body = self.world.api("GET", "/v1/rollouts")
        if status != 200 or not isinstance(body, dict):
            return
        for rollout in body.get("finished") or []:
            self.result.rollouts[str(rollout.get("state"))] += 1
        current = body.get("current")
        if isinstance(current, dict):
            self.result.rollouts["under way"] += 1
        if self.world.last_rollout is not None:
            self.result.checks[inv.ROLLOUT_KEPT] += 1
            finished = [str(r.get("id")) for r in body.get("finished") or [] if isinstance(r, dict)]
            current_id = current.get("id") if isinstance(current, dict) else None
            for violation in inv.rollout_kept(self.world.last_rollout, current_id, finished):
                self._violate(violation)

    # ------------------------------------------------------------------ documents

    def _index(self) -> bool:
        """Index the run's documents (``process`` mode); ``False`` (a violation) when that failed."""
        assert self.documents is not None
        problem = self.documents.index(self.world.desired)
        if problem is not None:
            self._violate(inv.Violation(inv.NO_DOCUMENT_LOST, f"could not index the documents: {problem}"))
            return False
        self.result.documents = self.documents.indexed
        self._note(f"indexed {self.documents.indexed} documents; the cluster is green")
        return True

    def _checkpoint(self, wait_s: float) -> bool:
        """Count the documents once the cluster is green within ``wait_s`` (``process`` mode);
        ``False`` when it was not green (not counted)."""
        if self.documents is None:
            return True
        if not self.documents.green(wait_s):
            self.result.not_green += 1
            self._note(f"checkpoint: not green within {wait_s:.0f} s, documents not counted")
            return False
        counted = self.documents.count()
        if counted is None:
            self.result.not_green += 1
            self._note("checkpoint: green, but the count did not answer")
            return False
        self.result.checks[inv.NO_DOCUMENT_LOST] += 1
        for violation in inv.documents_exact(counted, self.documents.indexed):
            self._violate(violation)
        return True

    def _final_count(self) -> None:
        """After the run the cluster must get green and hold every document."""
        if self.documents is None or self.result.stopped_after is not None:
            return
        if not self._checkpoint(FINAL_GREEN_WAIT_S):
            self._violate(
                inv.Violation(inv.NO_DOCUMENT_LOST, f"not green within {FINAL_GREEN_WAIT_S:.0f} s after the run")
            )

    # ------------------------------------------------------------------ checks

    def _converge(self, timeout: float) -> float | None:
        """Seconds until converged, or ``None`` when ``timeout`` passed first."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            live = self.world.live_tasks()
            if inv.master_not_converged(live, self.world.desired) is None and self.world.subscribed():
                stored = self.world.stored_nodes()
                if stored is not None and inv.not_converged(live, stored, self.world.desired) is None:
                    return time.monotonic() - started
            time.sleep(POLL_S)
        return None

    def _dump_stacks(self) -> None:
        """Each scheduler writes its threads' stacks to its log, for the violation's details."""
        for scheduler in self.world.schedulers:
            scheduler.dump_stacks()
        time.sleep(0.5)

    def _wait_ended(self, task_id: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(t.task_id == task_id for t in self.world.live_tasks()):
            time.sleep(POLL_S)

    def _not_converged(self, waited: float) -> inv.Violation:
        stored = self.world.stored_nodes() or []
        found = inv.ids_exact(self.world.live_tasks(), stored, self.world.desired, waited)
        if found:
            return found[0]
        if not self.world.subscribed():
            return inv.Violation(
                inv.IDS_EXACT, f"not converged within {waited:.0f} s: nobody leads and listens ({self._leading()})"
            )
        return inv.Violation(inv.IDS_EXACT, "converged only just after the wait")

    def _leading(self) -> str:
        """Who contends for the lock (pid, which scheduler, alive) and whether Mesos has the framework."""
        alive: dict[int | None, str] = {s.pid: s.name for s in self.world.schedulers if s.pid is not None}
        try:
            contenders = self.world.lock.contenders() if self.world.lock is not None else []
            lock = ", ".join(
                f"{znode} pid {pid} ({alive.get(pid, 'not a live scheduler')}, session {session:#x})"
                for znode, pid, session in contenders
            )
        except Exception as problem:  # ZooKeeper down
            lock = f"unreadable: {problem}"
        frameworks = [(f["id"], f["connected"]) for f in self.world.master.state()["frameworks"]]
        return f"lock contenders, holder first: {lock or 'none'}; frameworks (id, connected): {frameworks}"

    def _check_lost(self, on_lost_agent: dict[int, str]) -> None:
        stored = None
        deadline = time.monotonic() + 10
        while stored is None and time.monotonic() < deadline:
            stored = self.world.stored_nodes()
        self.result.checks[inv.UNREACHABLE_ID_KEPT] += 1
        for violation in inv.unreachable_id_kept(on_lost_agent, stored or []):
            self._violate(violation)

    def _check_alive(self) -> None:
        """A scheduler that ended by itself (every fault that stops one starts it again at once) is a
        crash: reported, then started again so the run goes on. Not one that failed at its start
        because ZooKeeper did not answer for 15 s (``StateUnavailableError``, exit 1: it fails fast
        and its supervisor starts it again, as the runner does), which a ``ZOOKEEPER_RESTART``
        causes when ZooKeeper takes long to start again on a loaded machine: counted apart."""
        exits = {s.name: s.exit_status() for s in self.world.schedulers}
        for scheduler in self.world.schedulers:
            if exits[scheduler.name] == 1 and STORE_UNREACHABLE in scheduler.log_tail(5):
                exits[scheduler.name] = None
                self.result.store_unreachable_exits += 1
                self._note(f"scheduler {scheduler.name} exited at its start: {STORE_UNREACHABLE} (fails fast)")
        self.result.checks[inv.SCHEDULER_ALIVE] += 1
        for violation in inv.scheduler_alive(exits):
            self._violate(violation)
        for scheduler in self.world.schedulers:
            if scheduler.exit_status() is not None:
                scheduler.start()

    def _check_history(self) -> None:
        self._check_alive()
        lives = self.world.task_lives()
        calls = self.world.calls.calls() if self.world.calls is not None else []
        samples = self.world.lock.samples() if self.world.lock is not None else []
        found = [
            *inv.one_task_per_id(lives),
            *inv.one_holder_per_volume(lives),
            *inv.acted_only_as_leader(calls, samples),
            *inv.within_max_unavailable(
                calls,
                lives,
                self.world.desired_history,
                max_unavailable=MAX_UNAVAILABLE,
                exempt=self._forced,
                grace_s=BUDGET_GRACE_S,
            ),
        ]
        for name in (inv.ONE_TASK_PER_ID, inv.ONE_HOLDER_PER_VOLUME, inv.ACTED_ONLY_AS_LEADER, inv.MAX_UNAVAILABLE):
            self.result.checks[name] += 1
        for violation in found:
            if violation not in self._reported:
                self._violate(violation)

    def _violate(self, violation: inv.Violation) -> None:
        self._reported.add(violation)
        self.result.violations.append(violation)
        self._note(f"VIOLATION {violation.invariant}: {violation.message}")
        self.result.details.append(self._explain(violation))

    def _explain(self, violation: inv.Violation) -> str:
        """The event history of the ids involved, and the replay command."""
        lines = [f"violation of {violation.invariant}: {violation.message}"]
        for life in self.world.task_lives():
            if life.node_id in violation.node_ids or life.task_id in violation.task_ids:
                end = "live" if life.end is None else f"ended {life.end - self._started:.3f} s"
                lines.append(
                    f"  node {life.node_id} task {life.task_id}: launched {life.start - self._started:.3f} s, {end}, "
                    f"volumes {', '.join(life.volumes) or 'none'}"
                )
        for at, text in self.result.history[-12:]:
            lines.append(f"  {at:8.3f} s  {text}")
        for scheduler in self.world.schedulers:
            lines.append(f"  --- scheduler {scheduler.name} (run {scheduler.runs}), last lines ---")
            lines.extend("    " + line for line in scheduler.log_tail(STACK_LINES).splitlines())
        lines.append(f"  replay: {self.options.replay()}")
        return "\n".join(lines)

    def _note(self, text: str) -> None:
        at = time.monotonic() - self._started
        self.result.history.append((at, text))
        logger.info("%7.2f s  %s", at, text)
