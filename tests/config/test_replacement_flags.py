"""--permanentFailureTimeout (0 = off), --markAgentGoneAfterTimeout, --replacementInterval."""

from __future__ import annotations

import pytest

from es_framework.config import ConfigError, resolve_config


def test_defaults_are_off_false_and_five_minutes() -> None:
    config = resolve_config({}, {})
    assert config.permanent_failure_timeout_s == 0.0
    assert config.mark_agent_gone_after_timeout is False
    assert config.replacement_interval_s == 300.0


@pytest.mark.parametrize("zero", ["0", "0.0", " 0 ", "0e3", "-0"])
def test_any_zero_turns_automatic_replacement_off(zero: str) -> None:
    assert resolve_config({"permanentFailureTimeout": zero}, {}).permanent_failure_timeout_s == 0.0


def test_a_timeout_and_an_interval_are_seconds() -> None:
    config = resolve_config(
        {"permanentFailureTimeout": "5", "markAgentGoneAfterTimeout": "true", "replacementInterval": "0.5"}, {}
    )
    assert (
        config.permanent_failure_timeout_s,
        config.mark_agent_gone_after_timeout,
        config.replacement_interval_s,
    ) == (
        5.0,
        True,
        0.5,
    )


@pytest.mark.parametrize(
    ("flag", "bad"),
    [
        ("permanentFailureTimeout", "-1"),
        ("permanentFailureTimeout", "ten"),
        ("permanentFailureTimeout", "inf"),
        ("permanentFailureTimeout", "nan"),
        ("replacementInterval", "0"),
        ("replacementInterval", "-5"),
        ("markAgentGoneAfterTimeout", "maybe"),
    ],
)
def test_bad_values_are_refused_by_name(flag: str, bad: str) -> None:
    with pytest.raises(ConfigError, match=f"--{flag}"):
        resolve_config({flag: bad}, {})
