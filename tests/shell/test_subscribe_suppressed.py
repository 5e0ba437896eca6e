"""A subscription that starts with offers suppressed (``Call.Subscribe.suppressed_roles``) when the
state needs none, through pymesos' own SUBSCRIBE request amended by ``subscribe_suppressed``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver

from es_framework.core.node_state import ClusterState, record_launch
from es_framework.shell.framework_info import framework_roles, offers_unwanted, subscribe_suppressed
from tests.core.test_plan import _record


def body_of(request: bytes) -> tuple[dict[str, Any], int]:
    head, _, body = request.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    assert len(lengths) == 1
    return json.loads(body), lengths[0] - len(body)


def driver(info: dict[str, Any]) -> Any:
    made = MesosSchedulerDriver(object(), info, "127.0.0.1:5050", use_addict=False)
    made._master = "127.0.0.1:5050"  # what pymesos' detector sets before it sends SUBSCRIBE
    return made


@pytest.mark.parametrize(
    ("info", "roles"),
    [
        ({"user": "root", "name": "es", "role": "*"}, ["*"]),
        ({"user": "root", "name": "es", "roles": ["search"], "capabilities": [{"type": "MULTI_ROLE"}]}, ["search"]),
    ],
)
def test_subscribe_carries_the_framework_roles_as_suppressed_only_while_no_offer_is_wanted(
    info: dict[str, Any], roles: list[str]
) -> None:
    wanted = [False]
    amended = subscribe_suppressed(driver(info), lambda: not wanted[0], framework_roles(info))
    call, slack = body_of(amended.gen_request())
    assert call["type"] == "SUBSCRIBE" and call["subscribe"]["suppressed_roles"] == roles and slack == 0
    assert call["subscribe"]["framework_info"]["name"] == "es"
    wanted[0] = True  # read at every (re)subscription: a reconnection after a node went missing asks for offers
    call, slack = body_of(amended.gen_request())
    assert "suppressed_roles" not in call["subscribe"] and slack == 0


def test_offers_are_unwanted_only_with_no_node_missing() -> None:
    state = ClusterState(desired_nodes=2)
    assert not offers_unwanted(state)
    state = record_launch(state, _record(1))
    assert not offers_unwanted(state)
    state = record_launch(state, _record(2))
    assert offers_unwanted(state)
