"""The agent side of real executors (development tool, not for production).

:class:`ExecutorAPIBackend` is what every backend of real executors shares: a record per executor,
the v1 executor API (``POST /api/v1/executor``: SUBSCRIBE stream, UPDATE, MESSAGE) as a Mesos agent
serves it, KILL/MESSAGE/SHUTDOWN events, and a monitor that notices executors that exit; subclasses
say how an executor starts, exits and is killed (``_start``, ``_exit_code``, ``_kill``, …).
:class:`~es_framework.dev.devcluster.processes.ProcessExecutorBackend` runs them as local processes,
:class:`~es_framework.dev.devcluster.docker_backend.DockerExecutorBackend` as Docker containers.

The executor subscribes and gets SUBSCRIBED then LAUNCH; its UPDATEs enter the master's task
bookkeeping (forwarded, re-sent until the framework acknowledges) and are ACKNOWLEDGED to the
executor at once, as an agent does once it has checkpointed them. A framework's KILL becomes a KILL
event, its messages MESSAGE events (queued until the executor subscribes). When the master forgets
the task (its terminal update acknowledged, or the framework removed) the executor gets SHUTDOWN
and is killed after its grace period. An executor that exits while its task is not terminal makes
the task ``TASK_FAILED`` / ``REASON_EXECUTOR_TERMINATED``, as on an agent.

Every executor's environment has what a Mesos agent gives it and pymesos' ``MesosExecutorDriver``
needs: ``LIBPROCESS_IP`` (the agent's IP, as a real agent started with ``--ip`` passes its own on),
the agent's ``--executor_environment_variables`` (``AgentSpec.executor_environment_variables``),
``MESOS_AGENT_ENDPOINT`` (the master's own HTTP address, which serves the executor API for
every agent), ``MESOS_FRAMEWORK_ID``, ``MESOS_EXECUTOR_ID``, ``MESOS_DIRECTORY``/``MESOS_SANDBOX``,
``MESOS_CHECKPOINT`` (only when the framework checkpoints: pymesos treats any value as true) and
``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`` from ``ExecutorInfo.shutdown_grace_period``
(:func:`~es_framework.dev.devcluster.agent.executor_environment` merges them as Mesos does). Sandboxes are
``<workdir>/agents/<agent>/frameworks/<framework>/executors/<executor>/runs/latest``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from es_framework.dev.devcluster.agent import executor_environment
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import AgentSide, ExecutorHost, ExecutorRef
from es_framework.dev.devcluster.recordio import RecordStream
from es_framework.dev.devcluster.tasks import is_terminal

logger = logging.getLogger(__name__)

DEFAULT_GRACE_PERIOD = 5.0  # Mesos' --executor_shutdown_grace_period
#: Extra time past the grace period before the backend kills a shut-down executor's process group.
KILL_MARGIN = 3.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: str) -> str:
    """``name`` with what a file name should not hold replaced by ``_``."""
    return _SAFE.sub("_", name) or "_"


class ExecutorStream(RecordStream):
    """The SUBSCRIBE stream of one executor."""

    def __init__(self, owner: str) -> None:
        super().__init__()
        self._owner = owner

    @property
    def owner(self) -> str:
        return self._owner


@dataclass
class ExecutorRecord:
    """What an agent knows about one executor it runs; backends subclass it with their handles."""

    ref: ExecutorRef
    agent: AgentSide
    task_info: dict[str, Any]
    sandbox: Path
    grace_period: float
    stream: ExecutorStream | None = None
    launched: bool = False
    #: Events waiting for the executor to subscribe (KILL, MESSAGE, SHUTDOWN).
    pending: list[dict[str, Any]] = field(default_factory=list)
    #: Latest state the executor reported for its task.
    task_state: str = "TASK_STAGING"
    shutdown_at: float | None = None
    exit_reported: bool = False

    @property
    def task_id(self) -> str:
        return str(self.task_info["task_id"]["value"])


RecordT = TypeVar("RecordT", bound=ExecutorRecord)


class ExecutorAPIBackend(Generic[RecordT]):
    """The agent side of real executors, shared by every backend that runs them.

    It keeps one record per executor, serves the v1 executor API for them (SUBSCRIBE, UPDATE,
    MESSAGE), turns the master's kills, messages and shutdowns into events, and watches for
    executors that exit. How an executor is started, noticed dead and killed is the subclass's
    business: :meth:`_make_record`, :meth:`_start`, :meth:`_exit_code`, :meth:`_kill`, plus the
    optional :meth:`_reap`, :meth:`_failure`, :meth:`_describe` and :meth:`_closed`.
    """

    #: Named in log lines and in the TASK_FAILED of a command task.
    kind = "executor"

    def __init__(self, workdir: Path, *, default_grace_period: float = DEFAULT_GRACE_PERIOD) -> None:
        self.workdir = Path(workdir)
        self.default_grace_period = default_grace_period
        self._lock = threading.Lock()
        self._executors: dict[tuple[str, str], RecordT] = {}
        self._master: ExecutorHost | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # -------------------------------------------------------------- what a backend provides

    def _make_record(
        self, ref: ExecutorRef, agent: AgentSide, task_info: dict[str, Any], sandbox: Path, grace_period: float
    ) -> RecordT:
        raise NotImplementedError

    def _start(self, record: RecordT, executor: Mapping[str, Any], grace: float | None) -> None:
        """Start the executor (master lock held: do not block for long). ``OSError``/``ValueError``
        fail the task at once; a failure found later is reported through :meth:`_exit_code`."""
        raise NotImplementedError

    def _exit_code(self, record: RecordT) -> int | None:
        """The executor's exit code once it has exited, else ``None``. Called often (the monitor holds
        our lock), so it must not block."""
        raise NotImplementedError

    def _kill(self, record: RecordT) -> None:
        """Kill the executor and whatever it left behind, now (it ignored SHUTDOWN, or we are closing)."""
        raise NotImplementedError

    def _reap(self, record: RecordT) -> None:
        """Clean up after an executor that exited by itself (before its exit is reported)."""

    def _failure(self, record: RecordT, code: int) -> tuple[str, str]:
        """``(message, reason)`` of the TASK_FAILED for an executor that exited under a live task."""
        tail = _tail(record.sandbox / "stderr")
        message = f"Executor terminated with exit code {code}" + (f": {tail}" if tail else "")
        return message, "REASON_EXECUTOR_TERMINATED"

    def _describe(self, record: RecordT) -> dict[str, Any]:
        """Backend-specific fields of :meth:`state`."""
        return {}

    def _closed(self) -> None:
        """Last step of :meth:`close`, after every executor is gone."""

    # -------------------------------------------------------------- wiring

    @property
    def executor_api(self) -> ExecutorAPIBackend[RecordT]:
        return self

    def attach(self, master: ExecutorHost) -> None:
        """Called by :meth:`DevMaster.start`: executors talk to its HTTP address."""
        self._master = master
        self._stop.clear()
        self._monitor = threading.Thread(target=self._watch, name=f"devcluster-{type(self).__name__}", daemon=True)
        self._monitor.start()

    def host_path_dir(self, agent_id: str, path: str) -> Path:
        """The stand-in for ``path`` on the disk of agent ``agent_id``."""
        return self.workdir / "hostpaths" / safe_name(agent_id) / safe_name(path)

    def sandbox_of(self, ref: ExecutorRef) -> Path:
        return (
            self.workdir
            / "agents"
            / safe_name(ref.agent_id)
            / "frameworks"
            / safe_name(ref.framework_id)
            / "executors"
            / safe_name(ref.executor_id)
            / "runs"
            / "latest"
        )

    def owns(self, framework_id: str, executor_id: str) -> bool:
        """Whether this backend runs that executor (still running, or exited and not yet forgotten)."""
        with self._lock:
            return (framework_id, executor_id) in self._executors

    # -------------------------------------------------------------- ExecutorBackend (master lock held)

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        info = json.loads(json.dumps(task_info))
        task_id = str(info["task_id"]["value"])
        executor = info.get("executor")
        if not isinstance(executor, dict):
            agent.executor_update(
                ref,
                task_id,
                "TASK_FAILED",
                message=f"the {self.kind} backend runs only custom executors (no command tasks)",
            )
            return
        grace_ns = (executor.get("shutdown_grace_period") or {}).get("nanoseconds")
        grace = float(grace_ns) / 1e9 if isinstance(grace_ns, int | float) and grace_ns > 0 else None
        sandbox = self.sandbox_of(ref)
        record = self._make_record(ref, agent, info, sandbox, grace if grace is not None else self.default_grace_period)
        try:
            sandbox.mkdir(parents=True, exist_ok=True)
            self._start(record, executor, grace)
        except (OSError, ValueError) as error:
            logger.error("%s %s of task %s could not start: %s", self.kind, ref.executor_id, task_id, error)
            agent.executor_update(
                ref,
                task_id,
                "TASK_FAILED",
                message=f"Failed to launch executor: {error}",
                reason="REASON_EXECUTOR_TERMINATED",
            )
            return
        with self._lock:
            self._executors[(ref.framework_id, ref.executor_id)] = record
        logger.info(
            "agent %s: %s %s (%s) started for task %s in %s",
            ref.agent_id,
            self.kind,
            ref.executor_id,
            ", ".join(f"{k} {v}" for k, v in self._describe(record).items()),
            task_id,
            sandbox,
        )

    def kill(self, agent: AgentSide, ref: ExecutorRef, task_id: str) -> None:
        self._deliver(ref, {"type": "KILL", "kill": {"task_id": {"value": task_id}}})

    def message(self, agent: AgentSide, ref: ExecutorRef, data: bytes) -> None:
        self._deliver(ref, {"type": "MESSAGE", "message": {"data": base64.b64encode(data).decode("ascii")}})

    def shutdown(self, ref: ExecutorRef) -> None:
        with self._lock:
            record = self._executors.get((ref.framework_id, ref.executor_id))
            if record is None or record.shutdown_at is not None:
                return
            record.shutdown_at = time.monotonic()
        logger.info("agent %s: shutting down %s %s", ref.agent_id, self.kind, ref.executor_id)
        self._deliver(ref, {"type": "SHUTDOWN"})

    def close(self) -> None:
        """Shut every executor down and kill what is left (called by :meth:`DevMaster.stop`)."""
        with self._lock:
            records = list(self._executors.values())
        for record in records:
            self.shutdown(record.ref)
        deadline = time.monotonic() + min(max((r.grace_period for r in records), default=0.0), 5.0)
        while time.monotonic() < deadline and any(self._exit_code(r) is None for r in records):
            time.sleep(0.05)
        for record in records:
            self._kill(record)
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=2)
            self._monitor = None
        self._closed()

    def state(self) -> list[dict[str, Any]]:
        """The executors, for ``GET /devcluster/state``."""
        with self._lock:
            return [
                {
                    "framework_id": r.ref.framework_id,
                    "agent_id": r.ref.agent_id,
                    "executor_id": r.ref.executor_id,
                    "task_id": r.task_id,
                    **self._describe(r),
                    "exit_code": self._exit_code(r),
                    "subscribed": r.stream is not None,
                    "task_state": r.task_state,
                    "sandbox": str(r.sandbox),
                    "shutting_down": r.shutdown_at is not None,
                }
                for r in self._executors.values()
            ]

    # -------------------------------------------------------------- executor API (HTTP threads)

    def _record_for(self, call: Mapping[str, Any]) -> RecordT:
        framework_id = ((call.get("framework_id") or {}).get("value")) if isinstance(call, dict) else None
        executor_id = ((call.get("executor_id") or {}).get("value")) if isinstance(call, dict) else None
        if not framework_id or not executor_id:
            raise CallError(400, "Failed to validate executor::Call: Expecting 'framework_id' and 'executor_id'")
        with self._lock:
            record = self._executors.get((str(framework_id), str(executor_id)))
        if record is None:
            raise CallError(400, f"Executor {executor_id} of framework {framework_id} is not known to this agent")
        return record

    def executor_subscribe(self, call: dict[str, Any]) -> ExecutorStream:
        record = self._record_for(call)
        master = self._master
        assert master is not None
        stream = ExecutorStream(f"executor {record.ref.executor_id}")
        unacked_tasks = {
            str((t.get("task_id") or {}).get("value"))
            for t in (call.get("subscribe") or {}).get("unacknowledged_tasks") or []
        }
        framework_info = master.framework_info(record.ref.framework_id) or {"id": {"value": record.ref.framework_id}}
        framework_info["id"] = {"value": record.ref.framework_id}
        executor_info = dict(record.task_info["executor"])
        executor_info["framework_id"] = {"value": record.ref.framework_id}
        agent_info = master.agent_info(record.ref.agent_id) or {"id": {"value": record.ref.agent_id}}
        with self._lock:
            if record.stream is not None:
                record.stream.close()
            record.stream = stream
            stream.send(
                {
                    "type": "SUBSCRIBED",
                    "subscribed": {
                        "executor_info": executor_info,
                        "framework_info": framework_info,
                        "agent_info": agent_info,
                        "container_id": {"value": record.ref.executor_id},
                    },
                }
            )
            if not record.launched and record.task_id not in unacked_tasks:
                record.launched = True
                stream.send({"type": "LAUNCH", "launch": {"task": record.task_info}})
            for event in record.pending:
                stream.send(event)
            record.pending.clear()
        logger.info("agent %s: executor %s subscribed", record.ref.agent_id, record.ref.executor_id)
        return stream

    def executor_stream_closed(self, stream: Any) -> None:
        with self._lock:
            for record in self._executors.values():
                if record.stream is stream:
                    record.stream = None
                    logger.info("executor %s disconnected", record.ref.executor_id)

    def executor_call(self, call: dict[str, Any]) -> None:
        record = self._record_for(call)
        call_type = call.get("type")
        if call_type == "UPDATE":
            status = (call.get("update") or {}).get("status")
            if not isinstance(status, dict) or not isinstance(status.get("state"), str):
                raise CallError(400, "Failed to validate executor::Call: Expecting 'update.status.state'")
            task_id = str((status.get("task_id") or {}).get("value", ""))
            state = str(status["state"])
            healthy = status.get("healthy")
            with self._lock:
                record.task_state = state
            # Outside our lock: the master takes its own (and calls back into us holding it).
            record.agent.executor_update(
                record.ref,
                task_id,
                state,
                message=status.get("message"),
                reason=status.get("reason"),
                healthy=healthy if isinstance(healthy, bool) else None,
                data=str(status["data"]) if status.get("data") else None,
            )
            with self._lock:
                if record.stream is not None and status.get("uuid"):
                    record.stream.send(
                        {
                            "type": "ACKNOWLEDGED",
                            "acknowledged": {"task_id": {"value": task_id}, "uuid": status["uuid"]},
                        }
                    )
        elif call_type == "MESSAGE":
            data = (call.get("message") or {}).get("data", "")
            try:
                raw = base64.b64decode(str(data), validate=True)
            except (binascii.Error, ValueError) as error:
                raise CallError(400, f"Failed to decode message data: {error}") from error
            record.agent.executor_message(record.ref, raw)
        else:
            raise CallError(400, f"Unsupported executor call {call_type!r} on the development agent")

    # -------------------------------------------------------------- internals

    def _endpoint(self) -> str:
        if self._master is None:
            raise ValueError(f"the {self.kind} backend is not attached to a started DevMaster")
        return self._master.address

    def _agent_env(self, record: ExecutorRecord, grace: float | None, sandbox: str) -> dict[str, str]:
        """What a Mesos agent puts in every executor's environment (pymesos' executor driver needs it):
        ``LIBPROCESS_IP``, the agent's ``--executor_environment_variables``, then the ``MESOS_*``
        variables (:func:`~es_framework.dev.devcluster.agent.executor_environment`). How the
        CommandInfo's variables merge with these is the backend's (it depends on the containerizer)."""
        mesos = {
            "MESOS_AGENT_ENDPOINT": self._endpoint(),
            "MESOS_FRAMEWORK_ID": record.ref.framework_id,
            "MESOS_EXECUTOR_ID": record.ref.executor_id,
            "MESOS_DIRECTORY": sandbox,
            "MESOS_SANDBOX": sandbox,
            "MESOS_SLAVE_ID": record.ref.agent_id,
            "MESOS_AGENT_ID": record.ref.agent_id,
        }
        framework_info = self._master.framework_info(record.ref.framework_id) if self._master else None
        if framework_info and framework_info.get("checkpoint"):
            mesos["MESOS_CHECKPOINT"] = "1"  # pymesos treats any value as true: set it only when true
        if grace is not None:
            mesos["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] = f"{grace:g}secs"
        spec = self._master.agent_spec(record.ref.agent_id) if self._master is not None else None
        if spec is None:
            return mesos
        return executor_environment(spec, mesos)

    def _deliver(self, ref: ExecutorRef, event: dict[str, Any]) -> None:
        with self._lock:
            record = self._executors.get((ref.framework_id, ref.executor_id))
            if record is None:
                logger.info("no executor %s for %s event", ref.executor_id, event["type"])
                return
            if record.stream is not None:
                record.stream.send(event)
            else:
                record.pending.append(event)

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self._watch_once()
            except Exception:
                logger.exception("executor watcher failed")

    def _watch_once(self) -> None:
        now = time.monotonic()
        exited: list[tuple[RecordT, int]] = []
        overdue: list[RecordT] = []
        with self._lock:
            for key, record in list(self._executors.items()):
                code = self._exit_code(record)
                if code is not None:
                    if not record.exit_reported:
                        record.exit_reported = True
                        exited.append((record, code))
                    if record.stream is not None:
                        record.stream.close()
                    if record.shutdown_at is not None:
                        self._executors.pop(key, None)
                elif record.shutdown_at is not None and now - record.shutdown_at > record.grace_period + KILL_MARGIN:
                    overdue.append(record)
        for record, code in exited:
            logger.info("agent %s: %s %s exited with %s", record.ref.agent_id, self.kind, record.ref.executor_id, code)
            self._reap(record)
            if not is_terminal(record.task_state) and record.shutdown_at is None:
                message, reason = self._failure(record, code)
                record.agent.executor_update(record.ref, record.task_id, "TASK_FAILED", message=message, reason=reason)
        for record in overdue:
            logger.warning("%s %s ignored SHUTDOWN: killing it", self.kind, record.ref.executor_id)
            self._kill(record)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line for line in text.splitlines()[-lines:] if line.strip())
