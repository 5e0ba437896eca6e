"""How this framework presents itself to Mesos: its FrameworkInfo, and a pymesos scheduler driver
subscribing with it (for the scheduler and for ``es-framework teardown`` alike).

pymesos 0.3.15 defaults ``failover_timeout`` to 100 s when the FrameworkInfo lacks it, so it is
always set from the configuration; whether a driver fails over or sends TEARDOWN when it stops is
the caller's explicit choice (``failover``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from es_framework.config import Config
from es_framework.core.node_state import ClusterState


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


def offers_unwanted(state: ClusterState) -> bool:
    """Whether a subscription may start with offers suppressed: no node missing and no volume to
    remove (what :meth:`es_framework.core.engine.Engine._offer_interest` revives for). After
    SUBSCRIBED the engine says SUPPRESS or REVIVE anyway, from the state it has then."""
    return state.missing_nodes == 0 and not state.volume_removals


def framework_roles(info: dict[str, Any]) -> list[str]:
    """The roles a FrameworkInfo subscribes with: ``roles`` with ``MULTI_ROLE``, else ``role``."""
    roles = info.get("roles")
    return list(roles) if isinstance(roles, list) else [str(info.get("role") or "*")]


def subscribe_suppressed(driver: Any, suppressed: Callable[[], bool], roles: list[str]) -> Any:
    """Make ``driver`` (pymesos' ``MesosSchedulerDriver``) SUBSCRIBE with ``suppressed_roles`` (all of
    ``roles``) whenever ``suppressed()`` says so at the time it (re)subscribes.

    Why: a new leader of a complete cluster otherwise meets one OFFERS event with every agent's
    offer (10,000 at 10,000 agents) before its SUPPRESS lands; parsing it is the process's memory
    peak, which CPython then keeps (README, memory at 10,000 nodes). ``Call.Subscribe.suppressed_roles``
    (include/mesos/v1/scheduler/scheduler.proto; Mesos 1.9+) asks for none from the start; Mesos
    refuses roles the framework does not subscribe with (``validateSuppressedRoles``,
    src/master/validation.cpp). pymesos 0.3.15 builds SUBSCRIBE itself (``gen_request``: the whole
    HTTP request, whose JSON body comes last) and has no such option, so its request is amended: the
    field added to the body and ``Content-Length`` set again. A driver without ``gen_request`` (a
    test's fake) is returned as it is."""
    build = getattr(driver, "gen_request", None)
    if build is None:
        return driver

    def gen_request() -> bytes:
        request: bytes = build()
        if not suppressed():
            return request
        head, _, body = request.partition(b"\r\n\r\n")
        call = json.loads(body)
        call["subscribe"]["suppressed_roles"] = roles
        data = json.dumps(call).encode()
        head = re.sub(rb"(?im)^Content-Length: *\d+", b"Content-Length: %d" % len(data), head)
        return head + b"\r\n\r\n" + data

    driver.gen_request = gen_request
    return driver


def new_driver(
    config: Config,
    callbacks: Any,
    framework_id: str | None,
    *,
    failover: bool,
    factory: Callable[..., Any] | None = None,
    suppressed: Callable[[], bool] | None = None,
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
    info = framework_info(config, framework_id)
    driver = factory(
        callbacks,
        info,
        uri,
        # Plain dicts: addict would copy every offer of a 10,000-offer event into Dicts (README, memory).
        use_addict=False,
        implicit_acknowledgements=False,
        principal=config.principal,
        secret=config.secret.reveal() if config.secret else None,
        failover=failover,
    )
    return driver if suppressed is None else subscribe_suppressed(driver, suppressed, framework_roles(info))
