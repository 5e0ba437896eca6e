"""The cluster's CA and its node certificates (es_framework/core/certificates.py), checked with
``cryptography``'s own path validation (RFC 5280 and the Web PKI profile: chain, signature, names,
validity, key usages), for any node name, host name and IP."""

from __future__ import annotations

import datetime
import functools
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from es_framework.core.certificates import (
    CA_VALIDITY_DAYS,
    CLOCK_SKEW,
    NODE_VALIDITY_DAYS,
    CertificateError,
    KeyPair,
    create_ca,
    issue_node_certificate,
    key_pair_from_pem,
    subject_alternative_names,
)
from es_framework.shell.key_material import new_node_key, new_private_key, new_serial

NOW = 1_800_000_000.0
DAY = 86_400.0
no_db = settings(database=None, deadline=None, max_examples=40)


@functools.cache
def key(index: int) -> rsa.RSAPrivateKey:
    """A few keys for the whole module: an RSA key takes a quarter of a second to make."""
    return new_private_key()


@functools.cache
def ca(index: int = 0) -> KeyPair:
    return create_ca(key(index), cluster_name="mesos-ha", now=NOW, serial=1000 + index)


def node(
    *, name: str = "elasticsearch2", host: str = "agent-1.example.org", ip: str | None = "10.0.0.7", at: float = NOW
) -> KeyPair:
    return issue_node_certificate(ca(), key(9), node_name=name, hostname=host, ip=ip, now=at, serial=42)


def utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def verify_server(leaf: KeyPair, name: x509.GeneralName, *, trust: KeyPair | None = None, at: float = NOW + 60) -> None:
    policy = PolicyBuilder().store(Store([(trust or ca()).certificate])).time(utc(at))
    assert isinstance(name, (x509.DNSName, x509.IPAddress))
    policy.build_server_verifier(name).verify(leaf.certificate, [])


def verify_client(leaf: KeyPair, *, trust: KeyPair | None = None, at: float = NOW + 60) -> list[x509.GeneralName]:
    policy = PolicyBuilder().store(Store([(trust or ca()).certificate])).time(utc(at))
    return list(policy.build_client_verifier().verify(leaf.certificate, []).subjects or [])


# --- the CA ---------------------------------------------------------------------------------------


def test_the_ca_is_a_self_signed_ca_valid_for_its_days() -> None:
    certificate = ca().certificate
    certificate.verify_directly_issued_by(certificate)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert certificate.not_valid_before_utc == utc(NOW) - CLOCK_SKEW
    assert certificate.not_valid_after_utc == utc(NOW) + datetime.timedelta(days=CA_VALIDITY_DAYS)
    assert certificate.serial_number == 1000
    assert "mesos-ha" in certificate.subject.rfc4514_string()


def test_the_ca_is_a_function_of_its_inputs() -> None:
    again = create_ca(key(0), cluster_name="mesos-ha", now=NOW, serial=1000)
    assert again.certificate_pem() == ca().certificate_pem()
    other = create_ca(key(0), cluster_name="mesos-ha", now=NOW + 1, serial=1000)
    assert other.certificate_pem() != ca().certificate_pem()


def test_a_long_cluster_name_is_cut_to_a_common_name_x509_allows() -> None:
    long = create_ca(key(0), cluster_name="c" * 200, now=NOW, serial=1)
    (common_name,) = long.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert len(str(common_name.value)) == 64


def test_a_small_or_foreign_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateError, match="1024 bits"):
        create_ca(small, cluster_name="c", now=NOW, serial=1)


def test_the_stored_form_reads_back_and_a_mixed_up_key_is_refused() -> None:
    back = key_pair_from_pem(ca().certificate_pem(), ca().key_pem())
    assert back.certificate == ca().certificate
    assert back.key_pem() == ca().key_pem()
    with pytest.raises(CertificateError, match="does not belong"):
        key_pair_from_pem(ca().certificate_pem(), ca(1).key_pem())
    with pytest.raises(CertificateError, match="not a PEM"):
        key_pair_from_pem("garbage", ca().key_pem())


# --- node certificates ----------------------------------------------------------------------------


