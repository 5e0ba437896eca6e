"""What the demo node (development tool, not Elasticsearch) does for each request, by area.

Three layers, as in Elasticsearch:

- **coordinating** (any node, the public API): resolves indices, creates an index on first write, sends each
  shard's operations to the node holding its primary and each search to one active copy of every shard,
  merges the answers — :mod:`.indices`, :mod:`.writes`, :mod:`.search`, :mod:`.cluster`,
  :mod:`.allocation`, :mod:`.cat`;
- **shard level** (the data node holding a copy, internal ``/_demo/shard/...`` endpoints): the primary
  applies writes and replicates them to every other assigned copy (a copy that misses one is reported
  failed to the master before the write is acknowledged); copies answer searches; the primary is the
  source of recoveries — :mod:`.shards`;
- **master** (:mod:`es_framework.dev.demo_es.master_actions`): index creation and deletion, settings,
  voting exclusions, shard started / failed, each a change of the cluster state followed by a reroute.

Every action takes the node as a :class:`~es_framework.dev.demo_es.node_api.NodeAPI`.
"""
