"""Issue 15: the demo node reads its TLS and authentication settings as Elasticsearch 8 does (in-process: the
settings, the keystore, the refusals with Elasticsearch's messages, verification modes over a real handshake,
PKCS#12 bundles as the executor writes them, basic authentication). The certificates are made by the
scheduler's own :mod:`es_framework.core.certificates`."""

from __future__ import annotations

import base64
import functools
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from es_framework.core.certificates import KeyPair, create_ca, issue_node_certificate
from es_framework.dev.demo_es import keystore, write_launcher
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.security import BASIC_CHALLENGE, TRANSPORT_TLS_CHECK, SecurityError, load_security
from es_framework.dev.demo_es.settings import Settings
from es_framework.dev.demo_es.ssl_config import SslConfig

PASSWORD = "s3cret-bootstrap"
REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    """A few 2048-bit keys, made once per test process (key generation is the slow part)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


#: The CAs the tests use, each with its own key: "a" the cluster's, "b" another cluster's.
CA_KEYS = {"a": 10, "b": 11}


@functools.cache
def ca(name: str) -> KeyPair:
    return create_ca(rsa_key(CA_KEYS[name]), cluster_name=name, now=time.time(), serial=1000 + CA_KEYS[name])


def node_pair(
    authority: str, name: str, *, ip: str | None = "127.0.0.1", hostname: str = "localhost", key: int = 0
) -> KeyPair:
    return issue_node_certificate(
        ca(authority), rsa_key(key), node_name=name, hostname=hostname, ip=ip, now=time.time(), serial=7
    )


@dataclass(frozen=True)
class Pem:
    """The PEM files of one node under ``<config>/certs`` (names relative to the config directory)."""

    key: str = "certs/node.key"
    certificate: str = "certs/node.crt"
    authorities: str = "certs/ca.crt"


def write_pem(config: Path, pair: KeyPair, authority: str) -> Pem:
    (config / "certs").mkdir(parents=True, exist_ok=True)
    (config / "certs" / "node.key").write_text(pair.key_pem(), encoding="utf-8")
    (config / "certs" / "node.crt").write_text(pair.certificate_pem(), encoding="utf-8")
    (config / "certs" / "ca.crt").write_text(ca(authority).certificate_pem(), encoding="utf-8")
    return Pem()


def tls_settings(pem: Pem, *, mode: str = "certificate", http: bool = False) -> dict[str, str]:
    """``elasticsearch.yml`` lines for security with PEM files, as the scheduler will write them."""
    settings = {
        "xpack.security.enabled": "true",
        "xpack.security.transport.ssl.enabled": "true",
        "xpack.security.transport.ssl.verification_mode": mode,
        "xpack.security.transport.ssl.key": pem.key,
        "xpack.security.transport.ssl.certificate": pem.certificate,
        "xpack.security.transport.ssl.certificate_authorities": f"[{pem.authorities}]",
        "xpack.security.http.ssl.enabled": "true" if http else "false",
    }
    if http:
        settings |= {
            "xpack.security.http.ssl.key": pem.key,
            "xpack.security.http.ssl.certificate": pem.certificate,
            "xpack.security.http.ssl.certificate_authorities": f"[{pem.authorities}]",
        }
    return settings


def add_secure(config: Path, name: str, value: str) -> None:
    config.mkdir(parents=True, exist_ok=True)
    assert keystore.run(["create"], config)[0] == 0
    assert keystore.run(["add", "-x", "-f", name], config, value + "\n") == (0, "")


def settings_of(config: Path, values: dict[str, str]) -> Settings:
    """Settings as the YAML reader gives them (``[a, b]`` is a list)."""
    parsed: dict[str, str | list[str]] = {}
    for key, value in values.items():
        parsed[key] = [v.strip() for v in value[1:-1].split(",")] if value.startswith("[") else value
    return Settings(parsed, config)


def refusal(config: Path, values: dict[str, str]) -> str:
    with pytest.raises(SecurityError) as raised:
        load_security(settings_of(config, values), {})
    return str(raised.value)


# ---------------------------------------------------------------------- what is read


def test_pem_settings_and_the_keystore_password_turn_security_on(tmp_path: Path) -> None:
    pem = write_pem(tmp_path, node_pair("a", "n1"), "a")
    add_secure(tmp_path, "bootstrap.password", PASSWORD)
    security = load_security(settings_of(tmp_path, tls_settings(pem, mode="full", http=True)), {})
    assert security.enabled and security.password == PASSWORD
    assert security.transport is not None and security.transport.verification_mode == "full"
    assert security.http is not None
    assert security.bootstrap_failures() == []
    # The Docker image's ELASTIC_PASSWORD when the keystore has no bootstrap password.
    (tmp_path / keystore.KEYSTORE_FILE).unlink()
    assert load_security(settings_of(tmp_path, tls_settings(pem)), {"ELASTIC_PASSWORD": "p"}).password == "p"
    # Security off: the TLS settings are read and checked, but nothing is enforced.
    off = load_security(settings_of(tmp_path, {**tls_settings(pem), "xpack.security.enabled": "false"}), {})
    assert (off.enabled, off.transport, off.http) == (False, None, None)


def test_a_pkcs12_bundle_with_its_passwords_in_the_keystore_works_as_the_executor_writes_it(tmp_path: Path) -> None:
    pair = node_pair("a", "n1")
    bundle = pkcs12.serialize_key_and_certificates(
        b"n1",
        pair.key,
        pair.certificate,
        [ca("a").certificate],
        serialization.BestAvailableEncryption(b"bundle-pw"),
    )
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "elastic-certificates.p12").write_bytes(bundle)
    values = {
        "xpack.security.enabled": "true",
        "xpack.security.transport.ssl.enabled": "true",
        "xpack.security.transport.ssl.verification_mode": "certificate",
        "xpack.security.transport.ssl.keystore.path": "certs/elastic-certificates.p12",
        "xpack.security.transport.ssl.truststore.path": "certs/elastic-certificates.p12",
        "xpack.security.http.ssl.enabled": "false",
    }
    for name in ("keystore", "truststore"):
        add_secure(tmp_path, f"xpack.security.transport.ssl.{name}.secure_password", "bundle-pw")
    security = load_security(settings_of(tmp_path, values), {})
    assert security.transport is not None
    assert ca("a").certificate_pem().encode() in security.transport.trusted_pem
    add_secure(tmp_path, "xpack.security.transport.ssl.keystore.secure_password", "wrong")
    assert refusal(tmp_path, values).endswith("- this is usually caused by an incorrect password")


# ---------------------------------------------------------------------- refusals (Elasticsearch's messages)


def test_ssl_settings_without_enabled_are_refused_also_secure_ones_from_the_keystore(tmp_path: Path) -> None:
    pem = write_pem(tmp_path, node_pair("a", "n1"), "a")
    values = {"xpack.security.enabled": "true", "xpack.security.transport.ssl.key": pem.key}
    values["xpack.security.transport.ssl.certificate"] = pem.certificate
    assert refusal(tmp_path, values) == (
        "invalid configuration for xpack.security.transport.ssl - [xpack.security.transport.ssl.enabled] is not set, "
        "but the following settings have been configured in elasticsearch.yml : "
        "[xpack.security.transport.ssl.certificate,xpack.security.transport.ssl.key]"
    )
    add_secure(tmp_path, "xpack.security.http.ssl.keystore.secure_password", "x")
    assert refusal(tmp_path, {"xpack.security.enabled": "false"}) == (
        "invalid configuration for xpack.security.http.ssl - [xpack.security.http.ssl.enabled] is not set, "
        "but the following settings have been configured in elasticsearch.yml : "
        "[xpack.security.http.ssl.keystore.secure_password]"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"xpack.security.transport.ssl.key": "certs/missing.key"},
            "failed to load SSL configuration [xpack.security.transport.ssl] - cannot read configured PEM private key "
            "[{config}/certs/missing.key] because the file does not exist",
        ),
        (
            {"xpack.security.transport.ssl.certificate": "certs/missing.crt"},
            "failed to load SSL configuration [xpack.security.transport.ssl] - cannot read configured PEM certificate "
            "[{config}/certs/missing.crt] because the file does not exist",
        ),
        (
            {"xpack.security.transport.ssl.certificate_authorities": "[certs/none.crt]"},
            "failed to load SSL configuration [xpack.security.transport.ssl] - cannot read configured PEM "
            "certificate_authorities [{config}/certs/none.crt] because the file does not exist",
        ),
        (
            {"xpack.security.transport.ssl.certificate": "certs/other.crt"},
            "failed to load SSL configuration [xpack.security.transport.ssl] - failed to load a KeyManager for "
            "certificate/key pair [{config}/certs/other.crt], [{config}/certs/node.key]",
        ),
        (
            {"xpack.security.transport.ssl.key": "", "xpack.security.transport.ssl.certificate": ""},
            "invalid SSL configuration for xpack.security.transport.ssl - server ssl configuration requires a key and "
            "certificate, but these have not been configured; you must set either "
            "[xpack.security.transport.ssl.keystore.path], or both [xpack.security.transport.ssl.key] and "
            "[xpack.security.transport.ssl.certificate]",
        ),
        (
            {"xpack.security.transport.ssl.keystore.path": "certs/node.p12"},
            "failed to load SSL configuration [xpack.security.transport.ssl] - cannot specify both "
            "[xpack.security.transport.ssl.key] and [xpack.security.transport.ssl.keystore.path]",
        ),
        (
            {"xpack.security.transport.ssl.verification_mode": "strict"},
            "could not resolve ssl client verification mode, unknown value [strict]",
        ),
    ],
    ids=["missing-key", "missing-certificate", "missing-ca", "key-not-the-certificates", "no-key", "two-keys", "mode"],
)
def test_tls_files_and_values_elasticsearch_refuses(tmp_path: Path, change: dict[str, str], message: str) -> None:
    pem = write_pem(tmp_path, node_pair("a", "n1"), "a")
    # A certificate whose key is another one: the pair does not match.
    (tmp_path / "certs" / "other.crt").write_text(node_pair("a", "n2", key=1).certificate_pem(), encoding="utf-8")
    values = {k: v for k, v in {**tls_settings(pem), **change}.items() if v}
    assert refusal(tmp_path, values).startswith(message.format(config=tmp_path))


def test_the_transport_tls_bootstrap_check_fails_with_security_on_and_transport_tls_off(tmp_path: Path) -> None:
    security = load_security(settings_of(tmp_path, {"xpack.security.enabled": "true"}), {})
    assert security.bootstrap_failures() == [TRANSPORT_TLS_CHECK]
    assert TRANSPORT_TLS_CHECK.startswith("Transport SSL must be enabled if security is enabled. Please set")
    assert load_security(settings_of(tmp_path, {}), {}).bootstrap_failures() == []


# ---------------------------------------------------------------------- authentication


def test_basic_authentication_of_the_elastic_user(tmp_path: Path) -> None:
    security = load_security(settings_of(tmp_path, {"xpack.security.enabled": "true"}), {"ELASTIC_PASSWORD": PASSWORD})

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    security.authenticate(header("elastic", PASSWORD), "/")
    for authorization, reason in (
        (None, "missing authentication credentials for REST request [/_cat/nodes?v]"),
        ("Bearer abc", "missing authentication credentials for REST request [/_cat/nodes?v]"),
        (header("elastic", "wrong"), "unable to authenticate user [elastic] for REST request [/_cat/nodes?v]"),
        (header("kibana", PASSWORD), "unable to authenticate user [kibana] for REST request [/_cat/nodes?v]"),
    ):
        with pytest.raises(EsError) as raised:
            security.authenticate(authorization, "/_cat/nodes?v")
        assert (raised.value.status, raised.value.kind, raised.value.reason) == (401, "security_exception", reason)
        assert raised.value.body()["error"]["header"]["WWW-Authenticate"][0] == BASIC_CHALLENGE
    # Without any bootstrap password nobody authenticates.
    nobody = load_security(settings_of(tmp_path, {"xpack.security.enabled": "true"}), {})
    with pytest.raises(EsError):
        nobody.authenticate(header("elastic", ""), "/")


# ---------------------------------------------------------------------- verification modes over a handshake


def _handshake(server: SslConfig, client: SslConfig, host: str = "127.0.0.1") -> str | None:
    """One mutual-TLS handshake over a socket pair: the first side's error, or None when both accept the other."""
    left, right = socket.socketpair()
    server_error: list[BaseException] = []

    def serve() -> None:
        try:
            with server.server_context(client_auth=True).wrap_socket(left, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError) as error:
            server_error.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.client_context().wrap_socket(right, server_hostname=host) as tls:
            tls.sendall(b"x")
    except ssl.SSLError as error:
        return str(error)
    finally:
        right.close()
        thread.join(5)
        left.close()
    # With TLS 1.3 the client finishes its handshake before the server has checked the client's certificate.
    return str(server_error[0]) if server_error else None


