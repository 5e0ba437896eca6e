from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import (
    FrameworkNameError,
    TaskIdError,
    framework_name_problem,
    new_launch_id,
    node_id_from_task_id,
    node_name,
    task_id_for,
    try_node_id_from_task_id,
    validate_framework_name,
    volume_names,
)

framework_names = st.from_regex(r"\A[a-z](?:[a-z0-9-]{0,20}[a-z])?\Z")
node_ids = st.integers(min_value=1, max_value=10**9)


def test_volume_names_as_in_the_design() -> None:
    assert volume_names("elasticsearch", 1) == ("elasticsearch1config", "elasticsearch1data")
    assert volume_names("es-prod", 12) == ("es-prod12config", "es-prod12data")
    assert node_name("elasticsearch", 2) == "elasticsearch2"


@pytest.mark.parametrize("name", ["elasticsearch", "es", "e", "es-prod", "logs-eu-west-x", "a" * 63])
def test_valid_framework_names(name: str) -> None:
    assert framework_name_problem(name) is None
    assert validate_framework_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("es1", "ends with a digit"),
        ("es-2", "ends with a digit"),
        ("Es", "lowercase"),
        ("-es", "lowercase letters"),
        ("es-", "ending with a letter"),
        ("1es", "starting"),
        ("es_prod", "lowercase letters"),
        ("es.prod", "lowercase letters"),
        ("es prod", "lowercase letters"),
        ("a" * 64, "at most 63"),
        ("es\n", "lowercase letters"),
    ],
)
def test_invalid_framework_names(name: str, why: str) -> None:
    problem = framework_name_problem(name)
    assert problem is not None and why in problem
    with pytest.raises(FrameworkNameError, match=re.escape(repr(name))):
        validate_framework_name(name)
    with pytest.raises(FrameworkNameError):
        volume_names(name, 1)


def test_digit_ending_names_would_collide_which_is_why_they_are_refused() -> None:
    # The collision the rule prevents: es1 + node 12 and es11 + node 2.
    assert "es1" + "12" + "data" == "es11" + "2" + "data"
    assert framework_name_problem("es1") is not None and framework_name_problem("es11") is not None


@given(a=framework_names, b=framework_names, id_a=node_ids, id_b=node_ids)
def test_volume_names_never_collide_across_frameworks_or_ids(a: str, b: str, id_a: int, id_b: int) -> None:
    names_a = set(volume_names(a, id_a))
    names_b = set(volume_names(b, id_b))
    if (a, id_a) != (b, id_b):
        assert not names_a & names_b
    else:
        assert names_a == names_b


@given(name=framework_names)
def test_framework_names_are_dns_labels_and_docker_volume_prefixes(name: str) -> None:
    assert re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", name)
    for volume in volume_names(name, 7):
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", volume)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_node_names_need_a_positive_integer_id(bad: object) -> None:
    with pytest.raises(ValueError, match="1 or greater"):
        volume_names("elasticsearch", bad)  # type: ignore[arg-type]


@given(name=framework_names, node_id=node_ids)
def test_task_id_round_trip(name: str, node_id: int) -> None:
    launch = new_launch_id()
    task_id = task_id_for(name, node_id, launch)
    assert task_id == f"{name}-node{node_id}-{launch}"
    assert node_id_from_task_id(task_id, name) == node_id


def test_task_ids_are_unique_per_launch() -> None:
    ids = {task_id_for("elasticsearch", 2, new_launch_id()) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(node_id_from_task_id(t, "elasticsearch") == 2 for t in ids)


def test_task_id_with_a_hyphenated_framework_name_that_contains_node() -> None:
    launch = "0" * 32
    task_id = task_id_for("es-node-x", 3, launch)
    assert node_id_from_task_id(task_id, "es-node-x") == 3
    assert try_node_id_from_task_id(task_id, "es") is None


@pytest.mark.parametrize(
    "task_id",
    [
        "",
        "elasticsearch",
        "elasticsearch-node0-" + "a" * 32,
        "elasticsearch-node01-" + "a" * 32,
        "elasticsearch-node-1-" + "a" * 32,
        "elasticsearch-node2-" + "A" * 32,
        "elasticsearch-node2-" + "a" * 31,
        "elasticsearch-node2-" + "a" * 33,
        "elasticsearch-node2",
        "elasticsearch_2",
        "elasticsearch-node2-" + "a" * 32 + "\n",
        "other-node2-" + "a" * 32,
    ],
)
def test_foreign_or_malformed_task_ids_are_never_guessed(task_id: str) -> None:
    with pytest.raises(TaskIdError):
        node_id_from_task_id(task_id, "elasticsearch")
    assert try_node_id_from_task_id(task_id, "elasticsearch") is None


def test_task_id_of_another_framework_names_it() -> None:
    with pytest.raises(TaskIdError, match="belongs to framework 'logs'"):
        node_id_from_task_id("logs-node2-" + "a" * 32, "elasticsearch")


@pytest.mark.parametrize("launch", ["", "xyz", "A" * 32, "a" * 31])
def test_task_id_for_refuses_bad_launch_ids(launch: str) -> None:
    with pytest.raises(ValueError, match="launch id"):
        task_id_for("elasticsearch", 1, launch)
