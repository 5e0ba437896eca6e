"""The ``es-framework`` command, in-process (``main(argv, env=...)``) and as a real subprocess."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from es_framework import __version__
from es_framework.cli import main, unknown_flag_problems
from es_framework.config import FLAGS, resolve_config
from tests.harness.builders import EXAMPLE_EXTERNAL_DECLINES, MARATHON_GARBAGE

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "offers.json"
SECRET_TEXT = "hunter2-Zq9-very-secret"
#: ``config`` runs the scheduler's start-up checks, so it needs a master; a ZooKeeper one is not resolved.
#: A ZooKeeper master, with the API opt-out: without a token the scheduler (and config) refuse to start.
ZK_MASTER = ("--mesosMaster", "zk://zk1:2181/mesos", "--insecureApi", "true")
BINARY_URL = "https://artifacts.example.com/elasticsearch-8.13.tar.gz"


# --- helpers ----------------------------------------------------------------------------------------


def run_main(capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    code = main(list(argv), env={} if env is None else env)
    out, err = capsys.readouterr()
    return code, out, err


def run_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """For argparse paths that end in SystemExit (--help, --version, usage errors)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv), env={})
    out, err = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return info.value.code, out, err


def run_process(
    *argv: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python3 -m es_framework ...`` from the repository root with a controlled environment."""
    controlled = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",  # write nothing into the repository
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "100",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "es_framework", *argv],
        cwd=REPO,
        env=controlled,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def help_blocks(help_text: str) -> dict[str, str]:
    """Each ``--flag``'s help entry, whitespace-normalised (argparse wraps lines)."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in help_text.splitlines():
        match = re.match(r"^  --(\w+)", line)
        if match:
            current = match[1]
            blocks[current] = [line]
        elif current is not None and line.startswith("   "):
            blocks[current].append(line)
        else:
            current = None
    return {name: " ".join(" ".join(lines).split()) for name, lines in blocks.items()}


def accepted_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": ACCEPT node " in line]


def error_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "es_framework"]


def warning_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "es_framework"]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET_TEXT + "\n")
    return path


# --- help and version ------------------------------------------------------------------------------


def _assert_help_lists_every_flag(text: str) -> None:
    blocks = help_blocks(text)
    for spec in FLAGS:
        assert spec.name in blocks, f"--{spec.name} missing from --help"
        assert f"env: {spec.env_var}]" in blocks[spec.name], blocks[spec.name]
    assert "[default: 31100; env: ES_MESOS_WEB_UI_PORT]" in blocks["webUiPort"]
    assert "[default: 3; env: ES_MESOS_ELASTICSEARCH_NODES]" in blocks["elasticsearchNodes"]
    assert "[default: unset; env: ES_MESOS_FRAMEWORK_SECRET_PATH]" in blocks["frameworkSecretPath"]
    assert "[default: unset; env: ES_MESOS_EXTERNAL_VOLUME_CONFIG_OPTIONS]" in blocks["externalVolumeConfigOptions"]
    assert "ES_MESOS_<FLAG_IN_UPPER_SNAKE>" in text
    assert "plan" in text and "config" in text


def test_help_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_exit(capsys, "--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: es-framework ")
    _assert_help_lists_every_flag(out)


