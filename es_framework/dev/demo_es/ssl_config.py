"""TLS settings of the demo node, read and checked as Elasticsearch 8 reads them (development tool, not
Elasticsearch).

One :class:`SslConfig` per context, ``xpack.security.transport.ssl`` and ``xpack.security.http.ssl``
("Security settings in Elasticsearch", "Transport TLS/SSL settings" and "HTTP TLS/SSL settings",
elastic.co/guide/en/elasticsearch/reference/8.x/security-settings.html):

- ``enabled``; the key material as PEM files, ``key`` + ``certificate`` (the form the es-mesos scheduler
  issues; ``secure_key_passphrase`` from the keystore for an encrypted key), or a PKCS#12 ``keystore.path``
  (``keystore.secure_password``); the trust as PEM ``certificate_authorities`` (a list) or a PKCS#12
  ``truststore.path`` (``truststore.secure_password``). Relative paths are read from the config directory.
  Without either trust setting, the certificates of the key material are trusted (x-pack's default trust:
  the JDK's CAs, which the demo leaves out, plus the key configuration as a trust configuration).
- ``verification_mode`` (default ``full``): ``full`` checks the peer's chain and that its certificate names
  the host or IP address it was reached at (subject alternative names), ``certificate`` only the chain,
  ``none`` nothing. On the transport, client authentication is required (the default
  ``client_authentication: required``): both ends present a certificate and each checks the other's chain;
  the name check is the connecting side's (it is the side that knows the name it dialled), as in
  Elasticsearch, whose ``SSLService`` sets endpoint identification on client engines only in ``full``.
- HTTP has ``client_authentication: none`` (its default): clients are not asked for a certificate.

Refusals, with Elasticsearch's wording and exit code 1 (``ElasticsearchSecurityException`` at start, from
``SSLService.validateServerConfiguration`` and ``loadSslConfigurations``, and the file messages of
``org.elasticsearch.common.ssl.SslFileUtil``): an SSL setting (also a secure one in the keystore) without
the context's ``.enabled`` set; ``enabled`` without key material; a key, certificate or CA file that is missing
or unreadable; both ``key`` and ``keystore.path`` (or both trust forms). A key that does not belong to its
certificate is refused at start too (Python's ``ssl`` checks the pair when it loads it; Elasticsearch's
key manager would only fail the first handshake) — the message is Elasticsearch's KeyManager failure.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from es_framework.dev.demo_es.settings import Settings

#: ``cryptography`` is imported where TLS files are read, not here: the stand-in image's Python (which runs this
#: package alone) may not have it, and only TLS needs it; without it a TLS setting is refused at start.
_LAZY = "cryptography"

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

TRANSPORT = "xpack.security.transport.ssl"
HTTP = "xpack.security.http.ssl"
VERIFICATION_MODES = ("full", "certificate", "none")
PKCS12_SUFFIXES = (".p12", ".pfx", ".pkcs12")


class SslConfigError(Exception):
    """A TLS configuration Elasticsearch 8 refuses to start with (``ElasticsearchSecurityException``)."""


@dataclass(frozen=True)
class SslConfig:
    """One context's TLS, loaded: the PEM of the key pair and of the trusted certificates."""

    prefix: str
    verification_mode: str
    certificate_pem: bytes
    key_pem: bytes
    trusted_pem: bytes

    def _context(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        context = ssl.SSLContext(
            ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_key_pair(context, self.certificate_pem, self.key_pem)
        if self.trusted_pem:
            context.load_verify_locations(cadata=self.trusted_pem.decode("ascii"))
        return context

    def server_context(self, *, client_auth: bool) -> ssl.SSLContext:
        """The listening side: presents this node's certificate; with ``client_auth`` (the transport) it requires
        the peer's and checks its chain unless ``verification_mode`` is ``none``."""
        context = self._context(ssl.Purpose.CLIENT_AUTH)
        verify = client_auth and self.verification_mode != "none"
        context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
        return context

    def client_context(self) -> ssl.SSLContext:
        """The connecting side: presents this node's certificate (mutual TLS), checks the peer's chain
        (``certificate``, ``full``) and its name (``full``)."""
        context = self._context(ssl.Purpose.SERVER_AUTH)
        context.check_hostname = self.verification_mode == "full"
        context.verify_mode = ssl.CERT_NONE if self.verification_mode == "none" else ssl.CERT_REQUIRED
        return context


def _load_key_pair(context: ssl.SSLContext, certificate_pem: bytes, key_pem: bytes) -> None:
    # ssl loads a key pair from files only: a private temporary directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="demo-es-tls-") as directory:
        certificate, key = Path(directory, "node.crt"), Path(directory, "node.key")
        certificate.write_bytes(certificate_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_pem)
        context.load_cert_chain(str(certificate), str(key))


def configured_names(settings: Settings, secure: Mapping[str, str], prefix: str) -> list[str]:
    """Every setting of the context, also the secure ones from the keystore, sorted (what Elasticsearch names
    when ``.enabled`` is missing)."""
    return sorted({k for k in [*settings.values, *secure] if k.startswith(prefix + ".")})


def is_enabled(settings: Settings, secure: Mapping[str, str], prefix: str) -> bool:
    """``<prefix>.enabled``; refuses SSL settings without it (``validateServerConfiguration``)."""
    enabled_key = f"{prefix}.enabled"
    if enabled_key in settings.values:
        return settings.get_bool(enabled_key)
    names = configured_names(settings, secure, prefix)
    if names:
        raise SslConfigError(
            f"invalid configuration for {prefix} - [{enabled_key}] is not set, but the following settings have been "
            f"configured in elasticsearch.yml : [{','.join(names)}]"
        )
    return False


def _resolve(config_dir: Path | None, raw: str) -> Path:
    path = Path(raw)
    return path if path.is_absolute() or config_dir is None else config_dir / path


def _read(path: Path, file_type: str) -> bytes:
    """A configured file, or Elasticsearch's ``SslFileUtil`` message."""
    if not path.exists():
        raise SslConfigError(f"cannot read configured {file_type} [{path}] because the file does not exist")
    try:
        return path.read_bytes()
    except PermissionError:
        raise SslConfigError(f"not permitted to read the {file_type} file [{path}]") from None
    except OSError as error:
        raise SslConfigError(f"cannot read configured {file_type} [{path}] - {error}") from None


def _pem_certificates(data: bytes, path: Path, file_type: str) -> list[x509.Certificate]:
    from cryptography import x509  # noqa: PLC0415 (see _LAZY)

    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise SslConfigError(f"cannot read configured {file_type} [{path}] - {error}") from None
    return certificates


def _pem(certificates: list[x509.Certificate]) -> bytes:
    if not certificates:
        return b""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (see _LAZY)

    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _pkcs12(path: Path, password: str, file_type: str) -> pkcs12.PKCS12KeyAndCertificates:
    from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415 (see _LAZY)

    if path.suffix.lower() not in PKCS12_SUFFIXES:
        raise SslConfigError(f"cannot read configured {file_type} [{path}] - the demo node reads PKCS#12 (.p12) only")
    data = _read(path, file_type)
    try:
        return pkcs12.load_pkcs12(data, password.encode("utf-8") if password else None)
    except ValueError:
        raise SslConfigError(
            f"cannot read configured {file_type} [{path}] - this is usually caused by an incorrect password"
        ) from None


def _key_material(
    settings: Settings, secure: Mapping[str, str], prefix: str
) -> tuple[bytes, bytes, list[x509.Certificate]] | None:
    """(certificate chain PEM, unencrypted key PEM, the key configuration's certificates) or None."""

    key_path, certificate_path = settings.get(f"{prefix}.key"), settings.get(f"{prefix}.certificate")
    keystore_path = settings.get(f"{prefix}.keystore.path")
    if key_path and keystore_path:
        raise SslConfigError(f"cannot specify both [{prefix}.key] and [{prefix}.keystore.path]")
    config_dir = settings.config_dir
    if key_path or keystore_path:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (see _LAZY)
    if key_path:
        if not certificate_path:
            raise SslConfigError(f"cannot specify [{prefix}.key] without also setting [{prefix}.certificate]")
        key_file, certificate_file = _resolve(config_dir, key_path), _resolve(config_dir, certificate_path)
        key_data = _read(key_file, "PEM private key")
        chain = _pem_certificates(_read(certificate_file, "PEM certificate"), certificate_file, "PEM certificate")
        passphrase = secure.get(f"{prefix}.secure_key_passphrase") or None
        try:
            key = serialization.load_pem_private_key(key_data, passphrase.encode("utf-8") if passphrase else None)
        except (ValueError, TypeError) as error:
            raise SslConfigError(f"cannot read configured PEM private key [{key_file}] - {error}") from None
        if not chain:
            raise SslConfigError(f"cannot read configured PEM certificate [{certificate_file}] - no certificates")
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise SslConfigError(
                f"failed to load a KeyManager for certificate/key pair [{certificate_file}], [{key_file}]"
                " - the private key does not belong to the certificate"
            )
        unencrypted = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return _pem(chain), unencrypted, chain
    if certificate_path:
        raise SslConfigError(f"cannot specify [{prefix}.certificate] without also setting [{prefix}.key]")
    if keystore_path:
        path = _resolve(config_dir, keystore_path)
        bundle = _pkcs12(path, secure.get(f"{prefix}.keystore.secure_password", ""), "[PKCS12] keystore")
        if bundle.key is None or bundle.cert is None:
            raise SslConfigError(f"the configured PKCS#12 keystore [{path}] does not contain a private key entry")
        chain = [bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)]
        key_pem = bundle.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return _pem([bundle.cert.certificate]), key_pem, chain
    return None


def _trust(
    settings: Settings, secure: Mapping[str, str], prefix: str, key_certificates: list[x509.Certificate]
) -> bytes:
    authorities = settings.get_list(f"{prefix}.certificate_authorities")
    truststore_path = settings.get(f"{prefix}.truststore.path")
    if authorities and truststore_path:
        raise SslConfigError(f"cannot specify both [{prefix}.certificate_authorities] and [{prefix}.truststore.path]")
    if authorities:
        paths = [_resolve(settings.config_dir, a) for a in authorities]
        trusted: list[x509.Certificate] = []
        for path in paths:
            trusted += _pem_certificates(
                _read(path, "PEM certificate_authorities"), path, "PEM certificate_authorities"
            )
        return _pem(trusted)
    if truststore_path:
        path = _resolve(settings.config_dir, truststore_path)
        bundle = _pkcs12(path, secure.get(f"{prefix}.truststore.secure_password", ""), "[PKCS12] truststore")
        certificates = [c.certificate for c in bundle.additional_certs]
        if bundle.cert is not None:
            certificates.append(bundle.cert.certificate)
        return _pem(certificates)
    return _pem(key_certificates)


def load_ssl(settings: Settings, secure: Mapping[str, str], prefix: str) -> SslConfig | None:
    """The context's TLS when ``<prefix>.enabled`` is true, None when it is false; raises :class:`SslConfigError`
    for what Elasticsearch refuses (its messages, prefixed ``failed to load SSL configuration [prefix]`` where
    Elasticsearch's are)."""
    enabled = is_enabled(settings, secure, prefix)
    mode = settings.get(f"{prefix}.verification_mode", "full").strip().lower()
    if mode not in VERIFICATION_MODES:
        raise SslConfigError(
            f"could not resolve ssl client verification mode, unknown value [{mode}] for setting "
            f"[{prefix}.verification_mode], recognised values are [full, certificate, none]"
        )
    if not configured_names(settings, secure, prefix):
        return None
    try:
        material = _key_material(settings, secure, prefix)
        trusted = _trust(settings, secure, prefix, material[2] if material else [])
    except SslConfigError as error:
        raise SslConfigError(f"failed to load SSL configuration [{prefix}] - {error}") from None
    except ImportError as error:
        raise SslConfigError(
            f"failed to load SSL configuration [{prefix}] - the demo node needs {error.name}"
        ) from None
    if not enabled:
        return None
    if material is None:
        raise SslConfigError(
            f"invalid SSL configuration for {prefix} - server ssl configuration requires a key and certificate, but "
            f"these have not been configured; you must set either [{prefix}.keystore.path], or both [{prefix}.key] "
            f"and [{prefix}.certificate]"
        )
    config = SslConfig(prefix, mode, material[0], material[1], trusted)
    try:
        config.server_context(client_auth=False)
    except ssl.SSLError as error:
        raise SslConfigError(f"failed to load SSL configuration [{prefix}] - {error}") from None
    return config
