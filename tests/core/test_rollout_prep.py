"""What the monitor does to Elasticsearch for restarts (es_framework/core/rollout_prep.py): register a
restart shutdown, report a node ready only on COMPLETE (or once allocation is primaries on a version
without node shutdown), never turn a registered remove into a restart, clear finished restarts'
records, and do nothing on an unknown answer."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType
from es_framework.core.disruption_seen import Seen, Unknown
from es_framework.core.rollout_prep import prepare
from tests.core.test_node_state import FW, running


def started(version: str | None, kind: Kind = Kind.ROLLOUT):  # type: ignore[no-untyped-def]
    state = running(1, 2, 3)
    nodes = {**state.nodes, 2: replace(state.nodes[2], version=version)}
    entry = Disruption(2, kind, ShutdownType.RESTART, 1.0, 1.0, state.nodes[2].task_id)
    return replace(state, nodes=MappingProxyType(nodes), disruptions=MappingProxyType({2: entry}))


def seen(shutdowns: dict[str, tuple[str, str]] | None = None, alloc: str | None = None) -> Seen:
    joined = frozenset(f"{FW}{i}" for i in (1, 2, 3))
    return Seen("green", joined, f"{FW}1", 0, 0, 0, shutdowns=shutdowns or {}, allocation_enable=alloc)


def test_node_shutdown_is_registered_then_ready_on_complete_only() -> None:
    state = started("8.15.1")
    assert prepare(state, seen(), FW).register == (2,) and not prepare(state, seen(), FW).ready
    waiting = seen({f"{FW}2": ("restart", "in_progress")})
    assert prepare(state, waiting, FW).ready == frozenset() and prepare(state, waiting, FW).register == ()
    assert prepare(state, seen({f"{FW}2": ("restart", "complete")}), FW).ready == {2}
    # A remove registered for the node is never taken for a restart.
    assert prepare(state, seen({f"{FW}2": ("remove", "complete")}), FW).ready == frozenset()


def test_without_node_shutdown_allocation_primaries_then_ready() -> None:
    state = started("7.10.2")
    assert prepare(state, seen(), FW).primaries == (2,)
    assert prepare(state, seen(alloc="primaries"), FW).ready == {2}
    # The operator's restart on such a version: stopped gracefully at once.
    assert prepare(started(None, Kind.RESTART), seen(), FW).ready == {2}


def test_unknown_does_nothing() -> None:
    assert prepare(started("8.15.1"), Unknown("timeout"), FW).register == ()
    assert prepare(started("8.15.1"), None, FW).ready == frozenset()


def test_a_finished_restarts_record_is_cleared_once_the_node_is_back() -> None:
    state = replace(started("8.15.1"), disruptions=MappingProxyType({}))
    assert prepare(state, seen({f"{FW}2": ("restart", "complete")}), FW).clear == (2,)
    assert prepare(state, seen({f"{FW}2": ("remove", "complete")}), FW).clear == ()
    # Still held by its started restart: kept.
    assert prepare(started("8.15.1"), seen({f"{FW}2": ("restart", "complete")}), FW).clear == ()