def test_a_node_certificate_is_signed_by_the_ca_for_transport_and_http() -> None:
    leaf = node()
    leaf.certificate.verify_directly_issued_by(ca().certificate)
    extensions = leaf.certificate.extensions
    assert not extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert set(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    assert extensions.get_extension_for_class(x509.SubjectAlternativeName).value == x509.SubjectAlternativeName(
        [
            x509.DNSName("elasticsearch2"),
            x509.DNSName("agent-1.example.org"),
            x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
        ]
    )
    # A peer checks it as a server (HTTPS, the transport's outgoing side) and as a client (mutual TLS).
    verify_server(leaf, x509.DNSName("agent-1.example.org"))
    verify_server(leaf, x509.IPAddress(ipaddress.ip_address("10.0.0.7")))
    verify_server(leaf, x509.DNSName("elasticsearch2"))
    assert x509.DNSName("elasticsearch2") in verify_client(leaf)


def test_a_node_certificate_is_refused_by_another_ca_for_another_name_and_out_of_its_time() -> None:
    leaf = node()
    with pytest.raises(VerificationError):
        verify_server(leaf, x509.DNSName("agent-1.example.org"), trust=ca(1))
    with pytest.raises(VerificationError):
        verify_client(leaf, trust=ca(1))
    with pytest.raises(VerificationError):
        verify_server(leaf, x509.DNSName("agent-2.example.org"))
    with pytest.raises(VerificationError):
        verify_server(leaf, x509.IPAddress(ipaddress.ip_address("10.0.0.8")))
    with pytest.raises(VerificationError):
        verify_server(leaf, x509.DNSName("agent-1.example.org"), at=NOW + NODE_VALIDITY_DAYS * DAY + 1)
    with pytest.raises(VerificationError):
        verify_server(leaf, x509.DNSName("agent-1.example.org"), at=NOW - CLOCK_SKEW.total_seconds() - 1)


def test_a_node_certificate_is_valid_from_now_for_its_days_with_room_for_clock_skew() -> None:
    leaf = node(at=NOW + 100 * DAY)
    assert leaf.certificate.not_valid_before_utc == utc(NOW + 100 * DAY) - CLOCK_SKEW
    assert leaf.not_valid_after == NOW + 100 * DAY + NODE_VALIDITY_DAYS * DAY
    verify_server(leaf, x509.DNSName("agent-1.example.org"), at=NOW + 100 * DAY - 60)


def test_a_node_certificate_never_outlives_its_ca_and_an_expired_ca_issues_nothing() -> None:
    ca_end = NOW + CA_VALIDITY_DAYS * DAY
    late = node(at=ca_end - 10 * DAY)
    assert late.not_valid_after == ca_end
    with pytest.raises(CertificateError, match="expired"):
        node(at=ca_end + CLOCK_SKEW.total_seconds() + 1)


def test_a_host_name_that_is_an_ip_and_names_given_twice_appear_once() -> None:
    names = subject_alternative_names("es1", "10.0.0.7", "10.0.0.7")
    assert names == [x509.DNSName("es1"), x509.IPAddress(ipaddress.ip_address("10.0.0.7"))]
    assert subject_alternative_names("es1", "Agent-1.Example.org.", None) == [
        x509.DNSName("es1"),
        x509.DNSName("agent-1.example.org"),
    ]


@pytest.mark.parametrize(
    ("node_name", "host", "ip", "message"),
    [
        ("es1", "", "10.0.0.1", "agent host name"),
        ("es1", "a..b", "10.0.0.1", "agent host name"),
        ("es1", "ägent", "10.0.0.1", "agent host name"),
        ("es1", "agent", "10.0.0.300", "agent IP"),
        ("", "agent", "10.0.0.1", "node name"),
    ],
)
def test_names_a_certificate_cannot_carry_are_refused(node_name: str, host: str, ip: str, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        subject_alternative_names(node_name, host, ip)


LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
HOSTS = st.lists(LABEL, min_size=1, max_size=4).map(".".join).filter(lambda h: not _is_ip(h))
NODE_NAMES = st.builds(
    lambda framework, node_id: f"{framework}{node_id}",
    st.from_regex(r"[a-z](?:[a-z0-9-]{0,20}[a-z])?", fullmatch=True),
    st.integers(1, 10_000),
)
IPS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@no_db
@given(node_name=NODE_NAMES, host=HOSTS, ip=IPS, days=st.floats(0, CA_VALIDITY_DAYS - 1))
def test_any_node_certificate_verifies_for_each_of_its_names_and_only_those(
    node_name: str, host: str, ip: str, days: float
) -> None:
    assume(node_name != f"not-{host}")
    at = NOW + days * DAY
    leaf = node(name=node_name, host=host, ip=ip, at=at)
    sans = leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == list(dict.fromkeys([node_name, host]))
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(ip)]
    verify_server(leaf, x509.DNSName(node_name), at=at)
    verify_server(leaf, x509.DNSName(host), at=at)
    verify_server(leaf, x509.IPAddress(ipaddress.ip_address(ip)), at=at)
    verify_client(leaf, at=at)
    with pytest.raises(VerificationError):
        verify_server(leaf, x509.DNSName(f"not-{host}"), at=at)


def test_the_edge_makes_fresh_keys_and_serial_numbers() -> None:
    assert new_serial() != new_serial()
    assert 0 < new_serial() < 2**159
    assert key(0).key_size == 2048


def test_a_node_key_is_ecdsa_p256_and_its_certificate_only_signs() -> None:
    node_key = new_node_key()
    assert isinstance(node_key, ec.EllipticCurvePrivateKey) and node_key.curve.name == "secp256r1"
    assert new_node_key().private_numbers() != node_key.private_numbers()
    leaf = issue_node_certificate(
        ca(), node_key, node_name="elasticsearch3", hostname="agent-2.example.org", ip="10.0.0.8", now=NOW, serial=43
    )
    leaf.certificate.verify_directly_issued_by(ca().certificate)
    usage = leaf.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    # An EC key signs the handshake and never encrypts a key (RFC 5480 3): no keyEncipherment.
    assert usage.digital_signature and not usage.key_encipherment and not usage.key_agreement
    verify_server(leaf, x509.DNSName("agent-2.example.org"))
    verify_server(leaf, x509.IPAddress(ipaddress.ip_address("10.0.0.8")))
    assert x509.DNSName("elasticsearch3") in verify_client(leaf)
    assert "BEGIN PRIVATE KEY" in leaf.key_pem()  # PKCS#8, which Elasticsearch's PemUtils reads


def test_an_ec_key_on_another_curve_or_as_a_ca_is_refused() -> None:
    with pytest.raises(CertificateError, match="secp256k1"):
        issue_node_certificate(
            ca(), ec.generate_private_key(ec.SECP256K1()), node_name="n", hostname="h", ip=None, now=NOW, serial=1
        )
    ec_ca = KeyPair(ca().certificate, new_node_key())
    with pytest.raises(CertificateError, match="not RSA"):
        issue_node_certificate(ec_ca, new_node_key(), node_name="n", hostname="h", ip=None, now=NOW, serial=1)
