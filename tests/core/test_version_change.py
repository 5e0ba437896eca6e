"""refuse_version_change: the Elasticsearch upgrade paths a target version may take (issue 12)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.version_change import refuse_version_change


@pytest.mark.parametrize(
    ("running", "target"),
    [
        ({0: "7.17.24"}, "7.17.24"),  # unchanged
        ({0: "7.17.0"}, "7.17.24"),  # patch upgrade
        ({0: "7.9.0", 1: "7.9.3"}, "7.17.0"),  # minor upgrades within 7
        ({0: "7.17.24"}, "8.15.1"),  # the one major path: 7.17 -> 8
        ({0: "7.17.0"}, "8.0"),
        ({0: "7.17.24", 1: "8.15.1"}, "8.15.1"),  # mid-upgrade, resumed
        ({0: "7.17.24", 1: "8.15.1"}, "8.16.0"),
        ({0: "8.15.2"}, "8.15"),  # same minor, patch not named: not a downgrade
        ({0: "7.17.0-SNAPSHOT"}, "8.1.0"),
        ({0: None, 1: "8.15.1"}, "8.15.1"),  # a node that has not reported constrains nothing
        ({0: None}, "7.9.0"),
        ({}, "8.15.1"),
    ],
)
def test_allowed(running: dict[int, str | None], target: str) -> None:
    assert refuse_version_change(running, target, new_cluster=False) is None


@pytest.mark.parametrize(
    ("running", "target", "words"),
    [
        ({0: "8.15.1"}, "7.17.24", ("node 0", "8.15.1", "7.17.24", "downgrade")),
        ({0: "8.15.1"}, "8.15.0", ("8.15.1", "8.15.0", "downgrade")),
        ({0: "8.16.0"}, "8.15", ("8.16.0", "8.15", "downgrade")),
        ({0: "7.17.24", 3: "8.15.1"}, "7.17.24", ("node 3", "8.15.1", "downgrade")),  # one node already upgraded
        ({0: "8.15.1", 1: "8.16.0"}, "8.15.1", ("node 1", "8.16.0", "downgrade")),
        ({0: "7.16.3"}, "8.15.1", ("node 0", "7.16.3", "7.17", "first")),
        ({0: "7.9.0"}, "8.0.0", ("7.9.0", "7.17", "first")),
        ({0: "7"}, "8.15.1", ("7.17", "first")),  # minor unknown: cannot show it is 7.17
        ({0: "8.15.1"}, "9.0.0", ("no upgrade path", "8.15.1", "9.0.0")),
        ({0: "7.17.24"}, "9.0.0", ("skips a major", "8.x first")),
        ({0: "8.15.1"}, "banana", ("'banana'", "not an Elasticsearch version")),
        ({0: "weird"}, "8.15.1", ("node 0", "'weird'", "not a version")),
    ],
)
def test_refused_names_the_versions(running: dict[int, str | None], target: str, words: tuple[str, ...]) -> None:
    reason = refuse_version_change(running, target, new_cluster=False)
    assert reason is not None
    for word in words:
        assert word in reason


def test_unknown_target() -> None:
    # A new cluster, or one whose nodes have not reported: the first node confirms the version.
    assert refuse_version_change({}, None, new_cluster=True) is None
    assert refuse_version_change({0: None}, None, new_cluster=False) is None
    # Nodes run a known version: an unknown target cannot be checked against it.
    reason = refuse_version_change({0: None, 2: "7.17.24"}, None, new_cluster=False)
    assert reason is not None and "node 2" in reason and "7.17.24" in reason and "--elasticsearchVersion" in reason


def test_new_cluster_still_checks_a_known_target_against_reports() -> None:
    # new_cluster only forgives an unknown target; versions reported are still binding.
    assert refuse_version_change({0: "8.15.1"}, "7.17.0", new_cluster=True) is not None


_VERSIONS = [f"7.{m}.{p}" for m in (9, 16, 17) for p in (0, 3)] + [f"8.{m}.{p}" for m in (0, 15, 16) for p in (0, 1)]


def _key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _oracle(running: str, target: str) -> bool:
    """Elasticsearch's rules restated without the module's comparisons: no downgrade, and across
    majors only from 7.17."""
    a, b = _key(running), _key(target)
    return b >= a and (a[0] == b[0] or (a[:2] == (7, 17) and b[0] == 8))


def test_every_pair_of_versions_follows_the_upgrade_rules() -> None:
    for running, target in itertools.product(_VERSIONS, repeat=2):
        allowed = refuse_version_change({0: running}, target, new_cluster=False) is None
        assert allowed == _oracle(running, target), (running, target)


_version = st.builds(
    lambda major, minor, patch: f"{major}.{minor}.{patch}",
    st.sampled_from([7, 8, 9]),
    st.integers(0, 20),
    st.integers(0, 5),
)


@given(st.dictionaries(st.integers(1, 50), st.one_of(st.none(), _version), max_size=6), _version)
def test_a_cluster_is_allowed_exactly_when_every_reporting_node_is(running: dict[int, str | None], target: str) -> None:
    each = all(_oracle(v, target) for v in running.values() if v is not None)
    reason = refuse_version_change(running, target, new_cluster=False)
    assert (reason is None) == each
    if reason is not None:  # the reason names a node that blocks, and its version
        blocking = [i for i, v in running.items() if v is not None and not _oracle(v, target)]
        assert any(f"node {i} runs Elasticsearch {running[i]}" in reason for i in blocking), reason
