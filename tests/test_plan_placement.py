"""``es-framework plan`` with agents that have attributes and zones (examples/offers-zones.json):
constraints, the storage attribute and zones decide, each with a named reason."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from es_framework.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offers-zones.json"
FLAGS = (
    "--externalVolumeDriver",
    "rexray",
    "--externalVolumeAttribute",
    "rexray:true",
    "--constraints",
    "rack:UNLIKE:r9",
)


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["plan", "--offers", str(EXAMPLE), *argv], env={}) == 0
    return capsys.readouterr().out


def test_constraints_attributes_and_zones_decide_with_named_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    out = plan(capsys, *FLAGS, "--elasticsearchNodes", "5")
    lines = out.splitlines()
    assert (
        "offer offer-3 on agent3.example.com [agent-3-S0]: DECLINE [volume_attribute] the agent has rexray=false: "
        "it cannot attach rexray volumes (--externalVolumeAttribute rexray:true)"
    ) in lines
    assert (
        "offer offer-4 on agent4.example.com [agent-4-S0]: DECLINE [constraints] rack:UNLIKE:r9: r9 matches r9" in lines
    )
    assert (
        "offer offer-7 on agent7.example.com [agent-7-S0]: DECLINE [volume_attribute] the agent has no attribute "
        "rexray: it cannot attach rexray volumes (--externalVolumeAttribute rexray:true)"
    ) in lines
    # Every rule's outcome follows a declined offer, the zone's among them.
    at = lines.index(
        "offer offer-8 on agent8.example.com [agent-8-S0]: DECLINE [mem] not enough mem: 512 MB offered, 2048 MB needed"
    )
    assert "    passed zone_spread: zone eu-west-1c has no node yet" in lines[at + 1 : at + 13]
    assert lines[-1] == "result: 4 of 5 nodes placed; 4 offers declined (constraints: 1, mem: 1, volume_attribute: 2)"


def test_nodes_spread_over_the_zones_in_one_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    steps = json.loads(plan(capsys, *FLAGS, "--elasticsearchNodes", "4", "--json"))["steps"]
    accepted = [s for s in steps if s["accepted"]]
    zones = Counter(
        s["task_info"]["executor"]["command"]["environment"]["variables"]
        and next(
            v["value"]
            for v in s["task_info"]["executor"]["command"]["environment"]["variables"]
            if v["name"] == "ELASTICSEARCH_NODE_ZONE"
        )
        for s in accepted
    )
    assert zones == {"eu-west-1a": 2, "eu-west-1b": 2}
    for step in accepted:
        spread = next(o for o in step["outcomes"] if o["rule"] == "zone_spread")
        assert spread["passed"] and spread["reason"].startswith("zone eu-west-1")


def test_without_placement_flags_the_zone_still_spreads(capsys: pytest.CaptureFixture[str]) -> None:
    # Offer 1 and 2 (zone a) come first: without spreading both would take nodes 1 and 2.
    out = plan(capsys, "--elasticsearchNodes", "2")
    assert [line.split()[1] for line in out.splitlines() if "ACCEPT" in line] == ["offer-1", "offer-5"]
