"""The ``es-framework`` command: flags (with ``ES_MESOS_*`` environment fall-backs) and subcommands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from es_framework import __version__, contract
from es_framework.app.teardown_command import run_teardown, seconds
from es_framework.config import FLAGS, LOCAL_MODE_WARNING, Config, ConfigError, resolve_config
from es_framework.config.suggest import did_you_mean
from es_framework.core.offers import OfferError, offers_from_document
from es_framework.core.plan import PlanStep, plan_offers
from es_framework.core.resources import format_milli
from es_framework.core.task_builder import local_data_dir
from es_framework.shell import user_settings, volume_profile_file
from es_framework.shell.hooks import NO_HOOKS, Hooks
from strategies import strategy_for

log = logging.getLogger("es_framework")

#: The prefix of the end-to-end tests' hook variables, which only ``python -m es_framework.dev.scheduler``
#: arms: ``es-framework`` refuses to start when it sees one, so nobody believes a hook armed that is not.
TEST_HOOK_PREFIX = "ESMESOS_TEST_"

DESCRIPTION = """\
es-mesos runs an Elasticsearch cluster on Apache Mesos. Each node has a recyclable id; with
--externalVolumeDriver its config and data live on the volumes <frameworkName><id>config and
<frameworkName><id>data, so a replaced node re-attaches its data on any agent.

Every flag can also be set in the environment as ES_MESOS_<FLAG_IN_UPPER_SNAKE>, e.g.
ES_MESOS_ELASTICSEARCH_NODES=5 for --elasticsearchNodes; a flag given on the command line wins.
Boolean flags take true/false (a bare boolean flag means true)."""

COMMANDS_EPILOG = f"""\
Without a command, es-framework runs the scheduler: it leads the cluster's state (ZooKeeper),
registers with Mesos and keeps --elasticsearchNodes nodes running. SIGTERM stops the scheduler
only; the nodes keep running and the next scheduler takes over.

--mesosMaster local runs the whole framework on this machine. It is a DEVELOPMENT TOOL:
  {LOCAL_MODE_WARNING}.
  It starts a development Mesos master with --localAgents simulated agents whose executors are
  local processes (containers are simulated; volumes are directories in --localWorkDir), and the
  scheduler with its state in --localWorkDir. Ctrl-C or SIGTERM stops all of it; starting again
  with the same --localWorkDir brings the same nodes and volumes back.

commands:
  plan      judge a file of Mesos offers as the scheduler would (dry run, no Mesos needed)
  config    run the scheduler's start-up checks and print the configuration (secrets masked)
  teardown  kill the nodes, remove the framework from Mesos; --purge-volumes: the volumes, --purge: the state
  volumes   list the external volumes of every node id ever used, from the stored state (read-only)"""


class _Parser(argparse.ArgumentParser):
    """argparse with the error first and nothing else: the usage of es-framework lists every flag
    (dozens of lines), which buried the one line that says what is wrong; ``--help`` shows it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n({self.prog} --help lists every flag and command)\n")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration flags")
    for spec in FLAGS:
        default = spec.default if spec.default else "unset"
        if spec.secret:
            default = "unset"
        help_text = f"{spec.help} [default: {default}; env: {spec.env_var}]"
        kwargs: dict[str, Any] = {
            "dest": spec.name,
            "metavar": spec.metavar,
            "help": help_text,
            "default": argparse.SUPPRESS,
        }
        if spec.metavar == "BOOL":
            kwargs.update(nargs="?", const="true")
        elif spec.name == "executorLabels":
            kwargs.update(nargs="+")
        group.add_argument(f"--{spec.name}", **kwargs)


