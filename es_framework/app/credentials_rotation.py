"""Rotating the ``elastic`` password of an ``--elasticsearchSecurity auto`` cluster, and answering
running executors for it (the scheduler's half; the steps and why: :mod:`es_framework.core.credentials`).

:class:`CredentialsService` is made at leadership, once the CA and the password are opened
(:func:`install_credentials`, from :func:`es_framework.app.security.ensure_certificate_authority`):

- it makes the tasks' token key the first time (sealed like the password) and gives the node
  issuer the key and the URL executors fetch from;
- it settles a rotation its predecessor left pending (:meth:`CredentialsService.settle_pending`);
- ``POST /v1/cluster/credentials/rotate`` (:meth:`CredentialsService.rotate`): a new password from
  :func:`~es_framework.shell.key_material.new_password`, recorded as pending, changed through the
  change-password API with the current one, then stored; a failure at any step leaves the old
  password working and the answer says which step failed. After a rotation the scheduler's own
  clients and the node issuer use the new password, and every running executor is told where to
  fetch it (:class:`~es_framework.core.credentials.CredentialsSource` framework messages);
- ``GET /v1/executor/credentials`` (:meth:`CredentialsService.executor_credentials`): the current
  password for a task that proves itself with its token, while the state holds that task.

The state writes run on the engine thread (``run``: the shell's ``call``), fenced by the leader lock.

The REST API serves plain HTTP today: the task token and the answer cross the network in clear
between the agent and the scheduler. The step that closes it is in the report of this change
(serve the API with a certificate issued by the cluster CA for the scheduler's host; executors
already trust that CA).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from es_framework.api import credentials as api_credentials
from es_framework.app.node_certificates import NodeIssuer
from es_framework.app.startup import api_host
from es_framework.config import Config
from es_framework.core.certificates import KeyPair
from es_framework.core.cluster_ca import StoredCa
from es_framework.core.credentials import (
    EXECUTOR_CREDENTIALS_PATH,
    Accepted,
    CredentialsSource,
    RotationError,
    abandon_rotation,
    begin_rotation,
    finish_rotation,
    settle,
    task_of_bearer,
    token_key,
)
from es_framework.core.engine_credentials import record_credentials
from es_framework.core.engine_state import StatePersistence
from es_framework.core.launch_finish import LaunchHook
from es_framework.core.mesos_calls import Call, Message
from es_framework.core.node_state import TaskState
from es_framework.core.node_tls import ELASTIC_USER
from es_framework.core.task_builder import executor_id_for
from es_framework.shell import credentials_client, es_client
from es_framework.shell.es_client import ElasticsearchError
from es_framework.shell.key_material import new_password
from es_framework.shell.secret_box import SealError, SecretBox

log = logging.getLogger("es_framework.app.credentials_rotation")

T = TypeVar("T")
#: Runs a body on the engine thread: the shell's ``call``; at leadership, before the shell runs, directly.
Runner = Callable[[Callable[[], "tuple[T, list[Call]]"]], T]
#: Overrides the URL executors fetch their credentials from (e.g. behind a load balancer).
ENV_API_URL = "ES_MESOS_API_URL"
#: How many running nodes a rotation asks, in turn, before it gives up on an answer.
NODES_ASKED = 3


def direct(body: Callable[[], tuple[T, list[Call]]]) -> T:
    """The runner before the engine thread runs (at leadership): the body, here."""
    return body()[0]


def advertised_api_url(config: Config, environ: dict[str, str] | None = None) -> str:
    """Where executors reach this scheduler's API: ``ES_MESOS_API_URL`` if given, else this host
    (the loopback address when the API listens only there, as in local mode) and ``--webUiPort``.
    This host is ``LIBPROCESS_ADVERTISE_IP`` or ``LIBPROCESS_IP`` when set, else ``HOST`` (the agent's
    host name, which Marathon gives every task it launches), else the fully qualified host name."""
    env = os.environ if environ is None else environ
    given = env.get(ENV_API_URL, "").strip().rstrip("/")
    if given:
        return given
    host = api_host(config)
    if host in ("0.0.0.0", "::", ""):
        host = env.get("LIBPROCESS_ADVERTISE_IP") or env.get("LIBPROCESS_IP") or env.get("HOST") or socket.getfqdn()
    return f"http://{host}:{config.web_ui_port}"


class CredentialsService:
    """One leadership's credentials: rotation, and the executors' fetch (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        engine: StatePersistence,
        box: SecretBox | None,
        *,
        ca_pem: str,
        token_key: str,
        api_url: str,
        password: Callable[[], str] = new_password,
        on_password: Callable[[str], None] = lambda new: None,
    ) -> None:
        self._config = config
        self._engine = engine
        self._box = box
        self._ca_pem = ca_pem
        self._token_key = token_key
        self._rotating = threading.Lock()
        self.api_url = api_url
        self._new_password = password
        #: Told the new password once it is the cluster's (the node issuer, the scheduler's clients).
        self._on_password = on_password
        #: The password the issuer and the scheduler's clients were last given (set at leadership).
        self._in_use: str | None = None

    def __repr__(self) -> str:
        return "CredentialsService(****)"

    # --- the stored record, opened -------------------------------------------------------------------

    def _stored(self) -> StoredCa:
        stored = self._engine.state.certificate_authority
        if stored is None or stored.elastic_password is None:
            raise RotationError("the cluster has no generated elastic password")
        return stored

    def _open(self, sealed: str, what: str) -> str:
        if not self._stored().sealed:
            return sealed
        if self._box is None:
            raise SealError(f"{what} is sealed in the framework state, and no --secretKeyFile is given")
        return self._box.unseal(sealed, what=what)

    def _seal(self, plain: str) -> str:
        return self._box.seal(plain) if self._box is not None and self._stored().sealed else plain

    def _use(self, password: str) -> None:
        self._in_use = password
        self._on_password(password)

    def refresh(self) -> None:
        """The issuer and the scheduler's clients use the stored password again, if it changed while
        this process did not lead (another leader rotated it; the engine re-read the state)."""
        try:
            current = self.current_password()
        except (RotationError, SealError):
            return
        if current != self._in_use:
            if self._in_use is not None:
                log.info("the elastic password changed while this scheduler did not lead; using the stored one")
            self._use(current)

    def current_password(self) -> str:
        stored = self._stored()
        assert stored.elastic_password is not None
        return self._open(stored.elastic_password, "the elastic user's password")

    # --- which password Elasticsearch takes ----------------------------------------------------------

    def _addresses(self) -> list[str]:
        running = [
            r for r in self._engine.state.nodes.values() if r.state is TaskState.RUNNING and r.hostname and r.http_port
        ]
        return [r.http_address for r in sorted(running, key=lambda r: r.node_id)][:NODES_ASKED]

    def _accepted(self, current: str, pending: str) -> Accepted:
        trust = es_client.cluster_trust()
        if trust is None:
            return Accepted.UNKNOWN
        for address in self._addresses():
            if credentials_client.accepts(address, trust.ca_file, pending):
                return Accepted.PENDING
            if credentials_client.accepts(address, trust.ca_file, current):
                return Accepted.CURRENT
        return Accepted.UNKNOWN

    def settle_pending(self, run: Runner[bool] = direct) -> str | None:
        """Settle a rotation left pending (by a leader that died, or a failed answer): keep whichever
        password Elasticsearch takes. Returns why it stays pending, None once nothing is pending."""
        stored = self._stored()
        if stored.pending_password is None:
            return None
        current = self.current_password()
        pending = self._open(stored.pending_password, "the pending elastic password")
        settled = settle(stored, self._accepted(current, pending))
        if settled is None:
            return "no running node answered which elastic password it takes"
        if not run(lambda: (record_credentials(self._engine, stored, settled), [])):
            return "the framework state could not be written"
        if settled.elastic_password != stored.elastic_password:
            log.warning("a rotation left pending finished: Elasticsearch takes the new elastic password")
            self._use(pending)
        else:
            log.warning("a rotation left pending was rolled back: Elasticsearch kept the elastic password")
        return None

    # --- POST /v1/cluster/credentials/rotate ---------------------------------------------------------

    def rotate(self, run: Runner[Any]) -> tuple[int, dict[str, Any]]:
        """Rotate the password (the module docstring's steps); (HTTP status, answer) without a secret.
        One rotation at a time: each step is computed from the record the step before wrote."""
        if not self._rotating.acquire(blocking=False):
            return 409, {"message": "the elastic password was not rotated: another rotation is running"}
        try:
            return self._rotate(run)
        except (RotationError, SealError) as error:
            return 409, {"message": f"the elastic password was not rotated: {error}"}
        finally:
            self._rotating.release()

    def _rotate(self, run: Runner[Any]) -> tuple[int, dict[str, Any]]:
        unsettled = self.settle_pending(run)
        if unsettled is not None:
            return 503, {"message": f"an earlier rotation is still pending ({unsettled}); nothing changed, try again"}
        new = self._new_password()
        before = self._stored()
        pending = begin_rotation(before, self._seal(new))
        if not run(lambda: (record_credentials(self._engine, before, pending), [])):
            return 503, {
                "message": "step 1 of 3 failed: the new password could not be recorded in the framework "
                "state (not leading?); nothing changed, the old password works"
            }
        trust = es_client.cluster_trust()
        failure = "the scheduler has no HTTPS trust of the cluster" if trust is None else "no running node answered"
        refused = False
        for address in self._addresses():
            if trust is None:
                break
            try:
                credentials_client.change_password(address, trust, new)
            except credentials_client.PasswordRefusedError as error:
                failure, refused = str(error), True
                break  # Elasticsearch's refusal is the cluster's: another node would say the same
            except ElasticsearchError as error:
                failure = str(error)
                continue
            return self._finish(run, pending, new, address)
        log.warning("elastic password rotation failed at step 2 of 3 (change-password API): %s", failure)
        if refused:
            # Refused: the old password is the one; a failed write leaves it pending, settled later.
            dropped = run(lambda: (record_credentials(self._engine, pending, abandon_rotation(pending)), []))
            unsettled = None if dropped else "the framework state could not be written"
        else:
            # No answer: perhaps Elasticsearch took it after all. Keep what it takes.
            unsettled = self.settle_pending(run)
        if unsettled is None and self.current_password() == new:
            run(lambda: (None, list[Call](self.source_messages())))
            return 200, {
                "message": "the elastic password was rotated (Elasticsearch took it though the answer was "
                "lost); GET /v1/cluster/credentials returns it",
                "username": ELASTIC_USER,
            }
        outcome = (
            "the old password still works"
            if unsettled is None
            else f"which password works is not known yet ({unsettled}); it is settled at the next rotation or "
            "leadership, and executors are offered both meanwhile"
        )
        return 502 if unsettled is None else 503, {
            "message": f"step 2 of 3 failed: Elasticsearch did not change the password: {failure}; {outcome}"
        }

    def _finish(self, run: Runner[Any], pending: StoredCa, new: str, address: str) -> tuple[int, dict[str, Any]]:
        done = finish_rotation(pending)
        if not run(lambda: (record_credentials(self._engine, pending, done), [])):
            log.error("Elasticsearch took the new elastic password, but the state write failed; it stays pending")
            return 503, {
                "message": "step 3 of 3 failed: Elasticsearch took the new password but the framework state "
                "could not be written; it is kept as pending and the next leader (or rotation) stores it"
            }
        self._use(new)
        run(lambda: (None, list[Call](self.source_messages())))
        log.info("rotated the elastic user's password through %s; running executors told where to fetch it", address)
        return 200, {
            "message": "the elastic password was rotated; GET /v1/cluster/credentials returns it",
            "username": ELASTIC_USER,
        }

    def source_messages(self) -> list[Message]:
        """A :class:`CredentialsSource` framework message to every running node's executor."""
        data = CredentialsSource(self.api_url + EXECUTOR_CREDENTIALS_PATH).encode()
        return [
            Message(r.agent_id, executor_id_for(self._config, r.node_id, r.task_id.rsplit("-", 1)[1]), data)
            for r in self._engine.state.nodes.values()
            if r.state is TaskState.RUNNING and r.agent_id
        ]

    # --- GET /v1/executor/credentials ----------------------------------------------------------------

    def executor_credentials(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The current password for the task the bearer token proves, while the state holds that task;
        with ``next_password`` while a rotation is pending and unsettled."""
        try:
            task_id = task_of_bearer(self._token_key, authorization)
            if task_id is None:
                return 401, {"message": "a task token is needed: Authorization: Bearer <task id>.<token>"}
            if not any(r.task_id == task_id for r in self._engine.state.nodes.values()):
                return 403, {"message": f"task {task_id} is not a task of this cluster (any more)"}
            stored = self._stored()
            answer = {"username": ELASTIC_USER, "password": self.current_password()}
            if stored.pending_password is not None:
                answer["next_password"] = self._open(stored.pending_password, "the pending elastic password")
        except (RotationError, SealError) as error:
            return 404, {"message": str(error)}
        log.info("task %s fetched the current elastic password (its probe was refused)", task_id)
        return 200, answer


def install_credentials(
    config: Config, engine: StatePersistence, box: SecretBox | None, ca: KeyPair, issuer: NodeIssuer
) -> CredentialsService:
    """At leadership, once the CA and the password are opened and the issuer and the scheduler's
    clients use them: the tasks' tokens for the issuer, a rotation left pending settled, and the
    service the REST API answers with (:func:`es_framework.api.credentials.install`)."""
    ca_pem, key = ca.certificate_pem(), token_key(ca.key_pem())

    def use(password: str) -> None:
        issuer.use_password(password)
        es_client.trust_cluster(ca_pem, password)

    service = CredentialsService(
        config, engine, box, ca_pem=ca_pem, token_key=key, api_url=advertised_api_url(config), on_password=use
    )
    issuer.use_tokens(key, service.api_url + EXECUTOR_CREDENTIALS_PATH)
    service.refresh()  # the password _install gave them; a no-op unless the state says otherwise
    try:
        unsettled = service.settle_pending()
    except SealError as error:
        unsettled = str(error)
    if unsettled is not None:
        log.warning("a rotation of the elastic password is still pending: %s; executors are offered both", unsettled)
    api_credentials.install(service)
    _announce_after_registration(engine)
    log.info(
        "running executors fetch changed credentials from %s%s (plain HTTP: the REST API serves no TLS yet)",
        service.api_url,
        EXECUTOR_CREDENTIALS_PATH,
    )
    return service


def _announce_after_registration(engine: StatePersistence) -> None:
    """After every (re)registration the engine also tells every running executor where to fetch the
    credentials (:meth:`CredentialsService.source_messages` of the service installed then): a new
    leader's API is elsewhere, a rotation its predecessor left pending may have been settled at
    leadership, and Mesos may have dropped a message."""
    if not isinstance(engine, LaunchHook):
        return

    def announce() -> list[Call]:
        service = api_credentials.installed()
        if not isinstance(service, CredentialsService):
            return []
        service.refresh()
        return list(service.source_messages())

    engine.after_registration = announce
