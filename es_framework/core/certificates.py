"""The cluster's certificate authority and the certificates it issues to the nodes (pure).

With ``--elasticsearchSecurity auto`` the scheduler creates one CA per cluster and issues each node
one certificate, used for both its transport and its HTTP layer. Everything here is computation over
values the caller hands in: the private keys, the serial numbers and the time come from the edge
(:mod:`es_framework.shell.key_material` makes keys and serial numbers from the system's randomness;
the time is the engine's injected clock), so the same inputs give the same certificate, byte for
byte. RSA with PKCS#1 v1.5 signatures keeps that true (an ECDSA signature draws a random nonce).

What a node certificate needs, from Elasticsearch's security documentation:

- Nodes trust certificates by the CA that signed them, so that a new node is trusted once its
  certificate is signed by the cluster's CA; a *dedicated* CA per cluster keeps membership under the
  operator's control ("Set up basic security", elastic.co/guide/en/elasticsearch/reference/current/
  security-basic-setup.html; "Using an external certificate authority to secure node-to-node
  connections", elastic.co/docs/deploy-manage/security/external-ca-transport).
- Subject alternative names for the node's DNS name and IP address, so that full hostname
  verification (``xpack.security.transport.ssl.verification_mode: full``, and any HTTPS client)
  works ("Setting Up SSL/TLS on a Cluster", Node Certificates). A node connects to its peers by the
  published address, often an IP, so the IP SAN is needed for ``full`` on the transport
  (elastic/elasticsearch issue 32729). Hence: the node name, the agent's host name and its IP.
- The transport uses mutual TLS by default: each node presents its certificate to the other as a
  server and as a client, so an extended key usage, when present, must allow both ``serverAuth``
  and ``clientAuth`` (the external-CA page above; elasticsearch-certutil's certificates carry no
  extended key usage at all, which allows both).
- ``elasticsearch-certutil`` issues RSA 2048-bit keys by default (``--keysize``), CAs and
  certificates valid for three years (``--days 1095``; "elasticsearch-certutil",
  elastic.co/guide/en/elasticsearch/reference/current/certutil.html). The CA here is RSA 2048, made
  once. Node certificates are valid for one year and are renewed well before (the next step,
  through a day-2 rollout); a node certificate never outlives its CA.
- A node's key is ECDSA on P-256 (secp256r1): Elasticsearch reads it as PKCS#8 PEM
  ("Supports PKCS#1, PKCS#8 encoded formats of encrypted and plaintext RSA, DSA and EC(secp256r1)
  keys", ``PemUtils.parsePrivateKey``, libs/ssl-config), and drawing one takes about 0.05 ms where
  an RSA 2048 key takes 100–250 ms: a scheduler launching 300 nodes in one offer cycle would
  otherwise spend a minute drawing keys. Its keyUsage is ``digitalSignature`` alone (an EC key
  signs the ECDHE handshake; it never encrypts a premaster secret, so no ``keyEncipherment``, RFC
  5480 3); an RSA node key, which the pure functions still accept, keeps ``keyEncipherment`` for
  TLS 1.2's RSA key exchange.

The extensions follow RFC 5280 (a CA: basicConstraints ``cA`` critical, keyUsage ``keyCertSign``
and ``cRLSign``; every certificate a subjectKeyIdentifier, every issued one the CA's
authorityKeyIdentifier), which is also what ``cryptography``'s own path validation (the tests') and
Java's PKIX validator insist on.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: elasticsearch-certutil's default key size; Java and ``cryptography``'s validation accept it.
KEY_SIZE_BITS = 2048
#: The curves a node key may be on: P-256 (what the scheduler draws) and P-384, both in every JDK's
#: default TLS named groups.
NODE_KEY_CURVES = ("secp256r1", "secp384r1")
#: A node's private key: ECDSA (what the scheduler draws) or RSA.
NodeKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
#: The CA's life (elasticsearch-certutil's default ``--days``).
CA_VALIDITY_DAYS = 3 * 365
#: A node certificate's life; renewed well before it ends.
NODE_VALIDITY_DAYS = 365
#: Certificates start this much before "now": agents' clocks differ a little, and a certificate
#: that is not yet valid on a peer whose clock is behind would break the handshake.
CLOCK_SKEW = datetime.timedelta(minutes=5)
#: X.509's upper bound for a common name (RFC 5280 ub-common-name); ``cryptography`` enforces it.
MAX_COMMON_NAME = 64


class CertificateError(ValueError):
    """A certificate cannot be made from the given names, keys or PEM text."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: NodeKey

    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def key_pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM: a secret (sealed before it is stored)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")

    @property
    def not_valid_after(self) -> float:
        """When the certificate ends, in seconds since the epoch (the engine's clock)."""
        return self.certificate.not_valid_after_utc.timestamp()


