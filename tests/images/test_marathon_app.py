"""docker/marathon.json, the Marathon app of the scheduler: its fields, and its command run the way
Mesos' Docker containerizer runs a Marathon ``cmd`` (``/bin/sh -c``, the image's ENTRYPOINT
overridden, ``PORT0`` and the app's ``env`` in the environment) against the real CLI's ``config``
command, which validates every flag and prints the resulting configuration."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

APP_FILE = Path(__file__).resolve().parents[2] / "docker" / "marathon.json"


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(APP_FILE.read_text(encoding="utf-8"))
    return document


def run_app_command(
    app: dict[str, Any], port0: int, *extra: str, env_over: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The app's ``cmd`` plus ``extra`` under ``/bin/sh -c``, with Marathon's environment and
    ``es-framework`` from this interpreter's environment on PATH; ``env_over`` replaces some of the
    app's variables (the token file's path: the agent's file is not on this machine)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PORT0": str(port0),
        "PORTS": str(port0),
        "HOST": "agent1.example.test",
        **app.get("env", {}),
        **(env_over or {}),
    }
    command = " ".join([app["cmd"], *map(shlex.quote, extra)])
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_scheduler_runs_alone_in_a_docker_container_on_the_host_network(app: dict[str, Any]) -> None:
    assert app["instances"] == 1
    assert app["container"]["type"] == "DOCKER"
    assert app["container"]["docker"]["image"].startswith("es-mesos/scheduler:")
    assert app["networks"] == [{"mode": "host"}]
    assert app["cpus"] > 0
    assert app["mem"] >= 256


def test_one_port_is_declared_and_not_hard_coded(app: dict[str, Any]) -> None:
    ports = app["portDefinitions"]
    assert len(ports) == 1
    # 0: Marathon picks a port from the offer (31100 lies inside Mesos' default port range).
    assert ports[0]["port"] == 0
    assert app.get("requirePorts", False) is False
    assert "31100" not in app["cmd"]


def test_the_command_is_a_shell_command_because_only_a_shell_expands_port0(app: dict[str, Any]) -> None:
    # Marathon's args are passed without a shell, so $PORT0 would reach es-framework verbatim.
    assert "args" not in app
    assert app["cmd"].startswith("exec es-framework ")
    assert '--webUiPort "$PORT0"' in app["cmd"]


def test_the_api_token_file_is_mounted_read_only_from_the_agent(app: dict[str, Any]) -> None:
    # Secure by default: the scheduler refuses to start without a token (or --insecureApi true).
    path = app["env"]["ES_MESOS_API_TOKEN_FILE"]
    assert "--insecureApi" not in app["cmd"] and "ES_MESOS_INSECURE_API" not in app["env"]
    assert {"containerPath": path, "hostPath": path, "mode": "RO"} in app["container"]["volumes"]


def test_the_command_is_refused_without_the_token_file(app: dict[str, Any], tmp_path: Path) -> None:
    result = run_app_command(app, 31999, "config", env_over={"ES_MESOS_API_TOKEN_FILE": str(tmp_path / "absent")})
    assert result.returncode == 2
    assert "--apiTokenFile" in result.stderr and "does not exist" in result.stderr


def test_the_command_is_valid_and_uses_port0_and_the_app_environment(app: dict[str, Any], tmp_path: Path) -> None:
    token = tmp_path / "api-token"
    token.write_text("s3cr3t-t0ken", encoding="utf-8")
    result = run_app_command(app, 31999, "config", env_over={"ES_MESOS_API_TOKEN_FILE": str(token)})
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-t0ken" not in result.stdout + result.stderr
    config = json.loads(result.stdout)
    assert config["webUiPort"] == 31999
    assert config["mesosMaster"].startswith("zk://")
    assert config["mesosMaster"].endswith("/mesos")
    assert config["externalVolumeDriver"] == "rexray"
    assert config["elasticsearchDockerImage"].startswith("es-mesos/elasticsearch-executor:")
    # The app's env reaches the scheduler as ES_MESOS_* variables.
    assert config["elasticsearchRam"] == float(app["env"]["ES_MESOS_ELASTICSEARCH_RAM"])


def test_a_bad_flag_in_the_command_would_be_refused() -> None:
    # The check above can fail: the same command with a misspelt flag exits 2.
    broken = {"cmd": 'exec es-framework --webUiPort "$PORT0" --zookeeperMesosUrll zk://zk1:2181/mesos', "env": {}}
    result = run_app_command(broken, 31999, "config")
    assert result.returncode == 2


def test_upgrades_never_run_two_schedulers(app: dict[str, Any]) -> None:
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}


def test_an_unreachable_scheduler_is_replaced_and_the_old_one_killed_when_it_returns(app: dict[str, Any]) -> None:
    strategy = app["unreachableStrategy"]
    assert 0 < strategy["inactiveAfterSeconds"] <= strategy["expungeAfterSeconds"]
    # Its replacement holds the framework's subscription by then: kill the one that comes back.
    assert app["killSelection"] == "OLDEST_FIRST"


def test_the_health_check_asks_the_api_on_port0(app: dict[str, Any]) -> None:
    [check] = app["healthChecks"]
    assert check["protocol"] in ("MESOS_HTTP", "HTTP")
    assert check["path"] == "/health"
    assert check["portIndex"] == 0
    assert check["gracePeriodSeconds"] >= 60
