"""``es-framework teardown``'s command line part: which flags go together, the confirmation prompt of
``--purge-volumes``, and what is printed. The work is :mod:`es_framework.app.teardown` and
:mod:`es_framework.app.teardown_volumes`, imported when the command runs: the parser imports this
module for :func:`seconds`, and ``es-framework --help`` should not load the state store or pymesos."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TextIO

from es_framework.config import Config

#: The answer the prompt wants, typed in full.
YES = "yes"


def seconds(flag: str) -> Callable[[str], float]:
    """An argparse type: a positive, finite number of seconds; the error names ``flag``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not a number of seconds") from None
        if not value > 0 or math.isinf(value):
            raise argparse.ArgumentTypeError(f"{flag}: {text!r} must be a positive number of seconds")
        return value

    return parse


def _purge_only(args: argparse.Namespace) -> list[str]:
    given = {
        "--yes": args.yes,
        "--force": args.force,
        "--stop-timeout": args.stop_timeout is not None,
        "--removal-timeout": args.removal_timeout is not None,
    }
    return [flag for flag, value in given.items() if value]


def run_teardown(config: Config, args: argparse.Namespace, *, stdin: TextIO, stdout: TextIO) -> None:
    """``es-framework teardown [--purge] [--purge-volumes [--yes] [--force] [--stop-timeout S]
    [--removal-timeout S]]``; refusals raise :class:`RefusedError` before anything changed."""
    from es_framework.app.startup import RefusedError, check_startable  # noqa: PLC0415
    from es_framework.app.teardown import teardown_cluster  # noqa: PLC0415
    from es_framework.app.teardown_engine import PurgeLimits  # noqa: PLC0415
    from es_framework.app.teardown_volumes import (  # noqa: PLC0415
        PurgeVolumes,
        TeardownIncompleteError,
        purge_volumes_and_teardown,
    )
    from es_framework.core.task_builder import local_data_dir  # noqa: PLC0415

    # A configuration without a master is never local mode: check_startable refuses it below.
    if config.local_mode:
        raise RefusedError(
            "teardown does not apply to local mode: stop it with Ctrl-C (or SIGTERM), which stops "
            f"every node; to start afresh, delete its work directory {config.local_work_dir}"
        )
    if not args.purge_volumes:
        given = _purge_only(args)
        if given:
            raise RefusedError(f"{', '.join(given)}: only with --purge-volumes")
        check_startable(config)
        stdout.write("\n".join(teardown_cluster(config, purge=args.purge)) + "\n")
        return
    if not config.external_volume_driver:
        raise RefusedError(
            "--purge-volumes applies to the external strategy only (--externalVolumeDriver); the normal strategy "
            f"keeps its data on the agents under {local_data_dir(config)}"
        )
    if not args.yes and not stdin.isatty():
        raise RefusedError(
            "--purge-volumes removes every volume of the cluster and asks first, but stdin is not a terminal: "
            "run it at one, or add --yes"
        )
    check_startable(config)

    def confirm(text: str) -> bool:
        stdout.write(text + "\n")
        if args.yes:
            stdout.write("confirmed by --yes\n")
            stdout.flush()
            return True
        stdout.write(f"Type {YES} to go on: ")
        stdout.flush()
        return stdin.readline().strip() == YES

    defaults = PurgeLimits()
    limits = PurgeLimits(
        stop_timeout=args.stop_timeout or defaults.stop_timeout,
        removal_timeout=args.removal_timeout or defaults.removal_timeout,
    )
    try:
        lines = purge_volumes_and_teardown(
            config, PurgeVolumes(confirm=confirm, limits=limits, force=args.force), purge=args.purge
        )
    except TeardownIncompleteError as exc:
        if exc.lines:
            stdout.write("\n".join(exc.lines) + "\n")
        raise
    stdout.write("\n".join(lines) + "\n")
