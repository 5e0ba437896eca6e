"""Secure by default (issue 15): outside local mode the scheduler, and ``es-framework config`` which
answers for it, refuse to start (exit status 2) without ``--apiTokenFile`` unless ``--insecureApi
true`` opts out (:func:`es_framework.app.startup.check_startable`); local mode needs neither and
its API listens on the loopback interface only; ``teardown`` serves no API and needs neither."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from es_framework.app.startup import LOOPBACK_HOST, NO_API_TOKEN, RefusedError, api_host, check_startable
from es_framework.cli import main
from es_framework.config import resolve_config

REPO = Path(__file__).resolve().parents[2]
ZK = ["--mesosMaster", "zk://zk1:2181/mesos"]


def config_for(**flags: str) -> Any:
    return resolve_config(flags, {})


def test_without_a_token_the_scheduler_would_not_start() -> None:
    with pytest.raises(RefusedError) as refused:
        check_startable(config_for(mesosMaster="zk://zk1:2181/mesos"), serves_api=True)
    assert str(refused.value) == NO_API_TOKEN
    # The message says how to make a token file and how to opt out.
    assert "head -c 32 /dev/urandom | base64 > token" in NO_API_TOKEN and "--apiTokenFile token" in NO_API_TOKEN
    assert "--insecureApi true" in NO_API_TOKEN


def test_a_token_file_or_the_opt_out_starts(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("c2VjcmV0LXRva2Vu", encoding="utf-8")
    check_startable(config_for(mesosMaster="zk://zk1:2181/mesos", apiTokenFile=str(token)), serves_api=True)
    check_startable(config_for(mesosMaster="zk://zk1:2181/mesos", insecureApi="true"), serves_api=True)
    with pytest.raises(RefusedError):
        check_startable(config_for(mesosMaster="zk://zk1:2181/mesos", insecureApi="false"), serves_api=True)


def test_local_mode_needs_no_token_and_listens_on_loopback_only() -> None:
    local = config_for(mesosMaster="local")
    check_startable(local, serves_api=True)
    assert api_host(local) == LOOPBACK_HOST == "127.0.0.1"
    assert api_host(config_for(mesosMaster="zk://zk1:2181/mesos", insecureApi="true")) == "0.0.0.0"


def test_teardown_serves_no_api_and_needs_no_token() -> None:
    check_startable(config_for(mesosMaster="zk://zk1:2181/mesos"))  # serves_api defaults to False


def test_the_token_is_checked_last_so_other_refusals_come_first(tmp_path: Path) -> None:
    with pytest.raises(RefusedError, match="--frameworkStateUrl is needed with an HTTP Mesos master"):
        check_startable(config_for(mesosMaster="127.0.0.1:5050"), serves_api=True)


def test_both_flags_warn_that_the_opt_out_is_ignored(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("c2VjcmV0LXRva2Vu", encoding="utf-8")
    config = config_for(mesosMaster="zk://zk1:2181/mesos", apiTokenFile=str(token), insecureApi="true")
    assert any("--insecureApi true is ignored" in warning for warning in config.warnings)


def test_config_refuses_like_the_scheduler_and_accepts_the_opt_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", *ZK], env={}) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"es-framework: {NO_API_TOKEN}\n"
    assert main(["config", *ZK], env={"ES_MESOS_INSECURE_API": "true"}) == 0
    assert json.loads(capsys.readouterr().out)["insecureApi"] is True
    assert main(["config", "--mesosMaster", "local"], env={}) == 0
    assert json.loads(capsys.readouterr().out)["insecureApi"] is False


def test_the_real_scheduler_refuses_to_start_without_a_token() -> None:
    # The production command, as Marathon would run it: refused before it connects to anything.
    result = subprocess.run(
        [sys.executable, "-m", "es_framework", *ZK],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "the REST API has no token" in result.stderr and "--insecureApi true" in result.stderr
