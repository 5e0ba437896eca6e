"""Security of the demo node: what ``xpack.security.*`` turns on, and HTTP authentication (development tool,
not Elasticsearch).

Read as Elasticsearch 8 reads it ("Security settings in Elasticsearch", elastic.co/guide/en/elasticsearch/
reference/8.x/security-settings.html):

- ``xpack.security.enabled: true`` turns security on: every HTTP request must authenticate, and the TLS
  contexts of :mod:`.ssl_config` are used (transport: mutual TLS with peer verification; HTTP: HTTPS). One
  deviation, said here: without the setting the demo node runs without security (today's behaviour, what
  local mode relies on), where Elasticsearch 8 defaults to ``true`` and auto-configures TLS on first start.
  With security off the TLS settings are still read and checked (Elasticsearch's ``SSLService`` loads
  every configured context) but not used.
- The transport TLS bootstrap check (``TransportTLSBootstrapCheck``, the reference's "Bootstrap checks for
  X-Pack", ``bootstrap-checks-xpack.html#bootstrap-checks-tls``): security on and
  ``xpack.security.transport.ssl.enabled`` not true fails the node in production mode (exit 78, see
  :mod:`.bootstrap_checks`) and is a warning in development mode, when the transport runs in plain text.
- Authentication: HTTP basic for the built-in ``elastic`` user ("Built-in users"), whose password is the
  bootstrap password, the keystore's ``bootstrap.password`` ("The Elastic bootstrap password"); like the
  official Docker image, whose entrypoint copies ``ELASTIC_PASSWORD`` into the keystore, the demo node also
  takes ``ELASTIC_PASSWORD`` from its environment when the keystore has none. No password: nobody
  authenticates (as Elasticsearch 8 before a password is set). Other users, API keys and tokens are not
  supported. A request without credentials answers 401 ``missing authentication credentials for REST
  request [<uri>]``, with wrong ones ``unable to authenticate user [<user>] for REST request [<uri>]``,
  both ``security_exception`` with ``WWW-Authenticate: Basic realm="security" charset="UTF-8"``
  (``DefaultAuthenticationFailureHandler``).
- The ``elastic`` user's own password: once it is changed through the change-password API
  (:mod:`.actions.security_api`), Elasticsearch keeps its hash in the replicated ``.security`` index and the
  bootstrap password stops counting ("The Elastic bootstrap password": it is used only until the
  ``elastic`` user has a password of its own). The demo keeps that hash in its cluster state
  (``DemoClusterState.elastic_password_hash``), which every node accepts and persists, so every node of the
  cluster, and a restarted one, accepts the new password and refuses the bootstrap one. A node that never
  joined a cluster has no such state and accepts the bootstrap password, as Elasticsearch's reserved realm
  does while the security index does not exist. The hash is PBKDF2-SHA256 (:func:`hash_password`; the form
  of Elasticsearch's ``pbkdf2`` hashers, ``{PBKDF2}<iterations>$<salt>$<hash>``, "User cache and password
  hash algorithms"), checked through a small cache as Elasticsearch's realms cache authentications.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from es_framework.dev.demo_es import keystore
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.settings import Settings
from es_framework.dev.demo_es.ssl_config import HTTP, TRANSPORT, SslConfig, SslConfigError, load_ssl

ELASTIC_USER = "elastic"
BOOTSTRAP_PASSWORD = "bootstrap.password"
ENV_ELASTIC_PASSWORD = "ELASTIC_PASSWORD"
BASIC_CHALLENGE = 'Basic realm="security" charset="UTF-8"'
TRANSPORT_TLS_CHECK = (
    "Transport SSL must be enabled if security is enabled. Please set [xpack.security.transport.ssl.enabled] to "
    "[true] or disable security by setting [xpack.security.enabled] to [false]"
)


class SecurityError(Exception):
    """Security settings Elasticsearch 8 refuses to start with (exit 1)."""


@dataclass(frozen=True)
class Security:
    enabled: bool = False
    #: The transport's TLS when security is on and ``xpack.security.transport.ssl.enabled`` is true.
    transport: SslConfig | None = None
    #: HTTPS when security is on and ``xpack.security.http.ssl.enabled`` is true.
    http: SslConfig | None = None
    password: str | None = None

    def bootstrap_failures(self) -> list[str]:
        """The x-pack bootstrap checks that fail (``TransportTLSBootstrapCheck``)."""
        return [TRANSPORT_TLS_CHECK] if self.enabled and self.transport is None else []

    def authenticate(self, authorization: str | None, uri: str, password_hash: str | None = None) -> None:
        """Raise 401 unless ``authorization`` is HTTP basic for ``elastic`` with its password: the one whose
        ``password_hash`` the cluster state holds once it was changed, else the bootstrap password."""
        if not self.enabled:
            return
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "basic" or not credentials.strip():
            raise unauthorized(f"missing authentication credentials for REST request [{uri}]")
        try:
            user, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized(f"missing authentication credentials for REST request [{uri}]") from None
        if password_hash is not None:
            accepted = user == ELASTIC_USER and password_matches(password, password_hash)
        else:
            accepted = (
                user == ELASTIC_USER
                and self.password is not None
                and hmac.compare_digest(password.encode("utf-8"), self.password.encode("utf-8"))
            )
        if not accepted:
            raise unauthorized(f"unable to authenticate user [{user}] for REST request [{uri}]")


#: PBKDF2 rounds of :func:`hash_password` (Elasticsearch's ``pbkdf2`` hasher uses 10000).
PBKDF2_ROUNDS = 10000
PBKDF2_PREFIX = "{PBKDF2}"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``password``'s salted PBKDF2-SHA256 hash, ``{PBKDF2}<rounds>$<salt>$<hash>`` (base64)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ROUNDS)
    encoded = (base64.b64encode(part).decode("ascii") for part in (salt, digest))
    return f"{PBKDF2_PREFIX}{PBKDF2_ROUNDS}$" + "$".join(encoded)


@functools.lru_cache(maxsize=64)
def password_matches(password: str, password_hash: str) -> bool:
    """Whether ``password`` is the one hashed in ``password_hash`` (cached: every request authenticates)."""
    try:
        rounds, salt, digest = password_hash.removeprefix(PBKDF2_PREFIX).split("$")
        expected = base64.b64decode(digest, validate=True)
        given = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt), int(rounds))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(given, expected)


def unauthorized(reason: str) -> EsError:
    return EsError(
        401, "security_exception", reason, extra={"header": {"WWW-Authenticate": [BASIC_CHALLENGE, "ApiKey"]}}
    )


def load_security(settings: Settings, environ: Mapping[str, str] | None = None) -> Security:
    """The node's security from its settings, its keystore and (``ELASTIC_PASSWORD``) its environment."""
    env = os.environ if environ is None else environ
    try:
        secure = keystore.read_keystore(settings.config_dir)
    except keystore.KeystoreError as error:
        raise SecurityError(str(error)) from None
    try:
        transport = load_ssl(settings, secure, TRANSPORT)
        http = load_ssl(settings, secure, HTTP)
    except SslConfigError as error:
        raise SecurityError(str(error)) from None
    enabled = settings.get_bool("xpack.security.enabled")
    if not enabled:
        return Security()
    password = secure.get(BOOTSTRAP_PASSWORD) or env.get(ENV_ELASTIC_PASSWORD) or None
    return Security(True, transport, http, password)
