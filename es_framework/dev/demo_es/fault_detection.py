"""Fault detection of a demo node: when a silent peer counts as gone (development tool, not Elasticsearch).

Elasticsearch's elected master checks every node (follower checks) and every node checks the master (leader
checks); it "allows these checks to occasionally fail or timeout without taking any action" and considers a node
faulty only after ``retry_count`` consecutive checks failed, each given ``timeout`` to answer — while a node whose
connection is closed counts as failed at once (https://www.elastic.co/guide/en/elasticsearch/reference/8.17/
cluster-fault-detection.html; ``cluster.fault_detection.follower_check.interval`` 1s, ``.timeout`` 10s,
``.retry_count`` 3 and the same for ``leader_check``, https://www.elastic.co/guide/en/elasticsearch/reference/
current/modules-discovery-settings.html; ``FollowersChecker`` and ``LeaderChecker`` in elastic/elasticsearch,
server/src/main/java/org/elasticsearch/cluster/coordination/).

The demo's discovery rounds are its checks (every ``PROBE_INTERVAL``, each probe given half a second so that a round
stays short). A peer that stops answering stays in this node's live set — the nodes it elects a master from, and
the master's nodes of the routing — until it missed ``RETRY_COUNT`` rounds in a row and

- connecting to it failed in the last of them other than by a timeout (refused, reset, unreachable: the process
  stopped; Elasticsearch's "disconnected"), or
- it answered nothing for ``CHECK_TIMEOUT`` seconds (a node that is merely slow — a CPU-starved process on a loaded
  machine answers late, not never — is not taken for dead after one late answer, which would elect a second
  master while the first still acts: two masters publishing, nodes following the wrong one).

Pure: the caller passes the time (monotonic seconds), so the rule is tested with an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from es_framework.dev.demo_es.transport import Peer

#: Consecutive failed checks before a peer counts as gone (Elasticsearch's ``retry_count`` default).
RETRY_COUNT = 3
#: Seconds a peer that does not answer (rather than refusing the connection) stays live (Elasticsearch's check
#: ``timeout`` default; Elasticsearch waits that long for each of its three checks, the demo once).
CHECK_TIMEOUT = 10.0


@dataclass
class _Record:
    peer: Peer
    last_answer: float
    failures: int = 0


@dataclass
class FaultDetector:
    """The peers of this node's cluster it considers live, with their last answer."""

    retry_count: int = RETRY_COUNT
    check_timeout: float = CHECK_TIMEOUT
    _records: dict[str, _Record] = field(default_factory=dict)

    @property
    def live(self) -> dict[str, Peer]:
        """Node id → its last answer, for every peer not (yet) found faulty."""
        return {node_id: record.peer for node_id, record in self._records.items()}

    def check_round(self, now: float, answered: dict[str, Peer], disconnected: set[str]) -> list[Peer]:
        """One round of checks: ``answered`` (node id → its answer) answered, the transport addresses in
        ``disconnected`` refused or reset the connection, every other live peer did not answer in time.
        Returns the peers found faulty in this round (no longer live)."""
        for node_id, peer in answered.items():
            self._records[node_id] = _Record(peer, now)
        faulty = []
        for node_id, record in list(self._records.items()):
            if node_id in answered:
                continue
            record.failures += 1
            if record.failures < self.retry_count:
                continue
            if record.peer.transport in disconnected or now - record.last_answer >= self.check_timeout:
                faulty.append(record.peer)
                del self._records[node_id]
        return faulty
