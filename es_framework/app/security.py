"""The cluster's certificate authority at leadership (``--elasticsearchSecurity auto``).

:func:`ensure_certificate_authority` runs once the scheduler leads and has read the state, before it
registers with Mesos: with ``auto`` it creates the CA the first time (keys and serial from
:mod:`es_framework.shell.key_material`, the certificate from the pure
:mod:`es_framework.core.certificates`, the time from the engine's clock), seals its private key with
``--secretKeyFile``'s key when one is given, and stores it through the engine's fenced state write
(:func:`es_framework.core.engine_security.record_certificate_authority`). A CA already stored is
kept; its key must open with the key given (a state sealed with another key, or sealed while no key
is given, stops the scheduler before anything else is written), and a key given later seals a key
stored unsealed. ``GET /v1/cluster/ca.pem`` serves the certificate, never the key
(:func:`~es_framework.core.cluster_ca.ca_certificate_pem`).

With the CA comes the ``elastic`` user's password, generated once
(:func:`~es_framework.shell.key_material.new_password`) and kept in the same record, sealed like the
CA key. Once both are opened, the scheduler installs
:class:`~es_framework.app.node_certificates.NodeIssuer` on the engine (every launched node gets its
own certificate, issued at launch for its agent) and trusts the CA with the password in its own
Elasticsearch clients (:func:`es_framework.shell.es_client.trust_cluster`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from es_framework.app.credentials_rotation import install_credentials
from es_framework.app.node_certificates import NodeIssuer
from es_framework.app.startup import RefusedError
from es_framework.config import Config
from es_framework.core.certificates import CertificateError, create_ca, key_pair_from_pem
from es_framework.core.cluster_ca import StoredCa
from es_framework.core.engine_security import record_certificate_authority
from es_framework.core.engine_state import StatePersistence
from es_framework.core.launch_finish import LaunchHook
from es_framework.shell import es_client
from es_framework.shell.key_material import new_password, new_private_key, new_serial
from es_framework.shell.secret_box import SealError, SecretBox

log = logging.getLogger("es_framework.app.security")

CA_KEY = "the certificate authority's private key"
PASSWORD = "the elastic user's password"


def open_secret(stored: StoredCa, box: SecretBox | None, text: str, what: str) -> str:
    """``text`` (the CA key or the password of ``stored``) opened; :class:`SealError` when it cannot be."""
    if not stored.sealed:
        return text
    if box is None:
        raise SealError(f"{what} is sealed in the framework state, and no --secretKeyFile is given")
    return box.unseal(text, what=what)


def _check_stored(stored: StoredCa, box: SecretBox | None) -> None:
    if stored.sealed and box is None:
        raise RefusedError(
            f"{CA_KEY} is sealed in the framework state, and no --secretKeyFile is given: give the --secretKeyFile "
            "it was sealed with"
        )
    try:
        key_pem = box.unseal(stored.key, what=CA_KEY) if stored.sealed and box is not None else stored.key
        key_pair_from_pem(stored.certificate_pem, key_pem)
    except SealError as error:
        raise RefusedError(str(error)) from None
    except CertificateError as error:
        raise RefusedError(f"the certificate authority in the framework state is unusable: {error}") from None


def ensure_certificate_authority(
    config: Config,
    engine: StatePersistence,
    *,
    clock: Callable[[], float],
    new_key: Callable[[], rsa.RSAPrivateKey] = new_private_key,
    serial: Callable[[], int] = new_serial,
    password: Callable[[], str] = new_password,
) -> StoredCa | None:
    """The cluster's CA (with the ``elastic`` password) in ``engine``'s state, created and stored the
    first time with ``auto``; None with ``off`` (a CA stored earlier is kept and still served), or
    when a new CA could not be written (logged). With ``auto`` it also installs the node issuer on the
    engine and the CA's trust in the scheduler's clients. Raises :class:`RefusedError` when the stored
    CA's key or password cannot be opened."""
    stored = engine.state.certificate_authority
    if not config.creates_ca:
        if stored is not None:
            log.info("--elasticsearchSecurity off: the cluster's certificate authority in the state is kept, unused")
        return stored
    box = SecretBox(config.secret_key) if config.secret_key is not None else None
    if stored is not None:
        _check_stored(stored, box)
        updated = _completed(stored, box, password)
        if updated is not stored:
            if not record_certificate_authority(engine, updated, reseal=True):
                log.error("could not update %s and %s in the framework state", CA_KEY, PASSWORD)
            elif updated.sealed != stored.sealed:
                log.info("sealed %s and %s in the framework state with the key of --secretKeyFile", CA_KEY, PASSWORD)
            else:
                log.info("generated %s and stored it in the framework state", PASSWORD)
        current = engine.state.certificate_authority
        _install(config, engine, current, box, clock)
        return current
    now = clock()
    ca = create_ca(new_key(), cluster_name=config.cluster_name, now=now, serial=serial())
    key_text = box.seal(ca.key_pem()) if box is not None else ca.key_pem()
    secret = password()
    created = StoredCa(ca.certificate_pem(), key_text, box is not None, now, box.seal(secret) if box else secret)
    if not record_certificate_authority(engine, created):
        # A failed write re-read the state; the next leadership tries again. Nothing was served yet.
        log.error(
            "could not store the cluster's new certificate authority in the framework state; GET "
            "/v1/cluster/ca.pem answers 404 until a scheduler leads again and stores one"
        )
        return None
    log.info(
        "created the certificate authority of cluster %s (serial %x, valid until %s) and the elastic user's "
        "password, %s; the certificate: GET /v1/cluster/ca.pem, the password: GET /v1/cluster/credentials",
        config.cluster_name,
        ca.certificate.serial_number,
        ca.certificate.not_valid_after_utc.isoformat(),
        "sealed with --secretKeyFile" if box is not None else "unsealed (no --secretKeyFile)",
    )
    _install(config, engine, created, box, clock)
    return created