def test_help_as_a_subprocess() -> None:
    result = run_process("--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    _assert_help_lists_every_flag(result.stdout)


@pytest.mark.parametrize("command", ["plan", "config"])
def test_subcommands_take_the_configuration_flags(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, err = run_exit(capsys, command, "--help")
    assert code == 0 and err == ""
    blocks = help_blocks(out)
    assert {spec.name for spec in FLAGS} <= set(blocks)
    assert ("offers" in blocks) is (command == "plan")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_exit(capsys, "--version")
    assert code == 0 and out == f"es-mesos {__version__}\n" and err == ""


# --- config ------------------------------------------------------------------------------------------


def test_config_prints_the_configuration_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "config", *ZK_MASTER)
    assert code == 0 and err == ""
    printed = json.loads(out)
    assert printed == json.loads(
        json.dumps(resolve_config({"mesosMaster": ZK_MASTER[1], "insecureApi": "true"}, {}).public_dict())
    )
    assert printed["webUiPort"] == 31100 and printed["frameworkName"] == "elasticsearch"
    assert list(printed) == sorted(printed)  # stable output


def test_config_masks_the_secret(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, secret_file: Path
) -> None:
    code, out, err = run_main(
        capsys,
        "config",
        "--frameworkPrincipal",
        "ops",
        "--frameworkSecretPath",
        str(secret_file),
        "--mesosMaster",
        "zk://super:zkPa55@zk1:2181/mesos",
        "--insecureApi",
    )
    assert code == 0
    printed = json.loads(out)
    assert printed["frameworkSecretPath"] == "****"
    assert printed["frameworkPrincipal"] == "ops"
    assert printed["mesosMaster"] == "zk://zk1:2181/mesos"
    everything = out + err + "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET_TEXT not in everything and "zkPa55" not in everything
    assert warning_records(caplog) == [
        f"--frameworkSecretPath: {secret_file} ends with a newline; it was stripped from the secret"
    ]


def test_config_secret_as_a_subprocess(secret_file: Path) -> None:
    result = run_process("config", *ZK_MASTER, "--frameworkPrincipal=ops", f"--frameworkSecretPath={secret_file}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frameworkSecretPath"] == "****"
    assert SECRET_TEXT not in result.stdout + result.stderr
    assert "WARNING es_framework: --frameworkSecretPath:" in result.stderr
    assert "ends with a newline" not in result.stdout


def test_env_values_are_honoured_and_flags_win(capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "ES_MESOS_WEB_UI_PORT": "8080",
        "ES_MESOS_USE_IP_ADDRESS": "true",
        "ES_MESOS_ELASTICSEARCH_NODES": "5",
        "ES_MESOS_ZOOKEEPER_MESOS_URL": "zk://zk1:2181/mesos",
        "ES_MESOS_INSECURE_API": "true",
    }
    code, out, _ = run_main(capsys, "config", env=env)
    printed = json.loads(out)
    assert code == 0
    assert (printed["webUiPort"], printed["useIpAddress"], printed["elasticsearchNodes"]) == (8080, True, 5)
    assert printed["mesosMaster"] == "zk://zk1:2181/mesos"
    code, out, _ = run_main(capsys, "config", "--webUiPort", "9090", "--useIpAddress", "false", env=env)
    printed = json.loads(out)
    assert code == 0 and printed["webUiPort"] == 9090 and printed["useIpAddress"] is False
    assert printed["elasticsearchNodes"] == 5


def test_main_without_env_reads_the_process_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ES_MESOS_WEB_UI_PORT", "8181")
    monkeypatch.setenv("ES_MESOS_MESOS_MASTER", ZK_MASTER[1])
    monkeypatch.setenv("ES_MESOS_INSECURE_API", "true")
    assert main(["config"]) == 0
    assert json.loads(capsys.readouterr().out)["webUiPort"] == 8181
    # an explicit env replaces the process environment entirely
    assert main(["config"], env={}) == 2
    assert "no Mesos master" in capsys.readouterr().err
    assert main(["config", *ZK_MASTER], env={}) == 0
    assert json.loads(capsys.readouterr().out)["webUiPort"] == 31100
    assert main(["config", *ZK_MASTER], env={"ES_MESOS_WEB_UI_PORT": "8282"}) == 0
    assert json.loads(capsys.readouterr().out)["webUiPort"] == 8282


def test_marathon_variables_are_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    code, baseline, _ = run_main(capsys, "config", *ZK_MASTER)
    code2, out, err = run_main(capsys, "config", *ZK_MASTER, env=MARATHON_GARBAGE)
    assert code == code2 == 0
    assert out == baseline and err == ""


def test_marathon_variables_are_ignored_by_the_real_process() -> None:
    clean = run_process("config", *ZK_MASTER)
    dirty = run_process("config", *ZK_MASTER, env=MARATHON_GARBAGE)
    assert clean.returncode == dirty.returncode == 0, dirty.stderr
    assert dirty.stdout == clean.stdout and dirty.stderr == ""
    assert json.loads(dirty.stdout)["elasticsearchNodes"] == 3


def test_flag_spellings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        capsys,
        "--elasticsearchNodes",
        "5",  # before the subcommand
        "config",
        *ZK_MASTER,
        "--useIpAddress",  # a bare boolean means true
        "--executorLabels",
        "team=search",
        "env=prod",  # several values
        "--elasticsearchPorts=9200,9300",
        "--frameworkRole=eng/es",
        "--allowGpuAgents",
    )
    printed = json.loads(out)
    assert code == 0
    assert printed["elasticsearchNodes"] == 5
    assert printed["useIpAddress"] is True and printed["allowGpuAgents"] is True
    assert printed["executorLabels"] == {"team": "search", "env": "prod"}
    assert printed["elasticsearchPorts"] == {"http": 9200, "transport": 9300}
    assert printed["frameworkRole"] == "eng/es"


# --- invalid flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--elasticsearchNodes", "0"], "--elasticsearchNodes: '0' must be a whole number of nodes of at least 1"),
        (["--elasticsearchNodes", "2.5"], "--elasticsearchNodes: '2.5' must be a whole number of nodes"),
        (["--elasticsearchCpu", "nan"], "--elasticsearchCpu: 'nan' must be a number greater than 0"),
        (["--elasticsearchRam=-5"], "--elasticsearchRam: '-5' must be a number greater than 0 (MB)"),
        (["--frameworkFailoverTimeout", "inf"], "--frameworkFailoverTimeout: 'inf' must be a number greater than 0"),
        (["--zookeeperMesosUrl", "zk://h:2181"], "--zookeeperMesosUrl: 'zk://h:2181' must be zk://"),
        (["--mesosMaster", "ftp://x"], "--mesosMaster: 'ftp://x' must be host[:port] or http(s)://host[:port]"),
        (["--mesosMaster", "not a url"], "--mesosMaster: 'not a url' must be host[:port] or http(s)://host[:port]"),
        (["--mesosMaster", "10.0.0.300"], "('10.0.0.300' is not an IPv4 address)"),
        (["--elasticsearchPorts", "9200,9200"], "--elasticsearchPorts: '9200,9200' the HTTP and transport ports must"),
        (["--frameworkName", "es1"], "--frameworkName: 'es1' is not allowed: it ends with a digit"),
        (["--frameworkRole=-x"], "--frameworkRole: '-x' must be '*' or a Mesos role name"),
        (["--executorLabels", "es-mesos.node-id=1"], "label keys starting with 'es-mesos.' belong to the framework"),
        (["--elasticsearchUser", "root"], "--elasticsearchUser: 'root' must not be root"),
        (["--dataDir", "data"], "--dataDir: 'data' must be an absolute path"),
        (["--externalVolumeOptions", "size=1"], "--externalVolumeOptions needs --externalVolumeDriver"),
        (["--frameworkUseDocker", "false"], "--frameworkUseDocker false needs --elasticsearchBinaryUrl"),
        (["--externalVolumeDriver", "rexray", "--externalVolumeMethod", "dvdi"], "--externalVolumeMethod applies to"),
        (["--mesosMaster", "zk://a/mesos", "--zookeeperMesosUrl", "zk://b/mesos"], "disagree; give one of them"),
    ],
)
@pytest.mark.parametrize("command", ["config", "plan", None])
def test_invalid_flags_exit_2_with_the_flag_on_stderr(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str, command: str | None
) -> None:
    # plan: the configuration is rejected before the offers file is even opened
    full = [command, *argv] if command else argv
    if command == "plan":
        full += ["--offers", "/nonexistent/offers.json"]
    code, out, err = run_main(capsys, *full)
    assert code == 2
    assert out == ""
    assert err.startswith("es-framework: invalid configuration:\n  - ")
    assert expected in err
    assert "no Mesos master" not in err and "no such file" not in err


