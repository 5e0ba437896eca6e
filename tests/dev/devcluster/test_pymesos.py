"""End to end: an unmodified pymesos 0.3.15 MesosSchedulerDriver against the development master."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from es_framework.config import resolve_config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import parse_offer
from es_framework.core.task_builder import build_task_info
from es_framework.dev.devcluster import DevMaster, FakeExecutorBackend
from identity.task_ids import new_launch_id
from tests.dev.devcluster.conftest import AGENTS, FAST
from tests.harness.devcluster import call, control, wait_for

CONFIG = resolve_config({"frameworkName": "elasticsearch", "elasticsearchRam": "1024"}, {})
RECONCILIATION = "REASON_RECONCILIATION"
OfferPolicy = Callable[[Any, list[Any]], None]


class RecordingScheduler(Scheduler):  # type: ignore[misc]
    """Records every callback. Never lets an exception escape: pymesos would end its loop (and with
    failover=False send TEARDOWN)."""

    def __init__(self, on_offers: OfferPolicy | None = None, *, acknowledge: bool = True) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, Any]] = []
        self.errors: list[BaseException] = []
        self.on_offers = on_offers
        self.acknowledge = acknowledge

    def _record(self, name: str, value: Any = None) -> None:
        with self.lock:
            self.calls.append((name, value))

    def of(self, name: str) -> list[Any]:
        with self.lock:
            return [v for n, v in self.calls if n == name]

    def statuses(self, task_id: str | None = None) -> list[Any]:
        return [s for s in self.of("statusUpdate") if task_id is None or s.task_id.value == task_id]

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._record("registered", (framework_id, master_info))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._record("reregistered", master_info)

    def disconnected(self, driver: Any) -> None:
        self._record("disconnected")

    def processHeartBeat(self, driver: Any) -> None:
        self._record("heartbeat")

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:
        self._record("offers", (time.monotonic(), offers))
        try:
            if self.on_offers is not None:
                self.on_offers(driver, offers)
        except Exception as error:
            self.errors.append(error)

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._record("rescinded", offer_id)

    def statusUpdate(self, driver: Any, status: Any) -> None:
        self._record("statusUpdate", status)
        try:
            if self.acknowledge:
                driver.acknowledgeStatusUpdate(status)
        except Exception as error:
            self.errors.append(error)

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._record("frameworkMessage", (executor_id, agent_id, data))

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._record("slaveLost", agent_id)

    def error(self, driver: Any, message: Any) -> None:
        self._record("error", message)


def es_task(offer: Any, node_id: int = 1) -> dict[str, Any]:
    parsed = parse_offer(json.loads(json.dumps(offer)))
    return build_task_info(parsed, node_id, CONFIG, ClusterView(desired_nodes=3), launch_id=new_launch_id())


def launch_once(task_ids: list[str]) -> OfferPolicy:
    """Launch one Elasticsearch node on the first offer; decline everything else for a minute."""

    def policy(driver: Any, offers: list[Any]) -> None:
        if not task_ids:
            task = es_task(offers[0])
            task_ids.append(task["task_id"]["value"])
            driver.launchTasks(offers[0].id, [task])
            offers = offers[1:]
        if offers:
            driver.declineOffer([o.id for o in offers], filters={"refuse_seconds": 60.0})

    return policy


class Drivers:
    def __init__(self, master: DevMaster) -> None:
        self.master = master
        self.running: list[Any] = []

    def start(
        self, scheduler: RecordingScheduler, *, framework_id: str | None = None, failover_timeout: float = 60.0
    ) -> Any:
        info: dict[str, Any] = {
            "user": "root",
            "name": "es-devcluster-test",
            "failover_timeout": failover_timeout,
            "capabilities": [{"type": "PARTITION_AWARE"}],
        }
        if framework_id is not None:
            info["id"] = {"value": framework_id}
        driver = MesosSchedulerDriver(
            scheduler, info, self.master.address, use_addict=True, implicit_acknowledgements=False, failover=True
        )
        driver.start()
        self.running.append(driver)
        wait_for(lambda: scheduler.of("registered") or scheduler.of("reregistered"), what="registration")
        return driver

    def stop(self, driver: Any, *, failover: bool = True) -> None:
        driver.stop(failover=failover)
        driver.join()
        self.running.remove(driver)


@pytest.fixture
def drivers(master: DevMaster) -> Iterator[Drivers]:
    pool = Drivers(master)
    try:
        yield pool
    finally:
        for driver in list(pool.running):
            pool.stop(driver)


def running(scheduler: RecordingScheduler, task_ids: list[str]) -> str:
    wait_for(lambda: [s for s in scheduler.statuses() if s.state == "TASK_RUNNING"], what="TASK_RUNNING")
    return task_ids[0]


def test_launch_acknowledge_and_no_more_resends(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    scheduler = RecordingScheduler(launch_once(task_ids))
    drivers.start(scheduler)
    framework_id, master_info = scheduler.of("registered")[0]
    assert master_info.version == "1.12.0" and master_info.port == master.port
    task_id = running(scheduler, task_ids)
    assert task_id.startswith("elasticsearch-node1-")
    states = [(s.state, s.source, bool(s.uuid)) for s in scheduler.statuses(task_id)]
    assert states == [("TASK_STARTING", "SOURCE_EXECUTOR", True), ("TASK_RUNNING", "SOURCE_EXECUTOR", True)]
    wait_for(lambda: master.state()["tasks"][0]["unacknowledged"] == [], what="acknowledgements")
    time.sleep(3 * FAST["status_update_resend_interval"])
    assert len(scheduler.statuses(task_id)) == 2
    (task,) = master.state()["tasks"]
    assert task["framework_id"] == framework_id.value and task["state"] == "TASK_RUNNING"
    assert task["executor_id"].startswith("elasticsearch-executor-node1-")
    wait_for(lambda: len(scheduler.of("heartbeat")) >= 2, what="heartbeats")
    assert scheduler.errors == []


def test_unacknowledged_updates_are_resent(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    scheduler = RecordingScheduler(launch_once(task_ids), acknowledge=False)
    drivers.start(scheduler)
    wait_for(lambda: len(scheduler.statuses()) >= 3, what="re-sent TASK_STARTING")
    assert {(s.state, s.uuid) for s in scheduler.statuses()} == {("TASK_STARTING", scheduler.statuses()[0].uuid)}


def test_decline_refuse_seconds_is_honoured(master: DevMaster, drivers: Drivers) -> None:
    def decline(driver: Any, offers: list[Any]) -> None:
        driver.declineOffer([o.id for o in offers], filters={"refuse_seconds": 1.0})

    scheduler = RecordingScheduler(decline)
    drivers.start(scheduler)
    wait_for(lambda: len(scheduler.of("offers")) >= 2, timeout=5, what="a second round of offers")
    first, second = scheduler.of("offers")[:2]
    gap = second[0] - first[0]
    assert 1.0 <= gap < 2.0, gap
    assert scheduler.errors == []


def test_decline_without_filters_uses_the_default(master: DevMaster, drivers: Drivers) -> None:
    scheduler = RecordingScheduler(lambda driver, offers: driver.declineOffer([o.id for o in offers]))
    drivers.start(scheduler)
    wait_for(lambda: len(scheduler.of("offers")) >= 2, what="a second round of offers")
    first, second = scheduler.of("offers")[:2]
    assert FAST["default_refuse_seconds"] <= second[0] - first[0] < 1.0


def test_suppress_and_revive(master: DevMaster, drivers: Drivers) -> None:
    scheduler = RecordingScheduler(
        lambda driver, offers: driver.declineOffer([o.id for o in offers], filters={"refuse_seconds": 0.0})
    )
    driver = drivers.start(scheduler)
    wait_for(lambda: len(scheduler.of("offers")) >= 3, what="offers every allocation round")
    driver.suppressOffers()
    time.sleep(0.15)
    count = len(scheduler.of("offers"))
    time.sleep(0.4)
    assert len(scheduler.of("offers")) == count
    driver.reviveOffers()
    wait_for(lambda: len(scheduler.of("offers")) > count, what="offers after REVIVE")


def test_revive_clears_filters(master: DevMaster, drivers: Drivers) -> None:
    scheduler = RecordingScheduler(
        lambda driver, offers: driver.declineOffer([o.id for o in offers], filters={"refuse_seconds": 3600.0})
    )
    driver = drivers.start(scheduler)
    wait_for(lambda: scheduler.of("offers"), what="offers")
    time.sleep(0.2)
    assert len(scheduler.of("offers")) == 1
    driver.reviveOffers()
    wait_for(lambda: len(scheduler.of("offers")) == 2, what="offers after REVIVE")


def test_kill(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    scheduler = RecordingScheduler(launch_once(task_ids))
    driver = drivers.start(scheduler)
    task_id = running(scheduler, task_ids)
    driver.killTask({"value": task_id})
    killed = wait_for(lambda: [s for s in scheduler.statuses(task_id) if s.state == "TASK_KILLED"])[0]
    assert killed.uuid and killed.source == "SOURCE_EXECUTOR"
    wait_for(lambda: master.state()["tasks"] == [], what="the acknowledged TASK_KILLED to remove the task")


def test_agent_lost_reconcile_and_return(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    scheduler = RecordingScheduler(launch_once(task_ids))
    driver = drivers.start(scheduler)
    task_id = running(scheduler, task_ids)
    agent_id = master.state()["tasks"][0]["agent_id"]
    wait_for(lambda: master.state()["tasks"][0]["unacknowledged"] == [])

    assert control(master.address, f"agents/{agent_id}/lose")[0] == 200
    lost = wait_for(lambda: [s for s in scheduler.statuses(task_id) if s.state == "TASK_UNREACHABLE"])[0]
    assert lost.reason == "REASON_AGENT_REMOVED" and "uuid" not in lost
    assert wait_for(lambda: scheduler.of("slaveLost"))[0].value == agent_id

    # pymesos' reconcileTasks drops the agent id: the master answers TASK_UNKNOWN.
    driver.reconcileTasks([{"task_id": {"value": task_id}, "agent_id": {"value": agent_id}}])
    unknown = wait_for(lambda: [s for s in scheduler.statuses(task_id) if s.state == "TASK_UNKNOWN"])[0]
    assert unknown.reason == "REASON_RECONCILIATION" and "agent_id" not in unknown
    # With the agent id (sent by hand on the driver's stream): TASK_UNREACHABLE.
    reconcile = {
        "type": "RECONCILE",
        "framework_id": {"value": driver.framework_id},
        "reconcile": {"tasks": [{"task_id": {"value": task_id}, "agent_id": {"value": agent_id}}]},
    }
    assert call(master.address, reconcile, driver.stream_id) == (202, "")
    unreachable = wait_for(
        lambda: [
            s
            for s in scheduler.statuses(task_id)
            if s.state == "TASK_UNREACHABLE" and s.reason == "REASON_RECONCILIATION"
        ]
    )[0]
    assert unreachable.unreachable_time.nanoseconds == lost.unreachable_time.nanoseconds

    assert control(master.address, f"agents/{agent_id}/return")[0] == 200
    back = wait_for(lambda: [s for s in scheduler.statuses(task_id) if s.reason == "REASON_AGENT_REREGISTERED"])[0]
    assert back.state == "TASK_RUNNING" and back.source == "SOURCE_MASTER"
    driver.reconcileTasks([])
    latest = wait_for(
        lambda: [
            s for s in scheduler.statuses(task_id) if s.reason == "REASON_RECONCILIATION" and s.state == "TASK_RUNNING"
        ]
    )[0]
    assert latest.agent_id.value == agent_id and "uuid" not in latest
    assert scheduler.errors == []


def test_failover_keeps_the_task(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    first = RecordingScheduler(launch_once(task_ids))
    driver = drivers.start(first)
    task_id = running(first, task_ids)
    framework_id = driver.framework_id
    first.acknowledge = False
    drivers.stop(driver, failover=True)
    wait_for(lambda: not master.state()["frameworks"][0]["connected"], what="the master to see the driver go")

    # A TASK_FAILED while no scheduler is connected waits at the agent.
    master.fail_task(task_id, message="died while the scheduler was away")
    second = RecordingScheduler(lambda d, offers: d.declineOffer([o.id for o in offers]))
    drivers.start(second, framework_id=framework_id)
    assert second.of("reregistered") and not second.of("registered")
    failed = wait_for(lambda: [s for s in second.statuses(task_id) if s.state == "TASK_FAILED"], what="TASK_FAILED")
    assert failed[0].message == "died while the scheduler was away"
    wait_for(lambda: master.state()["tasks"] == [], what="the acknowledged failure to remove the task")
    assert [f["id"] for f in master.state()["frameworks"]] == [framework_id]


def test_failover_within_the_timeout_keeps_running_tasks(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    first = RecordingScheduler(launch_once(task_ids))
    driver = drivers.start(first, failover_timeout=1.0)
    task_id = running(first, task_ids)
    framework_id = driver.framework_id
    drivers.stop(driver, failover=True)
    time.sleep(0.3)
    second = RecordingScheduler()
    driver2 = drivers.start(second, framework_id=framework_id, failover_timeout=1.0)
    time.sleep(1.2)
    assert [t["task_id"] for t in master.state()["tasks"]] == [task_id]
    driver2.reconcileTasks([{"task_id": {"value": task_id}}])
    answer = wait_for(lambda: second.statuses(task_id))[-1]
    assert answer.state == "TASK_RUNNING" and answer.reason == "REASON_RECONCILIATION"


def test_teardown_when_stopped_without_failover(master: DevMaster, drivers: Drivers) -> None:
    task_ids: list[str] = []
    scheduler = RecordingScheduler(launch_once(task_ids))
    driver = drivers.start(scheduler)
    running(scheduler, task_ids)
    framework_id = driver.framework_id
    drivers.stop(driver, failover=False)
    state = wait_for(lambda: (s := master.state())["removed_frameworks"] and s, what="TEARDOWN")
    assert state["removed_frameworks"] == [framework_id] and state["tasks"] == [] and state["frameworks"] == []


def test_framework_messages_echoed_by_the_fake_executor(drivers: Drivers) -> None:
    with DevMaster(AGENTS, backend=FakeExecutorBackend(echo_messages=True), **FAST) as master:
        drivers.master = master
        task_ids: list[str] = []
        scheduler = RecordingScheduler(launch_once(task_ids))
        driver = drivers.start(scheduler)
        running(scheduler, task_ids)
        task = master.state()["tasks"][0]
        driver.sendFrameworkMessage({"value": task["executor_id"]}, {"value": task["agent_id"]}, "cGluZw==")
        executor_id, agent_id, data = wait_for(lambda: scheduler.of("frameworkMessage"))[0]
        assert (executor_id.value, agent_id.value, data) == (task["executor_id"], task["agent_id"], "cGluZw==")
        assert master.messages()[0]["direction"] == "framework_to_executor"
        drivers.stop(driver)
