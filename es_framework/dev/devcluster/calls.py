"""Validation of Mesos v1 scheduler calls (development tool, not for production).

:func:`validate_call` refuses a call the way a Mesos 1.12 master does: the same HTTP status and the
same plain-text reason (recorded from a real master; the wording comes from Mesos'
``src/master/validation.cpp`` and the JSON → protobuf conversion). Nothing here touches the
master's state.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from es_framework.dev.devcluster.errors import CallError

CALL_TYPES = frozenset(
    {
        "SUBSCRIBE",
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "REVIVE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE",
        "RECONCILE_OPERATIONS",
        "MESSAGE",
        "REQUEST",
        "SUPPRESS",
        "UPDATE_FRAMEWORK",
    }
)
#: Calls accepted and ignored (SHUTDOWN of an executor is not simulated).
IGNORED_CALLS = frozenset({"REQUEST", "SHUTDOWN"})
NOT_IMPLEMENTED_CALLS = frozenset({"ACKNOWLEDGE_OPERATION_STATUS", "RECONCILE_OPERATIONS", "UPDATE_FRAMEWORK"})
#: The body each call must carry.
_CALL_BODIES = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "KILL": "kill",
    "ACKNOWLEDGE": "acknowledge",
    "RECONCILE": "reconcile",
    "MESSAGE": "message",
    "SHUTDOWN": "shutdown",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "REQUEST": "request",
}
_CONVERT = "Failed to convert JSON into Call protobuf: "
_MISSING = _CONVERT + "Missing required fields: "
_VALIDATE = "Failed to validate scheduler::Call: "


def value(obj: object) -> str | None:
    """``{"value": "x"}`` → ``"x"``; anything else → None."""
    if isinstance(obj, dict) and isinstance(obj.get("value"), str):
        return str(obj["value"])
    return None


def decode_uuid(text: object) -> bytes | None:
    """The 16 bytes of a base64 status update uuid, or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None


def validate_call(call: object) -> dict[str, Any]:
    """The call, or :class:`CallError` with the status and reason Mesos gives."""
    if not isinstance(call, dict):
        raise CallError(400, _CONVERT + "Expecting a JSON object")
    call_type = call.get("type")
    if call_type is None:
        raise CallError(400, _VALIDATE + "Expecting 'type' to be present")
    if not isinstance(call_type, str) or call_type not in CALL_TYPES:
        raise CallError(400, _CONVERT + f"Failed to find enum for '{call_type}'")
    framework_id = call.get("framework_id")
    if framework_id is not None and value(framework_id) is None:
        raise CallError(400, _MISSING + "framework_id.value")
    if call_type == "SUBSCRIBE":
        return _validate_subscribe(call, framework_id)
    if framework_id is None:
        raise CallError(400, _VALIDATE + "Expecting 'framework_id' to be present")
    body_name = _CALL_BODIES.get(call_type)
    if body_name is not None and not isinstance(call.get(body_name), dict):
        raise CallError(400, _VALIDATE + f"Expecting '{body_name}' to be present")
    if call_type == "ACKNOWLEDGE":
        ack = call["acknowledge"]
        if value(ack.get("task_id")) is None or value(ack.get("agent_id")) is None or "uuid" not in ack:
            raise CallError(400, _MISSING + "acknowledge")
        if decode_uuid(ack.get("uuid")) is None:
            raise CallError(400, _VALIDATE + "Not a valid UUID")
    if call_type == "KILL" and value(call["kill"].get("task_id")) is None:
        raise CallError(400, _MISSING + "kill.task_id")
    if call_type == "MESSAGE":
        message = call["message"]
        if value(message.get("agent_id")) is None or value(message.get("executor_id")) is None:
            raise CallError(400, _MISSING + "message")
        try:
            base64.b64decode(str(message.get("data", "")), validate=True)
        except (binascii.Error, ValueError) as error:
            raise CallError(400, _CONVERT + f"bad base64 data: {error}") from None
    if call_type == "RECONCILE":
        tasks = call["reconcile"].get("tasks", [])
        if not isinstance(tasks, list) or any(
            not isinstance(t, dict) or value(t.get("task_id")) is None for t in tasks
        ):
            raise CallError(400, _MISSING + "reconcile.tasks")
    return call


def _validate_subscribe(call: dict[str, Any], framework_id: object) -> dict[str, Any]:
    subscribe = call.get("subscribe")
    if not isinstance(subscribe, dict):
        raise CallError(400, _VALIDATE + "Expecting 'subscribe' to be present")
    info = subscribe.get("framework_info")
    missing = [
        f"subscribe.framework_info.{f}"
        for f in ("user", "name")
        if not isinstance(info, dict) or not isinstance(info.get(f), str)
    ]
    if missing:
        raise CallError(400, _MISSING + ", ".join(missing))
    assert isinstance(info, dict)
    if framework_id is not None and info.get("id") != framework_id:
        raise CallError(400, _VALIDATE + "'framework_id' differs from 'subscribe.framework_info.id'")
    _validate_suppressed_roles(info, subscribe.get("suppressed_roles", []))
    return call


def _validate_suppressed_roles(info: dict[str, Any], suppressed: object) -> None:
    """``Call.Subscribe.suppressed_roles`` must be roles the framework subscribes with (Mesos:
    ``validateSuppressedRoles`` in src/master/validation.cpp, called by
    ``createAllocatorFrameworkOptions`` in src/master/master.cpp): its ``roles`` with the
    ``MULTI_ROLE`` capability, else its one ``role`` (default ``*``)."""
    if not isinstance(suppressed, list) or not all(isinstance(r, str) for r in suppressed):
        raise CallError(400, _CONVERT + "'subscribe.suppressed_roles' must be a list of strings")
    multi = any(isinstance(c, dict) and c.get("type") == "MULTI_ROLE" for c in info.get("capabilities") or [])
    roles = set(info.get("roles") or []) if multi else {info.get("role") or "*"}
    invalid = sorted(set(suppressed) - roles)
    if invalid:
        raise CallError(400, f"Suppressed roles {{ {', '.join(invalid)} }} are not contained in the set of roles")
