"""The development master's scheduler API on the wire, checked with raw HTTP against shapes recorded
from a real Mesos 1.12 master (copied here as literals)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from es_framework.dev.devcluster import AgentSpec, DevMaster, Reservation
from tests.dev.devcluster.conftest import AGENTS, FAST
from tests.harness.devcluster import RawStream, call, control, request, wait_for

# --- recorded from a real Mesos 1.12 master (PARTITION_AWARE framework) -------------------------
SAMPLE_SUBSCRIBED = {
    "framework_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-0000"},
    "heartbeat_interval_seconds": 15.0,
    "master_info": {
        "id": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03",
        "ip": 16777343,
        "port": 5060,
        "pid": "master@127.0.0.1:5060",
        "hostname": "localhost",
        "version": "1.12.0",
        "address": {"hostname": "localhost", "ip": "127.0.0.1", "port": 5060},
        "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
    },
}
SAMPLE_OFFER = {
    "id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-O0"},
    "framework_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-0000"},
    "agent_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-S0"},
    "hostname": "127.0.0.2",
    "url": {
        "scheme": "http",
        "address": {"hostname": "127.0.0.2", "ip": "127.0.0.2", "port": 5061},
        "path": "/slave(1)",
    },
    "resources": [
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 32000, "end": 32999}]}, "role": "*"},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "*"},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*"},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 20000.0}, "role": "*"},
    ],
    "attributes": [
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
        {"name": "zone", "type": "TEXT", "text": {"value": "z1"}},
    ],
}
SAMPLE_EXECUTOR_RUNNING = {
    "task_id": {"value": "probe-0654c9"},
    "state": "TASK_RUNNING",
    "source": "SOURCE_EXECUTOR",
    "agent_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-S0"},
    "executor_id": {"value": "probe-0654c9"},
    "timestamp": 1795286967.478087,
    "uuid": "pI7lC3XoSoy4PZjtCFQ7AA==",
    "container_status": {
        "container_id": {"value": "d3ddacd2-bd3a-4214-a176-19b7084269e4"},
        "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": "127.0.0.2"}]}],
        "executor_pid": 10334,
    },
}
SAMPLE_AGENT_LOST = {
    "task_id": {"value": "probe-0654c9"},
    "state": "TASK_UNREACHABLE",
    "message": "health check timed out",
    "source": "SOURCE_MASTER",
    "reason": "REASON_AGENT_REMOVED",
    "agent_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-S0"},
    "timestamp": 1795286974.1430998,
    "unreachable_time": {"nanoseconds": 1795286974135409152},
}
SAMPLE_RECONCILE_UNKNOWN = {
    "task_id": {"value": "probe-0654c9"},
    "state": "TASK_UNKNOWN",
    "message": "Reconciliation: Task is unknown",
    "source": "SOURCE_MASTER",
    "reason": "REASON_RECONCILIATION",
    "timestamp": 1795286974.2305143,
}
SAMPLE_RECONCILE_UNREACHABLE = {
    "task_id": {"value": "probe-0654c9"},
    "state": "TASK_UNREACHABLE",
    "message": "Reconciliation: Task is unreachable",
    "source": "SOURCE_MASTER",
    "reason": "REASON_RECONCILIATION",
    "agent_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-S0"},
    "timestamp": 1795286976.250412,
    "unreachable_time": {"nanoseconds": 1795286974135409152},
}
SAMPLE_REREGISTERED = {
    "task_id": {"value": "probe-0654c9"},
    "state": "TASK_RUNNING",
    "message": "Unreachable agent re-reregistered",
    "source": "SOURCE_MASTER",
    "reason": "REASON_AGENT_REREGISTERED",
    "agent_id": {"value": "7ca55dd9-bf6c-4d1c-bf8b-599ea5b67d03-S0"},
    "timestamp": 1795287007.298449,
    "container_status": {
        "container_id": {"value": "d3ddacd2-bd3a-4214-a176-19b7084269e4"},
        "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": "127.0.0.2"}]}],
        "executor_pid": 10334,
    },
}
# ---------------------------------------------------------------------------------------------


def same_shape(actual: object, sample: object, optional: frozenset[str] = frozenset()) -> None:
    """Same keys (recursively, ``optional`` keys may be missing) and same JSON types."""
    if isinstance(sample, dict):
        assert isinstance(actual, dict), actual
        assert set(actual) | optional == set(sample) | optional, (sorted(actual), sorted(sample))
        for key in set(sample) & set(actual):
            same_shape(actual[key], sample[key], optional)
    elif isinstance(sample, list):
        assert isinstance(actual, list) and actual, actual
        pairs = zip(actual, sample, strict=True) if len(actual) == len(sample) else ((a, sample[0]) for a in actual)
        for item, model in pairs:
            same_shape(item, model, optional)
    elif isinstance(sample, float):
        assert isinstance(actual, float), actual
    else:
        assert type(actual) is type(sample), (actual, sample)


def framework_info(*capabilities: str, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"user": "root", "name": "wire-test", "failover_timeout": 60.0}
    info["capabilities"] = [{"type": c} for c in capabilities]
    info.update(extra)
    return info


def subscribe(master: DevMaster, *capabilities: str, framework_id: str | None = None, **extra: Any) -> RawStream:
    info = framework_info(*(capabilities or ("PARTITION_AWARE",)), **extra)
    document: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    if framework_id is not None:
        info["id"] = {"value": framework_id}
        document["framework_id"] = {"value": framework_id}
    stream = RawStream(master.address, document)
    assert stream.status == 200
    stream.wait(lambda e: e["type"] in ("SUBSCRIBED", "ERROR"))
    return stream


def fid(stream: RawStream) -> str:
    return str(stream.of_type("SUBSCRIBED")[0]["subscribed"]["framework_id"]["value"])


def send(master: DevMaster, stream: RawStream, call_type: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    document: dict[str, Any] = {"type": call_type, "framework_id": {"value": fid(stream)}}
    if body is not None:
        document[call_type.lower()] = body
    return call(master.address, document, stream.stream_id)


def offers_of(stream: RawStream, agent_id: str | None = None) -> list[dict[str, Any]]:
    return [
        o
        for e in stream.of_type("OFFERS")
        for o in e["offers"]["offers"]
        if agent_id is None or o["agent_id"]["value"] == agent_id
    ]


def first_offer(stream: RawStream, agent_id: str = "agent-a-S0", master: DevMaster | None = None) -> dict[str, Any]:
    """The first offer of the agent, or with ``master`` the newest one still outstanding."""

    def find() -> dict[str, Any] | None:
        offers = offers_of(stream, agent_id)
        if master is not None:
            outstanding = {o["id"] for o in master.state()["offers"]}
            offers = [o for o in offers if o["id"]["value"] in outstanding][-1:]
        return offers[0] if offers else None

    return wait_for(find, what=f"an offer of {agent_id}")


def take(offer: dict[str, Any], cpus: float = 1.0, mem: float = 128.0) -> list[dict[str, Any]]:
    """Task resources cut from the offer's own entries (keeping role, allocation_info, ...)."""
    out = []
    for resource in offer["resources"]:
        if resource["name"] in ("cpus", "mem") and not resource.get("reservations"):
            piece = dict(resource)
            piece["scalar"] = {"value": cpus if resource["name"] == "cpus" else mem}
            out.append(piece)
    return out


