"""Elasticsearch versions: the :class:`EsVersion` value, reading one from text, and the cluster's
**target version** (what the operator means to run).

The target version, as the day-2 issue (12) defines it: ``--elasticsearchVersion`` when given, else
the version the image or distribution names (the tag of ``--elasticsearchDockerImage`` with the
Docker containerizer, the ``elasticsearch-<version>`` of ``--elasticsearchBinaryUrl`` with the Mesos
containerizer), else unknown. An unknown target is no error: the first node confirms it (each node
reports ``GET /``'s ``version.number``, :class:`es_framework.contract.NodeReport`), and the executor,
which knows its Elasticsearch, checks the settings against the version it found.

A tag is read as a version only when it is one es-mesos supports (7.9 or later, 8.x): the default
image's tag is es-mesos' own release (``es-mesos/elasticsearch-executor:0.1.0``), and a tag such as
``latest`` or ``8.15.1-custom`` says nothing certain. Pure: no I/O.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

#: The majors es-mesos runs, and the oldest 7.x (the first with ``node.roles``).
SUPPORTED_MAJORS = (7, 8)
OLDEST_SUPPORTED_7_MINOR = 9
SUPPORTED_TEXT = "es-mesos runs Elasticsearch 7.9 or later and 8.x"

_STRICT = re.compile(r"(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?")
_LEADING = re.compile(r"(\d{1,4})(?:\.(\d{1,4}))?(?:\.(\d{1,4}))?")
#: ``elasticsearch-8.15.1-linux-x86_64.tar.gz``, ``elasticsearch-7.17.24.tar.gz``, ``elasticsearch-8.13.tar.gz``.
_DISTRIBUTION = re.compile(r"elasticsearch-(\d{1,4}\.\d{1,4}(?:\.\d{1,4})?)(?=[-.]|$)")


@dataclass(frozen=True)
class EsVersion:
    """``major.minor[.patch]``; ``minor`` None means only the major is known (e.g. ``ELASTICSEARCH_VERSION=8``).

    Not ordered with ``<``: a version whose minor is unknown is neither before nor after one that
    has it; :meth:`at_least` says so (None) instead of guessing.
    """

    major: int
    minor: int | None = None
    patch: int | None = None

    def __str__(self) -> str:
        parts = [self.major, self.minor, self.patch]
        return ".".join(str(p) for p in parts if p is not None)

    @property
    def supported(self) -> bool:
        if self.major not in SUPPORTED_MAJORS:
            return False
        return self.major != 7 or self.minor is None or self.minor >= OLDEST_SUPPORTED_7_MINOR

    def at_least(self, other: EsVersion) -> bool | None:
        """Whether this version is ``other`` or later; None when the minor needed to tell is unknown."""
        if self.major != other.major:
            return self.major > other.major
        if other.minor is None:
            return True
        if self.minor is None:
            return None
        if self.minor != other.minor:
            return self.minor > other.minor
        if other.patch is None:
            return True
        return None if self.patch is None else self.patch >= other.patch


def parse_es_version(text: str) -> EsVersion:
    """``--elasticsearchVersion``: ``MAJOR.MINOR[.PATCH]`` of a supported Elasticsearch, e.g. ``8.15.1``.

    A major alone is refused: the rules that differ between minors (settings introduced in 7.13,
    8.5, ...) and the upgrade paths need the minor."""
    match = _STRICT.fullmatch(text.strip())
    if match is None:
        raise ValueError("must be an Elasticsearch version MAJOR.MINOR[.PATCH], e.g. 8.15.1")
    version = EsVersion(int(match[1]), int(match[2]), int(match[3]) if match[3] is not None else None)
    if not version.supported:
        raise ValueError(f"is not supported: {SUPPORTED_TEXT}")
    return version


def version_in_text(text: str) -> EsVersion | None:
    """The version at the start of ``text`` (``8.15.1``, ``7.17.0-SNAPSHOT``, ``8`` or ``8 (assumed ...)``),
    None when it starts with no number. For the executor, which reads ``ELASTICSEARCH_VERSION`` or a jar's name."""
    match = _LEADING.match(text.strip())
    if match is None:
        return None
    major, minor, patch = (int(g) if g is not None else None for g in match.groups())
    assert major is not None
    return EsVersion(major, minor, patch)


def image_version(image: str) -> EsVersion | None:
    """The supported Elasticsearch version an image's tag names exactly (``...elasticsearch:8.15.1``), else None."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    match = _STRICT.fullmatch(tag)
    if match is None or match[3] is None:
        return None  # "8.15" could be a moving tag; only a full release names one version
    version = EsVersion(int(match[1]), int(match[2]), int(match[3]))
    return version if version.supported else None


def binary_url_version(url: str) -> EsVersion | None:
    """The supported version in a distribution's file name (``.../elasticsearch-8.15.1-linux-x86_64.tar.gz``)."""
    path = urllib.parse.urlsplit(url).path if "://" in url else url
    name = path.rstrip("/").rsplit("/", 1)[-1]
    match = _DISTRIBUTION.match(name)
    if match is None:
        return None
    version = version_in_text(match[1])
    return version if version is not None and version.supported else None


@dataclass(frozen=True)
class TargetVersion:
    """The version the operator means to run, and where it was read (a flag name, for messages)."""

    version: EsVersion | None
    source: str

    def __str__(self) -> str:
        if self.version is None:
            return "unknown (no --elasticsearchVersion, and the image or distribution names none)"
        return f"{self.version} (from {self.source})"


def target_version(
    explicit: EsVersion | None, *, use_docker: bool, docker_image: str, binary_url: str | None
) -> TargetVersion:
    """The target version: the flag, else what the image (Docker) or distribution (Mesos containerizer) names."""
    if explicit is not None:
        return TargetVersion(explicit, "--elasticsearchVersion")
    if use_docker:
        return TargetVersion(image_version(docker_image), "the tag of --elasticsearchDockerImage")
    found = binary_url_version(binary_url) if binary_url else None
    return TargetVersion(found, "the file name of --elasticsearchBinaryUrl")
