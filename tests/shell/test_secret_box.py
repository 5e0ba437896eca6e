"""Secrets at rest (es_framework/shell/secret_box.py): sealed with the --secretKeyFile key, opened only
with it, never shown."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.config import Secret
from es_framework.shell.secret_box import SealError, SecretBox

KEY = Secret(Fernet.generate_key().decode())
OTHER_KEY = Secret(Fernet.generate_key().decode())


@settings(database=None, deadline=None, max_examples=50)
@given(plain=st.text())
def test_what_is_sealed_opens_with_the_same_key_and_does_not_show(plain: str) -> None:
    box = SecretBox(KEY)
    sealed = box.seal(plain)
    assert box.unseal(sealed) == plain
    if len(plain) >= 4:
        assert plain not in sealed
    sealed.encode("ascii")  # storable in a JSON document as it is


def test_each_seal_differs_so_equal_secrets_do_not_show_as_equal() -> None:
    box = SecretBox(KEY)
    assert box.seal("same") != box.seal("same")


def test_another_key_or_an_altered_token_is_refused_naming_the_flag_not_the_secret() -> None:
    sealed = SecretBox(KEY).seal("the-ca-key")
    with pytest.raises(SealError) as refused:
        SecretBox(OTHER_KEY).unseal(sealed, what="the CA's private key")
    message = str(refused.value)
    assert "--secretKeyFile" in message and "the CA's private key" in message
    assert "the-ca-key" not in message and KEY.reveal() not in message
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[-40] ^= 1
    with pytest.raises(SealError):
        SecretBox(KEY).unseal(base64.urlsafe_b64encode(bytes(raw)).decode())
    with pytest.raises(SealError):
        SecretBox(KEY).unseal("not a token")


def test_a_standard_base64_key_seals_like_its_url_safe_twin() -> None:
    # openssl rand -base64 writes '+' and '/', the README's one-liner '-' and '_': the same 32 bytes.
    raw = bytes(range(250, 256)) + bytes(26)
    url_safe = Secret(base64.urlsafe_b64encode(raw).decode())
    standard = Secret(base64.b64encode(raw).decode())
    assert "+" in standard.reveal() or "/" in standard.reveal()
    assert SecretBox(url_safe).unseal(SecretBox(standard).seal("x")) == "x"


def test_the_box_never_shows_its_key() -> None:
    box = SecretBox(KEY)
    assert KEY.reveal() not in repr(box) and KEY.reveal() not in str(box)
    with pytest.raises(SealError, match="--secretKeyFile"):
        SecretBox(Secret("short"))