def _config(
    tmp_path: Path, authority: str, name: str, mode: str, *, ip: str | None = "127.0.0.1", hostname: str = "localhost"
) -> SslConfig:
    """A node's transport TLS with a certificate from ``authority``, trusting CA "a"."""
    config = tmp_path / name
    pem = write_pem(config, node_pair(authority, name, ip=ip, hostname=hostname), "a")
    security = load_security(settings_of(config, tls_settings(pem, mode=mode)), {})
    assert security.transport is not None
    return security.transport


def test_verification_modes_check_the_chain_and_with_full_the_address(tmp_path: Path) -> None:
    server = _config(tmp_path, "a", "n1", "certificate")
    no_ip = _config(tmp_path, "a", "n3", "certificate", ip=None, hostname="n3.example")
    full = _config(tmp_path, "a", "n2", "full")
    certificate_only = _config(tmp_path, "a", "n4", "certificate")
    rogue = _config(tmp_path, "b", "rogue", "certificate")
    assert _handshake(server, full) is None  # the server's certificate names 127.0.0.1
    assert _handshake(no_ip, certificate_only) is None
    failed = _handshake(no_ip, full)
    assert failed is not None and "IP address mismatch" in failed
    # A certificate from another CA is refused by the chain check, whichever side presents it.
    assert _handshake(server, rogue) is not None
    assert _handshake(rogue, full) is not None


