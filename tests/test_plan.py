from __future__ import annotations

import json

from es_framework.offers import offers_from_document
from es_framework.plan import plan_offers
from identity import node_id_from_task_id
from tests.builders import EXAMPLE_EXTERNAL_DECLINES, EXAMPLE_OFFERS, config, offer

EXAMPLE = EXAMPLE_OFFERS


def test_example_offers_external_strategy() -> None:
    raw = offers_from_document(json.loads(EXAMPLE.read_text()))
    steps = plan_offers(raw, config(externalVolumeDriver="rexray"))
    placed = [(s.offer_id, s.node_id, s.volumes) for s in steps if s.node_id is not None]
    assert placed == [
        ("offer-1", 1, ("elasticsearch1config", "elasticsearch1data")),
        ("offer-3", 2, ("elasticsearch2config", "elasticsearch2data")),
        ("offer-6", 3, ("elasticsearch3config", "elasticsearch3data")),
    ]
    declined = {s.offer_id: s.verdict.rule for s in steps if s.node_id is None and s.verdict}
    assert declined == EXAMPLE_EXTERNAL_DECLINES
    for step in steps:
        if step.task_info is not None:
            assert node_id_from_task_id(step.task_info["task_id"]["value"], "elasticsearch") == step.node_id


def test_example_offers_normal_strategy_checks_disk() -> None:
    raw = offers_from_document(json.loads(EXAMPLE.read_text()))
    steps = plan_offers(raw, config())
    assert [s.node_id for s in steps if s.node_id] == [1, 2, 3]
    assert {s.offer_id: s.verdict.rule for s in steps if s.verdict and not s.verdict.accepted}["offer-6"] == "disk"
    assert all(s.volumes is None for s in steps)


def test_taken_ids_are_skipped_and_task_ids_unique() -> None:
    steps = plan_offers([offer(i) for i in range(1, 5)], config(elasticsearchNodes="5"), taken_ids=[1, 3])
    assert [s.node_id for s in steps] == [2, 4, 5, 6]
    task_ids = {s.task_info["task_id"]["value"] for s in steps if s.task_info}
    assert len(task_ids) == 4


def test_malformed_offer_is_reported_and_the_rest_still_judged() -> None:
    steps = plan_offers([{"id": {"value": "bad"}}, offer(2)], config())
    assert steps[0].error is not None and "agent_id" in steps[0].error
    assert steps[0].node_id is None and steps[0].verdict is None
    assert steps[1].node_id == 1
