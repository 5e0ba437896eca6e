"""``GET /v1/rollouts``, ``POST /v1/cluster/restart`` and ``POST /v1/rollouts/{id}/pause|resume|abort|force``:
the rollout under way (each step's state, what blocks the next one, progress, elapsed) and the last
few finished ones, as snapshots built from :class:`es_framework.core.rollouts.Rollout`. Routed by
:class:`es_framework.api.app.ApiApp`, which checks the token of every POST."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from es_framework.api.core import ApiCore, ApiError

logger = logging.getLogger("es_framework.api.app")

#: Rollout ids are ``<reason>-<milliseconds>`` (:func:`es_framework.core.rollouts.plan_rollout`).
ROLLOUT_ID_PATTERN = r"^[a-z]{1,20}-[0-9]{1,20}$"
#: The commands without a body (``POST /v1/rollouts/{id}/{command}``); ``force`` takes one and has
#: its own path in the OpenAPI document, so that a schema can say the body is required.
VERBS = ("pause", "resume", "abort")
FORCE = "force"


def start_restart(core: ApiCore) -> tuple[int, Any]:
    """``POST /v1/cluster/restart``: 202 with the new rollout, or the refusal (409 while one runs)."""
    try:
        view = core.start_restart()
    except ApiError as refused:
        logger.warning("cluster restart refused (%d): %s", refused.status, refused.message)
        return refused.status, {"error": refused.message}
    logger.info("cluster restart accepted: rollout %s, nodes %s", view.id, list(view.order))
    return 202, view


def rollout_command(
    core: ApiCore, rollout_id: str, verb: str, refuse: Callable[[int, str], Exception], body: bytes = b""
) -> tuple[int, Any]:
    """``POST /v1/rollouts/{id}/{verb}`` (pause, resume, abort, force); ``refuse`` builds the app's error
    for what is no rollout id or verb. ``force`` takes ``{"force": "<why>"}``: the next step may start
    although the cluster's health predicates fail, once (issue 12: a cluster that cannot get green
    without the rollout itself); never automatic, and logged at WARNING with the reason."""
    if not re.fullmatch(ROLLOUT_ID_PATTERN, rollout_id):
        raise refuse(400, f"{rollout_id[:60]!r} is not a rollout id")
    if verb not in (*VERBS, FORCE):
        raise refuse(404, f"no rollout command {verb[:20]!r}; known: {', '.join((*VERBS, FORCE))}")
    reason = ""
    if verb == FORCE:
        given = force_reason(body, refuse)
        if given is None:
            raise refuse(400, f"force needs the body {FORCE_BODY}: why the next step may start while it is not safe")
        reason = given
    try:
        view = core.rollout_command(rollout_id, verb, reason)
    except ApiError as refused:
        logger.warning("rollout %s %s refused (%d): %s", rollout_id, verb, refused.status, refused.message)
        return refused.status, {"error": refused.message}
    if verb == FORCE:
        logger.warning("rollout %s: the next step is forced past the health predicates: %s", rollout_id, reason)
    else:
        logger.info("rollout %s: %s accepted", rollout_id, verb)
    return 200, view


#: What ``POST /v1/nodes/{id}/restart`` and ``…/replace`` take besides nothing at all.
FORCE_BODY = '{"force": "<why>"}'
MAX_FORCE_REASON = 200


def force_reason(raw: bytes, refuse: Callable[[int, str], Exception]) -> str | None:
    """The body of ``POST /v1/nodes/{id}/restart`` or ``…/replace``: empty (the command is queued and
    the disruption planner starts it when safe) or ``{"force": "<why>"}``: at once, past the planner,
    for what the planner rightly never allows — the only node of a cluster, or a node whose
    Elasticsearch no longer answers (the planner fails closed). The reason is logged with it."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    reason = value.get("force") if isinstance(value, dict) and set(value) == {"force"} else None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_FORCE_REASON:
        raise refuse(
            400,
            f"the body must be empty (queued through the planner) or {FORCE_BODY} with a reason of at most "
            f"{MAX_FORCE_REASON} characters (at once, past the planner)",
        )
    return reason.strip()
