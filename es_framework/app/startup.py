"""What the scheduler checks before it starts, in one place: :func:`check_startable`.

``es-framework`` runs it before it starts the scheduler and ``es-framework config`` runs exactly
the same function, so a configuration that ``config`` accepts is one the scheduler starts with,
and one it refuses is refused with the same message (exit status 2). The flags themselves were
checked already (:func:`es_framework.config.resolve_config`, pure); these are the checks that need
the environment or I/O:

- a Mesos master is given (``--mesosMaster`` or ``--zookeeperMesosUrl``);
- the state has a durable place (:func:`es_framework.app.store.state_url`);
- an HTTP master's host resolves (``socket.getaddrinfo``): ``--mesosMaster notaurl`` is a host name
  by the URL grammar (``http://notaurl:5050``), and a name that does not resolve would only show as
  pymesos retrying a connection for ever. A ZooKeeper master's hosts are not resolved here: one
  unresolvable member of an ensemble must not stop a scheduler that the others can serve;
- no end-to-end test hook variable is set unless hooks are armed (``es_framework.dev.scheduler``);
- for a command that serves the REST API (the scheduler, and ``config`` which answers for it): the
  API has a token (``--apiTokenFile``), or the operator chose an open one (``--insecureApi true``).
  Secure by default: an open API lets anyone who reaches its port scale the cluster, declare nodes
  gone and read the indices through the proxy. Local mode is exempt: a development tool whose API
  listens on the loopback interface only (:func:`api_host`).

Once the scheduler leads and has read the stored state, :func:`check_state_startable` checks the
flags against it (the target Elasticsearch version against the versions the nodes run).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from es_framework.app.store import state_url
from es_framework.config import LOCAL_MASTER, Config, MesosMaster
from es_framework.config.urls import MASTER_FORMS
from es_framework.core.leader_check import state_refusal
from es_framework.core.node_state import ClusterState

#: ``socket.getaddrinfo``'s shape; tests give a stand-in.
Resolver = Callable[..., Any]

NO_MASTER = "no Mesos master: give --mesosMaster or --zookeeperMesosUrl"

NO_API_TOKEN = (
    "the REST API has no token: anyone who reaches --webUiPort could scale the cluster, declare nodes gone and "
    "read the indices through /v1/es/. Make a token file, e.g. 'head -c 32 /dev/urandom | base64 > token; "
    "chmod 600 token', and give --apiTokenFile token (clients send 'Authorization: Bearer <its text>'); or, only "
    "where the network keeps strangers away from the port, opt out with --insecureApi true"
)

#: Where the API listens: every interface, except in local mode (a development tool) the loopback one.
ANY_HOST = "0.0.0.0"
LOOPBACK_HOST = "127.0.0.1"


def api_host(config: Config) -> str:
    """The address the REST API binds: local mode's API has no token by default (:func:`check_startable`
    lets it start without), so it listens on the loopback interface only; elsewhere on every one."""
    return LOOPBACK_HOST if config.local_mode else ANY_HOST


class RefusedError(Exception):
    """The command refuses to run: the flags, the environment or the stored state must change
    first; the message says what (``es-framework`` exits with status 2)."""


def master_resolution_problem(master: MesosMaster, resolve: Resolver = socket.getaddrinfo) -> str | None:
    """Why the HTTP master's host does not resolve, naming the flag, or ``None`` (also for a
    ZooKeeper or local master, which are not resolved here)."""
    if master.kind != "http":
        return None
    ((host, port),) = master.hosts
    try:
        resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
        # "LOCAL" is a host name by the grammar (only the exact word is local mode): say which was meant.
        hint = " (for local mode, write local in lower case)" if host.lower() == LOCAL_MASTER else ""
        return (
            f"--mesosMaster {master.url!r}: the host {host!r} does not resolve ({reason}){hint}; give the host name "
            f"or address of a Mesos master: {MASTER_FORMS}"
        )
    return None


def check_startable(
    config: Config,
    *,
    test_hook_vars: Sequence[str] = (),
    resolve: Resolver = socket.getaddrinfo,
    serves_api: bool = False,
) -> None:
    """Raise :class:`RefusedError` if the scheduler would refuse to start with ``config``;
    ``test_hook_vars`` are the end-to-end test hook variables set while no hook is armed;
    ``serves_api``: the command serves the REST API (the scheduler, and ``config`` which answers
    for it; not ``teardown``), so it needs a token or ``--insecureApi true`` outside local mode."""
    if test_hook_vars:
        raise RefusedError(
            f"{', '.join(sorted(test_hook_vars))} set: test hooks are for the end-to-end tests only and es-framework "
            "never arms them; run python -m es_framework.dev.scheduler with the same arguments to arm them, or unset "
            "them"
        )
    if config.mesos_master is None:
        raise RefusedError(NO_MASTER)
    if config.local_mode:
        return  # local mode starts its own master and keeps its state in its work directory
    problems = []
    master_problem = master_resolution_problem(config.mesos_master, resolve)
    if master_problem is not None:
        problems.append(master_problem)
    try:
        state_url(config)
    except ValueError as exc:
        problems.append(str(exc))
    if len(problems) == 1:
        raise RefusedError(problems[0])
    if problems:  # every problem at once, as for invalid flags
        raise RefusedError("cannot start:\n" + "\n".join(f"  - {problem}" for problem in problems))
    # Last, once the scheduler could otherwise start: the one refusal the operator may answer with an opt-out.
    if serves_api and config.api_token is None and not config.insecure_api:
        raise RefusedError(NO_API_TOKEN)


def check_state_startable(config: Config, state: ClusterState) -> None:
    """Raise :class:`RefusedError` if the stored ``state`` refuses ``config``, before anything is
    written: a target Elasticsearch version the running nodes cannot be upgraded to (a downgrade, a
    skipped major, 8.x from before 7.17), or an unknown one with another image or distribution
    (:func:`es_framework.core.leader_check.state_refusal`). ``config``: the flags with the overrides
    the state keeps (``Engine.config``)."""
    refusal = state_refusal(config, state)  # the same check a scheduler makes at every leadership
    if refusal is not None:
        raise RefusedError(refusal)
