"""Maintenance on the development master over HTTP: the operator calls and what frameworks receive,
checked against a real Mesos 1.12 master's recording (shared/notes/mesos-maintenance-domains-reservations.md
§2 and its .jsonl, lines cited)."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from es_framework.dev.devcluster import DevMaster
from tests.dev.devcluster.test_wire import fid, first_offer, offers_of, running_task, send, subscribe
from tests.harness.devcluster import RawStream, request, wait_for

MACHINE_A = {"hostname": "a.devcluster.test", "ip": "127.0.0.2"}
TEXT_A = json.dumps(MACHINE_A, separators=(",", ":"))
#: L197: the keys of an inverse offer (no hostname, no resources).
INVERSE_OFFER_KEYS = ["id", "url", "framework_id", "agent_id", "unavailability"]


def operator(master: DevMaster, document: dict[str, Any]) -> tuple[int, str | None, Any]:
    status, headers, body = request(
        master.address, "POST", "/api/v1", json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    content_type = headers.get("content-type")
    if content_type == "application/json":
        return status, content_type, json.loads(body)
    return status, content_type, body.decode()


def schedule_doc(machines: list[dict[str, str]], start_ns: int) -> dict[str, Any]:
    window = {
        "machine_ids": machines,
        "unavailability": {"start": {"nanoseconds": start_ns}, "duration": {"nanoseconds": 3600000000000}},
    }
    return {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [window]}}}


def machines_doc(call_type: str) -> dict[str, Any]:
    return {"type": call_type, call_type.lower(): {"machines": [MACHINE_A]}}


def status_of(master: DevMaster) -> dict[str, Any]:
    answer = operator(master, {"type": "GET_MAINTENANCE_STATUS"})[2]
    assert answer["type"] == "GET_MAINTENANCE_STATUS"
    return dict(answer["get_maintenance_status"]["status"])


def inverse_offers(stream: RawStream) -> list[dict[str, Any]]:
    return [o for e in stream.of_type("INVERSE_OFFERS") for o in e["inverse_offers"]["inverse_offers"]]


def after_failure(stream: RawStream) -> list[dict[str, Any]] | None:
    """Every event of ``stream`` once a FAILURE event is among them."""
    return stream.snapshot() if stream.of_type("FAILURE") else None


def test_refusals_have_mesos_texts(master: DevMaster) -> None:
    plain = "text/plain; charset=utf-8"
    assert operator(master, machines_doc("START_MAINTENANCE")) == (
        400,
        plain,
        f"Machine '{TEXT_A}' is not in DRAINING mode and cannot be brought down",  # L177
    )
    assert operator(master, machines_doc("STOP_MAINTENANCE")) == (
        400,
        plain,
        f"Machine '{TEXT_A}' is not in DOWN mode and cannot be brought up",  # L179
    )
    assert operator(master, schedule_doc([MACHINE_A, MACHINE_A], 1)) == (
        400,
        plain,
        f"Machine '{TEXT_A}' appears more than once in the schedule",  # L181
    )
    assert operator(master, schedule_doc([], 1)) == (400, plain, "List of machines in the maintenance window is empty")
    assert operator(master, {"type": "GET_MAINTENANCE_SCHEDULE"})[2] == {
        "type": "GET_MAINTENANCE_SCHEDULE",
        "get_maintenance_schedule": {"schedule": {}},
    }
    assert status_of(master) == {}


def test_schedule_inverse_offers_down_and_up(master: DevMaster) -> None:
    # The legacy framework runs its task first and then refuses agent a, so the PARTITION_AWARE one
    # runs its task there and holds the rest of agent a when the schedule is posted (as at L190).
    legacy = subscribe(master, "REVOCABLE_RESOURCES", name="legacy")
    aware = None
    try:
        running_task(master, legacy, "t-legacy")
        held = first_offer(legacy, master=master)
        assert (
            send(master, legacy, "DECLINE", {"offer_ids": [held["id"]], "filters": {"refuse_seconds": 600}})[0] == 202
        )
        aware = subscribe(master)
        running_task(master, aware, "t-aware")
        offer = first_offer(aware, master=master)

        start_ns = time.time_ns() + 60 * 10**9
        assert operator(master, schedule_doc([MACHINE_A], start_ns)) == (200, None, "")
        # L192: the held offer is rescinded before the operator's 200 (the master's log of sent events).
        assert {"type": "RESCIND", "rescind": {"offer_id": offer["id"]}} in master.events(fid(aware), "RESCIND")
        wait_for(lambda: aware.of_type("RESCIND"), what="the RESCIND on the stream")
        schedule = operator(master, {"type": "GET_MAINTENANCE_SCHEDULE"})[2]["get_maintenance_schedule"]["schedule"]
        assert schedule == schedule_doc([MACHINE_A], start_ns)["update_maintenance_schedule"]["schedule"]
        unavailability = {"start": {"nanoseconds": start_ns}, "duration": {"nanoseconds": 3600000000000}}

        # L195, L207: re-offers of agent a carry the window as their last field; agent b's do not.
        reoffer = wait_for(
            lambda: [o for o in offers_of(aware, "agent-a-S0") if "unavailability" in o], what="a re-offer"
        )[0]
        assert list(reoffer)[-1] == "unavailability" and reoffer["unavailability"] == unavailability
        assert all("unavailability" not in o for o in offers_of(aware, "agent-b-S0") + offers_of(legacy, "agent-b-S0"))

        # L197, L198: an inverse offer to every framework with a task on the agent.
        first = {}
        for stream in (aware, legacy):
            io = wait_for(functools.partial(inverse_offers, stream), what="an inverse offer")[0]
            assert list(io) == INVERSE_OFFER_KEYS
            assert io["agent_id"] == {"value": "agent-a-S0"} and io["framework_id"] == {"value": fid(stream)}
            assert io["unavailability"] == unavailability
            first[fid(stream)] = io
        assert status_of(master) == {"draining_machines": [{"id": MACHINE_A}]}  # L202: no statuses yet

        # L205 → L211: a decline is recorded; a new inverse offer follows after refuse_seconds.
        declined = first[fid(aware)]["id"]
        body = {"inverse_offer_ids": [declined], "filters": {"refuse_seconds": 0.3}}
        assert send(master, aware, "DECLINE_INVERSE_OFFERS", body) == (202, "")
        statuses = status_of(master)["draining_machines"][0]["statuses"]
        assert [(s["status"], s["framework_id"]["value"]) for s in statuses] == [("DECLINE", fid(aware))]
        second = wait_for(lambda: [o for o in inverse_offers(aware) if o["id"] != declined], what="a re-sent one")[0]
        body = {"inverse_offer_ids": [second["id"]], "filters": {"refuse_seconds": 60}}
        assert send(master, aware, "ACCEPT_INVERSE_OFFERS", body) == (202, "")
        statuses = status_of(master)["draining_machines"][0]["statuses"]
        assert [(s["status"], s["framework_id"]["value"]) for s in statuses] == [("ACCEPT", fid(aware))]  # L231
        time.sleep(0.3)
        assert len(inverse_offers(legacy)) == 1  # never answered: no new one (§2.5)

        # L365-L373: START_MAINTENANCE, then per framework UPDATE, RESCIND(s), RESCIND_INVERSE_OFFER, FAILURE.
        marks = {fid(s): len(s.snapshot()) for s in (aware, legacy)}
        assert operator(master, machines_doc("START_MAINTENANCE")) == (200, None, "")
        for stream, task_id, outstanding in ((aware, "t-aware", None), (legacy, "t-legacy", first[fid(legacy)]["id"])):
            events = [
                e
                for e in wait_for(functools.partial(after_failure, stream), what="FAILURE")[marks[fid(stream)] :]
                if e["type"] in ("UPDATE", "RESCIND", "RESCIND_INVERSE_OFFER", "FAILURE")
            ]
            kinds = [e["type"] for e in events]
            assert (
                kinds[0] == "UPDATE"
                and kinds[-1] == "FAILURE"
                and set(kinds[1:-1]) <= {"RESCIND", "RESCIND_INVERSE_OFFER"}
            )
            lost = events[0]["update"]["status"]
            assert {k: lost[k] for k in ("task_id", "state", "message", "source", "reason", "agent_id")} == {
                "task_id": {"value": task_id},
                "state": "TASK_LOST",
                "message": "Agent a.devcluster.test removed: Operator initiated 'Machine DOWN'",
                "source": "SOURCE_MASTER",
                "reason": "REASON_AGENT_REMOVED",
                "agent_id": {"value": "agent-a-S0"},
            }
            assert "uuid" not in lost
            if outstanding is not None:
                assert {
                    "type": "RESCIND_INVERSE_OFFER",
                    "rescind_inverse_offer": {"inverse_offer_id": outstanding},
                } in events
            assert events[-1] == {"type": "FAILURE", "failure": {"agent_id": {"value": "agent-a-S0"}}}

        assert status_of(master) == {"down_machines": [MACHINE_A]}  # L399
        assert (
            operator(master, {"type": "GET_MAINTENANCE_SCHEDULE"})[2]["get_maintenance_schedule"]["schedule"]
            == schedule
        )
        assert [a["status"] for a in master.state()["agents"] if a["id"] == "agent-a-S0"] == ["DOWN"]
        # L407, L410: the tasks are unknown now.
        reconcile = {"tasks": [{"task_id": {"value": "t-aware"}, "agent_id": {"value": "agent-a-S0"}}]}
        mark = len(aware.updates("t-aware"))
        assert send(master, aware, "RECONCILE", reconcile) == (202, "")
        answer = wait_for(lambda: aware.updates("t-aware")[mark:], what="a reconciliation answer")[0]
        assert (answer["state"], answer["message"]) == ("TASK_UNKNOWN", "Reconciliation: Task is unknown")

        plain = "text/plain; charset=utf-8"
        empty = {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {}}}
        assert operator(master, empty) == (
            400,
            plain,
            f"Machine '{TEXT_A}' is deactivated and cannot be removed from the schedule",
        )
        assert operator(master, machines_doc("START_MAINTENANCE"))[2] == (
            f"Machine '{TEXT_A}' is not in DRAINING mode and cannot be brought down"
        )

        # L443-L448: STOP_MAINTENANCE: out of status and schedule, offered again without a window.
        marks = {fid(s): len(offers_of(s, "agent-a-S0")) for s in (aware, legacy)}
        assert operator(master, machines_doc("STOP_MAINTENANCE")) == (200, None, "")
        assert status_of(master) == {}
        assert operator(master, {"type": "GET_MAINTENANCE_SCHEDULE"})[2]["get_maintenance_schedule"]["schedule"] == {}
        # The removed agent's filters went with it, so either framework may get it.
        again = wait_for(
            lambda: [o for s in (aware, legacy) for o in offers_of(s, "agent-a-S0")[marks[fid(s)] :]],
            what="an offer of agent a",
        )[0]
        assert "unavailability" not in again
    finally:
        legacy.close()
        if aware is not None:
            aware.close()
