"""Development tools of es-mesos. **Never used in production.**

Everything here exists to develop and test the framework on one machine, without Mesos,
ZooKeeper or Elasticsearch of its own. Production code never imports this package; the one
exception is the CLI's local-mode branch (``es-framework --mesosMaster local``).

- :mod:`.devcluster`: a development Mesos master (the v1 scheduler and executor HTTP APIs, simulated
  agents, executors simulated in memory or run as local processes or Docker containers).
- :mod:`.demo_es`: a demo Elasticsearch node, a small Python process that behaves like Elasticsearch 8
  as far as es-mesos can tell (**not Elasticsearch**).
- :mod:`.local`: local mode, the whole framework on one machine (the development master, the demo
  node, the file state store).
- :mod:`.fake_api`: an in-memory stand-in for the scheduler core behind the REST API (the API tests'
  and the web UI preview's fake core).
- :mod:`.zookeeper`: a launcher for a real, throwaway ZooKeeper for tests.
- :mod:`.docker_engine`: a private Docker engine for one test session (the image and Docker tests'
  harness).
- :mod:`.scheduler`: the production scheduler command with the end-to-end tests' crash and raise
  hooks installed.
- :mod:`.tool_check`: the ``--check`` command line the ZooKeeper and Docker harnesses share.

This module imports nothing: the demo node ships alone (``es_framework/dev/demo_es``) in the
stand-in Elasticsearch image, which needs this package to import only itself.
"""
