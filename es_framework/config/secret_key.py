"""The form of ``--secretKeyFile``'s key, checked with the other flags (pure, standard library only).

The key seals the secrets the scheduler keeps in its state (:mod:`es_framework.shell.secret_box`,
Fernet): 32 random bytes, base64-encoded. Fernet reads the URL-safe alphabet only, while
``openssl rand -base64`` writes the standard one (``+``, ``/``): a key in either alphabet, with its
padding and nothing else, is accepted here and handed to Fernet in the URL-safe form
(:func:`fernet_key`), so a key this check accepts is one Fernet takes (the tests check it).
The file itself is read like every secret flag's file
(:func:`es_framework.config.resolve.resolve_config`: missing, unreadable, empty or several lines are
refused there, naming the flag).
"""

from __future__ import annotations

import base64
import binascii

#: Fernet's key: 32 bytes (16 to sign, 16 to encrypt), base64-encoded.
KEY_BYTES = 32
#: How to make a key, said wherever one is refused (the README says the same).
SECRET_KEY_HINT = (
    "a key is 32 random bytes in base64 (44 characters); make one with "
    '\'python3 -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode(), end=str())" '
    "> secret.key && chmod 600 secret.key' or 'openssl rand -base64 32 | tr -d \"\\n\" > secret.key'"
)


def secret_key_problem(text: str) -> str | None:
    """Why ``text`` (the key file's one line) is not a key, without quoting it; ``None`` if it is one."""
    standard = text.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        return f"is not base64 text; {SECRET_KEY_HINT}"
    if len(raw) != KEY_BYTES:
        return f"holds {len(raw)} bytes once base64-decoded, not {KEY_BYTES}; {SECRET_KEY_HINT}"
    return None


def fernet_key(text: str) -> str:
    """The key in the URL-safe form Fernet reads (a standard-base64 key has ``+``/``/``)."""
    return text.strip().replace("+", "-").replace("/", "_")
