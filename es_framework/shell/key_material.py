"""Fresh private keys, certificate serial numbers and the ``elastic`` password: the randomness behind
the pure certificate code (:mod:`es_framework.core.certificates`), kept at the edge so that the core
stays a function of its inputs."""

from __future__ import annotations

import secrets

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from es_framework.core.certificates import KEY_SIZE_BITS


def new_private_key() -> rsa.RSAPrivateKey:
    """An RSA key of :data:`~es_framework.core.certificates.KEY_SIZE_BITS` bits, public exponent 65537
    (the only one ``cryptography`` recommends; Java and OpenSSL expect it)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE_BITS)


def new_node_key() -> ec.EllipticCurvePrivateKey:
    """A node's key: ECDSA on P-256, about 0.05 ms to draw where RSA 2048 takes 100–250 ms (see
    :mod:`es_framework.core.certificates`)."""
    return ec.generate_private_key(ec.SECP256R1())


def new_serial() -> int:
    """A random positive serial number of up to 159 bits: unique per CA without keeping a counter,
    and within RFC 5280's 20 octets (CA/Browser Forum baseline: at least 64 random bits)."""
    return x509.random_serial_number()


#: Bytes of randomness in a generated ``elastic`` password (256 bits; URL-safe base64, 43 characters:
#: no character a YAML file, a shell or an HTTP basic-auth header would need to escape).
PASSWORD_BYTES = 32


def new_password() -> str:
    """A fresh ``elastic`` password from the operating system's CSPRNG (``secrets.token_urlsafe``)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)
