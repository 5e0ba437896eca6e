"""The development master's fault switches the chaos runner turns on: status updates duplicated and
delayed without reordering one task's, offers rescinded just after they were sent, malformed offers
(each one the scheduler's own parser refuses) mixed with good ones and their declines recorded; its
failover with the registry kept; and the pure checks the new fault kinds add."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from es_framework.core.offers import OfferError, parse_offer
from es_framework.dev.chaos import invariants as inv
from es_framework.dev.chaos.faults import FaultKind, draw_faults
from es_framework.dev.devcluster import AgentSpec, DevMaster
from es_framework.dev.devcluster.faults import ENORMOUS_ATTRIBUTES, MANGLES, FaultSwitches, _enormous
from es_framework.dev.devcluster.resource_bags import ResourceBag
from es_framework.dev.devcluster.tasks import Task

T1 = "elasticsearch-node1-" + "a" * 32


def updates(task: str, count: int) -> list[dict[str, Any]]:
    return [{"task_id": {"value": task}, "state": "TASK_RUNNING", "uuid": f"{task}-{n}"} for n in range(count)]


def test_outside_a_window_each_update_goes_out_once_at_once() -> None:
    switches, sent = FaultSwitches(), []
    for status in updates("a", 3):
        switches.deliver_update(lambda fid, s: sent.append(s["uuid"]), ("fw", "a"), status, now=0.0)
    assert sent == ["a-0", "a-1", "a-2"] and switches.held_updates() == 0 and not switches.counts


def test_the_first_chance_of_a_window_always_hits() -> None:
    # So that a window in which any update or offer flows is never a no-op, whatever the seed.
    switches, sent = FaultSwitches(), []
    switches.status_chaos(until=10.0, chance=0.0, max_delay_s=1.0, seed=1)
    for status in updates("a", 3):
        switches.deliver_update(lambda fid, s: sent.append(s["uuid"]), ("fw", "a"), status, now=0.0)
    assert sent == ["a-0", "a-0", "a-1", "a-2"] and switches.counts["duplicated"] == 1
    switches.rescind_chaos(until=10.0, chance=0.0, seed=1)
    assert [switches.rescind_now(0.0) for _ in range(3)] == [True, False, False]


@pytest.mark.parametrize("seed", range(5))
def test_duplicates_and_delays_never_reorder_one_tasks_updates(seed: int) -> None:
    switches, sent = FaultSwitches(), []
    switches.status_chaos(until=10.0, chance=1.0, max_delay_s=1.0, seed=seed)

    def send(fid: str, status: dict[str, Any]) -> None:
        sent.append(status["uuid"])

    for n in range(3):  # interleaved, as two tasks' executors report
        for task in ("a", "b"):
            switches.deliver_update(send, ("fw", task), updates(task, 3)[n], now=n * 0.01)
    now = 0.0
    while switches.held_updates():
        now += 0.01
        switches.release_due(send, now)
    for task in ("a", "b"):
        mine = [u for u in sent if u.startswith(task)]
        assert mine == sorted(mine) and len(mine) == 6  # each twice, in order
    assert switches.counts["duplicated"] == 6 and switches.counts["delayed"] == 12


def ignore(framework_id: str, status: dict[str, Any]) -> None:
    pass


def test_updates_of_different_tasks_overtake_each_other() -> None:
    reordered = 0
    for seed in range(10):
        switches = FaultSwitches()
        switches.status_chaos(until=10.0, chance=1.0, max_delay_s=1.0, seed=seed)
        for task in ("a", "b"):
            switches.deliver_update(ignore, ("fw", task), updates(task, 1)[0], now=0.0)
        switches.release_due(ignore, now=5.0)
        reordered += switches.counts["reordered"]
    assert reordered > 0


def good_offer() -> dict[str, Any]:
    return {
        "id": {"value": "m-O1"},
        "framework_id": {"value": "fw"},
        "agent_id": {"value": "a1-S0"},
        "hostname": "a1",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "*"},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}, "role": "*"},
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
    }


@pytest.mark.parametrize("variant", sorted(MANGLES))
def test_each_mangle_is_an_offer_the_scheduler_refuses_as_malformed(variant: str) -> None:
    offer = good_offer()
    parse_offer(offer)
    MANGLES[variant](offer)
    with pytest.raises(OfferError):
        parse_offer(offer)


def test_an_enormous_offer_is_still_well_formed() -> None:
    offer = good_offer()
    _enormous(offer)
    assert len(parse_offer(offer).attributes) == ENORMOUS_ATTRIBUTES + 2


def subscribed_master() -> tuple[DevMaster, Any, str]:
    master = DevMaster([AgentSpec(id=f"a{n}-S0", hostname=f"a{n}", cpus=4, mem=4096) for n in (1, 2)])
    call = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "fw", "failover_timeout": 60}}}
    sub = master.subscribe(copy.deepcopy(call))
    return master, sub, sub.framework_id


def events_of(master: DevMaster, kind: str) -> list[dict[str, Any]]:
    return master.events(event_type=kind)


def test_offers_rescinded_just_after_they_were_sent() -> None:
    master, _, _ = subscribed_master()
    master.faults(lambda f: f.rescind_chaos(time.monotonic() + 60, 1.0, seed=1))
    master.tick()
    offered = [o["id"]["value"] for e in events_of(master, "OFFERS") for o in e["offers"]["offers"]]
    rescinded = [e["rescind"]["offer_id"]["value"] for e in events_of(master, "RESCIND")]
    assert len(offered) == 2 and rescinded == offered
    assert master.state()["offers"] == [] and master.faults(lambda f: f.counts["rescinded"]) == 2


def test_malformed_offers_join_good_ones_and_their_declines_are_recorded() -> None:
    master, sub, framework_id = subscribed_master()
    master.faults(lambda f: f.malformed_chaos(time.monotonic() + 60, 1.0, seed=3))
    master.tick()
    (event,) = events_of(master, "OFFERS")
    good_ids = {o["id"] for o in master.state()["offers"]}
    bad = master.faults(lambda f: list(f.malformed_offers))
    assert len(event["offers"]["offers"]) == len(good_ids) + len(bad) and bad
    named = [b.offer_id for b in bad if b.offer_id is not None]
    decline = {"offer_ids": [{"value": i} for i in named], "filters": {"refuse_seconds": 1}}
    master.handle_call({"type": "DECLINE", "framework_id": {"value": framework_id}, "decline": decline}, sub.stream_id)
    sent = master.faults(
        lambda f: [inv.SentMalformed(o.offer_id, o.variant, o.declined, o.accepted, True) for o in f.malformed_offers]
    )
    assert inv.malformed_offers_declined(sent) == []
    assert {o["id"] for o in master.state()["offers"]} == good_ids  # the good ones are still outstanding


def test_a_malformed_offer_accepted_or_never_declined_is_a_violation() -> None:
    sent = [
        inv.SentMalformed("o1", "no hostname", declined=False, accepted=True, stream_open=True),
        inv.SentMalformed("o2", "scalar a string", declined=False, accepted=False, stream_open=True),
        inv.SentMalformed("o3", "no agent_id", declined=False, accepted=False, stream_open=False),
        inv.SentMalformed(None, "no id", declined=False, accepted=False, stream_open=True),
        inv.SentMalformed("o5", "no agent_id", declined=True, accepted=False, stream_open=True),
    ]
    found = inv.malformed_offers_declined(sent)
    assert [v.message for v in found] == [
        "malformed offer o1 (no hostname) accepted",
        "malformed offer o2 (scalar a string) never declined",
    ]


def test_a_scheduler_that_exited_by_itself_is_a_violation() -> None:
    assert inv.scheduler_alive({"a": None, "b": None}) == []
    (found,) = inv.scheduler_alive({"a": None, "b": 1})
    assert found.invariant == inv.SCHEDULER_ALIVE and "scheduler b" in found.message


def test_a_failed_over_master_keeps_agents_and_tasks_and_takes_the_framework_back() -> None:
    master, sub, framework_id = subscribed_master()
    master.start()
    try:
        address, old_id = master.address, master.master_id
        master.tick()
        assert master.state()["offers"]
        state = master._state
        task = Task(framework_id, T1, "a1-S0", "e1", {"task_id": {"value": T1}}, ResourceBag(), {})
        state.tasks[(framework_id, T1)] = task
        state.backend.launch(master, task.ref, task.info)
        sent_before = len(events_of(master, "UPDATE"))
        master.restart(down_s=0.0)
        assert sub.closed and master.address == address and master.master_id != old_id
        after = master.state()
        assert after["offers"] == [] and [t["task_id"] for t in after["tasks"]] == [T1]
        assert [(f["id"], f["connected"]) for f in after["frameworks"]] == [(framework_id, False)]
        again = master.subscribe(
            {
                "type": "SUBSCRIBE",
                "framework_id": {"value": framework_id},
                "subscribe": {
                    "framework_info": {"id": {"value": framework_id}, "user": "u", "name": "fw", "failover_timeout": 60}
                },
            }
        )
        assert again.framework_id == framework_id and master.state()["frameworks"][0]["connected"]
        master.tick()  # the re-registered agent sends the unacknowledged update again
        assert len(events_of(master, "UPDATE")) > sent_before
        assert all(o["id"].startswith(master.master_id) for o in master.state()["offers"])
    finally:
        master.stop()


def test_the_new_kinds_are_drawn() -> None:
    kinds = {f.kind for f in draw_faults(7, 400)}
    assert {FaultKind.STATUS_CHAOS, FaultKind.RESCIND_OFFERS, FaultKind.MALFORMED_OFFERS} <= kinds
    assert {FaultKind.TWO_SCHEDULERS_AT_ONCE, FaultKind.MAINTENANCE_WINDOW, FaultKind.MASTER_RESTART} <= kinds
