"""A baseline for ``benchmarks/run.py`` only: offer evaluation written the older Java framework's way.

Nothing in the framework imports this module. It exists so the benchmark can put our
per-offer cost next to the approach of mesos/elasticsearch (``OfferStrategy`` and
``ClusterState.getElasticNodeId``), where judging one offer costs O(tasks):

* "host already running a node" walks the whole task list, without stopping at the first match
  (Java's ``isHostAlreadyRunningTask``); here it compares the agent id *and* the hostname, as our
  ``agent_has_node`` rule does;
* "cluster size fulfilled" compares the task list's length with the desired node count;
* resources: only the *first* resource of each name is looked at (``cpus``, ``mem``, ``disk`` for
  the normal strategy, and two ports from the first ``ports`` entry), as Java's resource checks did;
* an accepted offer gets its node id by walking every task's executor environment for
  ``ELASTICSEARCH_NODE_ID`` and setting a bit per id in a mask, then taking the lowest clear bit
  (Java used a ``long`` and so topped out at 31 ids; this mask is a Python int, so it is unbounded -
  what matters is the O(tasks) walk per offer).

It is deliberately generous to the baseline: the task list is already in memory (Java read it back
from ZooKeeper on each call), the node id is the first variable of each environment, the lowest
clear bit is found with C-level int arithmetic instead of a bit-by-bit loop, and the rules that did
network I/O (hostname resolution, "first ES node responding") are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from es_framework.config import Config
from es_framework.core.evaluation import Verdict
from es_framework.core.offers import Offer, Resource

NODE_ID_VARIABLE = "ELASTICSEARCH_NODE_ID"

Task = dict[str, Any]


def make_tasks(nodes: Iterable[tuple[int, str, str]], framework_name: str = "elasticsearch") -> list[Task]:
    """TaskInfo-like dicts (v1 JSON shape), one per ``(node_id, agent_id, hostname)``."""
    tasks: list[Task] = []
    for node_id, agent_id, hostname in nodes:
        name = f"{framework_name}-node-{node_id}"
        variables = [
            {"name": NODE_ID_VARIABLE, "value": str(node_id)},
            {"name": "ELASTICSEARCH_NODE_NAME", "value": name},
            {"name": "ELASTICSEARCH_CLUSTER_NAME", "value": "mesos-ha"},
            {"name": "ELASTICSEARCH_FRAMEWORK_NAME", "value": framework_name},
            {"name": "ELASTICSEARCH_HTTP_PORT", "value": "31000"},
            {"name": "ELASTICSEARCH_TRANSPORT_PORT", "value": "31001"},
            {"name": "ELASTICSEARCH_PUBLISH_HOST", "value": hostname},
            {"name": "ELASTICSEARCH_USE_IP_ADDRESS", "value": "false"},
            {"name": "ELASTICSEARCH_SEED_HOSTS", "value": ""},
            {"name": "ES_JAVA_OPTS", "value": "-Xms1024m -Xmx1024m"},
        ]
        tasks.append(
            {
                "name": name,
                "task_id": {"value": f"{name}.0123456789abcdef"},
                "agent_id": {"value": agent_id},
                # Not part of TaskInfo; the framework keeps it next to the task for the host check.
                "hostname": hostname,
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 2048.0}, "role": "*"},
                ],
                "executor": {
                    "executor_id": {"value": f"{name}-executor"},
                    "command": {"environment": {"variables": variables}},
                },
            }
        )
    return tasks


def _first(resources: Sequence[Resource], name: str) -> Resource | None:
    for resource in resources:
        if resource.name == name:
            return resource
    return None


def _enough_scalar(resources: Sequence[Resource], name: str, needed: float) -> bool:
    resource = _first(resources, name)
    return resource is not None and resource.scalar_milli / 1000 >= needed


def _two_ports(resources: Sequence[Resource], fixed: tuple[int, ...]) -> list[int] | None:
    resource = _first(resources, "ports")
    if resource is None:
        return None
    for port in fixed:
        if not any(begin <= port <= end for begin, end in resource.ranges):
            return None
    chosen = list(fixed)
    for begin, end in resource.ranges:
        port = begin
        while port <= end and len(chosen) < 2:
            if port not in chosen:
                chosen.append(port)
            port += 1
        if len(chosen) == 2:
            return chosen
    return None


def host_already_running_task(offer: Offer, tasks: Sequence[Task]) -> bool:
    result = False
    for task in tasks:
        if task["agent_id"]["value"] == offer.agent_id or task["hostname"] == offer.hostname:
            result = True
    return result


def free_node_id(tasks: Sequence[Task]) -> int:
    """The lowest node id no task carries, from a bitmask rebuilt from the whole task list.

    Java OR-ed ``1 << (id - 1)`` into a ``long``. Here the mask is a Python int, whose ``|=`` copies
    the mask (O(ids / 30) digit operations, in C); at the benchmark's sizes (up to 10,000 nodes)
    that costs no more than the Python-level walk itself - a bytearray-backed mask measured the same.
    """
    bitmask = 0
    for task in tasks:
        for variable in task["executor"]["command"]["environment"]["variables"]:
            if variable["name"].upper() == NODE_ID_VARIABLE:
                bitmask |= 1 << (int(variable["value"]) - 1)
                break
    lowest_clear_bit = ((bitmask + 1) & ~bitmask).bit_length() - 1
    return lowest_clear_bit + 1


class JavaWayEvaluator:
    """Judges one offer against the full task list; on accept also computes the free node id."""

    def __init__(self, config: Config, desired_nodes: int, *, uses_local_disk: bool) -> None:
        self.config = config
        self.desired_nodes = desired_nodes
        self.uses_local_disk = uses_local_disk

    def evaluate(self, offer: Offer, tasks: Sequence[Task]) -> tuple[Verdict, int | None]:
        config = self.config
        resources = offer.resources
        reason: str | None = None
        rule: str | None = None
        if host_already_running_task(offer, tasks):
            rule, reason = "host", "Host already running task"
        elif len(tasks) >= self.desired_nodes:
            rule, reason = "cluster_full", "Cluster size already fulfilled"
        elif _two_ports(resources, config.ports.fixed) is None:
            rule, reason = "ports", "Offer did not have 2 ports"
        elif not _enough_scalar(resources, "cpus", config.cpus):
            rule, reason = "cpus", "Offer did not have enough CPU resources"
        elif not _enough_scalar(resources, "mem", config.mem_mb):
            rule, reason = "mem", "Offer did not have enough RAM resources"
        elif self.uses_local_disk and not _enough_scalar(resources, "disk", config.disk_mb):
            rule, reason = "disk", "Offer did not have enough disk resources"
        if reason is not None:
            return Verdict(offer.id, offer.agent_id, offer.hostname, False, rule, reason), None
        node_id = free_node_id(tasks)
        return Verdict(offer.id, offer.agent_id, offer.hostname, True, None, "Offer accepted"), node_id
