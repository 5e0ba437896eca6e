#!/usr/bin/env python3
"""es-mesos benchmarks: the node-id allocator and offer evaluation, next to the Java-way baseline.

Run from the repository root::

    python3 benchmarks/run.py            # full run (about 25 s on 2 cores)
    python3 benchmarks/run.py --quick    # sizes shrunk ~10x, for a CI smoke test
    python3 benchmarks/run.py --json     # the same figures as JSON

Every timing is the best of several repeats (``time.perf_counter``, garbage collector paused while
timing, as ``timeit`` does). Needs nothing beyond the project's runtime dependency ``bitarray``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import bitarray  # noqa: E402
from reference_java_way import JavaWayEvaluator, make_tasks  # noqa: E402

from es_framework.config import Config, resolve_config  # noqa: E402
from es_framework.core.cluster_view import ClusterView  # noqa: E402
from es_framework.core.evaluation import EvaluationContext, Verdict  # noqa: E402
from es_framework.core.offers import Offer, parse_offer  # noqa: E402
from es_framework.shell.memory import paused_gc  # noqa: E402
from identity.allocator import NodeIdAllocator  # noqa: E402
from strategies import strategy_for  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    mode: str
    #: Ids allocated in a row; linearity compares this with a tenth of it.
    alloc_ids: int
    #: Release+allocate pairs at ``alloc_ids`` taken ids.
    churn_ops: int
    #: Running nodes for the offer-verdict figures.
    node_counts: tuple[int, ...]
    repeat: int
    #: Roughly how long one timed batch of verdicts should take.
    batch_seconds: float


FULL = Sizes("full", 10**6, 10**5, (1_000, 10_000), repeat=5, batch_seconds=0.1)
QUICK = Sizes("quick", 10**5, 10**4, (100, 1_000), repeat=3, batch_seconds=0.01)


# --------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Report:
    as_json: bool
    figures: list[dict[str, Any]] = field(default_factory=list)

    def section(self, title: str) -> None:
        if not self.as_json:
            print(f"\n== {title} ==")

    def note(self, text: str) -> None:
        if not self.as_json:
            print(text)

    def figure(self, key: str, label: str, value: float, unit: str) -> float:
        self.figures.append({"key": key, "label": label, "value": value, "unit": unit})
        if not self.as_json:
            print(f"{label:<66} {_fmt(value):>12} {unit}")
        return value


def _fmt(value: float) -> str:
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


# --------------------------------------------------------------------------------------------
# Timing


def best_of(run: Callable[[], float], repeat: int) -> float:
    """The smallest of ``repeat`` elapsed times that ``run`` measures and returns itself."""
    times = []
    for _ in range(repeat):
        with paused_gc():
            times.append(run())
    return min(times)


def best_per_op(run_n: Callable[[int], float], sizes: Sizes) -> float:
    """Seconds per operation: ``run_n(n)`` times ``n`` operations; ``n`` is calibrated so that one
    batch takes about ``sizes.batch_seconds``; the best of ``sizes.repeat`` batches counts."""
    n = 1
    while True:
        with paused_gc():
            elapsed = run_n(n)
        if elapsed >= sizes.batch_seconds / 10:
            n = max(1, round(n * sizes.batch_seconds / elapsed))
            break
        n *= 10
    return best_of(lambda: run_n(n), sizes.repeat) / n


# --------------------------------------------------------------------------------------------
# 1. NodeIdAllocator


def _fill(count: int) -> float:
    allocator = NodeIdAllocator()
    allocate = allocator.allocate
    start = time.perf_counter()
    for _ in range(count):
        allocate()
    return time.perf_counter() - start


def bench_allocator(report: Report, sizes: Sizes) -> None:
    report.section("NodeIdAllocator")
    big = sizes.alloc_ids
    small = big // 10

    t_big = best_of(lambda: _fill(big), sizes.repeat)
    t_small = best_of(lambda: _fill(small), sizes.repeat)
    report.figure("alloc.allocate_rate", f"allocate {big:,} ids in a row", big / t_big, "ids/s")
    report.figure("alloc.time_small", f"time to allocate {small:,} ids", t_small * 1e3, "ms")
    report.figure("alloc.time_big", f"time to allocate {big:,} ids", t_big * 1e3, "ms")
    report.figure(
        "alloc.linearity_ratio",
        f"linearity: time({big:,} ids) / time({small:,} ids); 10 = linear",
        t_big / t_small,
        "x",
    )

    # Churn at `big` taken ids: release a random id, then allocate (which takes that id back).
    allocator = NodeIdAllocator()
    for _ in range(big):
        allocator.allocate()
    rng = random.Random(20240601)
    victims = [rng.randint(1, big) for _ in range(sizes.churn_ops)]
    for victim in victims[:100]:
        allocator.release(victim)
        if allocator.allocate() != victim:
            raise SystemExit("sanity check failed: allocate() did not return the id just released")

    def churn() -> float:
        release, allocate = allocator.release, allocator.allocate
        start = time.perf_counter()
        for victim in victims:
            release(victim)
            allocate()
        return time.perf_counter() - start

    t_churn = best_of(churn, sizes.repeat)
    if len(allocator) != big:
        raise SystemExit("sanity check failed: churn changed the number of taken ids")
    report.figure(
        "alloc.churn_rate",
        f"churn at {big:,} taken: random release+allocate ({sizes.churn_ops:,} pairs)",
        sizes.churn_ops / t_churn,
        "pairs/s",
    )

    # Indexed, not by field name: older bitarray releases return a plain tuple (same order).
    info = allocator._bits.buffer_info()
    nbytes, alloc = info[1], info[4]
    report.figure("alloc.capacity_bits", f"capacity after {big:,} ids", allocator.capacity_bits, "bits")
    report.figure(
        "alloc.bytes_per_id_capacity",
        "bytes per id: capacity_bits / 8 / ids",
        allocator.capacity_bits / 8 / big,
        "B/id",
    )
    report.figure(
        "alloc.bytes_per_id_buffer", "bytes per id: bitarray buffer_info().nbytes / ids", nbytes / big, "B/id"
    )
    report.figure("alloc.bytes_per_id_alloc", "bytes per id: bitarray buffer_info().alloc / ids", alloc / big, "B/id")
    report.figure(
        "alloc.bytes_per_id_getsizeof",
        "bytes per id: sys.getsizeof(bitarray) / ids",
        sys.getsizeof(allocator._bits) / big,
        "B/id",
    )

    # tracemalloc slows every allocation down a lot, so this build is separate and untimed.
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        traced = NodeIdAllocator()
        allocate = traced.allocate
        for _ in range(big):
            allocate()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    report.figure(
        "alloc.bytes_per_id_tracemalloc", "bytes per id: tracemalloc, allocator kept", (current - base) / big, "B/id"
    )
    report.figure(
        "alloc.bytes_per_id_tracemalloc_peak",
        "bytes per id: tracemalloc, peak while growing",
        (peak - base) / big,
        "B/id",
    )


# --------------------------------------------------------------------------------------------
# 2. Offer verdicts


def _v1_offer(offer_id: str, agent_id: str, hostname: str) -> dict[str, Any]:
    """One offer in the master's v1 JSON, shaped like examples/offers.json."""

    def scalar(name: str, value: float) -> dict[str, Any]:
        return {
            "name": name,
            "type": "SCALAR",
            "scalar": {"value": value},
            "role": "*",
            "allocation_info": {"role": "*"},
        }

    return {
        "id": {"value": offer_id},
        "framework_id": {"value": "fw-bench"},
        "agent_id": {"value": agent_id},
        "hostname": hostname,
        "resources": [
            scalar("cpus", 4),
            scalar("mem", 8192),
            scalar("disk", 20000),
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": 31000, "end": 32000}]},
                "role": "*",
                "allocation_info": {"role": "*"},
            },
        ],
        "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": "zone-1"}}],
    }


