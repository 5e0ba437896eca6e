"""The development master sends an inverse offer to a framework that holds an *offer* from an agent
under maintenance, not only to one with a task there: Mesos' allocator asks "frameworks that have the
potential to lose something (i.e. it has resources offered or allocated on a given agent)"
(apache/mesos ``src/master/allocator/mesos/hierarchical.cpp``, ``generateInverseOffers``, which walks
``slave.getOfferedOrAllocated()``). A framework with neither gets none."""

from __future__ import annotations

import functools
import time

from es_framework.dev.devcluster import DevMaster
from tests.dev.devcluster.test_maintenance_wire import MACHINE_A, inverse_offers, operator, schedule_doc
from tests.dev.devcluster.test_wire import fid, first_offer, offers_of, send, subscribe
from tests.harness.devcluster import wait_for


def test_a_framework_holding_an_offer_from_the_agent_is_asked_and_one_without_is_not(master: DevMaster) -> None:
    idle = subscribe(master, name="idle")
    holder = None
    try:
        # ``idle`` refuses agent a for long: it holds nothing there and runs nothing there.
        refused = first_offer(idle, master=master)
        assert (
            send(master, idle, "DECLINE", {"offer_ids": [refused["id"]], "filters": {"refuse_seconds": 600}})[0] == 202
        )
        holder = subscribe(master, name="holder")
        first_offer(holder, master=master)
        assert operator(master, schedule_doc([MACHINE_A], time.time_ns() + 60 * 10**9))[0] == 200
        # The held offer is rescinded and agent a offered again with the window; holding it, ``holder``
        # is asked.
        wait_for(lambda: [o for o in offers_of(holder, "agent-a-S0") if "unavailability" in o], what="a re-offer")
        (asked,) = wait_for(functools.partial(inverse_offers, holder), what="an inverse offer")
        assert asked["agent_id"] == {"value": "agent-a-S0"} and asked["framework_id"] == {"value": fid(holder)}
        time.sleep(0.5)  # several allocation rounds
        assert inverse_offers(idle) == []
    finally:
        for stream in (idle, holder):
            if stream is not None:
                stream.close()
