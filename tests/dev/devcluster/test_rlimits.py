"""``ContainerInfo.rlimit_info`` on the development agents: applied to the executor only by an agent that
runs the ``posix/rlimits`` isolator, silently ignored by any other, as Mesos does
(``src/slave/containerizer/mesos/isolators/posix/rlimits.cpp``, ``src/slave/containerizer/mesos/launch.cpp``)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from es_framework.dev.devcluster import AgentSpec, DevMaster, ProcessExecutorBackend
from es_framework.dev.devcluster.isolation import (
    DEFAULT_ISOLATION,
    as_launched,
    ignored_rlimits,
    isolators,
    launch_failure,
    rlimits_of,
)
from es_framework.dev.devcluster.processes import RLIMIT_LAUNCH, with_rlimits
from es_framework.dev.ports import free_port
from tests.dev.devcluster.conftest import FAST
from tests.dev.devcluster.test_isolation import RecordingBackend, es_task, executor_task
from tests.dev.devcluster.test_wire import ack, first_offer, launch, subscribe
from tests.harness.devcluster import wait_for

RLIMITS_ISOLATION = "posix/cpu,posix/mem,posix/rlimits"
CAP_SYS_RESOURCE = 24


def may_raise_memlock() -> bool:
    """Whether this process may make RLIMIT_MEMLOCK unlimited: it already is, or CAP_SYS_RESOURCE (root
    has it on a real agent; a container's root may lack it)."""
    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] == resource.RLIM_INFINITY:
        return True
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return os.geteuid() == 0
    effective = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "0")
    return bool(int(effective, 16) >> CAP_SYS_RESOURCE & 1)


RAISE = may_raise_memlock()
NOFILE_SOFT, NOFILE_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)
#: A limit any process may set on itself: lower than this one's hard limit.
LOW_NOFILE = min(NOFILE_HARD, 4096) - 7
LIMITS = {"rlimits": [{"type": "RLMT_NOFILE", "soft": LOW_NOFILE, "hard": LOW_NOFILE}, {"type": "RLMT_MEMLOCK"}]}


def container(**extra: Any) -> dict[str, Any]:
    return {"type": "MESOS", "rlimit_info": LIMITS, **extra}


# --- what the agent hands the executor backend (pure) -----------------------------------------------


def test_only_posix_rlimits_keeps_rlimit_info_and_nothing_refuses_it() -> None:
    task = executor_task(container())
    plain, with_rlimits_isolator = isolators(DEFAULT_ISOLATION), isolators(RLIMITS_ISOLATION)
    assert launch_failure(plain, task) is None and launch_failure(with_rlimits_isolator, task) is None
    assert "rlimit_info" not in as_launched(plain, task)["executor"]["container"]
    assert as_launched(with_rlimits_isolator, task)["executor"]["container"]["rlimit_info"] == LIMITS
    assert task["executor"]["container"]["rlimit_info"] == LIMITS  # a copy: the master's record keeps it
    assert ignored_rlimits(plain, task) and not ignored_rlimits(with_rlimits_isolator, task)
    assert rlimits_of(as_launched(with_rlimits_isolator, task)) == LIMITS["rlimits"]
    assert rlimits_of(as_launched(plain, task)) == []


def test_docker_containers_and_containerless_tasks_have_no_rlimits() -> None:
    docker = executor_task({"type": "DOCKER", "docker": {"image": "x"}, "rlimit_info": LIMITS})
    assert rlimits_of(docker) == [] and not ignored_rlimits(isolators(DEFAULT_ISOLATION), docker)
    assert rlimits_of(executor_task(None)) == []
    assert with_rlimits(["a", "b"], []) == ["a", "b"]


# --- the launcher: set the limits, then exec --------------------------------------------------------


def launched(limits: list[dict[str, Any]], *code: str) -> subprocess.CompletedProcess[str]:
    """Run a Python child through the launcher; it prints its NOFILE and MEMLOCK limits."""
    report = "import resource as r; print(r.getrlimit(r.RLIMIT_NOFILE), r.getrlimit(r.RLIMIT_MEMLOCK))"
    argv = with_rlimits([sys.executable, "-c", "; ".join((report, *code))], limits)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_the_launcher_sets_each_limit_then_execs_the_command() -> None:
    result = launched([{"type": "RLMT_NOFILE", "soft": LOW_NOFILE - 1, "hard": LOW_NOFILE}])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(") (")[0] == f"({LOW_NOFILE - 1}, {LOW_NOFILE}"
    assert with_rlimits(["x"], [{"type": "RLMT_NOFILE"}])[:3] == [sys.executable, "-I", str(RLIMIT_LAUNCH)]


