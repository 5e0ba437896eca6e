"""``GET /v1/rollouts``, ``POST /v1/cluster/restart`` and
``POST /v1/rollouts/{id}/pause|resume|abort|force|predicates``: the rollout under way (each step's
state, what blocks the next one, progress, elapsed, the predicates the operator disabled) and the
last few finished ones, as snapshots built from :class:`es_framework.core.rollouts.Rollout`. Routed
by :class:`es_framework.api.app.ApiApp`, which checks the token of every POST."""

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
#: ``POST /v1/rollouts/{id}/predicates`` with :data:`PREDICATES_BODY`: the predicates disabled for the
#: rollout's steps from now on (this list replaces the last; ``[]`` disables none).
PREDICATES = "predicates"
PREDICATES_KEY = "disable_predicates"
PREDICATES_BODY = '{"disable_predicates": ["<predicate>", ...]}'


def disabled_predicates(raw: bytes, refuse: Callable[[int, str], Exception], *, required: bool) -> frozenset[str]:
    """The names in a body ``{"disable_predicates": [...]}`` (empty body: none, unless ``required``).
    Only the shape is checked here; which names may be disabled is the core's
    (:func:`es_framework.core.predicates.check_disabled`, 400 with nothing changed)."""
    if not raw.strip() and not required:
        return frozenset()
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    names = value.get(PREDICATES_KEY) if isinstance(value, dict) and set(value) == {PREDICATES_KEY} else None
    if not isinstance(names, list) or len(names) > MAX_PREDICATES or not all(isinstance(n, str) for n in names):
        raise refuse(400, f"the body must be {PREDICATES_BODY}{'' if required else ' or empty'}")
    return frozenset(names)


#: More names than there are predicates is a mistake, not a request.
MAX_PREDICATES = 16


def _warn_disabled(rollout_id: str, disabled: tuple[str, ...]) -> None:
    if disabled:
        logger.warning(
            "rollout %s: predicates disabled by the operator for its steps: %s (a node may be restarted while they "
            "fail)",
            rollout_id,
            ", ".join(disabled),
        )
    else:
        logger.warning("rollout %s: every predicate holds again (none disabled)", rollout_id)


def start_restart(core: ApiCore, refuse: Callable[[int, str], Exception], body: bytes = b"") -> tuple[int, Any]:
    """``POST /v1/cluster/restart``: 202 with the new rollout, or the refusal (409 while one runs; 400
    for a predicate that is unknown or never disabled). The optional body ``{"disable_predicates":
    [...]}`` disables those predicates for this rollout's steps, logged once at WARNING."""
    disabled = disabled_predicates(body, refuse, required=False)
    try:
        view = core.start_restart(disabled)
    except ApiError as refused:
        logger.warning("cluster restart refused (%d): %s", refused.status, refused.message)
        return refused.status, {"error": refused.message}
    logger.info("cluster restart accepted: rollout %s, nodes %s", view.id, list(view.order))
    if disabled:
        _warn_disabled(view.id, view.disabled_predicates)
    return 202, view


def rollout_command(
    core: ApiCore, rollout_id: str, verb: str, refuse: Callable[[int, str], Exception], body: bytes = b""
) -> tuple[int, Any]:
    """``POST /v1/rollouts/{id}/{verb}`` (pause, resume, abort, force, predicates); ``refuse`` builds the
    app's error for what is no rollout id or verb. ``predicates`` takes :data:`PREDICATES_BODY`: exactly
    those predicates are disabled for the rollout's steps from now on (ECK's
    ``eck.k8s.elastic.co/disable-upgrade-predicates``, for one rollout here), logged at WARNING.
    ``force`` takes ``{"force": "<why>"}``: the next step may start although the cluster's health
    predicates fail, once (issue 12: a cluster that cannot get green
    without the rollout itself); never automatic, and logged at WARNING with the reason."""
    if not re.fullmatch(ROLLOUT_ID_PATTERN, rollout_id):
        raise refuse(400, f"{rollout_id[:60]!r} is not a rollout id")
    if verb not in (*VERBS, FORCE, PREDICATES):
        raise refuse(404, f"no rollout command {verb[:20]!r}; known: {', '.join((*VERBS, FORCE, PREDICATES))}")
    reason = ""
    disabled = disabled_predicates(body, refuse, required=True) if verb == PREDICATES else frozenset()
    if verb == FORCE:
        given = force_reason(body, refuse)
        if given is None:
            raise refuse(400, f"force needs the body {FORCE_BODY}: why the next step may start while it is not safe")
        reason = given
    try:
        view = core.rollout_command(rollout_id, verb, reason, disabled)
    except ApiError as refused:
        logger.warning("rollout %s %s refused (%d): %s", rollout_id, verb, refused.status, refused.message)
        return refused.status, {"error": refused.message}
    if verb == FORCE:
        logger.warning("rollout %s: the next step is forced past the health predicates: %s", rollout_id, reason)
    elif verb == PREDICATES:
        _warn_disabled(rollout_id, view.disabled_predicates)
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