def command_task(offer: dict[str, Any], task_id: str, **changes: Any) -> dict[str, Any]:
    task = {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": take(offer),
        "command": {"value": "sleep 1000"},
    }
    task.update(changes)
    return task


def launch(master: DevMaster, stream: RawStream, offer: dict[str, Any], *tasks: dict[str, Any]) -> None:
    status, text = send(
        master,
        stream,
        "ACCEPT",
        {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
            "filters": {"refuse_seconds": 0.0},
        },
    )
    assert (status, text) == (202, "")


def ack(master: DevMaster, stream: RawStream, status: dict[str, Any]) -> None:
    body = {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}
    assert send(master, stream, "ACKNOWLEDGE", body) == (202, "")


def running_task(master: DevMaster, stream: RawStream, task_id: str = "t1", *, ack_running: bool = True) -> None:
    offer = first_offer(stream, master=master)
    launch(master, stream, offer, command_task(offer, task_id))
    starting = wait_for(lambda: stream.updates(task_id), what="TASK_STARTING")[0]
    assert starting["state"] == "TASK_STARTING"
    ack(master, stream, starting)
    running = wait_for(
        lambda: [u for u in stream.updates(task_id) if u["state"] == "TASK_RUNNING"], what="TASK_RUNNING"
    )[0]
    if ack_running:
        ack(master, stream, running)