@pytest.mark.skipif(not RAISE, reason="raising a hard limit takes CAP_SYS_RESOURCE, as on a real agent")
def test_unlimited_is_neither_soft_nor_hard() -> None:
    result = launched([{"type": "RLMT_MEMLOCK"}])
    assert result.returncode == 0, result.stderr
    infinity = resource.RLIM_INFINITY
    assert result.stdout.strip().endswith(f"({infinity}, {infinity})")


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ({"type": "RLMT_NOFILE", "soft": 10}, "Failed to set RLMT_NOFILE limit: Invalid rlimit values"),
        ({"type": "RLMT_NOFILE", "hard": 10}, "Failed to set RLMT_NOFILE limit: Invalid rlimit values"),
        ({"type": "RLMT_NOFILE", "soft": 20, "hard": 10}, "Failed to set RLMT_NOFILE limit: Invalid argument"),
        ({"type": "UNKNOWN"}, "Failed to set UNKNOWN limit: Could not convert rlimit: Unknown rlimit type"),
    ],
)
def test_a_limit_mesos_cannot_set_fails_the_launch_with_its_message(limit: dict[str, Any], message: str) -> None:
    result = launched([limit], "print('the executor ran')")
    assert (result.returncode, result.stderr.strip()) == (1, message)
    assert "the executor ran" not in result.stdout


@pytest.mark.skipif(RAISE, reason="this process may raise the hard limit")
def test_raising_a_hard_limit_without_privileges_fails_as_on_a_non_root_agent() -> None:
    result = launched([{"type": "RLMT_MEMLOCK"}])
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "Failed to set RLMT_MEMLOCK limit: Operation not permitted",
    )


# --- end to end: the process backend's executor -----------------------------------------------------


def test_the_backend_gets_rlimit_info_only_from_a_posix_rlimits_agent() -> None:
    for isolation, kept in ((DEFAULT_ISOLATION, False), (RLIMITS_ISOLATION, True)):
        backend = RecordingBackend()
        agent = AgentSpec(id="agent-a-S0", hostname="a", cpus=4, mem=4096, isolation=isolation)
        with DevMaster([agent], backend=backend, **FAST) as master:
            stream = subscribe(master)
            try:
                offer = first_offer(stream)
                task = es_task(offer, elasticsearchNofile="70000")
                launch(master, stream, offer, task)
                task_id = task["task_id"]["value"]
                starting = wait_for(lambda: stream.updates(task_id), what="TASK_STARTING")[0]  # noqa: B023
                assert starting["state"] == "TASK_STARTING", isolation
                ack(master, stream, starting)
                given = backend.launched[0]["executor"]["container"]
                assert ("rlimit_info" in given) is kept, isolation
            finally:
                stream.close()


#: Stands in for es-mesos-executor: writes the limits it was started with into its sandbox, then exits 3.
REPORTER = (
    "import json, resource as r; "
    "open('limits.json', 'w').write(json.dumps([r.getrlimit(r.RLIMIT_NOFILE), r.getrlimit(r.RLIMIT_MEMLOCK)])); "
    "raise SystemExit(3)"
)


@pytest.mark.parametrize("isolation", [DEFAULT_ISOLATION, RLIMITS_ISOLATION])
def test_the_executor_process_runs_with_the_limits_only_under_posix_rlimits(tmp_path: Path, isolation: str) -> None:
    backend = ProcessExecutorBackend(
        tmp_path / "work", commands={"es-mesos-executor": [sys.executable, "-c", REPORTER]}
    )
    ports = sorted({free_port(), free_port()})
    agent = AgentSpec(
        id="agent-r-S0", hostname="127.0.0.1", cpus=4, mem=4096, ports=tuple((p, p) for p in ports), isolation=isolation
    )
    with DevMaster([agent], backend=backend, **FAST) as master:
        stream = subscribe(master)
        try:
            offer = first_offer(stream, "agent-r-S0")
            task = es_task(offer, elasticsearchNofile=str(LOW_NOFILE))
            assert task["executor"]["container"]["rlimit_info"]["rlimits"][0]["soft"] == LOW_NOFILE
            launch(master, stream, offer, task)
            report = wait_for(
                lambda: next((p for p in (tmp_path / "work").rglob("limits.json") if p.stat().st_size), None),
                timeout=20,
                what="the executor's report",
            )
            nofile, _ = json.loads(report.read_text())
            expected = [LOW_NOFILE, LOW_NOFILE] if isolation == RLIMITS_ISOLATION else [NOFILE_SOFT, NOFILE_HARD]
            assert nofile == expected
        finally:
            stream.close()
