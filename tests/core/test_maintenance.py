"""Mesos maintenance, purely: windows from the wire, which agents take no new node, which nodes
must move, and the answer to each inverse offer."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.maintenance import (
    InverseOffer,
    MaintenanceError,
    Unavailability,
    answer,
    keeps_new_nodes_off,
    nodes_on_agent,
    nodes_to_move,
    parse_inverse_offer,
)
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.offers import OfferError, parse_offer
from tests.harness.builders import offer

HOUR_NS = 3_600_000_000_000


def inverse(n: int, agent: str, start_ns: int = 2_000 * 10**9, duration_ns: int | None = HOUR_NS) -> dict[str, Any]:
    """An inverse offer as the master sends it (notes §2.3: no hostname, no resources)."""
    window: dict[str, Any] = {"start": {"nanoseconds": start_ns}}
    if duration_ns is not None:
        window["duration"] = {"nanoseconds": duration_ns}
    return {
        "id": {"value": f"master-O{n}"},
        "url": {"scheme": "http", "address": {"ip": "127.0.0.1", "port": 5157}, "path": "/slave(1)"},
        "framework_id": {"value": "fw-1"},
        "agent_id": {"value": agent},
        "unavailability": window,
    }


def state(*nodes: tuple[int, str, TaskState], desired: int = 3) -> ClusterState:
    records = {
        i: NodeRecord(
            node_id=i, task_id=f"t{i}", agent_id=a, hostname=f"h-{a}", http_port=9200, transport_port=9300, state=s
        )
        for i, a, s in nodes
    }
    return ClusterState(desired_nodes=desired, nodes=MappingProxyType(records))


def test_an_inverse_offer_is_read_as_the_master_sends_it() -> None:
    parsed = parse_inverse_offer(inverse(11, "agent-1-S0"))
    assert parsed == InverseOffer("master-O11", "agent-1-S0", Unavailability(2000.0, 5600.0))


def test_a_window_without_duration_never_ends() -> None:
    parsed = parse_inverse_offer(inverse(1, "a", duration_ns=None))
    assert parsed.unavailability == Unavailability(2000.0, None)
    assert "with no end" in parsed.unavailability.text()


@pytest.mark.parametrize(
    "broken",
    [
        {"id": {"value": ""}},
        {"agent_id": None},
        {"unavailability": {"start": {"nanoseconds": "1"}}},
        {"unavailability": {"start": {"nanoseconds": 1}, "duration": {"nanoseconds": -1}}},
        {"unavailability": []},
    ],
)
def test_a_malformed_inverse_offer_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(MaintenanceError):
        parse_inverse_offer({**inverse(1, "a"), **broken})


def test_offers_carry_the_window_and_a_malformed_one_is_a_malformed_offer() -> None:
    assert parse_offer(offer(1)).unavailability is None
    raw = {**offer(1), "unavailability": {"start": {"nanoseconds": 5 * 10**9}, "duration": {"nanoseconds": 10**9}}}
    assert parse_offer(raw).unavailability == Unavailability(5.0, 6.0)
    with pytest.raises(OfferError):
        parse_offer({**offer(1), "unavailability": {"start": {}}})


@given(
    start=st.floats(0, 1e9, allow_nan=False),
    length=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    now=st.floats(0, 2e9, allow_nan=False),
    lead=st.floats(0, 1e5, allow_nan=False),
)
def test_an_agent_takes_no_new_node_from_lead_before_the_window_until_its_end(
    start: float, length: float | None, now: float, lead: float
) -> None:
    window = Unavailability(start, None if length is None else start + length)
    off = keeps_new_nodes_off(window, now, lead)
    ended = window.end is not None and now >= window.end
    assert off == (now >= start - lead and not ended)
    assert not keeps_new_nodes_off(None, now, lead)


def test_a_node_whose_task_ended_no_longer_occupies_the_agent() -> None:
    s = state(
        (1, "a", TaskState.RUNNING),
        (2, "a", TaskState.FAILED),
        (3, "a", TaskState.UNREACHABLE),
        (4, "b", TaskState.RUNNING),
        (5, "a", TaskState.LAUNCHING),
        desired=5,
    )
    assert nodes_on_agent(s, "a") == (1, 3, 5)
    assert nodes_on_agent(s, "c") == ()


def test_only_wanted_nodes_with_nothing_pending_must_move() -> None:
    s = state((1, "a", TaskState.RUNNING), (2, "a", TaskState.RUNNING), (3, "a", TaskState.RUNNING), desired=2)
    s = replace(s, nodes=MappingProxyType({**s.nodes, 2: replace(s.nodes[2], stopping="restart")}))
    # Node 3 is being scaled away, node 2 is already being stopped.
    assert nodes_to_move(s, ["a", "b"]) == (1,)


@given(
    agents=st.lists(st.sampled_from(["a", "b", "c"]), max_size=6),
    placed=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(list(TaskState))), max_size=5),
)
def test_an_inverse_offer_is_accepted_exactly_when_no_node_of_ours_may_be_on_its_agent(
    agents: list[str], placed: list[tuple[str, TaskState]]
) -> None:
    s = state(*((i + 1, a, t) for i, (a, t) in enumerate(placed)), desired=len(placed))
    offers = [InverseOffer(f"o{i}", a, None) for i, a in enumerate(agents)]
    answers = answer(offers, s)
    assert sorted(answers.accept + answers.decline) == sorted(o.id for o in offers)
    for o in offers:
        there = bool(nodes_on_agent(s, o.agent_id))
        assert (o.id in answers.decline) == there
        assert (o.id in answers.reasons) == there
