"""Where a development tool may step into the driver shell: :class:`Hooks`, a no-op slot at each
ordering boundary that matters for identity correctness.

Production runs with :data:`NO_HOOKS` and has no switch of its own to arm anything. The end-to-end
tests' crash and raise hooks live in ``es_framework.dev.scheduler``, which installs them through
this interface (``es-framework`` refuses to start when it sees their ``ESMESOS_TEST_*`` variables);
a chaos runner could do the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from es_framework.core.mesos_calls import Accept

#: The pymesos scheduler callbacks the driver shell implements; :meth:`Hooks.before_callback` and
#: :meth:`Hooks.after_callback` are called around each of them, with its name.
CALLBACKS = (
    "registered",
    "reregistered",
    "disconnected",
    "resourceOffers",
    "offerRescinded",
    "statusUpdate",
    "frameworkMessage",
    "slaveLost",
    "executorLost",
    "error",
    "processHeartBeat",
)


class Hooks:
    """The hook points of :class:`~es_framework.shell.driver.SchedulerShell`; every one is a no-op
    here. A tool subclasses this and overrides the points it needs."""

    def after_launch_write(self, call: Accept) -> None:
        """The launch's record is in the state store; its ACCEPT has not gone to the master yet.
        A hook that raises here keeps the ACCEPT from being sent (logged like a failed send)."""

    def after_accept(self, call: Accept) -> None:
        """The master driver has taken the ACCEPT; no status update of the new tasks is recorded yet."""

    def before_callback(self, name: str) -> None:
        """A pymesos callback (one of :data:`CALLBACKS`) starts, on pymesos' thread. A hook that
        raises here fails the callback the way a real failure would: contained and logged, its
        event dropped (Mesos re-sends status updates), its offers declined."""

    def after_callback(self, name: str) -> None:
        """A pymesos callback has queued its event; a hook that raises here is logged and ignored."""


#: What production runs with.
NO_HOOKS = Hooks()