def test_all_invalid_flags_are_reported_together(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(
        capsys,
        "config",
        "--elasticsearchNodes",
        "0",
        "--webUiPort",
        "0",
        "--elasticsearchPorts",
        "9200",
        env={"ES_MESOS_ELASTICSEARCH_CPU": "abc"},
    )
    assert code == 2 and out == ""
    assert err.count("\n  - ") == 4
    for fragment in (
        "--elasticsearchNodes: '0'",
        "--elasticsearchCpu (from ES_MESOS_ELASTICSEARCH_CPU): 'abc'",
        "--elasticsearchPorts: '9200'",
        "--webUiPort: '0' must be a port from 1 to 65535",
    ):
        assert fragment in err


def test_secret_is_not_in_error_output(capsys: pytest.CaptureFixture[str], secret_file: Path) -> None:
    code, out, err = run_main(capsys, "config", "--frameworkSecretPath", str(secret_file), "--elasticsearchNodes", "0")
    assert code == 2 and out == ""
    assert "--frameworkSecretPath is given without --frameworkPrincipal" in err
    assert SECRET_TEXT not in err


def test_invalid_flags_as_a_subprocess() -> None:
    result = run_process("config", "--elasticsearchNodes", "abc", "--frameworkName", "Es")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--elasticsearchNodes: 'abc' must be a whole number of nodes of at least 1" in result.stderr
    assert "--frameworkName: 'Es' is not allowed" in result.stderr


def test_invalid_env_as_a_subprocess() -> None:
    result = run_process("plan", "--offers", "examples/offers.json", env={"ES_MESOS_ELASTICSEARCH_PORTS": "a,b"})
    assert result.returncode == 2 and result.stdout == ""
    assert "--elasticsearchPorts (from ES_MESOS_ELASTICSEARCH_PORTS): 'a,b'" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["config", "--bogus", "1"], ["config", "--elasticsearchNodes"], ["deploy"], ["--logLevel", "TRACE", "config"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run_exit(capsys, *argv)
    assert code == 2 and out == ""
    assert "es-framework" in err and "error:" in err
    # The error first, and not buried under the usage (every flag: dozens of lines).
    assert err.startswith("es-framework") and "usage:" not in err and len(err.splitlines()) <= 3


@pytest.mark.parametrize(
    ("argv", "unknown"),
    [
        (["config", "--elasticsearchNodez", "5"], "--elasticsearchNodez"),
        # Without a command, argparse took the 5 for an unknown command and never named the flag.
        (["--elasticsearchNodez", "5"], "--elasticsearchNodez"),
        (["--elasticsearchNodez=5", "plan", "--offers", "x.json"], "--elasticsearchNodez"),
        (["teardown", "--elasticsearchnodes", "5"], "--elasticsearchnodes"),
    ],
)
def test_an_unknown_flag_is_named_first_with_the_closest_flags(
    capsys: pytest.CaptureFixture[str], argv: list[str], unknown: str
) -> None:
    code, out, err = run_exit(capsys, *argv)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"es-framework: error: unknown flag {unknown}; did you mean --elasticsearchNodes?",
        "(es-framework --help lists every flag and command)",
    ]


def test_an_unknown_flag_as_a_subprocess() -> None:
    result = run_process("config", "--zookeeperMesosUrll", "zk://zk1:2181/mesos")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "es-framework: error: unknown flag --zookeeperMesosUrll; did you mean --zookeeperMesosUrl?",
        "(es-framework --help lists every flag and command)",
    ]


def test_an_unambiguous_prefix_is_left_to_argparse() -> None:
    known = {"--elasticsearchNodes", "--useIpAddress"}
    assert unknown_flag_problems(["--useIp", "--nope=1", "--", "--after"], known) == ["unknown flag --nope"]
    assert unknown_flag_problems(["--useip"], known) == ["unknown flag --useip; did you mean --useIpAddress?"]


# --- the bare command -----------------------------------------------------------------------------


def test_bare_command_needs_a_master(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "--elasticsearchNodes", "5")
    assert code == 2 and out == ""
    assert err == "es-framework: no Mesos master: give --mesosMaster or --zookeeperMesosUrl\n"


def test_bare_command_refuses_an_http_master_without_durable_state(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "--mesosMaster", "127.0.0.1:5050")
    assert code == 2 and out == ""
    assert err.startswith("es-framework: --frameworkStateUrl is needed with an HTTP Mesos master")


def test_bare_command_as_a_subprocess() -> None:
    result = run_process("--elasticsearchNodes", "3")
    assert result.returncode == 2 and result.stdout == ""
    assert "no Mesos master" in result.stderr


# --- the start-up checks: config runs the scheduler's own ---------------------------------------------