@pytest.fixture
def stream(master: DevMaster) -> Iterator[RawStream]:
    subscription = subscribe(master)
    try:
        yield subscription
    finally:
        subscription.close()


def test_version(master: DevMaster) -> None:
    status, headers, body = request(master.address, "GET", "/version")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["version"] == "1.12.0"


def test_subscribe_answers_a_chunked_recordio_stream(master: DevMaster, stream: RawStream) -> None:
    assert stream.headers["transfer-encoding"] == "chunked"
    assert stream.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", stream.stream_id)
    wait_for(lambda: len(stream.of_type("HEARTBEAT")) >= 2, what="heartbeats")
    events = stream.snapshot()
    assert [e["type"] for e in events[:2]] == ["SUBSCRIBED", "HEARTBEAT"]
    same_shape(events[0]["subscribed"], SAMPLE_SUBSCRIBED)
    assert events[0]["subscribed"]["heartbeat_interval_seconds"] == FAST["heartbeat_interval"]
    assert events[0]["subscribed"]["master_info"]["port"] == master.port
    # The de-chunked body is exactly <decimal length>\n<json> records, back to back.
    body, offset, records = bytes(stream.body), 0, 0
    while offset < len(body):
        newline = body.index(b"\n", offset)
        length = int(body[offset:newline])
        json.loads(body[newline + 1 : newline + 1 + length])
        offset = newline + 1 + length
        records += 1
    assert offset == len(body) and records >= 3


def test_offers_have_the_recorded_shape(master: DevMaster, stream: RawStream) -> None:
    offer = first_offer(stream)
    same_shape(offer, SAMPLE_OFFER)
    assert offer["resources"] == SAMPLE_OFFER["resources"]
    assert offer["attributes"] == SAMPLE_OFFER["attributes"]
    address = {"hostname": "a.devcluster.test", "ip": "127.0.0.2", "port": 5061}
    assert offer["url"] == {"scheme": "http", "address": address, "path": "/slave(1)"}
    assert offer["framework_id"]["value"] == fid(stream)
    assert {o["agent_id"]["value"] for o in offers_of(stream)} == {"agent-a-S0", "agent-b-S0"}


def test_multi_role_offers_carry_allocation_info_and_reserved_resources_only_for_their_role() -> None:
    agents = [
        AgentSpec(
            id="r-S0",
            hostname="r",
            cpus=2,
            mem=1024,
            reserved=(Reservation("es", cpus=1, mem=512, ports=((40000, 40009),)),),
        ),
        AgentSpec(id="gpu-S0", hostname="g", gpus=1),
    ]
    with DevMaster(agents, **FAST) as dev:
        multi = subscribe(dev, "MULTI_ROLE", "PARTITION_AWARE", "GPU_RESOURCES", roles=["es"])
        star = subscribe(dev, "PARTITION_AWARE", name="star")
        try:
            offer = first_offer(multi, "r-S0")
            assert all(r["allocation_info"] == {"role": "es"} for r in offer["resources"])
            reserved = [r for r in offer["resources"] if r.get("reservations")]
            assert {r["name"] for r in reserved} == {"cpus", "mem", "ports"}
            assert all(r["role"] == "es" and r["reservations"] == [{"type": "STATIC", "role": "es"}] for r in reserved)
            first_offer(multi, "gpu-S0")
            # The "*" framework sees neither the reservation (held by nobody else) nor the GPU agent.
            time.sleep(0.3)
            for other in offers_of(star):
                assert other["agent_id"]["value"] != "gpu-S0"
                assert all(not r.get("reservations") and "allocation_info" not in r for r in other["resources"])
        finally:
            multi.close()
            star.close()


