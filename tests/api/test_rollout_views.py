"""The API's view of a rollout (es_framework/api/rollout_views.py): a version upgrade says from and
to which version; any other rollout, and a finished one, says null."""

from __future__ import annotations

from types import MappingProxyType

from es_framework.api.rollout_views import finished_view, rollout_view
from es_framework.core.rollout_model import Rollout, RolloutReason, Step


def rollout(upgrade: tuple[str, str] | None) -> Rollout:
    steps = MappingProxyType({1: Step(1, 0, True)})
    return Rollout("configuration-1", RolloutReason.CONFIGURATION, 10.0, "abc", steps, upgrade=upgrade)


def test_a_version_upgrade_shows_its_versions_and_other_rollouts_none() -> None:
    assert rollout_view(rollout(("7.17.24", "8.15.1")), 20.0).upgrade == {"from": "7.17.24", "to": "8.15.1"}
    assert rollout_view(rollout(None), 20.0).upgrade is None
    assert finished_view({"id": "configuration-1", "reason": "configuration", "created_at": 10.0}).upgrade is None
