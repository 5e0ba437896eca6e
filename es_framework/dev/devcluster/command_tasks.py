"""Command tasks (a TaskInfo with ``command`` and no ``executor``) run as Mesos' command executor runs
them (development tool, not for production).

A Mesos agent runs such a task under its built-in command executor (``src/launcher/executor.cpp`` in
apache/mesos, 1.12), and this module sends the framework the same updates, from ``SOURCE_EXECUTOR``:

- ``TASK_STARTING`` as the task arrives, then ``TASK_RUNNING`` once the command is forked;
- when it exits: ``TASK_FINISHED`` for status 0, else ``TASK_FAILED``, both with the message
  ``Command exited with status N`` or ``Command terminated with signal <name>`` (stout's
  ``WSTRINGIFY``, ``src/common/status_utils.hpp``);
- a KILL: SIGTERM to the command's process group, SIGKILL after the kill policy's grace period (3 s
  by default), then ``TASK_KILLED``;
- ``max_completion_time``: killed at once when it runs longer, then ``TASK_FAILED`` /
  ``REASON_MAX_COMPLETION_TIME_REACHED``.

``shell`` true runs ``/bin/sh -c <value>``; false runs ``value`` with ``arguments`` as its argv (the
first argument is argv[0]), found on ``PATH``. A program that cannot be run fails as Mesos' launcher
does: its error on stderr and ``Command exited with status 1``. Output goes to ``stdout``/``stderr``
in the task's sandbox. A backend can put an in-process *stand-in* in place of a program (the process
backend's stand-in for ``docker volume``, see :mod:`.processes`), which writes to the same files and
returns the exit status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from es_framework.dev.devcluster.agent import executor_environment
from es_framework.dev.devcluster.executor_api import ExecutorAPIBackend, RecordT
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef

logger = logging.getLogger(__name__)

#: The command executor's kill grace period when the task has no kill policy.
DEFAULT_KILL_GRACE = 3.0
#: An in-process program: (argv, stdout, stderr) -> exit status.
StandIn = Callable[[Sequence[str], TextIO, TextIO], int]


@dataclass
class CommandTask:
    ref: ExecutorRef
    agent: AgentSide
    task_id: str
    sandbox: Path
    #: The kill policy's grace period (None: the command executor's default).
    grace: float | None = None
    popen: subprocess.Popen[bytes] | None = None
    killed: bool = False
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    state: str = "TASK_STAGING"


def is_command_task(task_info: Mapping[str, Any]) -> bool:
    return isinstance(task_info.get("command"), Mapping) and not task_info.get("executor")


def exit_message(returncode: int) -> str:
    """The command executor's message for a wait status, as ``subprocess`` reports it."""
    if returncode >= 0:
        return f"Command exited with status {returncode}"
    try:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        name = f"signal {-returncode}"
    return f"Command terminated with signal {name}"


def _nanoseconds(value: object) -> float | None:
    ns = value.get("nanoseconds") if isinstance(value, Mapping) else None
    return float(ns) / 1e9 if isinstance(ns, int | float) and ns > 0 else None


