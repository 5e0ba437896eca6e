"""What an operator types that es-framework now takes or answers better: ``--logLevel`` in any case,
an unresolvable ``--mesosMaster LOCAL``, a misspelt ``ES_MESOS_*`` variable (issue 15)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from es_framework.app.startup import RefusedError, check_startable
from es_framework.cli import main
from es_framework.config import resolve_config
from tests.test_cli import run_exit, run_main


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR"])
def test_the_log_level_is_taken_in_any_case(capsys: pytest.CaptureFixture[str], level: str) -> None:
    code, out, err = run_main(capsys, "--logLevel", level, "--mesosMaster", "local", "config")
    assert code == 0, err
    assert '"mesosMaster": "local"' in out


def test_a_level_that_does_not_exist_is_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_exit(capsys, "--logLevel", "verbose", "config")
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith("es-framework: error: argument --logLevel: invalid choice: 'VERBOSE'")


def _unresolvable(*args: Any, **kwargs: Any) -> list[Any]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("master", ["LOCAL", "Local:5050"])
def test_local_in_capitals_is_a_host_name_and_its_refusal_says_what_was_meant(tmp_path: Path, master: str) -> None:
    # Only the exact word is local mode (tests/config/test_local_mode.py); "LOCAL" is a host that
    # does not resolve, and the refusal says how local mode is written.
    settings = resolve_config({"mesosMaster": master, "frameworkStateUrl": tmp_path.as_uri()}, {})
    with pytest.raises(RefusedError, match=r"\(for local mode, write local in lower case\); give the host name"):
        check_startable(settings, resolve=_unresolvable)


def test_other_unresolvable_hosts_get_no_local_mode_hint(tmp_path: Path) -> None:
    settings = resolve_config({"mesosMaster": "localhost.invalid", "frameworkStateUrl": tmp_path.as_uri()}, {})
    with pytest.raises(RefusedError) as info:
        check_startable(settings, resolve=_unresolvable)
    assert "local mode, write" not in str(info.value)


def test_a_misspelt_variable_names_the_one_meant(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    code = main(["--mesosMaster", "local", "config"], env={"ES_MESOS_ELASTICSEARCH_NODEZ": "5"})
    assert code == 0
    assert (
        "ES_MESOS_ELASTICSEARCH_NODEZ is set but is not one of es-framework's variables, so it is ignored; "
        "did you mean ES_MESOS_ELASTICSEARCH_NODES?"
    ) in caplog.messages