@pytest.mark.parametrize(
    ("document", "headers", "status", "reason"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "Failed to parse body into JSON"),
        (b'{"type": "FLY"}', {"Content-Type": "application/json"}, 400, "Failed to find enum for 'FLY'"),
        (b"{}", {"Content-Type": "application/json"}, 400, "Expecting 'type' to be present"),
        (b'{"type": "REVIVE"}', {"Content-Type": "application/json"}, 400, "Expecting 'framework_id' to be present"),
        (b'{"type": "REVIVE"}', {"Content-Type": "text/plain"}, 415, "Expecting 'Content-Type' of application/json"),
        (
            b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}}',
            {"Content-Type": "application/json"},
            400,
            "Missing required fields: subscribe.framework_info.user",
        ),
        (
            b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x", "user": "u"}, '
            b'"suppressed_roles": ["other"]}}',
            {"Content-Type": "application/json"},
            400,
            "Suppressed roles { other } are not contained in the set of roles",
        ),
        (
            b'{"type": "REVIVE", "framework_id": {"value": "nope"}}',
            {"Content-Type": "application/json", "Mesos-Stream-Id": "x"},
            400,
            "Framework cannot be found",
        ),
    ],
)
def test_malformed_calls_are_refused_with_a_plain_text_reason(
    master: DevMaster, document: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    got, response_headers, body = request(master.address, "POST", "/api/v1/scheduler", document, headers)
    assert got == status
    assert reason in body.decode()
    assert response_headers["content-type"].startswith("text/plain")


def test_calls_need_the_stream_id_of_a_live_subscription(master: DevMaster, stream: RawStream) -> None:
    revive = {"type": "REVIVE", "framework_id": {"value": fid(stream)}}
    assert call(master.address, revive, stream.stream_id) == (202, "")
    status, text = call(master.address, revive)
    assert (status, text) == (400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
    status, text = call(master.address, revive, "wrong")
    assert status == 400 and "didn't match the stream ID currently associated" in text
    status, text = call(
        master.address,
        {
            "type": "ACKNOWLEDGE",
            "framework_id": {"value": fid(stream)},
            "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "eA=="},
        },
        stream.stream_id,
    )
    assert (status, text) == (400, "Failed to validate scheduler::Call: Not a valid UUID")
    stream.close()
    wait_for(lambda: not master.state()["frameworks"][0]["connected"], what="the master to see the stream closed")
    assert call(master.address, revive, stream.stream_id) == (403, "Framework is not subscribed")


def test_launch_reports_starting_then_running_and_resends_until_acknowledged(
    master: DevMaster, stream: RawStream
) -> None:
    offer = first_offer(stream)
    launch(master, stream, offer, command_task(offer, "t1"))
    starting = wait_for(lambda: stream.updates("t1"), what="TASK_STARTING")[0]
    assert starting["state"] == "TASK_STARTING"
    # Not acknowledged: re-sent, same uuid; RUNNING waits behind it.
    wait_for(lambda: len(stream.updates("t1")) >= 3, what="re-sends")
    assert {u["uuid"] for u in stream.updates("t1")} == {starting["uuid"]}
    ack(master, stream, starting)
    running = wait_for(lambda: [u for u in stream.updates("t1") if u["state"] == "TASK_RUNNING"], what="RUNNING")[0]
    same_shape(running, SAMPLE_EXECUTOR_RUNNING, optional=frozenset({"executor_pid"}))
    assert running["agent_id"] == offer["agent_id"] and running["executor_id"] == {"value": "t1"}
    ack(master, stream, running)
    count = len(stream.updates("t1"))
    time.sleep(3 * FAST["status_update_resend_interval"])
    assert len(stream.updates("t1")) == count
    (task,) = master.state()["tasks"]
    assert task["state"] == "TASK_RUNNING" and task["unacknowledged"] == []


def test_invalid_launches(master: DevMaster, stream: RawStream) -> None:
    offer = first_offer(stream)
    too_big = command_task(offer, "big")
    too_big["resources"] = [dict(r, scalar={"value": 64.0}) for r in take(offer)]
    launch(
        master,
        stream,
        offer,
        command_task(offer, "ok"),
        command_task(offer, "ok"),
        too_big,
        command_task(offer, "wrong-agent", agent_id={"value": "agent-b-S0"}),
        command_task(offer, "both", executor={"executor_id": {"value": "e"}, "command": {"value": "x"}}),
    )
    errors = wait_for(
        lambda: [u for u in stream.updates() if u["state"] == "TASK_ERROR"] if len(stream.updates()) >= 5 else []
    )
    by_task = {u["task_id"]["value"]: u for u in errors}
    assert by_task["ok"]["message"] == "Task has duplicate ID: ok"
    assert by_task["big"]["message"].startswith("Task uses more resources")
    assert by_task["wrong-agent"]["message"] == "Task uses invalid agent: agent-b-S0"
    assert "not both" in by_task["both"]["message"]
    for update in errors:
        assert update["source"] == "SOURCE_MASTER" and update["reason"] == "REASON_TASK_INVALID"
        assert "uuid" not in update
    assert [t["task_id"] for t in master.state()["tasks"]] == ["ok"]
    # The offer is used up: accepting it again drops the task.
    launch(master, stream, offer, command_task(offer, "late"))
    dropped = wait_for(lambda: stream.updates("late"))[0]
    assert dropped["state"] == "TASK_DROPPED" and dropped["reason"] == "REASON_INVALID_OFFERS"
    assert "no longer valid" in dropped["message"]


def test_unused_resources_return_to_the_pool(master: DevMaster, stream: RawStream) -> None:
    offer = first_offer(stream)
    launch(master, stream, offer, command_task(offer, "t1"))
    later = wait_for(lambda: offers_of(stream, "agent-a-S0")[1:], what="a second offer")[0]
    cpus = next(r for r in later["resources"] if r["name"] == "cpus")
    assert cpus["scalar"]["value"] == 3.0


def test_agent_lost_reconciled_and_back(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream, ack_running=False)
    assert control(master.address, "agents/agent-a-S0/lose") == (200, {"ok": True})
    lost = wait_for(lambda: [u for u in stream.updates("t1") if u["state"] == "TASK_UNREACHABLE"])[0]
    assert lost | {"timestamp": 0.0, "unreachable_time": {}} == SAMPLE_AGENT_LOST | {
        "agent_id": {"value": "agent-a-S0"},
        "task_id": {"value": "t1"},
        "timestamp": 0.0,
        "unreachable_time": {},
    }
    assert isinstance(lost["unreachable_time"]["nanoseconds"], int)
    stream.wait(lambda e: e["type"] == "FAILURE" and e["failure"] == {"agent_id": {"value": "agent-a-S0"}})
    # Resends stop while the agent is away.
    count = len(stream.updates("t1"))
    time.sleep(2 * FAST["status_update_resend_interval"])
    assert len(stream.updates("t1")) == count

    reconcile = [
        {"task_id": {"value": "t1"}},
        {"task_id": {"value": "t1"}, "agent_id": {"value": "agent-a-S0"}},
        {"task_id": {"value": "never-launched"}},
    ]
    assert send(master, stream, "RECONCILE", {"tasks": reconcile}) == (202, "")
    answers = wait_for(lambda: stream.updates()[count:] if len(stream.updates()) >= count + 3 else None)
    unknown, unreachable, never = answers
    same_shape(unknown, SAMPLE_RECONCILE_UNKNOWN)
    assert unknown["state"] == "TASK_UNKNOWN" and unknown["message"] == SAMPLE_RECONCILE_UNKNOWN["message"]
    same_shape(unreachable, SAMPLE_RECONCILE_UNREACHABLE)
    assert unreachable["unreachable_time"] == lost["unreachable_time"]
    assert never["state"] == "TASK_UNKNOWN" and never["task_id"] == {"value": "never-launched"}

    assert control(master.address, "agents/agent-a-S0/return") == (200, {"ok": True})
    back = wait_for(lambda: [u for u in stream.updates("t1") if u.get("reason") == "REASON_AGENT_REREGISTERED"])[0]
    same_shape(back, SAMPLE_REREGISTERED, optional=frozenset({"executor_pid"}))
    # Then the executor's unacknowledged RUNNING, with its uuid, until acknowledged.
    resent = wait_for(lambda: [u for u in stream.updates("t1")[count + 4 :] if "uuid" in u])[0]
    assert resent["state"] == "TASK_RUNNING" and resent["source"] == "SOURCE_EXECUTOR"
    ack(master, stream, resent)
    wait_for(lambda: master.state()["tasks"][0]["unacknowledged"] == [])


def test_reconcile_known_task_explicit_and_implicit(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream)
    before = len(stream.updates())
    assert send(master, stream, "RECONCILE", {"tasks": [{"task_id": {"value": "t1"}}]}) == (202, "")
    assert send(master, stream, "RECONCILE", {"tasks": []}) == (202, "")
    explicit, implicit = wait_for(lambda: stream.updates()[before:] if len(stream.updates()) >= before + 2 else None)
    for answer in (explicit, implicit):
        assert answer["state"] == "TASK_RUNNING"
        assert answer["reason"] == "REASON_RECONCILIATION" and answer["source"] == "SOURCE_MASTER"
        assert answer["message"] == "Reconciliation: Latest task state" and "uuid" not in answer
        assert answer["agent_id"] == {"value": "agent-a-S0"}


def test_kill_and_agent_gone(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream, "t1")
    assert send(master, stream, "KILL", {"task_id": {"value": "t1"}}) == (202, "")
    killed = wait_for(lambda: [u for u in stream.updates("t1") if u["state"] == "TASK_KILLED"])[0]
    assert "uuid" in killed and killed["source"] == "SOURCE_EXECUTOR"
    ack(master, stream, killed)
    wait_for(lambda: master.state()["tasks"] == [], what="the killed task to be forgotten")
    # Killing a task the master does not know reconciles it.
    assert send(master, stream, "KILL", {"task_id": {"value": "t1"}}) == (202, "")
    assert wait_for(lambda: stream.updates("t1")[-1]["state"] == "TASK_UNKNOWN")

    running_task(master, stream, "t2")
    assert control(master.address, "agents/agent-a-S0/gone") == (200, {"ok": True})
    gone = wait_for(lambda: [u for u in stream.updates("t2") if u["state"] == "TASK_GONE_BY_OPERATOR"])[0]
    assert gone["reason"] == "REASON_AGENT_REMOVED_BY_OPERATOR" and "uuid" not in gone
    stream.wait(lambda e: e["type"] == "FAILURE")
    count = len(offers_of(stream, "agent-a-S0"))
    time.sleep(0.3)
    assert len(offers_of(stream, "agent-a-S0")) == count


def test_fail_and_finish_by_control(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream, "t1")
    assert control(master.address, "tasks/t1/fail", {"message": "boom"}) == (200, {"ok": True})
    failed = wait_for(lambda: [u for u in stream.updates("t1") if u["state"] == "TASK_FAILED"])[0]
    assert failed["message"] == "boom" and "uuid" in failed
    assert control(master.address, "tasks/t1/finish")[0] == 409
    assert control(master.address, "tasks/nope/finish")[0] == 404
    assert control(master.address, "agents/nope/lose")[0] == 404


def test_messages_both_ways(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream, "t1")
    body = {"agent_id": {"value": "agent-a-S0"}, "executor_id": {"value": "t1"}, "data": "aGVsbG8="}
    assert send(master, stream, "MESSAGE", body) == (202, "")
    assert control(master.address, "executors/agent-a-S0/t1/message", {"data": "cG9uZw=="}) == (200, {"ok": True})
    event = stream.wait(lambda e: e["type"] == "MESSAGE")
    assert event["message"] == {"agent_id": {"value": "agent-a-S0"}, "executor_id": {"value": "t1"}, "data": "cG9uZw=="}
    directions = [(m["direction"], m["data"]) for m in master.messages()]
    assert directions == [("framework_to_executor", "aGVsbG8="), ("executor_to_framework", "cG9uZw==")]


def test_failover_replaces_the_old_stream(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream)
    second = subscribe(master, framework_id=fid(stream))
    try:
        assert fid(second) == fid(stream)
        wait_for(lambda: stream.ended, what="the old stream to end")
        assert stream.of_type("ERROR")[-1]["error"] == {"message": "Framework failed over"}
        assert [t["task_id"] for t in master.state()["tasks"]] == ["t1"]
        revive = {"type": "REVIVE", "framework_id": {"value": fid(stream)}}
        assert call(master.address, revive, stream.stream_id)[0] == 400
        assert call(master.address, revive, second.stream_id) == (202, "")
    finally:
        second.close()


def test_teardown_ends_the_stream_and_forgets_the_framework(master: DevMaster, stream: RawStream) -> None:
    running_task(master, stream)
    assert send(master, stream, "TEARDOWN") == (202, "")
    wait_for(lambda: stream.ended, what="the terminating chunk")
    assert bytes(stream.raw).endswith(b"0\r\n\r\n")
    state = master.state()
    assert state["tasks"] == [] and state["frameworks"] == [] and state["removed_frameworks"] == [fid(stream)]
    again = subscribe(master, framework_id=fid(stream))
    try:
        assert again.snapshot()[0] == {"type": "ERROR", "error": {"message": "Framework has been removed"}}
        wait_for(lambda: again.ended)
    finally:
        again.close()


def test_failover_timeout_removes_the_framework_and_its_tasks(master: DevMaster) -> None:
    stream = subscribe(master, failover_timeout=0.3)
    running_task(master, stream)
    stream.close()
    wait_for(lambda: master.state()["removed_frameworks"] == [fid(stream)], what="the failover timeout")
    assert master.state()["tasks"] == []
    free = {a["id"]: a["free"] for a in master.state()["agents"]}
    assert next(r for r in free["agent-a-S0"] if r["name"] == "cpus")["scalar"]["value"] == 4.0


def test_state_endpoint(master: DevMaster, stream: RawStream) -> None:
    status, _, body = request(master.address, "GET", "/devcluster/state")
    state = json.loads(body)
    assert status == 200
    assert set(state) == {"master", "frameworks", "removed_frameworks", "agents", "tasks", "offers", "messages"}
    assert [a["id"] for a in state["agents"]] == [a.id for a in AGENTS]


def test_a_framework_subscribing_with_its_role_suppressed_gets_no_offers_until_it_revives(master: DevMaster) -> None:
    """``Call.Subscribe.suppressed_roles`` (include/mesos/v1/scheduler/scheduler.proto): no offers
    for those roles from the start; REVIVE brings them."""
    info = framework_info("PARTITION_AWARE")
    document = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info, "suppressed_roles": ["*"]}}
    stream = RawStream(master.address, document)
    try:
        assert stream.status == 200
        stream.wait(lambda e: e["type"] == "SUBSCRIBED")
        time.sleep(5 * FAST["allocation_interval"])  # several allocation rounds
        assert offers_of(stream) == []
        assert send(master, stream, "REVIVE")[0] == 202
        stream.wait(lambda e: e["type"] == "OFFERS")
    finally:
        stream.close()