#: RFC 6761 §6.4: names under .invalid never resolve.
UNRESOLVABLE = "notaurl.invalid"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "es-framework: no Mesos master: give --mesosMaster or --zookeeperMesosUrl\n"),
        (["--mesosMaster", "127.0.0.1:5050"], {}, "--frameworkStateUrl is needed with an HTTP Mesos master"),
        (
            ["--mesosMaster", UNRESOLVABLE, "--frameworkStateUrl", "file:///nonexistent/state"],
            {},
            f"es-framework: --mesosMaster 'http://{UNRESOLVABLE}:5050': the host '{UNRESOLVABLE}' does not resolve (",
        ),
        (
            ["--mesosMaster", f"https://{UNRESOLVABLE}:5051"],
            {},
            "--mesosMaster 'https://notaurl.invalid:5051': the scheduler's Mesos client (pymesos) speaks plain HTTP",
        ),
        (list(ZK_MASTER), {"ESMESOS_TEST_CRASH_AT": "after_accept"}, "test hooks are for the end-to-end tests only"),
    ],
)
def test_config_refuses_exactly_what_the_scheduler_refuses(
    capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], expected: str
) -> None:
    config_code, config_out, config_err = run_main(capsys, "config", *argv, env=env)
    scheduler_code, scheduler_out, scheduler_err = run_main(capsys, *argv, env=env)
    assert config_code == scheduler_code == 2
    assert config_out == scheduler_out == ""
    assert config_err == scheduler_err and expected in config_err


def test_an_unresolvable_master_is_refused_as_a_subprocess() -> None:
    result = run_process("config", "--mesosMaster", UNRESOLVABLE, "--frameworkStateUrl", "file:///nonexistent/state")
    assert result.returncode == 2 and result.stdout == ""
    assert f"--mesosMaster 'http://{UNRESOLVABLE}:5050': the host '{UNRESOLVABLE}' does not resolve" in result.stderr


def test_config_accepts_a_resolvable_http_master_with_durable_state(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main(
        capsys, "config", "--mesosMaster", "127.0.0.1", "--frameworkStateUrl", tmp_path.as_uri(), "--insecureApi"
    )
    assert code == 0, err
    assert json.loads(out)["mesosMaster"] == "http://127.0.0.1:5050"
    assert list(tmp_path.iterdir()) == []  # config writes nothing


def test_only_an_http_master_is_resolved(tmp_path: Path) -> None:
    from es_framework.app.startup import RefusedError, check_startable

    asked: list[tuple[Any, ...]] = []

    def resolver(*args: Any, **kwargs: Any) -> list[Any]:
        asked.append(args)
        return []

    check_startable(config_for(mesosMaster="zk://zk1:2181,zk2:2181/mesos"), resolve=resolver)
    check_startable(config_for(mesosMaster="local"), resolve=resolver)
    assert asked == []  # one unresolvable member must not stop a scheduler the ensemble can serve
    check_startable(config_for(mesosMaster="master1:5051", frameworkStateUrl=tmp_path.as_uri()), resolve=resolver)
    assert asked == [("master1", 5051)]

    def failing(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(
        RefusedError, match=r"^--mesosMaster 'http://master1:5050': the host 'master1' does not resolve"
    ):
        check_startable(config_for(mesosMaster="master1", frameworkStateUrl=tmp_path.as_uri()), resolve=failing)


def test_ctrl_c_before_the_driver_runs_stops_the_scheduler_cleanly(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import es_framework.app.run

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(es_framework.app.run, "run_scheduler", interrupted)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        caplog.set_level(logging.INFO)
        code, _, err = run_main(
            capsys, "--mesosMaster", "127.0.0.1", "--frameworkStateUrl", tmp_path.as_uri(), "--insecureApi"
        )
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped es-framework as a traceback")
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert code == 0, err
    assert "interrupted: the scheduler stopped; the nodes keep running" in caplog.text


# --- plan ---------------------------------------------------------------------------------------------


def test_plan_external_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "plan", "--offers", str(EXAMPLE), "--externalVolumeDriver", "rexray")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "plan for cluster mesos-ha (framework elasticsearch, external strategy, volume driver rexray, "
        "Docker containerizer): 3 nodes wanted, 8 offers"
    )
    accepted = accepted_lines(out)
    assert [re.search(r"^offer (\S+) .*ACCEPT node (\d+) as (\S+) ", line).groups() for line in accepted] == [  # type: ignore[union-attr]
        ("offer-1", "1", "elasticsearch1"),
        ("offer-3", "2", "elasticsearch2"),
        ("offer-6", "3", "elasticsearch3"),
    ]
    for node_id, line in enumerate(accepted, start=1):
        assert f"volumes elasticsearch{node_id}config, elasticsearch{node_id}data via rexray;" in line
        assert re.search(rf"\(task elasticsearch-node{node_id}-[0-9a-f]{{32}}\)", line)
        assert "ports http 31000 transport 31001; cpus 1 mem 2048" in line
    offer_2 = "offer offer-2 on agent2.example.com [agent-2-S0]: "
    assert offer_2 + "DECLINE [mem] not enough mem: 1024 MB offered, 2048 MB needed" in lines
    # Then every rule's outcome, in order, one indented line each.
    at = lines.index(offer_2 + "DECLINE [mem] not enough mem: 1024 MB offered, 2048 MB needed")
    assert lines[at + 1 : at + 9] == [
        "    passed cluster_full: 2 of 3 nodes missing",
        "    passed agent_has_node: no node of cluster mesos-ha on this agent or host",
        "    passed gpu_agent: agent offers no GPUs",
        "    passed cpus: enough cpus: 2 offered, 1 needed",
        "    FAILED mem: not enough mem: 1024 MB offered, 2048 MB needed",
        "    passed ports: HTTP port 31000 and transport port 31001 are offered",
        "    passed pinned: node 2 would launch here",
        "    passed backoff: node 2 has not failed lately",
    ]
    assert lines[at + 9].startswith("offer offer-3 ")
    # An accepted offer stays one line.
    assert all(not line.startswith("    ") for line in lines[lines.index(accepted[0]) + 1 : at])
    assert (
        "offer offer-4 on agent1.example.com [agent-1-S0]: DECLINE [agent_has_node] this agent already runs node 1"
        in out
    )
    assert "offer offer-5 on agent5.example.com [agent-5-S0]: DECLINE [gpu_agent] agent offers 1 GPUs" in out
    assert "offer offer-7 on agent7.example.com [agent-7-S0]: DECLINE [cluster_full]" in out
    assert lines[-1] == (
        "result: 3 of 3 nodes placed; 5 offers declined (agent_has_node: 1, cluster_full: 2, gpu_agent: 1, mem: 1)"
    )


def test_plan_normal_strategy_uses_local_disk(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "plan", "--offers", str(EXAMPLE))
    assert code == 0
    assert "normal strategy, local disk, Docker containerizer" in out.splitlines()[0]
    accepted = accepted_lines(out)
    assert [line.split()[1] for line in accepted] == ["offer-1", "offer-3", "offer-7"]
    for line in accepted:
        assert "data on the agent at /var/lib/mesos/slave/elasticsearch/elasticsearch/mesos-ha;" in line
        assert "disk 1024" in line and "volumes " not in line
    assert "offer offer-6 on agent6.example.com [agent-6-S0]: DECLINE [disk] not enough disk" in out
    assert out.splitlines()[-1].endswith("(agent_has_node: 1, cluster_full: 1, disk: 1, gpu_agent: 1, mem: 1)")


def test_plan_mesos_containerizer_names_the_agent_directory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        capsys,
        "plan",
        "--offers",
        str(EXAMPLE),
        "--frameworkUseDocker",
        "false",
        "--elasticsearchBinaryUrl",
        BINARY_URL,
        "--dataDir",
        "/srv/es",
        "--frameworkName",
        "search",
        "--elasticsearchClusterName",
        "logs",
    )
    assert code == 0
    assert "(framework search, normal strategy, local disk, Mesos containerizer)" in out.splitlines()[0]
    accepted = accepted_lines(out)
    assert len(accepted) == 3
    for node_id, line in enumerate(accepted, start=1):
        assert f"ACCEPT node {node_id} as search{node_id} " in line
        assert "data on the agent at /srv/es/search/logs;" in line