def _completed(stored: StoredCa, box: SecretBox | None, password: Callable[[], str]) -> StoredCa:
    """``stored`` with its secrets sealed when a key is given now, and with a password when it has
    none (a CA stored by the release before); ``stored`` itself when nothing is missing."""
    seal = box is not None and not stored.sealed
    if not seal and stored.elastic_password is not None:
        return stored
    key = stored.key
    secret = stored.elastic_password
    if secret is None:
        plain = password()
        secret = box.seal(plain) if box is not None and (seal or stored.sealed) else plain
    elif seal and box is not None:
        secret = box.seal(secret)
    if seal and box is not None:
        key = box.seal(key)
    # A pending rotation (app/credentials_rotation.py) is sealed with the rest.
    pending = box.seal(stored.pending_password) if seal and box and stored.pending_password else stored.pending_password
    return StoredCa(stored.certificate_pem, key, stored.sealed or seal, stored.created_at, secret, pending)


def _install(
    config: Config, engine: StatePersistence, stored: StoredCa | None, box: SecretBox | None, clock: Callable[[], float]
) -> None:
    """With the CA and the password opened: issue every launched node its certificate, and let the
    scheduler's own Elasticsearch clients trust the CA and authenticate as ``elastic``."""
    if stored is None or stored.elastic_password is None or not isinstance(engine, LaunchHook):
        return
    if config.security_enabled:
        return  # the user's bundle and password (--elasticsearchCertificatesUrl) are what the nodes use
    try:
        ca = key_pair_from_pem(stored.certificate_pem, open_secret(stored, box, stored.key, CA_KEY))
        secret = open_secret(stored, box, stored.elastic_password, PASSWORD)
    except (SealError, CertificateError) as error:
        raise RefusedError(str(error)) from None
    engine.finish_launch = issuer = NodeIssuer(ca, secret, clock=clock)
    es_client.trust_cluster(stored.certificate_pem, secret)
    install_credentials(config, engine, box, ca, issuer)  # rotation, and the executors' fetch
