"""``es-mesos-executor``: the Mesos executor that runs one Elasticsearch node.

A pymesos ``MesosExecutorDriver`` process, started by the Mesos agent with the ``MESOS_*``
environment and the ExecutorInfo's environment (the ``ELASTICSEARCH_*`` names of
:mod:`es_framework.contract`, written by :mod:`es_framework.core.task_builder`). For its one task it:

1. reads the environment (:mod:`~es_framework.executor.settings`): the TaskInfo's executor command
   environment (VALUE secrets decoded), overlaid with the process environment (which wins). An
   environment without ``ELASTICSEARCH_CONTRACT_VERSION`` was written by a release 0.1.0 scheduler
   (contract 1) and is read the same way;
2. finds Elasticsearch and its version (:mod:`~es_framework.executor.process`):
   ``ELASTICSEARCH_COMMAND`` if set (split like a shell would; tests and local mode point it at a
   development stand-in), else ``bin/elasticsearch`` of a distribution extracted in the sandbox
   (``--elasticsearchBinaryUrl``), else ``/usr/share/elasticsearch/bin/elasticsearch`` (the Docker
   image); the version from ``ELASTICSEARCH_VERSION``, else ``<home>/lib/elasticsearch-<version>.jar``,
   else 8 for ``ELASTICSEARCH_COMMAND``. Supported: 7.9+ and 8.x;
3. prepares the node (:mod:`~es_framework.executor.volumes`). The data directory is
   ``ELASTICSEARCH_DATA_PATH``, the config directory ``<ELASTICSEARCH_CONFIG_VOLUME_PATH>/config``,
   else ``<sandbox>/config``; relative paths are relative to ``MESOS_SANDBOX`` (else the working
   directory).

   - As root (how the scheduler starts it on both containerizers), Elasticsearch runs as
     ``ELASTICSEARCH_UID`` if given, else ``ELASTICSEARCH_USER`` resolved on the agent (Mesos
     containerizer: its uid, primary group and groups), else uid 1000 group 0; the data and config
     directories, and a distribution fetched into the sandbox, are first given to that user. Not as
     root, or for ``ELASTICSEARCH_COMMAND`` without ``ELASTICSEARCH_UID``: the executor's own user.
   - The config directory is regenerated on every start (``elasticsearch.yml`` from
     :mod:`es_framework.core.es_settings`: identity, ``ELASTICSEARCH_NODE_ROLES``, network, discovery
     by ``unicast_hosts.txt``, bootstrap, security, then ``ELASTICSEARCH_USER_SETTINGS`` minus the
     settings es-mesos owns). User settings this Elasticsearch (its version, else its major) refuses fail
     the task.
   - ``ELASTICSEARCH_INITIAL_MASTER_NODES`` is dropped, with a warning, when the data path already
     holds a cluster (7: ``nodes/0/_state``, 8: ``_state``), unless the executor's marker
     ``.es-mesos-unformed`` (written into an empty data path, removed once a cluster uuid is seen)
     says that state never joined a cluster.
   - ``ELASTICSEARCH_SECURITY=enabled`` (needs ``ELASTIC_PASSWORD`` and ``ELASTICSEARCH_CERTIFICATES``,
     the sandbox path of an ``elasticsearch-certutil`` PKCS#12 bundle, and, for a bundle with a
     password, ``ELASTICSEARCH_CERTIFICATES_PASSWORD``): the
     bundle is copied to ``certs/elastic-certificates.p12`` (0640) and transport TLS is configured;
     HTTP stays plain. ``disabled`` (the default) writes ``xpack.security.enabled: false`` and warns.
   - With ``ELASTIC_PASSWORD`` and ``<home>/bin/elasticsearch-keystore``, the keystore is created if
     missing and the password stored as ``bootstrap.password``, the bundle's password as the transport
     keystore and truststore ``secure_password``, each through stdin, as Elasticsearch's user with
     ``ES_PATH_CONF`` set (:mod:`~es_framework.executor.keystore`). No password is ever on a command
     line, in a log, or in Elasticsearch's environment;
4. checks the agent as Elasticsearch's production-mode bootstrap checks will
   (:mod:`~es_framework.executor.bootstrap_checks`: ``vm.max_map_count``, file descriptors, threads,
   memory lock, virtual memory, file size; each value injectable by an ``ES_MESOS_AGENT_*`` variable).
   Enforced (the transport leaves loopback, or ``ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS=true``, which also
   reaches Elasticsearch as ``-Des.enforce.bootstrap.checks=true``), a failure ends the task with
   ``TASK_FAILED`` naming the agent, the values and the fixes, its ``data`` an
   :class:`es_framework.contract.AgentCheckReport`; otherwise failures are warnings. Elasticsearch
   binds the agent's own IP when that is a loopback address (``LIBPROCESS_IP``; local mode, the
   development cluster), else ``0.0.0.0``; it publishes the agent's hostname unless that resolves to
   loopback only on a non-loopback agent, or not at all: then the agent's IP;
5. starts Elasticsearch with ``ES_PATH_CONF`` set and the heap of ``ES_JAVA_OPTS``; reports
   ``TASK_STARTING``, then ``TASK_RUNNING`` only once ``GET /`` answers (as ``elastic`` with security
   enabled; :mod:`~es_framework.executor.probes`), then the node's health whenever it changes and
   every ``HEALTH_REPORT_INTERVAL`` seconds (:mod:`~es_framework.executor.node_executor`);
6. reports the node's identity, a :class:`es_framework.contract.NodeReport`, in the ``data`` field of
   ``TASK_RUNNING`` once ``GET /`` gives a ``cluster_uuid`` other than ``_na_``: an extra update when
   the uuid first appears or changes, and in every later ``TASK_RUNNING``. ``data`` is, as for every
   bytes field of the v1 JSON API, base64 text (pymesos sends the status dict as it is, and hands the
   scheduler the field the same way) of :meth:`~es_framework.contract.NodeReport.encode`;
7. reports ``TASK_FAILED`` with the exit code, the reason and the last log lines when Elasticsearch
   exits by itself (exit 78: the failing bootstrap check line is named, and checks of the agent it
   names become an :class:`es_framework.contract.AgentCheckReport` as in step 4), and with the
   reason when the node cannot be prepared;
8. on KILL (and SHUTDOWN) stops Elasticsearch gracefully: SIGTERM, then SIGKILL after the grace
   period (``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``, else the task's kill policy, else 120 s),
   and reports ``TASK_KILLED``.

Framework messages are :class:`es_framework.contract.SeedHosts`: a version newer than the last one
applied rewrites ``unicast_hosts.txt`` (Elasticsearch re-reads it); older or equal versions are
ignored. No exception ever escapes a pymesos callback (that would end the driver).
The executor logs to ``<sandbox>/es-mesos-executor.log`` (rotated) and stderr; Elasticsearch's
output goes to ``<sandbox>/elasticsearch.log``. The process entry point is
:func:`es_framework.executor.main.main` (``es-mesos-executor``, ``python -m es_framework.executor``).
"""

from es_framework.executor.main import main

__all__ = ["main"]