class CommandTaskRunner:
    """The command executors of one backend: a thread per task. See the module docstring.

    ``stand_in(argv)`` returns an in-process program for argv, or None to run it as a process;
    ``environment(ref, sandbox)`` is what the agent adds to every task's environment.
    """

    def __init__(
        self,
        *,
        stand_in: Callable[[Sequence[str]], StandIn | None] | None = None,
        environment: Callable[[ExecutorRef, Path], Mapping[str, str]] | None = None,
    ) -> None:
        self._stand_in = stand_in
        self._environment = environment
        self._lock = threading.Lock()
        self._tasks: dict[tuple[str, str], CommandTask] = {}

    def owns(self, ref: ExecutorRef) -> bool:
        with self._lock:
            return (ref.framework_id, ref.executor_id) in self._tasks

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any], sandbox: Path) -> None:
        """Start the task (master lock held: every update comes from the task's thread)."""
        task = CommandTask(ref, agent, str(task_info["task_id"]["value"]), sandbox, kill_grace(task_info))
        with self._lock:
            self._tasks[(ref.framework_id, ref.executor_id)] = task
        threading.Thread(
            target=self._run, args=(task, dict(task_info)), name=f"command-task-{task.task_id}", daemon=True
        ).start()

    def kill(self, ref: ExecutorRef) -> None:
        with self._lock:
            task = self._tasks.get((ref.framework_id, ref.executor_id))
        if task is None or task.done.is_set():
            return
        task.killed = True
        self._signal(task, signal.SIGTERM)
        threading.Thread(target=self._escalate, args=(task,), daemon=True).start()

    def forget(self, ref: ExecutorRef) -> None:
        """The agent forgets the task (its terminal update was acknowledged, or it is shut down)."""
        with self._lock:
            task = self._tasks.pop((ref.framework_id, ref.executor_id), None)
        if task is not None and not task.done.is_set():
            task.killed = True
            self._signal(task, signal.SIGKILL)

    def close(self) -> None:
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
        for task in tasks:
            task.killed = True
            self._signal(task, signal.SIGKILL)
        for task in tasks:
            task.done.wait(timeout=5)

    def state(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "framework_id": t.ref.framework_id,
                    "agent_id": t.ref.agent_id,
                    "executor_id": t.ref.executor_id,
                    "task_id": t.task_id,
                    "command_task": True,
                    "pid": t.popen.pid if t.popen is not None else None,
                    "task_state": t.state,
                    "sandbox": str(t.sandbox),
                }
                for t in self._tasks.values()
            ]

    # -------------------------------------------------------------- internals

    def _update(self, task: CommandTask, state: str, message: str | None = None, reason: str | None = None) -> None:
        task.state = state
        task.agent.executor_update(task.ref, task.task_id, state, message=message, reason=reason)

    def _run(self, task: CommandTask, info: dict[str, Any]) -> None:
        try:
            self._update(task, "TASK_STARTING")
            command = info["command"]
            if command.get("shell", True):
                argv = ["/bin/sh", "-c", str(command.get("value", ""))]
                program = "/bin/sh"
            else:
                program = str(command.get("value", ""))
                arguments = [str(a) for a in command.get("arguments") or []]
                argv = [program, *arguments[1:]] if arguments else [program]
            task.sandbox.mkdir(parents=True, exist_ok=True)
            deadline = _nanoseconds(info.get("max_completion_time"))
            stand_in = self._stand_in(argv) if self._stand_in is not None else None
            with (
                open(task.sandbox / "stdout", "a", encoding="utf-8") as out,
                open(task.sandbox / "stderr", "a", encoding="utf-8") as err,
            ):
                if stand_in is not None:
                    self._update(task, "TASK_RUNNING")
                    code = stand_in(argv, out, err)
                else:
                    code = self._spawn(task, argv, command, program=program, out=out, err=err, deadline=deadline)
            if task.timed_out:
                self._update(task, "TASK_FAILED", exit_message(code), "REASON_MAX_COMPLETION_TIME_REACHED")
            elif task.killed:
                self._update(task, "TASK_KILLED", exit_message(code))
            else:
                self._update(task, "TASK_FINISHED" if code == 0 else "TASK_FAILED", exit_message(code))
            logger.info("agent %s: command task %s: %s", task.ref.agent_id, task.task_id, exit_message(code))
        except Exception:
            logger.exception("command task %s failed in the development agent", task.task_id)
            self._update(task, "TASK_FAILED", "Failed to run the command task in the development agent")
        finally:
            task.done.set()

    def _spawn(
        self,
        task: CommandTask,
        argv: list[str],
        command: Mapping[str, Any],
        *,
        program: str,
        out: TextIO,
        err: TextIO,
        deadline: float | None,
    ) -> int:
        env = dict(os.environ)
        if self._environment is not None:
            env.update(self._environment(task.ref, task.sandbox))
        variables = (command.get("environment") or {}).get("variables") or []
        env.update({str(v["name"]): str(v.get("value", "")) for v in variables if "name" in v})
        try:
            task.popen = subprocess.Popen(
                argv,
                executable=program,
                cwd=task.sandbox,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as error:
            # Mesos' launcher reports a failed exec on stderr and exits 1.
            self._update(task, "TASK_RUNNING")
            err.write(f"Failed to execute '{program}': {error.strerror or error}\n")
            return 1
        self._update(task, "TASK_RUNNING")
        try:
            return task.popen.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            task.timed_out = True
            self._signal(task, signal.SIGKILL)
            return task.popen.wait()

    def _escalate(self, task: CommandTask) -> None:
        if not task.done.wait(timeout=DEFAULT_KILL_GRACE if task.grace is None else task.grace):
            self._signal(task, signal.SIGKILL)

    @staticmethod
    def _signal(task: CommandTask, signum: int) -> None:
        if task.popen is None or task.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(task.popen.pid, signum)


def kill_grace(task_info: Mapping[str, Any]) -> float | None:
    """The task's kill policy grace period, if it has one."""
    policy = task_info.get("kill_policy")
    return _nanoseconds(policy.get("grace_period")) if isinstance(policy, Mapping) else None


class CommandTaskBackend(ExecutorAPIBackend[RecordT]):
    """An executor backend whose agents also run command tasks (see the module docstring).

    Subclasses set :attr:`command_tasks` in their ``__init__``; every call about a command task goes
    to it, every other one to :class:`ExecutorAPIBackend`.
    """

    command_tasks: CommandTaskRunner

    def command_env(self, ref: ExecutorRef, sandbox: Path) -> dict[str, str]:
        """What the agent gives every command task: the command executor is an executor like any
        other, so it gets the agent's ``LIBPROCESS_IP`` and ``--executor_environment_variables``
        (:func:`~es_framework.dev.devcluster.agent.executor_environment`), and passes its environment on."""
        mesos = {
            "MESOS_FRAMEWORK_ID": ref.framework_id,
            "MESOS_EXECUTOR_ID": ref.executor_id,
            "MESOS_DIRECTORY": str(sandbox),
            "MESOS_SANDBOX": str(sandbox),
            "MESOS_AGENT_ID": ref.agent_id,
            "MESOS_SLAVE_ID": ref.agent_id,
        }
        spec = self._master.agent_spec(ref.agent_id) if self._master is not None else None
        return mesos if spec is None else executor_environment(spec, mesos)

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        if is_command_task(task_info):
            logger.info("agent %s: command task %s", ref.agent_id, task_info["task_id"]["value"])
            self.command_tasks.launch(agent, ref, task_info, self.sandbox_of(ref))
            return
        super().launch(agent, ref, task_info)

    def kill(self, agent: AgentSide, ref: ExecutorRef, task_id: str) -> None:
        if self.command_tasks.owns(ref):
            self.command_tasks.kill(ref)
            return
        super().kill(agent, ref, task_id)

    def shutdown(self, ref: ExecutorRef) -> None:
        if self.command_tasks.owns(ref):
            self.command_tasks.forget(ref)
            return
        super().shutdown(ref)

    def owns(self, framework_id: str, executor_id: str) -> bool:
        return self.command_tasks.owns(ExecutorRef(framework_id, "", executor_id)) or super().owns(
            framework_id, executor_id
        )

    def close(self) -> None:
        self.command_tasks.close()
        super().close()

    def state(self) -> list[dict[str, Any]]:
        return [*super().state(), *self.command_tasks.state()]