def test_plan_takes_flags_from_env_and_before_the_subcommand(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    code, out, _ = run_main(
        capsys,
        "--elasticsearchNodes",
        "2",
        "plan",
        "--offers",
        str(EXAMPLE),
        env={"ES_MESOS_EXTERNAL_VOLUME_DRIVER": "rexray", "ES_MESOS_FRAMEWORK_NAME": "es-prod"},
    )
    assert code == 0
    assert "2 nodes wanted" in out
    assert [line.split(" as ")[1].split()[0] for line in accepted_lines(out)] == ["es-prod1", "es-prod2"]
    assert "volumes es-prod2config, es-prod2data via rexray" in out
    assert warning_records(caplog) == [
        "--elasticsearchNodes 2: an even number of nodes is allowed but not recommended "
        "(it adds no fault tolerance over one node fewer)"
    ]


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "plan", "--offers", str(EXAMPLE), "--json", "--externalVolumeDriver", "rexray")
    assert code == 0 and err == ""
    plan = json.loads(out)
    assert {k: plan[k] for k in ("framework", "cluster", "strategy", "desired_nodes")} == {
        "framework": "elasticsearch",
        "cluster": "mesos-ha",
        "strategy": "external",
        "desired_nodes": 3,
    }
    steps = plan["steps"]
    assert [s["offer_id"] for s in steps] == [f"offer-{i}" for i in range(1, 9)]
    accepted = [s for s in steps if s["accepted"]]
    assert [(s["offer_id"], s["node_id"]) for s in accepted] == [("offer-1", 1), ("offer-3", 2), ("offer-6", 3)]
    for step in accepted:
        n = step["node_id"]
        task: dict[str, Any] = step["task_info"]
        assert step["volumes"] == [f"elasticsearch{n}config", f"elasticsearch{n}data"]
        assert task["name"] == f"elasticsearch{n}"
        assert task["agent_id"] == {"value": step["agent_id"]}
        assert re.fullmatch(rf"elasticsearch-node{n}-[0-9a-f]{{32}}", task["task_id"]["value"])
        assert {r["name"] for r in task["resources"]} >= {"cpus", "mem", "ports"}
    declined = {s["offer_id"]: s["rule"] for s in steps if not s["accepted"]}
    assert declined == EXAMPLE_EXTERNAL_DECLINES
    rules = ["cluster_full", "agent_has_node", "gpu_agent", "cpus", "mem", "ports", "pinned", "backoff"]
    for step in steps:
        assert [o["rule"] for o in step["outcomes"]] == rules
        failing = [(o["rule"], o["reason"]) for o in step["outcomes"] if not o["passed"]]
        # The counted rule and reason are the first failing rule's; an accepted offer failed none.
        assert failing[:1] == ([] if step["accepted"] else [(step["rule"], step["reason"])])
    assert steps[1]["outcomes"][4] == {
        "rule": "mem",
        "passed": False,
        "reason": "not enough mem: 1024 MB offered, 2048 MB needed",
    }
    for step in steps:
        if not step["accepted"]:
            assert step["task_info"] is None and step["node_id"] is None and step["volumes"] is None
            assert step["reason"]


