"""--elasticsearchSecurity and --secretKeyFile (es_framework/config/flags_security.py,
es_framework/config/secret_key.py): parsed and checked with the other flags, each refusal naming the
flag and saying how to make a key, never quoting one."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from es_framework.cli import main
from es_framework.config.secret_key import SECRET_KEY_HINT, fernet_key, secret_key_problem
from tests.config.support import SECRET_KEY_TEXT, cfg, no_db, only_problem, write_secret_key


def key_file(tmp_path: Path, text: str, name: str = "secret.key") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_without_the_flag_the_mode_is_left_to_the_state_and_no_key_is_needed() -> None:
    config = cfg()
    # Decided at leadership (core/security_mode.py): auto for a new cluster, the recorded mode otherwise.
    assert config.elasticsearch_security is None and not config.creates_ca
    assert config.secret_key is None
    assert not any("elasticsearchSecurity" in w or "secretKeyFile" in w for w in config.warnings)


def test_local_mode_without_the_flag_stays_off_as_before() -> None:
    config = cfg(mesosMaster="local")
    assert config.elasticsearch_security == "off" and config.security_warning is not None


def test_auto_secures_the_nodes_and_says_that_the_key_is_stored_unsealed() -> None:
    config = cfg(elasticsearchSecurity="AUTO")
    assert config.elasticsearch_security == "auto" and config.creates_ca
    assert config.security_warning is None
    (unsealed,) = (w for w in config.warnings if "without --secretKeyFile" in w)
    assert "ZooKeeper credentials" in unsealed and "python3 -c" in unsealed


def test_auto_with_a_key_stores_it_sealed_and_says_nothing_about_unsealed(tmp_path: Path) -> None:
    config = cfg(elasticsearchSecurity="auto", secretKeyFile=write_secret_key(tmp_path))
    assert config.secret_key is not None and config.secret_key.reveal() == SECRET_KEY_TEXT
    assert not any("without --secretKeyFile" in w for w in config.warnings)
    assert config.public_dict()["secretKeyFile"] == "****"
    assert config.public_dict()["elasticsearchSecurity"] == "auto"


def test_a_key_with_security_off_is_ignored_with_a_warning(tmp_path: Path) -> None:
    config = cfg(elasticsearchSecurity="off", secretKeyFile=write_secret_key(tmp_path))
    assert any(w.startswith("--secretKeyFile is ignored with --elasticsearchSecurity off") for w in config.warnings)


def test_an_unknown_mode_is_refused_naming_the_flag() -> None:
    message = only_problem(elasticsearchSecurity="on")
    assert message.startswith("--elasticsearchSecurity: 'on' ") and "auto, off" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (base64.urlsafe_b64encode(bytes(16)).decode(), "holds 16 bytes once base64-decoded, not 32"),
        (base64.urlsafe_b64encode(bytes(48)).decode(), "holds 48 bytes"),
        ("not a key at all!", "is not base64 text"),
        (SECRET_KEY_TEXT.rstrip("="), "is not base64 text"),  # padding left out
    ],
)
def test_a_file_that_is_not_a_key_is_refused_naming_the_flag_and_how_to_make_one(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = only_problem(elasticsearchSecurity="auto", secretKeyFile=key_file(tmp_path, text))
    assert message.startswith("--secretKeyFile: the file ") and expected in message
    assert SECRET_KEY_HINT in message
    assert text not in message


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: str(p / "missing.key"), "names a file that does not exist"),
        (lambda p: key_file(p, ""), "names an empty file"),
        (lambda p: key_file(p, "a\nb"), "more than one line"),
        (str, "cannot be read"),  # a directory
    ],
)
def test_a_missing_or_unreadable_key_file_is_refused_naming_the_flag(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    message = only_problem(elasticsearchSecurity="auto", secretKeyFile=make(tmp_path))
    assert message.startswith("--secretKeyFile") and expected in message


def test_es_framework_config_refuses_a_bad_key_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = key_file(tmp_path, base64.b64encode(bytes(10)).decode())
    status = main(
        [
            "config",
            "--mesosMaster",
            "zk://zk1:2181/mesos",
            "--insecureApi",
            "true",
            "--elasticsearchSecurity",
            "auto",
            "--secretKeyFile",
            bad,
        ],
        env={},
    )
    assert status == 2
    assert "--secretKeyFile: the file holds 10 bytes" in capsys.readouterr().err


@no_db
@given(raw=st.binary(min_size=32, max_size=32), url_safe=st.booleans(), newline=st.booleans())
def test_every_32_byte_key_in_either_alphabet_is_accepted_and_fernet_takes_it(
    raw: bytes, url_safe: bool, newline: bool
) -> None:
    text = (base64.urlsafe_b64encode if url_safe else base64.b64encode)(raw).decode()
    assert secret_key_problem(text + ("\n" if newline else "")) is None
    Fernet(fernet_key(text))  # raises for a key Fernet would not take


@no_db
@given(text=st.text(alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/-_= \n."), max_size=60))
def test_whatever_the_check_accepts_fernet_accepts(text: str) -> None:
    if secret_key_problem(text) is None:
        Fernet(fernet_key(text))


def test_the_hints_one_liner_makes_a_key_the_check_accepts() -> None:
    # The same expression SECRET_KEY_HINT and the README give, run here.
    made = base64.urlsafe_b64encode(os.urandom(32)).decode()
    assert "base64.urlsafe_b64encode(os.urandom(32)).decode()" in SECRET_KEY_HINT
    assert secret_key_problem(made) is None
