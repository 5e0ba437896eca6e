"""Each launched node's certificate, issued by the cluster's CA at launch (``--elasticsearchSecurity auto``).

:class:`NodeIssuer` is the engine's :data:`~es_framework.core.launch_finish.LaunchFinisher`: for every
node the plan launches it draws a fresh key and serial (:mod:`es_framework.shell.key_material`; the
key ECDSA P-256, 0.05 ms, where RSA would take a minute per 300-node offer cycle),
has the pure :func:`~es_framework.core.certificates.issue_node_certificate` sign a certificate whose
subject alternative names are the node name, the agent's host name (the offer's ``hostname``) and the
agent's IP (the offer's ``url.address.ip``), at the engine clock's time, and adds it with the key, the
CA and the ``elastic`` password to the TaskInfo (:func:`~es_framework.core.node_tls.with_node_tls`).
A node relaunched on another agent gets a new certificate for its new host; nothing of it is stored:
the key lives only in the TaskInfo and on the node's config volume.

With a token key (:meth:`NodeIssuer.use_tokens`) each task also gets its token and the URL it fetches
changed credentials from (:mod:`es_framework.core.credentials`); after a rotation the issuer gives new
tasks the new password (:meth:`NodeIssuer.use_password`).

A certificate that cannot be made (a host name that is no DNS name) leaves the TaskInfo without
material: its executor fails the task saying why, and the node's id backs off as after any failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from es_framework.core.certificates import CertificateError, KeyPair, NodeKey, issue_node_certificate
from es_framework.core.credentials import task_token
from es_framework.core.launch_finish import agent_ip
from es_framework.core.node_tls import is_auto, with_node_tls
from es_framework.core.plan import Launch
from es_framework.shell.key_material import new_node_key, new_serial

log = logging.getLogger("es_framework.app.node_certificates")


class NodeIssuer:
    """Issues a node certificate into every ``auto`` TaskInfo the engine is about to send."""

    def __init__(
        self,
        ca: KeyPair,
        password: str,
        *,
        clock: Callable[[], float],
        new_key: Callable[[], NodeKey] = new_node_key,
        serial: Callable[[], int] = new_serial,
    ) -> None:
        self._ca = ca
        self._ca_pem = ca.certificate_pem()
        self._password = password
        self._clock = clock
        self._new_key = new_key
        self._serial = serial
        self._token_key: str | None = None
        self._credentials_url: str | None = None

    def use_password(self, password: str) -> None:
        """Tasks launched from now on get ``password`` (the cluster's after a rotation)."""
        self._password = password

    def use_tokens(self, key: str, credentials_url: str) -> None:
        """Tasks launched from now on get a token under ``key`` and the URL to fetch credentials from."""
        self._token_key, self._credentials_url = key, credentials_url

    def __repr__(self) -> str:
        return "NodeIssuer(****)"

    def __call__(self, launch: Launch, raw_offers: Sequence[object]) -> dict[str, Any]:
        task_info = launch.task_info
        if not is_auto(task_info):
            return task_info
        node_id, task_id = launch.record.node_id, launch.record.task_id
        hostname, ip = launch.offer.hostname, agent_ip(raw_offers, launch.offer.id)
        try:
            issued = issue_node_certificate(
                self._ca,
                self._new_key(),
                node_name=str(task_info.get("name", "")),
                hostname=hostname,
                ip=ip,
                now=self._clock(),
                serial=self._serial(),
            )
        except CertificateError as error:
            log.error("node %d task %s: no certificate issued, the node cannot start: %s", node_id, task_id, error)
            return task_info
        log.info(
            "node %d task %s: issued certificate serial %x for %s, %s%s (valid until %s)",
            node_id,
            task_id,
            issued.certificate.serial_number,
            task_info.get("name"),
            hostname,
            f", {ip}" if ip else "",
            issued.certificate.not_valid_after_utc.isoformat(),
        )
        return with_node_tls(
            task_info,
            certificate_pem=issued.certificate_pem(),
            ca_pem=self._ca_pem,
            key_pem=issued.key_pem(),
            password=self._password,
            task_token=task_token(self._token_key, task_id) if self._token_key is not None else None,
            credentials_url=self._credentials_url,
        )