def test_plan_json_marks_malformed_offers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    offers = json.loads(EXAMPLE.read_text())["offers"]["offers"][:1]
    path = tmp_path / "offers.json"
    path.write_text(json.dumps({"offers": [{"id": {"value": "bad"}}, *offers]}))
    code, out, _ = run_main(capsys, "plan", "--offers", str(path), "--json")
    steps = json.loads(out)["steps"]
    assert code == 0
    assert steps[0]["accepted"] is False and steps[0]["rule"] == "malformed" and steps[0]["offer_id"] == "#0"
    assert steps[0]["outcomes"] == []
    assert "agent_id" in steps[0]["reason"]
    assert steps[1]["accepted"] is True and steps[1]["node_id"] == 1
    code, out, _ = run_main(capsys, "plan", "--offers", str(path))
    assert code == 0
    assert out.splitlines()[1].startswith("offer #0: DECLINE [malformed] offer bad: 'agent_id' must be")
    assert not out.splitlines()[2].startswith("    ")
    assert out.splitlines()[-1] == "result: 1 of 3 nodes placed; 1 offers declined (malformed: 1)"


def test_plan_reads_a_plain_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    offers = json.loads(EXAMPLE.read_text())["offers"]["offers"]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(offers))
    code, out, _ = run_main(capsys, "plan", "--offers", str(path), "--externalVolumeDriver", "rexray")
    assert code == 0 and len(accepted_lines(out)) == 3


def test_plan_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(EXAMPLE.read_text()))
    code, out, _ = run_main(capsys, "plan", "--offers", "-", "--externalVolumeDriver", "rexray", "--json")
    assert code == 0
    assert [s["node_id"] for s in json.loads(out)["steps"] if s["accepted"]] == [1, 2, 3]


def test_plan_reads_stdin_as_a_subprocess() -> None:
    result = run_process("plan", "--offers", "-", "--externalVolumeDriver", "rexray", stdin=EXAMPLE.read_text())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "volumes elasticsearch3config, elasticsearch3data via rexray" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("result: 3 of 3 nodes placed; 5 offers declined")


