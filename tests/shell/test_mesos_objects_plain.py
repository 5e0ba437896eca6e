"""``plain``: addict Dicts become plain JSON; what pymesos hands over without addict is not copied."""

from __future__ import annotations

from addict import Dict  # type: ignore[import-untyped]

from es_framework.shell.mesos_objects import plain

OFFER = {"id": {"value": "o1"}, "resources": [{"name": "cpus", "scalar": {"value": 1.0}}], "hostname": "a"}


def test_an_addict_offer_becomes_plain_json_all_the_way_down() -> None:
    converted = plain(Dict(OFFER))
    assert converted == OFFER
    assert type(converted) is dict and type(converted["id"]) is dict
    assert type(converted["resources"]) is list and type(converted["resources"][0]) is dict
    assert type(converted["resources"][0]["scalar"]) is dict


def test_a_plain_offer_is_handed_on_without_a_copy() -> None:
    offer = {**OFFER}
    assert plain(offer) is offer