def test_unacknowledged_updates_are_resent_with_a_doubling_wait(master: DevMaster, stream: RawStream) -> None:
    """As the agent's status update manager: re-sent after 0.3 s, then 0.6 s, 1.2 s, ... (Mesos: 10 s
    doubling to 10 min), so a lagging scheduler is not flooded at a fixed rate."""
    offer = first_offer(stream)
    launch(master, stream, offer, command_task(offer, "t1"))
    wait_for(lambda: stream.updates("t1"), what="TASK_STARTING")
    time.sleep(2.5)  # sends at 0, 0.3, 0.9, 2.1 s; at a fixed 0.3 s there would be 9
    sent = len(stream.updates("t1"))
    assert 3 <= sent <= 5, sent
    assert {u["uuid"] for u in stream.updates("t1")} == {stream.updates("t1")[0]["uuid"]}


def test_a_resubscribed_framework_gets_its_pending_updates_at_once(master: DevMaster, stream: RawStream) -> None:
    """While the framework is away its updates' re-send wait does not grow; when it subscribes again
    (failover), the pending update comes at once, as an agent resumes its status update manager."""
    offer = first_offer(stream)
    launch(master, stream, offer, command_task(offer, "t1"))
    # Sent at 0, 0.3, 0.9, 2.1 s: the next wait is 2.4 s.
    wait_for(lambda: len(stream.updates("t1")) >= 4, what="three re-sends of TASK_STARTING")
    framework_id = fid(stream)
    stream.close()
    time.sleep(0.5)  # unsubscribed: nothing sent, and the wait must not double on each tick
    again = subscribe(master, framework_id=framework_id)
    try:
        started = time.monotonic()
        wait_for(lambda: again.updates("t1"), timeout=1.0, what="the pending TASK_STARTING at once")
        assert time.monotonic() - started < 1.0
    finally:
        again.close()
