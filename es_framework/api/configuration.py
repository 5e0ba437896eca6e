"""``GET`` and ``PUT /v1/cluster/configuration``: the flags a running scheduler may change, and the
change (:mod:`es_framework.core.config_change`). Routed by :class:`es_framework.api.app.ApiApp`,
which checks the token of the PUT and that its body is a JSON object."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from es_framework.api.core import ApiCore, ApiError
from es_framework.core.config_change import BODY

logger = logging.getLogger("es_framework.api.app")

__all__ = ["BODY", "put_configuration"]


def put_configuration(core: ApiCore, body: Mapping[str, object]) -> tuple[int, Any]:
    """202 with the rollout the change created, 200 when none was needed (no change, no running
    node, the same tasks), or the refusal; a refused change changed nothing."""
    asked = ", ".join(sorted(body))[:200]
    try:
        answer = core.change_configuration(body)
    except ApiError as refused:
        logger.warning("configuration change (%s) refused (%d): %s", asked, refused.status, refused.message)
        return refused.status, {"error": refused.message}
    logger.info("configuration change (%s) accepted: %s", asked, answer.get("message"))
    return (202 if answer.get("rollout") else 200), answer
