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

In this release nothing signs node certificates with it yet: the nodes do not use TLS from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from es_framework.app.startup import RefusedError
from es_framework.config import Config
from es_framework.core.certificates import CertificateError, create_ca, key_pair_from_pem
from es_framework.core.cluster_ca import StoredCa
from es_framework.core.engine_security import record_certificate_authority
from es_framework.core.engine_state import StatePersistence
from es_framework.shell.key_material import new_private_key, new_serial
from es_framework.shell.secret_box import SealError, SecretBox

log = logging.getLogger("es_framework.app.security")

CA_KEY = "the certificate authority's private key"


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
) -> StoredCa | None:
    """The cluster's CA in ``engine``'s state, created and stored the first time with ``auto``;
    None with ``off`` (a CA stored earlier is kept and still served), or when a new CA could not be
    written (logged). Raises :class:`RefusedError` when the stored CA's key cannot be opened."""
    stored = engine.state.certificate_authority
    if not config.creates_ca:
        if stored is not None:
            log.info("--elasticsearchSecurity off: the cluster's certificate authority in the state is kept, unused")
        return stored
    box = SecretBox(config.secret_key) if config.secret_key is not None else None
    if stored is not None:
        _check_stored(stored, box)
        if box is not None and not stored.sealed:
            resealed = StoredCa(stored.certificate_pem, box.seal(stored.key), True, stored.created_at)
            if record_certificate_authority(engine, resealed, reseal=True):
                log.info("sealed %s in the framework state with the key of --secretKeyFile", CA_KEY)
                return resealed
            log.error("could not seal %s in the framework state; it stays unsealed", CA_KEY)
        return engine.state.certificate_authority
    now = clock()
    ca = create_ca(new_key(), cluster_name=config.cluster_name, now=now, serial=serial())
    key_text = box.seal(ca.key_pem()) if box is not None else ca.key_pem()
    created = StoredCa(ca.certificate_pem(), key_text, box is not None, now)
    if not record_certificate_authority(engine, created):
        # A failed write re-read the state; the next leadership tries again. Nothing was served yet.
        log.error(
            "could not store the cluster's new certificate authority in the framework state; GET "
            "/v1/cluster/ca.pem answers 404 until a scheduler leads again and stores one"
        )
        return None
    log.info(
        "created the certificate authority of cluster %s (serial %x, valid until %s), its key %s; "
        "its certificate: GET /v1/cluster/ca.pem",
        config.cluster_name,
        ca.certificate.serial_number,
        ca.certificate.not_valid_after_utc.isoformat(),
        "sealed with --secretKeyFile" if box is not None else "unsealed (no --secretKeyFile)",
    )
    return created
