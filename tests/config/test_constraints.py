"""--constraints and --externalVolumeAttribute: Marathon's syntax, and every malformed constraint refused
with the flag named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config.constraints import (
    Constraint,
    constraint,
    parse_attribute_requirement,
    parse_constraints,
    scalar_text,
)
from tests.config.support import cfg, no_db, only_problem


def test_json_list_single_constraint_and_shorthand() -> None:
    assert parse_constraints('[["hostname", "UNIQUE"], ["zone", "GROUP_BY", "2"]]') == (
        Constraint("hostname", "UNIQUE"),
        Constraint("zone", "GROUP_BY", "2"),
    )
    assert parse_constraints('["rack", "LIKE", "rack-[1-3]"]') == (Constraint("rack", "LIKE", "rack-[1-3]"),)
    assert parse_constraints("hostname:UNIQUE; rack:max_per:2") == (
        Constraint("hostname", "UNIQUE"),
        Constraint("rack", "MAX_PER", "2"),
    )
    # The value is everything after the second colon: a regex may contain colons.
    assert parse_constraints("hostname:UNLIKE:10\\.0\\.0\\.1:50[0-9]{2}") == (
        Constraint("hostname", "UNLIKE", "10\\.0\\.0\\.1:50[0-9]{2}"),
    )
    assert parse_constraints('[["rack", "MAX_PER", 2]]') == (Constraint("rack", "MAX_PER", "2"),)
    assert parse_constraints("  ") == ()
    assert parse_constraints("@hostname:CLUSTER") == (Constraint("@hostname", "CLUSTER"),)
    # An empty value is no value (Marathon's reading), which CLUSTER and GROUP_BY allow.
    assert parse_constraints("rack:CLUSTER:") == (Constraint("rack", "CLUSTER"),)


def test_a_constraint_is_quoted_as_written() -> None:
    shorthand, written = parse_constraints("zone:group_by:2;hostname:UNIQUE"), '[["zone", "GROUP_BY"]]'
    assert [str(c) for c in shorthand] == ["zone:group_by:2", "hostname:UNIQUE"]
    assert [str(c) for c in parse_constraints(written)] == ['["zone", "GROUP_BY"]']
    assert str(Constraint("zone", "IS", "a")) == "zone:IS:a"
    assert shorthand[0].public() == ["zone", "GROUP_BY", "2"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("hostname:FOO", "unknown operator 'FOO'"),
        ("hostname", "is not field:OPERATOR[:value]"),
        (":UNIQUE", "field must be a non-empty string"),
        ("hostname:UNIQUE:x", "takes no value"),
        ("rack:LIKE", "needs a value"),
        ("rack:UNLIKE:", "needs a value"),
        ("rack:IS", "needs a value"),
        ("rack:MAX_PER", "needs a value"),
        ("rack:MAX_PER:0", "whole number of at least 1"),
        ("rack:MAX_PER:two", "whole number of at least 1"),
        ("rack:GROUP_BY:-1", "whole number of at least 1"),
        ("rack:GROUP_BY:1.5", "whole number of at least 1"),
        ("rack:LIKE:rack-[", "is not a regular expression"),
        ("@zone:GROUP_BY", "@zone: unknown field"),
        ("@region:UNIQUE", "@region: unknown field"),
        ("[[", "must be a JSON list"),
        ('{"hostname": "UNIQUE"}', "must be a JSON list"),
        ('[["hostname"]]', "a constraint is [field, operator] or [field, operator, value]"),
        ('[["a", "IS", "b", "c"]]', "a constraint is [field, operator] or [field, operator, value]"),
        ('[["rack", "IS", 3]]', "the value must be a string"),
        ('[["rack", "MAX_PER", true]]', "the value must be a string"),
        ('[[1, "UNIQUE"]]', "field must be a non-empty string"),
        ('[["rack", 7]]', "unknown operator 7"),
        ('[["rack", "UNIQUE"], "x"]', "must be a JSON list"),
    ],
)
def test_bad_constraints_are_refused_with_the_flag_named(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_constraints(text)
    assert fragment in str(info.value)
    message = only_problem(constraints=text)
    assert message.startswith("--constraints"), message
    assert fragment in message


def test_the_config_keeps_the_constraints() -> None:
    config = cfg(constraints="zone:GROUP_BY:2;hostname:UNLIKE:agent3.*")
    assert config.constraints == (Constraint("zone", "GROUP_BY", "2"), Constraint("hostname", "UNLIKE", "agent3.*"))
    assert config.public_dict()["constraints"] == [["zone", "GROUP_BY", "2"], ["hostname", "UNLIKE", "agent3.*"]]


def test_external_volume_attribute() -> None:
    assert parse_attribute_requirement("rexray:true") == Constraint("rexray", "IS", "true")
    assert parse_attribute_requirement("scaleio:row8~pool-hdd") == Constraint("scaleio", "IS", "row8~pool-hdd")
    assert parse_attribute_requirement(" rexray ") == Constraint("rexray", "LIKE", ".*")
    assert parse_attribute_requirement("") is None
    for bad in (":true", "rexray:", "  :  "):
        with pytest.raises(ValueError, match="agent attribute name"):
            parse_attribute_requirement(bad)
    message = only_problem(externalVolumeAttribute="rexray:", externalVolumeDriver="rexray")
    assert message.startswith("--externalVolumeAttribute"), message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.8, "0.8"),
        (1.0, "1"),
        (1.0005, "1"),  # the binary value is just below the half
        (1.00051, "1.001"),
        (1.1005, "1.101"),  # ... and here just above it
        (2.5, "2.5"),
        (1234567.0, "1234567"),
        (0.0004, "0"),
        (-0.0001, "0"),
        (3.14159, "3.142"),
    ],
)
def test_scalars_are_compared_as_marathon_formats_them(value: float, text: str) -> None:
    assert scalar_text(value) == text


def test_is_compares_a_written_scalar_as_a_scalar() -> None:
    assert constraint("level", "IS", "0.80").is_value == "0.8"
    assert constraint("level", "IS", "0.8001").is_value == "0.8"
    assert constraint("level", "IS", "10").is_value == "10"
    assert constraint("rack", "IS", "rack-1").is_value == "rack-1"
    assert constraint("level", "IS", ".8").is_value == ".8"  # not Mesos' scalar syntax: text


@no_db
@given(
    field=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    operator=st.sampled_from(["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"]),
    value=st.one_of(st.none(), st.from_regex(r"[a-z0-9.-]{1,8}", fullmatch=True), st.integers(1, 9).map(str)),
)
def test_shorthand_and_json_agree(field: str, operator: str, value: str | None) -> None:
    try:
        expected = constraint(field, operator, value)
    except ValueError:
        return
    shorthand = f"{field}:{operator}" + (f":{value}" if value is not None else "")
    json_form = '[["' + '", "'.join([field, operator, *([value] if value is not None else [])]) + '"]]'
    assert parse_constraints(shorthand) == parse_constraints(json_form) == (expected,)
