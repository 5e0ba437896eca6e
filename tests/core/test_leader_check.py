"""The version check runs at every leadership (es_framework/core/leader_check.py): the running
versions are kept in the state (each record's ``version``), so a scheduler that takes the lock back
after another leader upgraded the nodes refuses to act on the state it re-reads instead of rolling
the nodes back; the same check as at start (``check_state_startable``)."""

from __future__ import annotations

import pytest

from es_framework.app.startup import RefusedError, check_state_startable
from es_framework.core.leader_check import StateRefusedError, state_refusal
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.version_change import running_versions
from tests.core.test_engine import MemoryStore, make
from tests.core.test_version_upgrade import on
from tests.harness.builders import config


def test_the_running_versions_survive_a_failover_in_the_stored_records() -> None:
    stored = on("7.17.24", "8.15.1")
    assert running_versions(state_from_json(state_to_json(stored), "elasticsearch")) == {1: "7.17.24", 2: "8.15.1"}


def test_a_scheduler_that_leads_again_refuses_a_state_another_leader_upgraded() -> None:
    store = MemoryStore(state_to_json(on("7.17.24", "7.17.24")))
    engine, _, _ = make(store, elasticsearchVersion="7.17.24", elasticsearchNodes="2")
    engine.reload()  # nothing changed: acts as before
    # Meanwhile another leader upgraded the nodes to 8.15.1.
    store.document = state_to_json(on("8.15.1", "8.15.1"))
    store.version += 1
    with pytest.raises(StateRefusedError, match="does not support in-place downgrades"):
        engine.reload()
    assert running_versions(engine.state) == {1: "8.15.1", 2: "8.15.1"}  # known before any node reports


@pytest.mark.parametrize(
    ("versions", "target", "refused"),
    [
        (("8.15.1",), "7.17.24", True),  # a downgrade
        (("7.16.3",), "8.15.1", True),  # 8.x from 7.17 only
        (("7.17.24",), "7.17.24", False),
        (("7.17.24",), "8.15.1", False),
    ],
)
def test_the_check_at_every_leadership_is_the_check_at_start(
    versions: tuple[str, ...], target: str, refused: bool
) -> None:
    flags = config(elasticsearchVersion=target)
    state = on(*versions)
    assert (state_refusal(flags, state) is not None) is refused
    if refused:
        with pytest.raises(RefusedError, match="is refused"):
            check_state_startable(flags, state)
    else:
        check_state_startable(flags, state)
