"""A scheduler holds a Mesos subscription only while it holds the leader lock (the paused-leader bug).

The leader is paused (SIGSTOP) past its ZooKeeper session; the standby takes the lock and subscribes
with the same framework id, so the master fails the framework over to it. When the old leader is
resumed it must let go: stop its driver with failover, never subscribe again while another
scheduler leads, send nothing. Before the fix the two took the framework from each other without
end (39 subscriptions in 40 s on the development master, 42 in 45 s on a real Mesos 1.12 master).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import (
    MasterCalls,
    Scheduler,
    new_cluster_name,
    stored_state,
    three_running,
    wait_for,
    wait_replaced,
)

#: How long the subscription is watched after the old leader resumes.
WATCH_S = 15.0


def framework(master: DevMaster) -> dict[str, Any]:
    (only,) = master.state()["frameworks"]
    found: dict[str, Any] = only
    return found


def test_a_resumed_leader_that_lost_the_lock_leaves_the_framework_to_the_new_leader(
    master: DevMaster, zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    cluster = new_cluster_name()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # The harness runs both with a 4 s ZooKeeper session (--zookeeperMesosTimeout 4000).
    first = Scheduler(master, zookeeper, cluster, tmp_path / "a")
    second = Scheduler(master, zookeeper, cluster, tmp_path / "b")
    calls = MasterCalls(master)
    try:
        first.start()
        wait_for("nodes 1, 2, 3 running", lambda: three_running(master), first)
        framework_id = framework(master)["id"]
        second.start()
        wait_for("the second scheduler waiting for the lock", lambda: "waiting to lead" in second.log(), second)
        first_stream = framework(master)["stream_id"]
        assert first_stream

        assert first.process is not None
        first.process.send_signal(signal.SIGSTOP)
        try:
            wait_for(
                "the second scheduler leading and subscribed",
                lambda: (
                    f"registered as {framework_id}" in second.log()
                    and framework(master)["connected"]
                    and framework(master)["stream_id"] != first_stream
                ),
                second,
                timeout=40,
            )
            second_stream = framework(master)["stream_id"]
        finally:
            first.process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()

        streams_seen = {second_stream}
        while time.monotonic() - resumed < WATCH_S:
            streams_seen.add(framework(master)["stream_id"])
            time.sleep(0.1)
        after = calls.since(resumed)
        subscribes = [c for c in after if c.type == "SUBSCRIBE"]
        from_first = [c for c in after if c.stream_id == first_stream]
        log_a = first.log()
        measured = (
            f"{len(subscribes)} SUBSCRIBE(s) and {len(streams_seen) - 1} stream change(s) in {WATCH_S:.0f}s after "
            f"the old leader resumed; {len(from_first)} call(s) on its old stream; "
            f"{log_a.count('Framework failed over')} 'Framework failed over' line(s) in its log"
        )
        print(measured)
        assert not subscribes, f"someone subscribed again after the old leader resumed: {measured}"
        assert streams_seen == {second_stream}, measured
        assert framework(master)["connected"] and framework(master)["stream_id"] == second_stream
        assert not from_first, f"the old leader sent calls after resuming: {[c.type for c in from_first]}"

        # The old leader says once, at WARNING, that it let go; it lives on, waiting for the lock.
        assert log_a.count("stopped the Mesos driver with failover") == 1, log_a[-4000:]
        assert "WARNING" in next(
            line for line in log_a.splitlines() if "stopped the Mesos driver with failover" in line
        )
        assert log_a.count("Framework failed over") <= 1, log_a[-4000:]
        assert first.process.poll() is None, "the old leader exited"
        assert "registered as" not in log_a.split("stopped the Mesos driver with failover", 1)[1]

        # The new leader manages the cluster: a failed node comes back with its id.
        running = three_running(master)
        assert running is not None
        old_task_2 = running[2]["task_id"]
        master.fail_task(old_task_2, message="Elasticsearch exited with code 1")
        back = wait_replaced(master, second, 2, old_task_2, timeout=30)
        assert back[1]["task_id"] == running[1]["task_id"] and back[3]["task_id"] == running[3]["task_id"]
        stored = {n["node_id"]: n["task_id"] for n in stored_state(zookeeper, cluster)["nodes"]}
        assert stored == {n: t["task_id"] for n, t in back.items()}
        assert not [c for c in calls.since(resumed) if c.stream_id == first_stream or c.type == "SUBSCRIBE"]
    finally:
        first.stop()
        second.stop()
