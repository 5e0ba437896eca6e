"""The chaos loop: start the world, wait for the first convergence, then for each fault of the
seed's sequence wait its delay, inject it, check the invariants and wait (bounded) for the cluster
to converge again, timing it.

The invariants on the master's ledger and on the calls (1, 2, 5) are checked over the whole
history after every fault (the ledger records every launch and end to the instant, so nothing
between checks escapes); invariant 3 after each convergence wait and while an agent is away.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from es_framework.dev.chaos import invariants as inv
from es_framework.dev.chaos.faults import Fault, Outcome, draw_faults, inject
from es_framework.dev.chaos.world import World, WorldSpec

logger = logging.getLogger(__name__)

#: How long the cluster may take to converge after a fault.
CONVERGENCE_TIMEOUT_S = 60.0
#: How long the first start may take (two schedulers, the first launch).
START_TIMEOUT_S = 60.0


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
    history: list[tuple[float, str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def convergence_stats(self) -> tuple[float, float, float] | None:
        if not self.convergence_s:
            return None
        return min(self.convergence_s), statistics.median(self.convergence_s), max(self.convergence_s)


class ChaosRunner:
    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.world = World(WorldSpec(nodes=options.nodes, agents=options.agents, workdir=options.workdir))
        self.result = RunResult(options, self.world.spec.session_timeout_ms)
        self._started = 0.0
        self._reported: set[inv.Violation] = set()

    def run(self) -> RunResult:
        self._started = time.monotonic()
        try:
            self.world.start()
            self._note("started: ZooKeeper, the development master, schedulers a and b")
            waited = self._converge(START_TIMEOUT_S)
            if waited is None:
                self._violate(self._not_converged(START_TIMEOUT_S))
            else:
                self._note(f"converged to {self.world.desired} node(s) in {waited:.1f} s")
                for fault in draw_faults(self.options.seed, self.options.faults):
                    self._one(fault)
            self._check_history()
        finally:
            self.result.elapsed_s = time.monotonic() - self._started
            self.world.close()
        return self.result

    def _one(self, fault: Fault) -> None:
        time.sleep(fault.delay_s)
        outcome: Outcome = inject(self.world, fault, self._check_lost)
        kind = fault.kind.name
        self.result.faults_by_kind[kind] += 1
        if outcome.skipped:
            self.result.skipped_by_kind[kind] += 1
        self._note(f"fault {fault.index + 1} {kind}: {outcome.description}")
        if outcome.ending_task is not None:
            self._wait_ended(outcome.ending_task)
        started = time.monotonic()
        waited = self._converge(CONVERGENCE_TIMEOUT_S)
        self.result.checks[inv.IDS_EXACT] += 1
        if waited is None:
            self._violate(self._not_converged(CONVERGENCE_TIMEOUT_S))
            # Let the next fault start from a cluster that had every chance to settle.
        else:
            self.result.convergence_s.append(time.monotonic() - started)
        self._check_history()

    # ------------------------------------------------------------------ checks

    def _converge(self, timeout: float) -> float | None:
        """Seconds until converged, or ``None`` when ``timeout`` passed first."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            stored = self.world.stored_nodes()
            if (
                stored is not None
                and self.world.subscribed()
                and inv.not_converged(self.world.live_tasks(), stored, self.world.desired) is None
            ):
                return time.monotonic() - started
            time.sleep(0.1)
        return None

    def _wait_ended(self, task_id: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(t.task_id == task_id for t in self.world.live_tasks()):
            time.sleep(0.05)

    def _not_converged(self, waited: float) -> inv.Violation:
        stored = self.world.stored_nodes() or []
        found = inv.ids_exact(self.world.live_tasks(), stored, self.world.desired, waited)
        return found[0] if found else inv.Violation(inv.IDS_EXACT, "converged only just after the wait")

    def _check_lost(self, on_lost_agent: dict[int, str]) -> None:
        stored = None
        deadline = time.monotonic() + 10
        while stored is None and time.monotonic() < deadline:
            stored = self.world.stored_nodes()
        self.result.checks[inv.UNREACHABLE_ID_KEPT] += 1
        for violation in inv.unreachable_id_kept(on_lost_agent, stored or []):
            self._violate(violation)

    def _check_history(self) -> None:
        lives = self.world.task_lives()
        calls = self.world.calls.calls() if self.world.calls is not None else []
        samples = self.world.lock.samples() if self.world.lock is not None else []
        found = [
            *inv.one_task_per_id(lives),
            *inv.one_holder_per_volume(lives),
            *inv.acted_only_as_leader(calls, samples),
        ]
        for name in (inv.ONE_TASK_PER_ID, inv.ONE_HOLDER_PER_VOLUME, inv.ACTED_ONLY_AS_LEADER):
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
            lines.extend("    " + line for line in scheduler.log_tail(15).splitlines())
        lines.append(f"  replay: {self.options.replay()}")
        return "\n".join(lines)

    def _note(self, text: str) -> None:
        at = time.monotonic() - self._started
        self.result.history.append((at, text))
        logger.info("%7.2f s  %s", at, text)
