"""How this framework presents itself to Mesos: its FrameworkInfo, and a pymesos scheduler driver
subscribing with it (for the scheduler and for ``es-framework teardown`` alike).

pymesos 0.3.15 defaults ``failover_timeout`` to 100 s when the FrameworkInfo lacks it, so it is
always set from the configuration; whether a driver fails over or sends TEARDOWN when it stops is
the caller's explicit choice (``failover``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from es_framework.config import Config


def framework_info(config: Config, framework_id: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "user": "root" if config.use_docker else config.elasticsearch_user,
        "name": config.framework_name,
        "failover_timeout": config.failover_timeout_s,
        "checkpoint": True,
        "capabilities": [{"type": "PARTITION_AWARE"}],
        "labels": {"labels": [{"key": "es-mesos.cluster", "value": config.cluster_name}]},
    }
    if config.role != "*":
        info["roles"] = [config.role]
        info["capabilities"].append({"type": "MULTI_ROLE"})
    else:
        info["role"] = "*"
    if config.principal:
        info["principal"] = config.principal
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


def new_driver(
    config: Config,
    callbacks: Any,
    framework_id: str | None,
    *,
    failover: bool,
    factory: Callable[..., Any] | None = None,
) -> Any:
    """A (not started) scheduler driver for ``callbacks``, subscribing as ``framework_id``; ``factory``
    stands in for pymesos' ``MesosSchedulerDriver`` in tests. With ``failover=False`` the driver
    sends TEARDOWN when it stops. Raises ``ValueError`` without a Mesos master."""
    if factory is None:
        # Imported here: importing pymesos installs its own SIGINT handler process-wide.
        from pymesos import MesosSchedulerDriver  # noqa: PLC0415

        factory = MesosSchedulerDriver
    master = config.mesos_master
    if master is None:
        raise ValueError("no Mesos master configured (--mesosMaster or --zookeeperMesosUrl)")
    uri = master.url.removeprefix("http://") if master.kind == "http" else master.url
    return factory(
        callbacks,
        framework_info(config, framework_id),
        uri,
        use_addict=True,
        implicit_acknowledgements=False,
        principal=config.principal,
        secret=config.secret.reveal() if config.secret else None,
        failover=failover,
    )