# ---------------------------------------------------------------------- the keystore tool


def test_the_keystore_tool_the_launcher_writes_works_as_the_executor_calls_it(tmp_path: Path) -> None:
    write_launcher(tmp_path)
    tool = tmp_path / "bin" / "elasticsearch-keystore"
    env = {"ES_PATH_CONF": str(tmp_path / "config"), "PATH": "/usr/bin:/bin"}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tool), *args], check=False, input=stdin, env=env, capture_output=True, text=True, timeout=60
        )

    assert run("create").returncode == 0
    assert run("add", "-x", "-f", "bootstrap.password", stdin=PASSWORD + "\n").returncode == 0
    assert run("list").stdout.split() == ["bootstrap.password", "keystore.seed"]
    assert keystore.read_keystore(tmp_path / "config")["bootstrap.password"] == PASSWORD
    assert (tmp_path / "config" / keystore.KEYSTORE_FILE).stat().st_mode & 0o077 == 0
    assert run("add", "-x", "bootstrap.password", stdin="again\n").returncode == 78  # exists, no -f
    assert run("remove", "bootstrap.password").returncode == 0
    assert run("remove", "bootstrap.password").returncode == 78


def test_without_cryptography_only_tls_is_refused_as_in_the_stand_in_image(tmp_path: Path) -> None:
    """The stand-in image ships this package with a bare Python: no TLS setting, no ``cryptography`` needed."""
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "cryptography":
            raise ImportError("blocked", name="cryptography")
sys.meta_path.insert(0, Block())
from es_framework.dev.demo_es.security import SecurityError, load_security
from es_framework.dev.demo_es.settings import Settings
plain = {"xpack.security.enabled": "true", "xpack.security.http.ssl.enabled": "false"}
assert load_security(Settings(plain, None), {}).enabled
try:
    load_security(Settings({**plain, "xpack.security.transport.ssl.enabled": "true",
                            "xpack.security.transport.ssl.key": "k", "xpack.security.transport.ssl.certificate": "c"},
                           None), {})
except SecurityError as error:
    print(error)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "failed to load SSL configuration [xpack.security.transport.ssl] - the demo node needs cryptography"
    )