def _agent(node_id: int) -> tuple[str, str]:
    return f"agent-{node_id}-S0", f"agent{node_id}.example.com"


@dataclass
class Cluster:
    running: int
    view: ClusterView
    tasks: list[dict[str, Any]]
    allocator: NodeIdAllocator
    fresh_offer: Offer
    busy_offer: Offer


def make_cluster(running: int) -> Cluster:
    nodes = [(node_id, *_agent(node_id)) for node_id in range(1, running + 1)]
    by_agent: Mapping[str, int] = MappingProxyType({agent: node_id for node_id, agent, _ in nodes})
    by_host: Mapping[str, int] = MappingProxyType({host: node_id for node_id, _, host in nodes})
    view = ClusterView(
        desired_nodes=running + 1, present_nodes=running, nodes_by_agent=by_agent, nodes_by_hostname=by_host
    )
    busy_agent, busy_host = _agent(running // 2 + 1)
    return Cluster(
        running=running,
        view=view,
        tasks=make_tasks(nodes),
        allocator=NodeIdAllocator(iter(range(1, running + 1))),
        # Offers are parsed once; only the verdicts are timed.
        fresh_offer=parse_offer(_v1_offer("offer-fresh", "agent-fresh-S0", "fresh.example.com")),
        busy_offer=parse_offer(_v1_offer("offer-busy", busy_agent, busy_host)),
    )


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"sanity check failed: {what}")


