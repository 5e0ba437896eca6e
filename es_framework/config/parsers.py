"""The per-flag value parsers: text in, a value out, or :class:`ValueError` saying what is allowed.

Each message completes ``--flag: 'value' …`` (see :func:`es_framework.config.resolve.resolve_config`),
so it starts with what the value "must be". The URL-shaped flags parse with the one grammar of
:mod:`es_framework.config.urls`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, urlsplit

from es_framework.config.urls import UrlError, parse_file_url, parse_state_url
from es_framework.config.values import RESERVED_LABEL_PREFIX, Ports, Secret
from identity.naming import framework_name_problem

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be true or false")


def parse_positive_number(text: str, *, unit: str = "") -> float:
    if not _DECIMAL.fullmatch(text.strip()):
        raise ValueError(f"must be a number greater than 0{unit}")
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a number greater than 0{unit}")
    # Mesos keeps scalars to three decimal places; anything finer is silently lost there.
    rounded = round(value, 3)
    if rounded <= 0:
        raise ValueError(f"must be at least 0.001{unit} (Mesos keeps three decimal places)")
    return rounded


def parse_seconds_or_off(text: str) -> float:
    """Seconds greater than 0, or 0 (in any spelling of zero) for off."""
    if _DECIMAL.fullmatch(text.strip()) and float(text) == 0:
        return 0.0
    return parse_positive_number(text, unit=" (seconds), or 0 for off")


# ASCII only: int() and float() also take "１０", "1_000" and "infinity", which no operator means.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _ascii_int(text: str) -> int:
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise ValueError(f"{text!r} is not an integer")
    return int(stripped)


def parse_int_in(text: str, low: int, high: int | None = None, what: str = "an integer") -> int:
    allowed = f"{what} from {low} to {high}" if high is not None else f"{what} of at least {low}"
    try:
        value = _ascii_int(text)
    except ValueError:
        raise ValueError(f"must be {allowed}") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"must be {allowed}")
    return value


def parse_ports(text: str) -> Ports:
    stripped = text.strip()
    allowed = "must be empty (both from the offer) or HTTP,TRANSPORT: two integers, each 0 (from the offer) or 1-65535"
    if not stripped:
        return Ports()
    parts = stripped.split(",")
    if len(parts) != 2:
        raise ValueError(allowed)
    try:
        http, transport = (_ascii_int(p) for p in parts)
    except ValueError:
        raise ValueError(allowed) from None
    if not all(0 <= p <= 65535 for p in (http, transport)):
        raise ValueError(allowed)
    if http and http == transport:
        raise ValueError("the HTTP and transport ports must differ")
    return Ports(http, transport)


def _urlsplit(text: str, allowed: str) -> SplitResult:
    # For the URLs that requests or the Mesos fetcher download: they parse them, so only the
    # scheme and host are checked here; zk://, file:// and Mesos master URLs go through urls.py.
    try:
        return urlsplit(text)
    except ValueError:  # e.g. "Invalid IPv6 URL", which would not say what is allowed
        raise ValueError(allowed) from None


def parse_key_values(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k=v`` (volume driver options). Empty means none."""
    allowed = "must be a comma-separated list of key=value (e.g. size=100,volumetype=io1,iops=3000)"
    stripped = text.strip()
    if not stripped:
        return ()
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in stripped.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]+", key) or not value or '"' in value or "'" in value:
            raise ValueError(f"{allowed}; {item.strip()!r} is not")
        if key in seen:
            raise ValueError(f"{allowed}; {key!r} is given twice")
        seen.add(key)
        pairs.append((key, value))
    return tuple(pairs)


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v k=v`` (whitespace- or comma-separated), as the Java framework took them."""
    allowed = "must be key=value items separated by spaces or commas"
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"{allowed}; {item!r} is not")
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise ValueError(
                f"label keys starting with {RESERVED_LABEL_PREFIX!r} belong to the framework; {key!r} is not allowed"
            )
        if key in seen:
            raise ValueError(f"label {key!r} is given twice")
        seen.add(key)
        pairs.append((key, value))
    return tuple(pairs)


def parse_framework_name(text: str) -> str:
    problem = framework_name_problem(text)
    if problem:
        raise ValueError(f"is not allowed: {problem}")
    return text


def parse_cluster_name(text: str) -> str:
    # The name is a path segment (state znode, data directory) and Elasticsearch forbids ':'.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", text):
        raise ValueError(
            "must be letters, digits, '.', '_' or '-', starting with a letter or digit, at most 255 characters"
        )
    return text


_ROLE_FORBIDDEN = re.compile(r"[\s\\\x00-\x1f\x7f]")


def parse_role(text: str) -> str:
    allowed = (
        "must be '*' or a Mesos role name (no spaces or '\\', not starting with '-', no '.', '..' or empty path parts)"
    )
    if text == "*":
        return text
    if not text or _ROLE_FORBIDDEN.search(text) or text.startswith("-"):
        raise ValueError(allowed)
    if any(part in ("", ".", "..") or part.startswith("-") for part in text.split("/")) or "*" in text:
        raise ValueError(allowed)
    return text


def parse_principal(text: str) -> str:
    if not text or re.search(r"\s", text):
        raise ValueError("must be a non-empty name without whitespace")
    return text


def parse_docker_image(text: str) -> str:
    component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    registry = r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?"
    tag = r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    digest = r"(?:@sha256:[0-9a-f]{64})?"
    pattern = rf"{registry}{component}(?:/{component})*{tag}{digest}"
    if not re.fullmatch(pattern, text):
        raise ValueError("must be a Docker image reference such as registry.example.com/es-mesos/executor:1.0")
    return text


def parse_executor_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ValueError("must be letters, digits, '.', '_' or '-', starting with a letter or digit")
    return text


def parse_absolute_path(text: str) -> str:
    if not text.startswith("/") or any(part in (".", "..") for part in text.split("/")):
        raise ValueError("must be an absolute path without '.' or '..' parts")
    return text.rstrip("/") or "/"


def _location(text: str, schemes: tuple[str, ...]) -> str:
    """A path (which must exist here) or a URL with one of ``schemes``."""
    if "://" in text:
        allowed = f"must be a path or a URL with scheme {', '.join(schemes)}"
        parts = _urlsplit(text, allowed)
        if parts.scheme not in schemes or (parts.scheme != "file" and not parts.netloc):
            raise ValueError(allowed)
        if parts.scheme == "file":
            try:
                path = str(parse_file_url(text).path)
            except UrlError as exc:
                raise ValueError(f"{allowed} ({exc})") from None
            if not os.path.isfile(path):
                raise ValueError(f"names the file {path!r}, which does not exist")
        return text
    if not os.path.isfile(text):
        raise ValueError("is neither an existing file nor a URL")
    return text


def parse_local_work_dir(text: str) -> str:
    if not text.strip() or "\x00" in text:
        raise ValueError("must be a directory path")
    return text


def parse_settings_location(text: str) -> str:
    return _location(text, ("http", "https", "file"))


def parse_binary_url(text: str) -> str:
    # The Mesos fetcher downloads it on the agent, so a URL cannot be checked from here.
    if "://" in text:
        allowed = "must be a URL the Mesos fetcher understands (http, https, ftp, hdfs, s3, file) or an absolute path"
        parts = _urlsplit(text, allowed)
        if parts.scheme not in ("http", "https", "ftp", "ftps", "hdfs", "s3", "s3a", "s3n", "file") or not (
            parts.netloc or parts.scheme == "file"
        ):
            raise ValueError(allowed)
        return text
    return parse_absolute_path(text)


def parse_volume_driver(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}", text):
        raise ValueError("must be a Docker volume driver name such as rexray or rexray/ebs:latest")
    return text


def parse_volume_method(text: str) -> str:
    if text not in ("dockerVolume", "dvdi"):
        raise ValueError("must be dockerVolume (docker/volume isolator) or dvdi (mesos-module-dvdi)")
    return text


#: The roles of a node's two external volumes.
VOLUME_ROLES = ("config", "data")


def parse_volume_profile(text: str) -> tuple[tuple[str, str], ...]:
    """``--volumeProfile data=gold,config=default``: a profile name per volume role."""
    pairs = parse_key_values(text)
    seen: set[str] = set()
    for role, profile in pairs:
        if role not in VOLUME_ROLES:
            raise ValueError(f"must name the volume roles config and data (role=profile), not {role!r}")
        if role in seen:
            raise ValueError(f"names the profile of {role!r} twice")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", profile):
            raise ValueError(f"{role}={profile!r}: a profile name is letters, digits, '_', '.' and '-'")
        seen.add(role)
    return pairs


def parse_volume_retention(text: str) -> str:
    value = text.strip().lower()
    if value not in ("keep", "delete"):
        raise ValueError("must be keep or delete")
    return value


def parse_user(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", text):
        raise ValueError("must be a Unix user name")
    if text == "root":
        raise ValueError("must not be root: Elasticsearch refuses to run as root")
    return text


def parse_state_url_secret(text: str) -> Secret:
    """``--frameworkStateUrl``, checked by :func:`es_framework.config.urls.parse_state_url` and kept
    whole as a :class:`Secret`: it may hold ZooKeeper credentials."""
    parse_state_url(text)
    return Secret(text)


def optional(parser: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return parser(text) if text.strip() else None

    return parse