def key_pair_from_pem(certificate_pem: str, key_pem: str) -> KeyPair:
    """The stored form back (:meth:`KeyPair.certificate_pem`, :meth:`KeyPair.key_pem`); refuses a key
    that does not belong to the certificate (a state pieced together from two CAs)."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    except ValueError as error:
        raise CertificateError(f"not a PEM certificate and private key: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"the private key is {type(key).__name__}, not RSA")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise CertificateError("the private key does not belong to the certificate")
    return KeyPair(certificate, key)


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _common_name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text[:MAX_COMMON_NAME] or "-")])


def _check_key(key: rsa.RSAPrivateKey) -> None:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"an RSA private key is needed, got {type(key).__name__}")
    if key.key_size < KEY_SIZE_BITS:
        raise CertificateError(f"an RSA key of {key.key_size} bits is too small; {KEY_SIZE_BITS} or more")


def _check_node_key(key: NodeKey) -> None:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in NODE_KEY_CURVES:
            raise CertificateError(f"an EC node key on {key.curve.name}; one of {', '.join(NODE_KEY_CURVES)} is needed")
        return
    _check_key(key)


def _sign(builder: x509.CertificateBuilder, key: NodeKey) -> x509.Certificate:
    # Only the CA signs, and a CA is RSA (key_pair_from_pem, create_ca): PKCS#1 v1.5 is
    # deterministic (no random salt, unlike PSS; no nonce, unlike ECDSA), so the core stays a function.
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"the CA's key is {type(key).__name__}, not RSA")
    return builder.sign(key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())


def create_ca(key: rsa.RSAPrivateKey, *, cluster_name: str, now: float, serial: int) -> KeyPair:
    """The cluster's self-signed CA, valid from ``now`` (less :data:`CLOCK_SKEW`) for
    :data:`CA_VALIDITY_DAYS`. ``key`` and ``serial`` come from the edge (random)."""
    _check_key(key)
    name = _common_name(f"es-mesos CA {cluster_name}")
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(_utc(now) - CLOCK_SKEW)
        .not_valid_after(_utc(now) + datetime.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return KeyPair(_sign(builder, key), key)


def _dns_name(text: str, what: str) -> x509.GeneralName:
    """A DNS SAN (an IP literal given as a host name becomes an IP SAN)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.strip().rstrip(".").lower()
    # A DNS name in a certificate is an IA5String of labels (RFC 5280 4.2.1.6): ASCII, no blanks.
    labels = name.split(".")
    if not name or not name.isascii() or any(not label or len(label) > 63 or " " in label for label in labels):
        raise CertificateError(f"{what} {text!r} is not a DNS name")
    return x509.DNSName(name)


def subject_alternative_names(node_name: str, hostname: str, ip: str | None) -> list[x509.GeneralName]:
    """The node certificate's names: the node name, the agent's host name and the agent's IP (an IP
    SAN), each once, in that order."""
    names = [_dns_name(node_name, "the node name"), _dns_name(hostname, "the agent host name")]
    if ip is not None:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise CertificateError(f"the agent IP {ip!r} is not an IP address") from None
    unique: list[x509.GeneralName] = []
    for name in names:
        if name not in unique:
            unique.append(name)
    return unique


def issue_node_certificate(
    ca: KeyPair,
    key: NodeKey,
    *,
    node_name: str,
    hostname: str,
    ip: str | None,
    now: float,
    serial: int,
) -> KeyPair:
    """A certificate for one node's transport and HTTP layers, signed by ``ca``: subject CN the
    node name, subject alternative names :func:`subject_alternative_names`, extended key usage
    ``serverAuth`` and ``clientAuth`` (mutual TLS on the transport), valid from ``now`` (less
    :data:`CLOCK_SKEW`) for :data:`NODE_VALIDITY_DAYS` but never past the CA's end."""
    _check_node_key(key)
    start = _utc(now) - CLOCK_SKEW
    if start >= ca.certificate.not_valid_after_utc:
        raise CertificateError("the CA has expired: create a new one before issuing certificates")
    end = min(_utc(now) + datetime.timedelta(days=NODE_VALIDITY_DAYS), ca.certificate.not_valid_after_utc)
    public = key.public_key()
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_common_name(node_name))
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange (TLS 1.2's TLS_RSA_* suites) encrypts with an RSA certificate's key.
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(subject_alternative_names(node_name, hostname, ip)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False)
    )
    return KeyPair(_sign(builder, ca.key), key)