def _id_pair_loop(allocator: NodeIdAllocator) -> Callable[[int], float]:
    allocate, release = allocator.allocate, allocator.release

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            release(allocate())
        return time.perf_counter() - start

    return run


Evaluate = Callable[[Offer, ClusterView, Config, EvaluationContext], Verdict]


def _evaluate_loop(
    evaluate: Evaluate,
    offer: Offer,
    view: ClusterView,
    config: Config,
    allocator: NodeIdAllocator | None = None,
) -> Callable[[int], float]:
    """``n`` verdicts of our strategy (every rule evaluated); with ``allocator``, each offer also takes
    (and, to keep the state steady, gives back) the node id it is judged for, as the offer cycle does."""
    if allocator is None:
        context = EvaluationContext(view.present_nodes + 1)

        def run(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                evaluate(offer, view, config, context)
            return time.perf_counter() - start

        return run

    allocate, release = allocator.allocate, allocator.release

    def run_with_id(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            node_id = allocate()
            evaluate(offer, view, config, EvaluationContext(node_id))
            release(node_id)
        return time.perf_counter() - start

    return run_with_id


def _reference_loop(reference: JavaWayEvaluator, offer: Offer, tasks: list[dict[str, Any]]) -> Callable[[int], float]:
    evaluate = reference.evaluate

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            evaluate(offer, tasks)
        return time.perf_counter() - start

    return run


def bench_verdicts(report: Report, sizes: Sizes, configs: dict[str, Config]) -> None:
    report.section("Offer verdicts: ours (ClusterView + rules) vs the Java-way reference (task-list scans)")
    report.note(
        f"cluster: N running nodes, desired N+1; 'accepted' = offer from a fresh agent, 'declined' = offer "
        f"from an agent running a node; best of {sizes.repeat} batches of ~{sizes.batch_seconds * 1e3:g} ms"
    )
    rates: dict[tuple[str, int, str], float] = {}
    for running in sizes.node_counts:
        cluster = make_cluster(running)
        view, tasks, allocator = cluster.view, cluster.tasks, cluster.allocator
        fresh, busy = cluster.fresh_offer, cluster.busy_offer
        _check(allocator.lowest_free == running + 1, "allocator's lowest free id")

        per_pair = best_per_op(_id_pair_loop(allocator), sizes)
        report.figure(
            f"verdicts.n{running}.id_pair_us",
            f"[N={running:,}] ours: node id per offer, allocate+release pair",
            per_pair * 1e6,
            "µs/offer",
        )

        for name, config in configs.items():
            strategy = strategy_for(config)
            evaluate = strategy.evaluate
            reference = JavaWayEvaluator(config, running + 1, uses_local_disk=strategy.uses_local_disk)

            _check(strategy.name == name, f"strategy for {name} config is {strategy.name}")
            context = EvaluationContext(running + 1)
            _check(evaluate(fresh, view, config, context).accepted, f"{name}: ours accepts the fresh agent's offer")
            busy_verdict = evaluate(busy, view, config, context)
            _check(busy_verdict.rule == "agent_has_node", f"{name}: ours declines the busy agent ({busy_verdict})")
            ref_verdict, ref_id = reference.evaluate(fresh, tasks)
            _check(ref_verdict.accepted and ref_id == running + 1, f"{name}: reference accepts with id {running + 1}")
            _check(not reference.evaluate(busy, tasks)[0].accepted, f"{name}: reference declines the busy agent")

            tag = f"[N={running:,} {name}]"
            key = f"verdicts.n{running}.{name}"
            ours_a = 1 / best_per_op(_evaluate_loop(evaluate, fresh, view, config), sizes)
            ours_ai = 1 / best_per_op(_evaluate_loop(evaluate, fresh, view, config, allocator), sizes)
            ours_d = 1 / best_per_op(_evaluate_loop(evaluate, busy, view, config), sizes)
            ref_a = 1 / best_per_op(_reference_loop(reference, fresh, tasks), sizes)
            ref_d = 1 / best_per_op(_reference_loop(reference, busy, tasks), sizes)
            report.figure(f"{key}.ours_accept", f"{tag} ours, accepted (evaluate only)", ours_a, "verdicts/s")
            report.figure(f"{key}.ours_accept_id", f"{tag} ours, accepted + node id", ours_ai, "verdicts/s")
            report.figure(
                f"{key}.ref_accept", f"{tag} reference, accepted (incl. its node id scan)", ref_a, "verdicts/s"
            )
            report.figure(
                f"{key}.ratio_accept", f"{tag} ours/reference, accepted (both with node id)", ours_ai / ref_a, "x"
            )
            report.figure(f"{key}.ours_decline", f"{tag} ours, declined (agent runs a node)", ours_d, "verdicts/s")
            report.figure(f"{key}.ref_decline", f"{tag} reference, declined (agent runs a node)", ref_d, "verdicts/s")
            report.figure(f"{key}.ratio_decline", f"{tag} ours/reference, declined", ours_d / ref_d, "x")
            rates[("ours", running, name)] = ours_ai
            rates[("ref", running, name)] = ref_a

    low, high = sizes.node_counts[0], sizes.node_counts[-1]
    if low != high:
        report.section(f"Scaling from {low:,} to {high:,} nodes (accepted offers, with node id; 1 = flat)")
        for name in configs:
            for side, label in (("ours", "ours"), ("ref", "reference")):
                report.figure(
                    f"verdicts.scaling.{name}.{side}",
                    f"[{name}] {label}: verdicts/s at {low:,} / at {high:,}",
                    rates[(side, low, name)] / rates[(side, high, name)],
                    "x",
                )


# --------------------------------------------------------------------------------------------


def environment() -> dict[str, str]:
    return {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "bitarray": bitarray.__version__,
        "machine": f"{platform.platform()} ({platform.machine()}, {os.cpu_count()} CPUs)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shrink sizes ~10x (CI smoke test)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of text")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    report = Report(as_json=args.json)
    started = time.perf_counter()

    env = environment()
    statistic = f"best of {sizes.repeat} repeats (time.perf_counter, gc paused while timing)"
    if not args.json:
        for label, value in env.items():
            print(f"{label + ':':<10} {value}")
        print(f"{'run:':<10} {sizes.mode}; every timing is the {statistic}")

    configs = {
        "external": resolve_config({"externalVolumeDriver": "rexray"}, {}),
        "normal": resolve_config({}, {}),
    }
    bench_allocator(report, sizes)
    bench_verdicts(report, sizes, configs)

    runtime = time.perf_counter() - started
    if args.json:
        document = {
            "environment": env,
            "mode": sizes.mode,
            "statistic": statistic,
            "figures": report.figures,
            "runtime_s": round(runtime, 3),
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"\ntotal runtime: {runtime:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
