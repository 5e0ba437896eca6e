"""``python -m es_framework.dev.scheduler <es-framework arguments>``: the production ``es-framework``
command with the end-to-end tests' crash and raise hooks installed (:class:`TestHooks`, through the
driver shell's hook points, :class:`~es_framework.shell.hooks.Hooks`). **A development tool**: the
hooks crash the scheduler or fail its callbacks on purpose.

The hooks are read from the environment once, at start, and only when ``ESMESOS_TEST_HOOKS`` is
exactly ``I-understand-this-crashes-the-scheduler``; any other value, an unknown crash point or
callback name refuses to start (exit status 2). Not under ``ES_MESOS_``, which is the prefix of
flags. ``es-framework`` itself never arms them: it refuses to start when it sees them set.

- ``ESMESOS_TEST_CRASH_AT=after_launch_write``: ``os._exit(99)`` once a launch's record is
  written to the state store, before its ACCEPT goes to the master.
- ``ESMESOS_TEST_CRASH_AT=after_accept``: ``os._exit(99)`` right after the master has taken an
  ACCEPT, before any status update of the new task is recorded.
- ``ESMESOS_TEST_RAISE_IN=<pymesos callback name>`` (e.g. ``statusUpdate``): the first call of
  that callback raises ``RuntimeError`` inside it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from es_framework.cli import TEST_HOOK_PREFIX
from es_framework.cli import main as cli_main
from es_framework.core.mesos_calls import Accept
from es_framework.shell.hooks import CALLBACKS, Hooks
from identity.task_ids import NODE_ID_LABEL

log = logging.getLogger("es_framework.dev.scheduler")

TEST_HOOKS_ENABLE_VAR = f"{TEST_HOOK_PREFIX}HOOKS"
TEST_HOOKS_ENABLE_VALUE = "I-understand-this-crashes-the-scheduler"
TEST_CRASH_VAR = f"{TEST_HOOK_PREFIX}CRASH_AT"
TEST_RAISE_VAR = f"{TEST_HOOK_PREFIX}RAISE_IN"
#: The hook points of :class:`~es_framework.shell.hooks.Hooks` a crash may be set at.
CRASH_POINTS = ("after_launch_write", "after_accept")
#: The exit status of a crash hook.
TEST_CRASH_STATUS = 99


@dataclass(frozen=True)
class TestHooks(Hooks):
    """See the module's description. The default is no hook at all."""

    __test__ = False  # not a pytest test class

    crash_at: str | None = None
    raise_in: str | None = None
    #: Set once the raise hook has fired: only the first call of the callback raises.
    _raised: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TestHooks:
        """The hooks the environment arms; ``ValueError`` for anything half-set or misspelt."""
        crash_at = env.get(TEST_CRASH_VAR) or None
        raise_in = env.get(TEST_RAISE_VAR) or None
        enabled = env.get(TEST_HOOKS_ENABLE_VAR)
        if crash_at is None and raise_in is None and enabled is None:
            return cls()
        if enabled != TEST_HOOKS_ENABLE_VALUE:
            raise ValueError(
                f"test hooks ({TEST_CRASH_VAR}, {TEST_RAISE_VAR}) are for the end-to-end tests only and need "
                f"{TEST_HOOKS_ENABLE_VAR}={TEST_HOOKS_ENABLE_VALUE}; unset them"
            )
        if crash_at is not None and crash_at not in CRASH_POINTS:
            raise ValueError(f"{TEST_CRASH_VAR}={crash_at!r}: not one of {', '.join(CRASH_POINTS)}")
        if raise_in is not None and raise_in not in CALLBACKS:
            raise ValueError(f"{TEST_RAISE_VAR}={raise_in!r}: not one of {', '.join(CALLBACKS)}")
        return cls(crash_at=crash_at, raise_in=raise_in)

    @property
    def armed(self) -> bool:
        return self.crash_at is not None or self.raise_in is not None

    def after_launch_write(self, call: Accept) -> None:
        self._crash("after_launch_write", call)

    def after_accept(self, call: Accept) -> None:
        self._crash("after_accept", call)

    def before_callback(self, name: str) -> None:
        if self.raise_in == name and not self._raised.is_set():
            self._raised.set()
            raise RuntimeError(f"test hook {TEST_RAISE_VAR}={name}: raising inside the callback")

    def _crash(self, point: str, call: Accept) -> None:
        if self.crash_at != point:
            return
        for task in call.task_infos:
            log.critical(
                "node %s task %s: test hook %s=%s: exiting with status %d",
                _node_id(task),
                task["task_id"]["value"],
                TEST_CRASH_VAR,
                point,
                TEST_CRASH_STATUS,
            )
        logging.shutdown()
        os._exit(TEST_CRASH_STATUS)


def _node_id(task: Mapping[str, Any]) -> str | None:
    """The node id a TaskInfo's labels carry (``es-mesos.node-id``)."""
    for label in task.get("labels", {}).get("labels", []):
        if label.get("key") == NODE_ID_LABEL:
            return str(label.get("value"))
    return None


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``es-framework`` with the hooks the environment arms; exit status 2 when they are half-set."""
    env = os.environ if env is None else env
    try:
        hooks = TestHooks.from_env(env)
    except ValueError as exc:
        sys.stderr.write(f"es-framework: {exc}\n")
        return 2
    # Loud and on stderr whatever --logLevel says: a crash on purpose must never pass for a bug.
    if hooks.armed:
        sys.stderr.write(
            f"es_framework.dev.scheduler: TEST HOOKS ARMED ({hooks}): this scheduler will crash or fail on purpose\n"
        )
    else:
        sys.stderr.write(f"es_framework.dev.scheduler: no test hook set ({TEST_CRASH_VAR}, {TEST_RAISE_VAR})\n")
    return cli_main(argv, env, hooks=hooks)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
