"""The chaos runner (development tool, never used in production): real scheduler processes, a real
ZooKeeper and the development cluster, random faults drawn from a seed, and the identity
invariants checked after every fault. ``python -m es_framework.dev.chaos --help``.

:mod:`.faults` (the fault kinds, drawn from the seed, injected), :mod:`.world` (the system under
test), :mod:`.observe` (the leader lock over time, which process sent each call),
:mod:`.invariants` (the checks, pure), :mod:`.documents` (``process`` mode: the documents indexed
before the faults and counted), :mod:`.runner` (the loop, convergence waits, timing) and
:mod:`.report` (the table).
"""
