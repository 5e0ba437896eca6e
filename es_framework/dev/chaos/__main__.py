"""``python -m es_framework.dev.chaos --seed S --faults N [--nodes K] [--agents A] [--mode fake|process]
[--json]``: the chaos runner (development tool; see :mod:`es_framework.dev.chaos`). Exit status 0
without violations, 1 with, 2 for bad arguments or when the run cannot start."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from es_framework.dev.chaos.report import as_json_text, table
from es_framework.dev.chaos.runner import RunOptions
from es_framework.dev.zookeeper import zookeeper_problem


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not at least 1")
    return number


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m es_framework.dev.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, required=True, help="draws the whole sequence of faults")
    parser.add_argument("--faults", type=_positive, required=True, help="how many faults to inject")
    parser.add_argument("--nodes", type=_positive, default=3, help="Elasticsearch nodes wanted at the start")
    parser.add_argument("--agents", type=_positive, default=5, help="agents of the development cluster")
    parser.add_argument(
        "--mode",
        choices=("fake", "process"),
        default="fake",
        help="executors: fake (in memory) or process (real executors running demo Elasticsearch nodes, "
        "documents indexed before the faults and counted)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--workdir", type=Path, help="keep ZooKeeper's and the schedulers' logs here")
    parser.add_argument("--verbose", action="store_true", help="log every fault and check on stderr")
    args = parser.parse_args(argv)
    if args.agents < args.nodes + 1:
        parser.error(f"--agents {args.agents}: needs at least --nodes + 1 = {args.nodes + 1} (one agent to spare)")
    return args


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    problem = zookeeper_problem()
    if problem:
        sys.stderr.write(f"the chaos runner needs a real ZooKeeper: {problem}\n")
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from es_framework.dev.chaos.runner import ChaosRunner  # noqa: PLC0415 - kazoo & co. only once arguments are good

    # SIGTERM or SIGINT (also when started in the background) end the run through its cleanup, so
    # no scheduler or ZooKeeper it started is left behind.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupted)
    options = RunOptions(args.seed, args.faults, args.nodes, args.agents, args.mode, args.workdir)
    result = ChaosRunner(options).run()
    print(as_json_text(result) if args.json else table(result))
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