SUBCOMMANDS = ("plan", "config", "teardown", "volumes")
_BOOL_FLAGS = {f"--{spec.name}" for spec in FLAGS if spec.metavar == "BOOL"}


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """Make the Java-style forms unambiguous before argparse sees them.

    A bare boolean flag followed by a subcommand (``--useIpAddress plan``) and a label list
    followed by one (``--executorLabels a=b c=d plan``) would otherwise swallow the subcommand.
    """
    out: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        following = argv[index + 1] if index + 1 < len(argv) else None
        if token in _BOOL_FLAGS and (following is None or following.startswith("-") or following in SUBCOMMANDS):
            out.append(f"{token}=true")
        elif token == "--executorLabels" and following is not None and "=" in following:
            labels = []
            while index + 1 < len(argv) and "=" in argv[index + 1] and not argv[index + 1].startswith("-"):
                index += 1
                labels.append(argv[index])
            out.append(f"--executorLabels={' '.join(labels)}")
        else:
            out.append(token)
        index += 1
    return out


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--flag`` of ``parser`` and of its subcommands."""
    names: set[str] = set()
    for action in parser._actions:
        names.update(option for option in action.option_strings if option.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= option_names(sub)
    return names


def unknown_flag_problems(argv: Iterable[str], known: set[str]) -> list[str]:
    """One sentence per ``--flag`` in ``argv`` that no parser knows, with the closest known names.

    Checked before argparse parses, which would otherwise report the flag's value instead (as an
    unknown command) or print its usage first. A prefix of a known flag is left to argparse, which
    accepts an unambiguous one."""
    problems = []
    for token in argv:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        if not name.startswith("--") or name == "--" or any(k.startswith(name) for k in known):
            continue
        problems.append(f"unknown flag {name}{did_you_mean(name, known)}")
    return problems


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="es-framework", description=DESCRIPTION, epilog=COMMANDS_EPILOG, formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"es-mesos {__version__}")
    parser.add_argument(
        "--logLevel",
        default="INFO",
        type=str.upper,  # --logLevel debug is what people type
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (any case)",
    )
    _add_config_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    plan = commands.add_parser(
        "plan",
        help="judge a file of offers as the scheduler would",
        description='Judge a JSON file of Mesos offers (a list, {"offers": [...]}, or a v1 OFFERS event) '
        "as the scheduler would for an empty cluster: which offer gets which node id and volumes, and why "
        "each other offer is declined. Takes the same configuration flags as the scheduler.",
        formatter_class=formatter,
    )
    plan.add_argument("--offers", required=True, metavar="FILE", help="JSON file of offers ('-' for standard input)")
    plan.add_argument("--json", action="store_true", help="print the plan, with full TaskInfos, as JSON")
    _add_config_flags(plan)

    config = commands.add_parser(
        "config",
        help="run the scheduler's start-up checks and print the configuration",
        description="Validate the flags and environment exactly as the scheduler does when it starts (a Mesos "
        "master is given, the state has a durable place, an HTTP master's host resolves) and print the "
        "configuration as JSON (secrets masked). Exit status 2 when the scheduler would refuse to start.",
    )
    _add_config_flags(config)

    teardown = commands.add_parser(
        "teardown",
        help="kill the nodes and remove the framework from Mesos (volumes are kept)",
        description="Tear the cluster's framework down: with the same flags as the scheduler (master, state URL, "
        "names), mark the stored state torn down, send Mesos TEARDOWN with the stored framework id (Mesos kills "
        "every node), and list the volumes, which are kept. A scheduler started afterwards on that state refuses "
        "to start (exit 2). The scheduler must be stopped first: the teardown waits for its leader lock. "
        "--purge-volumes (external strategy, after confirmation) first stops every node and removes every volume "
        "through volume tasks, and tears the framework down only once every removal succeeded (or with --force).",
        formatter_class=formatter,
    )
    teardown.add_argument("--purge", action="store_true", help="also delete the stored state")
    teardown.add_argument(
        "--purge-volumes",
        action="store_true",
        help="external strategy: first stop every node and REMOVE every volume (volume tasks), after confirmation; "
        "TEARDOWN only once every removal succeeded (or with --force)",
    )
    teardown.add_argument("--yes", action="store_true", help="confirm --purge-volumes without the prompt (scripts)")
    teardown.add_argument("--force", action="store_true", help="with --purge-volumes: TEARDOWN even if volumes remain")
    for flag, what, default in (("stop", "every node's task may take to end", 120), ("removal", "removals take", 600)):
        teardown.add_argument(
            f"--{flag}-timeout",
            type=seconds(f"--{flag}-timeout"),
            metavar="SECONDS",
            help=f"with --purge-volumes: how long {what} [default: {default}]",
        )
    _add_config_flags(teardown)

    volumes = commands.add_parser(
        "volumes",
        help="list the external volumes of every node id ever used (read-only)",
        description="Print the volume inventory from the stored state, as GET /v1/volumes answers it: both volumes "
        "of every node id ever used, with driver, profile and options, the agent that last attached them, whether "
        "a task of ours holds them now, orphans (node ids above the desired count, or a torn-down framework) and "
        "volumes whose profile differs from the one the flags name now. Takes the scheduler's flags (state URL, "
        "names, volume driver and profiles). Reads only: no leader lock, so it runs next to a running scheduler.",
        formatter_class=formatter,
    )
    volumes.add_argument("--json", action="store_true", help="print the inventory as JSON (as GET /v1/volumes)")
    _add_config_flags(volumes)
    return parser


def _given_flags(namespace: argparse.Namespace) -> dict[str, str]:
    given: dict[str, str] = {}
    for spec in FLAGS:
        if hasattr(namespace, spec.name):
            value = getattr(namespace, spec.name)
            given[spec.name] = " ".join(value) if isinstance(value, list) else value
    return given


def _describe_step(step: PlanStep, config: Config) -> str:
    if step.rule == "malformed":
        return f"offer {step.offer_id}: DECLINE [malformed] {step.reason}"
    where = f"offer {step.offer_id} on {step.hostname} [{step.agent_id}]"
    if not step.accepted:
        # The rule it is declined (and counted) under, then every rule's outcome in order.
        return "\n".join((f"{where}: DECLINE [{step.rule}] {step.reason}", *(f"    {o}" for o in step.outcomes)))
    assert step.task_info is not None
    env = {v["name"]: v["value"] for v in step.task_info["executor"]["command"]["environment"]["variables"]}
    totals: Counter[str] = Counter()
    for resource in step.task_info["resources"]:
        if "scalar" in resource:
            totals[resource["name"]] += round(resource["scalar"]["value"] * 1000)
    amounts = " ".join(f"{name} {format_milli(totals[name])}" for name in ("cpus", "mem", "disk") if totals[name])
    storage = (
        f"volumes {step.volumes[0]}, {step.volumes[1]} via {config.external_volume_driver}"
        if step.volumes
        # Normal mode keeps the data in this agent directory under either containerizer (mounted into
        # the Docker container; used in place by an executor without an image).
        else f"data on the agent at {local_data_dir(config)}"
    )
    return (
        f"{where}: ACCEPT node {step.node_id} as {step.task_info['name']} "
        f"(task {step.task_info['task_id']['value']}); {storage}; "
        f"ports http {env['ELASTICSEARCH_HTTP_PORT']} transport {env['ELASTICSEARCH_TRANSPORT_PORT']}; {amounts}"
        + (f"; zone {env[contract.ENV_NODE_ZONE]}" if contract.ENV_NODE_ZONE in env else "")
    )


def _run_plan(args: argparse.Namespace, config: Config) -> int:
    try:
        if args.offers == "-":
            document = json.load(sys.stdin)
        else:
            with open(args.offers, encoding="utf-8") as handle:
                document = json.load(handle)
        raw_offers = offers_from_document(document)
    except FileNotFoundError:
        log.error("--offers %s: no such file", args.offers)
        return 2
    except OSError as exc:  # a directory, no permission, ...
        log.error("--offers %s: cannot be read: %s", args.offers, exc.strerror or exc)
        return 2
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.error("--offers %s: not valid JSON: %s", args.offers, exc)
        return 2
    except OfferError as exc:
        log.error("--offers %s: %s", args.offers, exc)
        return 2
    steps = plan_offers(raw_offers, config, strategy=strategy_for(config))
    placed = [s for s in steps if s.node_id is not None]
    declined: Counter[str] = Counter(s.rule or "" for s in steps if not s.accepted)
    if args.json:
        out = {
            "framework": config.framework_name,
            "cluster": config.cluster_name,
            "strategy": config.strategy_name,
            "desired_nodes": config.elasticsearch_nodes,
            "steps": [
                {
                    "offer_id": s.offer_id,
                    "agent_id": s.agent_id,
                    "hostname": s.hostname,
                    "accepted": s.node_id is not None,
                    "rule": s.rule,
                    "reason": s.reason,
                    "node_id": s.node_id,
                    "volumes": list(s.volumes) if s.volumes else None,
                    "task_info": s.task_info,
                    "outcomes": [{"rule": o.rule, "passed": o.passed, "reason": o.reason} for o in s.outcomes],
                }
                for s in steps
            ],
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    storage = (
        f"external strategy, volume driver {config.external_volume_driver}"
        if config.external_volume_driver
        else "normal strategy, local disk"
    )
    lines = [
        f"plan for cluster {config.cluster_name} (framework {config.framework_name}, {storage}, "
        f"{'Docker' if config.use_docker else 'Mesos'} containerizer): {config.elasticsearch_nodes} nodes wanted, "
        f"{len(steps)} offers",
        *(_describe_step(step, config) for step in steps),
        f"result: {len(placed)} of {config.elasticsearch_nodes} nodes placed; {sum(declined.values())} offers declined"
        + (f" ({', '.join(f'{rule}: {n}' for rule, n in sorted(declined.items()))})" if declined else ""),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None, *, hooks: Hooks | None = None) -> int:
    """``es-framework``; ``hooks`` are installed by development tools only (``es_framework.dev.scheduler``)."""
    parser = build_parser()
    arguments = normalise_argv(sys.argv[1:] if argv is None else argv)
    unknown = unknown_flag_problems(arguments, option_names(parser))
    if unknown:
        parser.error("\n  ".join(unknown))
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=args.logLevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        config = resolve_config(_given_flags(args), os.environ if env is None else env)
    except ConfigError as exc:
        sys.stderr.write(f"es-framework: {exc}\n")
        return 2
    # Neither starts a node: the operator's elasticsearch.yml does not matter to them.
    if args.command not in ("teardown", "volumes"):
        try:
            config = user_settings.load(config)
        except user_settings.UserSettingsError as exc:
            sys.stderr.write(f"es-framework: {exc}\n")
            return 2
        try:
            config = volume_profile_file.load(config)
        except volume_profile_file.VolumeProfileFileError as exc:
            sys.stderr.write(f"es-framework: {exc}\n")
            return 2
    for warning in config.warnings:
        log.warning("%s", warning)
    if args.command == "plan":
        return _run_plan(args, config)
    environment = os.environ if env is None else env
    if args.command == "config":
        return _exit_status("config", lambda: _run_config(config, environment))
    if args.command == "teardown":
        return _exit_status("teardown", lambda: _run_teardown(config, args))
    if args.command == "volumes":
        return _exit_status("volumes", lambda: _run_volumes(config, as_json=args.json))
    if config.security_warning:
        log.warning("%s", config.security_warning)
    return _exit_status(None, lambda: _run_scheduler(config, environment, hooks))


def _unarmed_test_hooks(env: Mapping[str, str], hooks: Hooks | None) -> list[str]:
    """The end-to-end tests' hook variables set while no hook is armed (``es-framework`` refuses them)."""
    return [] if hooks is not None else sorted(name for name in env if name.startswith(TEST_HOOK_PREFIX))


