"""Secrets at rest: what the scheduler stores in its state sealed with the key of ``--secretKeyFile``.

Fernet (``cryptography.fernet``: AES-128-CBC with an HMAC-SHA256 over the whole token, a random IV)
seals and authenticates, so a token altered in ZooKeeper, or sealed with another key, is refused
rather than read as garbage. Sealing draws the IV from the system's randomness and stamps the time,
which is why this lives at the edge and not in the pure core. The key file's text was read and its
form checked with the flags (:mod:`es_framework.config.secret_key`); the key never appears in a
message.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from es_framework.config import Secret
from es_framework.config.secret_key import SECRET_KEY_HINT, fernet_key


class SealError(ValueError):
    """A sealed value cannot be opened with this key."""


class SecretBox:
    """Seals and opens secrets with one ``--secretKeyFile`` key."""

    __slots__ = ("_fernet",)

    def __init__(self, key: Secret) -> None:
        try:
            self._fernet = Fernet(fernet_key(key.reveal()))
        except ValueError:
            # resolve_config checked the form already; reached only with a key from elsewhere.
            raise SealError(f"--secretKeyFile does not hold a key: {SECRET_KEY_HINT}") from None

    def __repr__(self) -> str:
        return "SecretBox(****)"

    def seal(self, plain: str) -> str:
        """``plain`` sealed: URL-safe base64 text, safe to store in a JSON document."""
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str, *, what: str = "a sealed secret") -> str:
        """The text :meth:`seal` sealed; :class:`SealError` naming ``what`` (never the secret) when the
        token was altered or sealed with another key."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SealError(
                f"{what} in the framework state cannot be opened with the key of --secretKeyFile: it was sealed "
                "with another key, or altered. Give the --secretKeyFile the state was written with"
            ) from None
