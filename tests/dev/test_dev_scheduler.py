"""``python -m es_framework.dev.scheduler``: the end-to-end tests' hooks, armed only on purpose. What they do
inside the driver shell: tests/shell/test_scheduler_shell.py; end to end: tests/e2e/test_robustness_e2e.py."""

from __future__ import annotations

import pytest

from es_framework.cli import main as cli_main
from es_framework.dev.scheduler import (
    TEST_CRASH_VAR,
    TEST_HOOKS_ENABLE_VALUE,
    TEST_HOOKS_ENABLE_VAR,
    TEST_RAISE_VAR,
    TestHooks,
    main,
)

ARMED = {TEST_HOOKS_ENABLE_VAR: TEST_HOOKS_ENABLE_VALUE}


def test_test_hooks_are_off_unless_armed_exactly() -> None:
    assert TestHooks.from_env({}) == TestHooks()
    assert not TestHooks.from_env({"ES_MESOS_ELASTICSEARCH_NODES": "3"}).armed
    with pytest.raises(ValueError, match="end-to-end tests only"):
        TestHooks.from_env({TEST_CRASH_VAR: "after_accept"})
    with pytest.raises(ValueError, match="end-to-end tests only"):
        TestHooks.from_env({TEST_CRASH_VAR: "after_accept", TEST_HOOKS_ENABLE_VAR: "1"})
    with pytest.raises(ValueError, match="not one of"):
        TestHooks.from_env({TEST_CRASH_VAR: "after_acept", **ARMED})
    with pytest.raises(ValueError, match="not one of"):
        TestHooks.from_env({TEST_RAISE_VAR: "statusupdate", **ARMED})
    hooks = TestHooks.from_env({TEST_CRASH_VAR: "after_launch_write", TEST_RAISE_VAR: "statusUpdate", **ARMED})
    assert hooks == TestHooks(crash_at="after_launch_write", raise_in="statusUpdate") and hooks.armed


def test_the_raise_hook_fires_once_in_its_callback_only() -> None:
    hooks = TestHooks(raise_in="statusUpdate")
    hooks.before_callback("resourceOffers")
    with pytest.raises(RuntimeError, match=f"test hook {TEST_RAISE_VAR}=statusUpdate: raising inside the callback"):
        hooks.before_callback("statusUpdate")
    hooks.before_callback("statusUpdate")


def test_half_set_hooks_refuse_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mesosMaster", "127.0.0.1:5050"], env={TEST_CRASH_VAR: "after_accept"}) == 2
    assert "end-to-end tests only" in capsys.readouterr().err


def test_armed_hooks_run_the_production_command_and_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    env = {TEST_CRASH_VAR: "after_accept", **ARMED}
    # No master: the production scheduler path refuses, but not because of the hook variables.
    assert main(["--elasticsearchNodes", "3"], env=env) == 2
    err = capsys.readouterr().err
    assert "TEST HOOKS ARMED" in err and "crash_at='after_accept'" in err
    assert err.endswith("es-framework: no Mesos master: give --mesosMaster or --zookeeperMesosUrl\n")


def test_es_framework_refuses_hook_variables_and_points_at_the_dev_scheduler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {TEST_CRASH_VAR: "after_accept", **ARMED}
    assert cli_main(["--elasticsearchNodes", "3"], env=env) == 2
    err = capsys.readouterr().err
    assert f"{TEST_CRASH_VAR}, {TEST_HOOKS_ENABLE_VAR} set" in err and "python -m es_framework.dev.scheduler" in err