def _run_config(config: Config, env: Mapping[str, str]) -> None:
    """``es-framework config``: the scheduler's own start-up checks, then the configuration as JSON."""
    from es_framework.app.startup import check_startable  # noqa: PLC0415

    check_startable(config, test_hook_vars=_unarmed_test_hooks(env, None), serves_api=True)
    json.dump(config.public_dict(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _exit_status(command: str | None, run: Callable[[], None]) -> int:
    """Run ``command`` (``None``: the scheduler) and turn how it ended into the exit status, the one
    place that decides it: 2 when it refused (the flags, the environment or the stored state must
    change first), 1 when it failed. A one-shot command prints its failure; the scheduler logs it."""
    from es_framework.app.startup import RefusedError  # noqa: PLC0415
    from es_framework.app.teardown import TeardownError  # noqa: PLC0415
    from es_framework.core.node_state import NodeStateError  # noqa: PLC0415
    from es_framework.shell.state_store import StateStoreError  # noqa: PLC0415

    try:
        run()
    except RefusedError as exc:
        sys.stderr.write(f"es-framework: {exc}\n")
        return 2
    except (TeardownError, StateStoreError, NodeStateError) as exc:
        if command is None:
            log.error("state store: %s", exc)
        else:
            sys.stderr.write(f"es-framework {command}: {exc}\n")
        return 1
    return 0


def _run_teardown(config: Config, args: argparse.Namespace) -> None:
    run_teardown(config, args, stdin=sys.stdin, stdout=sys.stdout)


def _run_volumes(config: Config, *, as_json: bool) -> None:
    from es_framework.app.volumes_report import volumes_report  # noqa: PLC0415

    sys.stdout.write(volumes_report(config, as_json=as_json) + "\n")


def _run_scheduler(config: Config, env: Mapping[str, str], hooks: Hooks | None) -> None:
    """The main job: the scheduler. SIGTERM (a Marathon redeploy) stops the scheduler only; so
    does SIGINT (Ctrl-C)."""
    # Imported here: pymesos and kazoo are only needed to run the scheduler.
    from es_framework.app.run import run_scheduler  # noqa: PLC0415
    from es_framework.app.startup import check_startable  # noqa: PLC0415
    from es_framework.shell.signals import interrupt_on_sigint  # noqa: PLC0415

    check_startable(config, test_hook_vars=_unarmed_test_hooks(env, hooks), serves_api=True)
    interrupt_on_sigint()
    if config.local_mode:
        _run_local(config, hooks or NO_HOOKS)
        return
    stop = _stop_on_sigterm("stopping the scheduler; the nodes keep running and the next scheduler takes over")
    try:
        run_scheduler(config, stop, hooks or NO_HOOKS)
    except KeyboardInterrupt:  # Ctrl-C before the driver shell ran (e.g. waiting for the leader lock)
        log.info("interrupted: the scheduler stopped; the nodes keep running")


def _stop_on_sigterm(what: str) -> threading.Event:
    """An event that SIGTERM (Marathon stopping the app) sets, logging ``what`` happens then."""
    stop = threading.Event()

    def on_sigterm(signum: int, frame: object) -> None:
        log.info("SIGTERM: %s", what)
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    return stop


def _run_local(config: Config, hooks: Hooks) -> None:
    """Local mode (``--mesosMaster local``): everything on this machine; Ctrl-C or SIGTERM stops all of it."""
    # The one place production imports the development tools: local mode is one.
    from es_framework.dev.local import run_local  # noqa: PLC0415

    stop = _stop_on_sigterm("stopping local mode (the scheduler, then the development cluster and every node)")
    try:
        run_local(config, stop, hooks)
    except KeyboardInterrupt:  # Ctrl-C is how local mode is stopped, not a failure
        log.info("interrupted: local mode stopped")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
