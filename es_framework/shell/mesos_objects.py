"""What pymesos hands the callbacks (plain JSON with ``use_addict=False``, as the scheduler asks for;
addict ``Dict`` objects with ``use_addict=True``) as the plain JSON values the engine works on, and
the guards against what pymesos itself cannot read:
a malformed event skipped, the callbacks for events the scheduler does not act on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("es_framework.shell.driver")


def value_of(obj: Any) -> str | None:
    """The ``value`` of a Mesos id object (``{"value": ...}``), or the string itself; else ``None``."""
    if isinstance(obj, dict):
        value = obj.get("value")
        return value if isinstance(value, str) else None
    return obj if isinstance(obj, str) else None


def offer_ids(offers: Any) -> list[str]:
    """The ids of whatever offers can be read from ``offers``, skipping malformed ones."""
    ids: list[str] = []
    for offer in offers or []:
        try:
            value = value_of(offer.get("id"))
        except Exception:
            value = None
        if value:
            ids.append(value)
    return ids


def plain(obj: Any) -> Any:
    """addict Dicts to plain dicts/lists (the engine works on plain JSON). A plain dict is what
    ``json.loads`` made, all the way down (pymesos with ``use_addict=False``; addict's own lists may
    hold Dicts, so lists are always walked): it is returned as it is, not copied — one offer event
    can hold 10,000 offers, and each copy of them is memory the process keeps."""
    if type(obj) is dict:
        return obj
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    return obj


def event_type(event: Any) -> str:
    """The ``type`` of a v1 scheduler event, for a log line about it (never raises)."""
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else f"<no type: {type(event).__name__}>"


def guard_dispatch(driver: Any) -> Any:
    """Make ``driver`` (pymesos' ``MesosSchedulerDriver``) skip an event its own dispatch cannot read.

    pymesos reads each event's fields before it calls back (``event['status']``, ``event['offer_id']``,
    ``type.lower()``, ...; ``pymesos/scheduler.py`` ``on_event``) and lets the ``KeyError`` or
    ``TypeError`` of a malformed event escape ``Connection.read`` (``pymesos/process.py``), which ends
    its I/O thread: the subscription is lost over one bad event. With this, such an event is logged
    with its type and skipped. A SUBSCRIBED that cannot be read is not skipped: a stream whose
    subscription was never acknowledged is no subscription, so the driver ends and the shell opens a
    new one (the watch loop replaces a dead driver). A driver without ``on_event`` (a test's fake) is
    returned as it is.
    """
    dispatch = getattr(driver, "on_event", None)
    if dispatch is None:
        return driver

    def on_event(event: Any) -> None:
        kind = event_type(event)
        try:
            dispatch(event)
        except Exception as error:
            if kind.upper() == "SUBSCRIBED":
                raise
            log.error("skipping a Mesos %s event that cannot be read: %s: %s", kind, type(error).__name__, error)

    driver.on_event = on_event
    return driver


class IgnoredCallbacks:
    """pymesos callbacks for events this scheduler does not act on. pymesos calls them by name
    (``pymesos/scheduler.py``: ``on_rescind_inverse_offer``, ``on_update_operation_status``); one
    missing is an ``AttributeError`` that ends the driver's loop. Inverse offers themselves are
    answered by the shell (:mod:`es_framework.core.maintenance`); a rescinded one needs nothing, as
    the engine never keeps them. Operation status updates answer offer operations with an id, which
    this scheduler never sends. A rescinded offer, a framework message (the executors send none the
    scheduler needs) and a heartbeat need nothing but ``_guard``, which the driver shell's
    heartbeat watchdog hears every callback through."""

    def _guard(self, name: str, body: Callable[[], None], on_failure: Callable[[], None] | None = None) -> None:
        raise NotImplementedError

    def inverseOfferRescinded(self, driver: Any, offer_id: Any) -> None:
        self._guard("inverseOfferRescinded", lambda: log.info("inverse offer %s rescinded", value_of(offer_id)))

    def operationStatusUpdate(self, driver: Any, status: Any) -> None:
        self._guard("operationStatusUpdate", lambda: log.info("operation status update ignored: %.200s", status))

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._guard("offerRescinded", lambda: None)

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._guard("frameworkMessage", lambda: None)

    def processHeartBeat(self, driver: Any) -> None:
        self._guard("processHeartBeat", lambda: None)