def test_plan_example_file_as_a_subprocess() -> None:
    result = run_process("plan", "--offers", "examples/offers.json", "--externalVolumeDriver", "rexray", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [(s["node_id"], s["volumes"]) for s in plan["steps"] if s["accepted"]] == [
        (n, [f"elasticsearch{n}config", f"elasticsearch{n}data"]) for n in (1, 2, 3)
    ]
    assert all(s["task_info"]["name"] == f"elasticsearch{s['node_id']}" for s in plan["steps"] if s["accepted"])


def _bad_offer_files(tmp_path: Path) -> dict[str, tuple[str, str]]:
    (tmp_path / "broken.json").write_text('{"offers": [')
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\xfa")
    (tmp_path / "other.json").write_text('{"kind": "not offers"}')
    (tmp_path / "number.json").write_text("42")
    (tmp_path / "event.json").write_text('{"type": "OFFERS", "offers": {"offers": {"id": 1}}}')
    (tmp_path / "dir").mkdir()
    expected_shape = 'expected a list of offers, {"offers": [...]}, or a Mesos OFFERS event'
    return {
        "missing": (str(tmp_path / "missing.json"), "no such file"),
        "broken": (str(tmp_path / "broken.json"), "not valid JSON: "),
        "binary": (str(tmp_path / "binary.json"), "not valid JSON: "),
        "other": (str(tmp_path / "other.json"), expected_shape),
        "number": (str(tmp_path / "number.json"), expected_shape),
        "event": (str(tmp_path / "event.json"), expected_shape),
        "dir": (str(tmp_path / "dir"), "cannot be read: Is a directory"),
    }


@pytest.mark.parametrize("case", ["missing", "broken", "binary", "other", "number", "event", "dir"])
def test_plan_bad_offer_files_exit_2(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path, case: str
) -> None:
    path, message = _bad_offer_files(tmp_path)[case]
    code, out, _ = run_main(capsys, "plan", "--offers", path)
    assert code == 2 and out == ""
    errors = error_records(caplog)
    assert len(errors) == 1
    assert errors[0].startswith(f"--offers {path}: {message}")


def test_plan_bad_stdin_exits_2(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    code, out, _ = run_main(capsys, "plan", "--offers", "-")
    assert code == 2 and out == ""
    assert error_records(caplog)[0].startswith("--offers -: not valid JSON: ")


@pytest.mark.parametrize("case", ["missing", "broken", "other"])
def test_plan_bad_offer_files_as_a_subprocess(tmp_path: Path, case: str) -> None:
    path, message = _bad_offer_files(tmp_path)[case]
    result = run_process("plan", "--offers", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"ERROR es_framework: --offers {path}: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_needs_offers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_exit(capsys, "plan")
    assert code == 2 and out == ""
    assert "the following arguments are required: --offers" in err


def test_flags_before_the_subcommand_do_not_swallow_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(
        capsys, "--useIpAddress", "--executorLabels", "a=b", "c=d", "--allowGpuAgents", "config", *ZK_MASTER
    )
    assert code == 0, err
    printed = json.loads(out)
    assert printed["useIpAddress"] is True and printed["allowGpuAgents"] is True
    assert printed["executorLabels"] == {"a": "b", "c": "d"}


def test_a_bare_boolean_before_another_flag_or_at_the_end_means_true(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "config", *ZK_MASTER, "--executorForcePullImage", "--useIpAddress")
    assert code == 0
    printed = json.loads(out)
    assert printed["executorForcePullImage"] is True and printed["useIpAddress"] is True


def test_a_wrong_boolean_value_is_still_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "config", "--useIpAddress", "maybe")
    assert code == 2 and out == ""
    assert "--useIpAddress: 'maybe' must be true or false" in err


# --- teardown and torn-down state -------------------------------------------------------------------


class TeardownDriver:
    """Stands in for pymesos' driver in ``teardown``: subscribes at once (or is refused)."""

    instances: list[TeardownDriver] = []  # noqa: RUF012 - a record of the test's drivers

    def __init__(self, sched: Any, framework: dict[str, Any], master: str, **kwargs: Any) -> None:
        self.sched, self.framework, self.kwargs = sched, framework, kwargs
        self.stops: list[bool] = []
        self.refusal: str | None = None
        TeardownDriver.instances.append(self)

    def start(self) -> None:
        if self.refusal is None:
            self.sched.registered(self, self.framework["id"], {})
        else:
            self.sched.error(self, self.refusal)

    def stop(self, failover: bool = False) -> None:
        self.stops.append(failover)

    def join(self) -> None:
        pass


def _file_flags(tmp_path: Path) -> dict[str, str]:
    return {
        "mesosMaster": "127.0.0.1:5050",
        "frameworkStateUrl": f"file://{tmp_path}",
        "externalVolumeDriver": "rexray",
        "insecureApi": "true",
    }


def _store_document(tmp_path: Path, document: dict[str, Any]) -> Path:
    from es_framework.shell.state_store import FileStateStore

    store = FileStateStore(tmp_path, "elasticsearch", "mesos-ha")
    store.start()
    store.create(document)
    return store.state_file


def _running_document(torn_down_at: float | None = None) -> dict[str, Any]:
    from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
    from es_framework.core.state_document import state_to_json

    nodes = {
        n: NodeRecord(
            node_id=n,
            task_id=f"elasticsearch-node{n}-{'a' * 32}",
            agent_id=f"agent-{n}",
            hostname=f"a{n}",
            http_port=1,
            transport_port=2,
            state=TaskState.RUNNING,
            volumes=(f"elasticsearch{n}config", f"elasticsearch{n}data"),
        )
        for n in (1, 2)
    }
    state = ClusterState(desired_nodes=3, nodes=nodes, framework_id="fw-1", torn_down_at=torn_down_at)
    return state_to_json(state)


def test_teardown_marks_the_state_sends_teardown_and_lists_the_volumes(tmp_path: Path) -> None:
    from es_framework.app.teardown import teardown_cluster

    state_file = _store_document(tmp_path, _running_document())
    cfg = config_for(**_file_flags(tmp_path))
    TeardownDriver.instances.clear()
    lines = teardown_cluster(cfg, driver_factory=TeardownDriver, clock=lambda: 1234.5)
    (driver,) = TeardownDriver.instances
    assert driver.framework["id"] == {"value": "fw-1"} and driver.kwargs["failover"] is False
    assert driver.stops == [False]  # a non-failover stop is pymesos' TEARDOWN
    text = "\n".join(lines)
    assert "framework fw-1 torn down" in text
    assert "nodes killed: node 1 (task elasticsearch-node1-" in text
    kept = ", ".join(f"elasticsearch{n}config, elasticsearch{n}data" for n in (1, 2, 3))
    assert f"volumes kept (not deleted): {kept}" in text
    stored = json.loads(state_file.read_text())["state"]
    assert stored["torn_down_at"] == 1234.5 and stored["framework_id"] == "fw-1"

    # Again, with --purge: Mesos says the framework is gone already; the state file goes.
    TeardownDriver.instances.clear()

    def refused(*args: Any, **kwargs: Any) -> TeardownDriver:
        driver = TeardownDriver(*args, **kwargs)
        driver.refusal = "Framework has been removed"
        return driver

    lines = teardown_cluster(cfg, purge=True, driver_factory=refused)
    assert "already removed from Mesos" in "\n".join(lines) and "nodes killed" not in "\n".join(lines)
    assert TeardownDriver.instances[0].stops == [True]
    assert not state_file.exists()


def test_teardown_waits_for_the_leader_lock_and_refuses_while_a_scheduler_runs(tmp_path: Path) -> None:
    from es_framework.app.teardown import TeardownError, teardown_cluster
    from es_framework.shell.state_store import FileStateStore

    _store_document(tmp_path, _running_document())
    running = FileStateStore(tmp_path, "elasticsearch", "mesos-ha")
    assert running.acquire_leadership(timeout=1)
    try:
        with pytest.raises(TeardownError, match="a scheduler is running"):
            teardown_cluster(config_for(**_file_flags(tmp_path)), lock_timeout=0.1, driver_factory=TeardownDriver)
    finally:
        running.close()


def test_teardown_without_state_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    flags = [f"--{k}={v}" for k, v in _file_flags(tmp_path).items()]
    code, out, err = run_main(capsys, "teardown", *flags)
    assert code == 1 and "no state for cluster mesos-ha" in err and not out


def test_a_scheduler_refuses_to_start_on_torn_down_state(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _store_document(tmp_path, _running_document(torn_down_at=1700000000.0))
    flags = [f"--{k}={v}" for k, v in _file_flags(tmp_path).items()]
    code, _, err = run_main(capsys, *flags)
    assert code == 2
    assert "was torn down at 2023-11-14 22:13:20 UTC (framework id fw-1)" in err
    assert "es-framework teardown --purge" in err


def test_test_hooks_half_set_refuse_to_start(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    flags = [f"--{k}={v}" for k, v in _file_flags(tmp_path).items()]
    code, _, err = run_main(capsys, *flags, env={"ESMESOS_TEST_CRASH_AT": "after_accept"})
    assert code == 2 and "end-to-end tests only" in err


def config_for(**flags: str) -> Any:
    return resolve_config(flags, {})


# --- local mode -------------------------------------------------------------------------------------


def test_help_says_local_mode_is_a_development_tool(capsys: pytest.CaptureFixture[str]) -> None:
    from es_framework.config import LOCAL_MODE_WARNING

    code, out, _ = run_exit(capsys, "--help")
    assert code == 0
    assert LOCAL_MODE_WARNING in out
    assert "--localAgents N" in out and "--localWorkDir DIR" in out


def test_config_in_local_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "config", "--mesosMaster", "local", "--localAgents", "5")
    assert code == 0
    shown = json.loads(out)
    assert shown["mesosMaster"] == "local" and shown["localAgents"] == 5
    assert shown["localWorkDir"] == "./.es-mesos-local"


def test_teardown_does_not_apply_to_local_mode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_main(capsys, "teardown", "--mesosMaster", "local", "--localWorkDir", str(tmp_path))
    assert code == 2 and not out
    assert "teardown does not apply to local mode: stop it with Ctrl-C" in err
    assert list(tmp_path.iterdir()) == []


def test_local_mode_refuses_to_start_while_another_one_leads_its_state(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from es_framework.shell.state_store import FileStateStore

    running = FileStateStore(tmp_path / "state", "elasticsearch", "mesos-ha")
    assert running.acquire_leadership(timeout=1)
    try:
        code, _, err = run_main(capsys, "--mesosMaster", "local", "--localWorkDir", str(tmp_path))
    finally:
        running.close()
    assert code == 2
    assert "is local mode already running on this work directory?" in err
    assert not (tmp_path / "agents").exists()  # no development cluster was started


def test_local_mode_refuses_torn_down_state_and_stops_what_it_started(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _store_document(tmp_path / "state", _running_document(torn_down_at=1700000000.0))
    code, _, err = run_main(capsys, "--mesosMaster", "local", "--localWorkDir", str(tmp_path))
    assert code == 2 and "was torn down at 2023-11-14 22:13:20 UTC" in err
    stored = json.loads((tmp_path / "state" / "elasticsearch" / "mesos-ha" / "state.json").read_text())["state"]
    assert len(stored["nodes"]) == 2  # torn-down state is a record: local mode leaves it alone


# --- teardown --purge-volumes: flags and confirmation (the run: tests/e2e/test_teardown_purge_volumes_e2e.py) ---


class _Terminal(io.StringIO):
    """A stdin that is a terminal, with what the operator types."""

    def isatty(self) -> bool:
        return True


def _stored(state_file: Path) -> dict[str, Any]:
    return dict(json.loads(state_file.read_text())["state"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--force"], "--force: only with --purge-volumes"),
        (["--yes", "--stop-timeout", "5"], "--yes, --stop-timeout: only with --purge-volumes"),
        (["--removal-timeout", "5"], "--removal-timeout: only with --purge-volumes"),
    ],
)
def test_purge_volume_options_need_purge_volumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    state_file = _store_document(tmp_path, _running_document())
    flags = [f"--{k}={v}" for k, v in _file_flags(tmp_path).items()]
    code, out, err = run_main(capsys, "teardown", *extra, *flags)
    assert code == 2 and message in err and not out
    assert _stored(state_file)["torn_down_at"] is None


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_purge_volume_timeouts_must_be_positive_seconds(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, _, err = run_exit(capsys, "teardown", "--purge-volumes", "--stop-timeout", value)
    assert code == 2 and "--stop-timeout" in err and value in err


def test_purge_volumes_is_for_the_external_strategy_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    flags = {**_file_flags(tmp_path)}
    del flags["externalVolumeDriver"]
    state_file = _store_document(tmp_path, _running_document())
    code, _, err = run_main(capsys, "teardown", "--purge-volumes", "--yes", *[f"--{k}={v}" for k, v in flags.items()])
    assert code == 2 and "external strategy only" in err
    assert _stored(state_file)["torn_down_at"] is None


def test_purge_volumes_refuses_without_a_terminal_or_yes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file = _store_document(tmp_path, _running_document())
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))  # piped in: not a confirmation
    flags = [f"--{k}={v}" for k, v in _file_flags(tmp_path).items()]
    code, out, err = run_main(capsys, "teardown", "--purge-volumes", *flags)
    assert code == 2 and "not a terminal" in err and "--yes" in err and not out
    assert _stored(state_file)["torn_down_at"] is None


def test_purge_volumes_asks_and_anything_but_yes_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file = _store_document(tmp_path, _running_document())
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    flags = [f"--{k}={v}" for k, v in _file_flags(tmp_path).items()]
    code, out, err = run_main(capsys, "teardown", "--purge-volumes", "--purge", *flags)
    assert code == 2 and "not confirmed: nothing was changed" in err
    assert "1. stop every node: node 1 (task elasticsearch-node1-" in out and "Type yes to go on:" in out
    assert "4. delete the state (--purge)" in out
    assert _stored(state_file)["torn_down_at"] is None and state_file.exists()
