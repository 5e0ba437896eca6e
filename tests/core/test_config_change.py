"""A runtime configuration change, decided (es_framework/core/config_change.py, pure): the body's
flags, validated by the command line's own parsers and cross-flag rules (the same messages, checked
against resolve_config with hypothesis), which flags may change, the overrides a change keeps, the
decision (no change, 409 while a rollout runs, 409 for an unreachable version, the configuration
rollout), and the rule at start (a flag given with another value than the override was made over
wins and drops the override)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.config import FLAGS_BY_NAME, ConfigError, resolve_config
from es_framework.core.config_change import (
    CHANGEABLE_FLAGS,
    NUMBER_FLAGS,
    at_start,
    decide,
    fingerprint,
    flag_value,
    propose,
    requested_texts,
)
from es_framework.core.config_overrides import NO_OVERRIDES, ConfigOverrides, Override
from es_framework.core.config_record import record_configuration
from es_framework.core.engine_rollouts import configuration_rollout
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.operations import OperatorError
from es_framework.core.rollouts import RolloutReason, plan_rollout
from tests.harness.builders import config

FLAGS = config(elasticsearchRam="2048")


def refusal(body: dict[str, object]) -> OperatorError:
    with pytest.raises(OperatorError) as raised:
        requested_texts(body)
    return raised.value


def test_unknown_flags_are_refused_with_the_closest_names() -> None:
    refused = refusal({"elasticsearchRan": 4096})
    assert refused.status == 400 and "unknown flag 'elasticsearchRan'" in refused.message
    assert "did you mean elasticsearchRam" in refused.message
    # The README's old spelling of the settings: the file's flag is the closest.
    assert "elasticsearchSettingsLocation" in refusal({"elasticsearchSettings": "x"}).message
    assert "did you mean" not in refusal({"zzzz": 1}).message


def test_a_flag_that_shapes_the_framework_needs_a_restart() -> None:
    for name in sorted(set(FLAGS_BY_NAME) - set(CHANGEABLE_FLAGS)):
        refused = refusal({name: "x"})
        assert refused.status == 400, name
        assert f"{name} cannot be changed at runtime: it needs a scheduler restart with --{name}" in refused.message


def test_the_changeable_flags_are_flags_and_shape_the_node_task() -> None:
    from es_framework.core.config_record import config_values

    shaping = set(config_values(FLAGS)) | {"elasticsearchVersion"}  # the version: the settings' target
    assert set(CHANGEABLE_FLAGS) <= shaping and set(CHANGEABLE_FLAGS) <= set(FLAGS_BY_NAME)
    assert set(CHANGEABLE_FLAGS) >= NUMBER_FLAGS


def test_values_become_command_line_texts_and_other_types_are_refused() -> None:
    body = {
        "elasticsearchRam": 4096,
        "elasticsearchCpu": 1.5,
        "elasticsearchDisk": "100",
        "elasticsearchBinaryUrl": None,
    }
    texts = {
        "elasticsearchRam": "4096",
        "elasticsearchCpu": "1.5",
        "elasticsearchDisk": "100",
        "elasticsearchBinaryUrl": "",
    }
    assert requested_texts(body) == texts
    wrong: tuple[tuple[dict[str, object], str], ...] = (
        ({"elasticsearchRam": True}, "a boolean"),
        ({"elasticsearchRam": None}, "null"),
        ({"elasticsearchDockerImage": 5}, "a number"),
        ({"elasticsearchDockerImage": ["a"]}, "a list"),
        ({"elasticsearchVersion": {"v": 1}}, "an object"),
    )
    for body, word in wrong:
        refused = refusal(body)
        assert refused.status == 400 and f"not {word}" in refused.message, body
    assert "no flag to change" in refusal({}).message


def resolve_problem(name: str, text: str) -> str | None:
    try:
        resolve_config({name: text}, {})
    except ConfigError as error:
        (problem,) = error.problems
        return problem
    return None


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(NUMBER_FLAGS)),
    st.one_of(st.text(max_size=8), st.integers(-5, 10**6).map(str), st.floats(allow_nan=True).map(repr)),
)
def test_a_value_is_refused_exactly_when_and_as_the_command_line_refuses_it(name: str, text: str) -> None:
    expected = resolve_problem(name, text)
    try:
        proposal = propose(FLAGS, FLAGS, NO_OVERRIDES, {name: text}, now=1.0)
    except ConfigError as error:
        assert list(error.problems) == [expected]
    else:
        assert expected is None
        assert flag_value(proposal.config, name) == flag_value(resolve_config({name: text}, {}), name)


def test_the_command_lines_rules_between_flags_hold_for_a_change() -> None:
    mesos = config(frameworkUseDocker="false", elasticsearchBinaryUrl="http://example.com/es-8.15.1.tar.gz")
    with pytest.raises(ConfigError) as raised:
        propose(mesos, mesos, NO_OVERRIDES, {"elasticsearchBinaryUrl": ""}, now=1.0)
    assert raised.value.problems == (
        "--frameworkUseDocker false needs --elasticsearchBinaryUrl (the Mesos containerizer has no image)",
    )
    small = propose(FLAGS, FLAGS, NO_OVERRIDES, {"elasticsearchRam": "600"}, now=1.0)
    assert any("--elasticsearchRam 600 MB gives a heap" in w for w in small.config.warnings)


def test_overrides_are_kept_over_the_start_flags_and_a_start_value_removes_its_own() -> None:
    first = propose(FLAGS, FLAGS, NO_OVERRIDES, {"elasticsearchRam": "4096"}, now=10.0)
    assert first.changed == ("elasticsearchRam",) and first.config.mem_mb == 4096
    assert dict(first.overrides.flags) == {"elasticsearchRam": Override("4096", 2048.0, 10.0)}
    second = propose(FLAGS, first.config, first.overrides, {"elasticsearchCpu": "2"}, now=20.0)
    assert second.changed == ("elasticsearchCpu",)
    assert (second.config.cpus, second.config.mem_mb) == (2.0, 4096)
    assert second.overrides.flags["elasticsearchRam"] == Override("4096", 2048.0, 10.0)  # kept as made
    back = propose(FLAGS, second.config, second.overrides, requested_texts({"elasticsearchRam": 2048}), now=30.0)
    assert set(back.overrides.flags) == {"elasticsearchCpu"} and back.config.mem_mb == 2048


def running_state(n: int = 3, **record: object) -> ClusterState:
    nodes = {
        i: NodeRecord(i, f"elasticsearch{i}.x", f"agent-{i}", f"host{i}", 9200, 9300, TaskState.RUNNING, **record)  # type: ignore[arg-type]
        for i in range(1, n + 1)
    }
    return record_configuration(ClusterState(desired_nodes=n, nodes=MappingProxyType(nodes)), FLAGS, now=1.0)


def test_no_change_is_no_change() -> None:
    state = running_state()
    proposal = propose(FLAGS, FLAGS, NO_OVERRIDES, {"elasticsearchRam": "2048.0"}, now=5.0)
    decision = decide(state, FLAGS, proposal, now=5.0, elected_master=None)
    assert decision.state is state and decision.rollout is None and decision.changed == ()
    assert "no change" in decision.message


def test_a_change_creates_the_rollout_a_restart_with_those_flags_creates() -> None:
    state = running_state()
    proposal = propose(FLAGS, FLAGS, NO_OVERRIDES, {"elasticsearchRam": "4096"}, now=5.0)
    decision = decide(state, FLAGS, proposal, now=5.0, elected_master=2)
    restarted, _ = configuration_rollout(
        state,
        record_configuration(state, config(elasticsearchRam="4096"), now=5.0),
        now=5.0,
        elected_master=2,
        master_nodes=3,
    )
    assert decision.rollout is not None and decision.rollout == restarted.rollout
    assert decision.rollout.reason is RolloutReason.CONFIGURATION and decision.rollout.order[-1] == 2
    assert decision.state.config == restarted.config and decision.state.config_overrides == proposal.overrides
    assert decision.state.config is not None and decision.state.config["fingerprint"] == fingerprint(proposal.config)
    assert f"rollout {decision.rollout.id} restarts nodes" in decision.message


def test_a_change_while_a_rollout_runs_is_refused() -> None:
    state = running_state()
    rollout = plan_rollout(state, RolloutReason.RESTART, 3.0, None, master_nodes=3, target="")
    busy = replace(state, rollout=rollout)
    proposal = propose(FLAGS, FLAGS, NO_OVERRIDES, {"elasticsearchCpu": "2"}, now=5.0)
    with pytest.raises(OperatorError) as raised:
        decide(busy, FLAGS, proposal, now=5.0, elected_master=None)
    assert raised.value.status == 409
    assert f"rollout {rollout.id} (restart) in progress; abort it first" in raised.value.message


def test_a_version_the_nodes_cannot_reach_is_refused() -> None:
    v7 = config(elasticsearchDockerImage="docker.elastic.co/elasticsearch/elasticsearch:7.10.2")
    state = running_state(version="7.10.2", seen_running=True)
    proposal = propose(v7, v7, NO_OVERRIDES, {"elasticsearchVersion": "8.15.1"}, now=5.0)
    with pytest.raises(OperatorError) as raised:
        decide(state, v7, proposal, now=5.0, elected_master=None)
    assert raised.value.status == 409 and "7.17" in raised.value.message
    fine = propose(v7, v7, NO_OVERRIDES, {"elasticsearchVersion": "7.17.20"}, now=5.0)
    assert decide(state, v7, fine, now=5.0, elected_master=None).changed == ("elasticsearchVersion",)


def stored(**overrides: Override) -> ConfigOverrides:
    return ConfigOverrides(MappingProxyType(overrides))


def test_at_start_the_overrides_apply_to_the_same_flags() -> None:
    start = at_start(FLAGS, stored(elasticsearchRam=Override("4096", 2048.0, 1.0)))
    assert start.config.mem_mb == 4096 and start.lines == ()
    assert set(start.overrides.flags) == {"elasticsearchRam"}
    assert at_start(FLAGS, NO_OVERRIDES).config is FLAGS


def test_at_start_a_flag_given_with_another_value_wins_and_drops_its_override() -> None:
    start = at_start(
        config(elasticsearchRam="3072"),
        stored(elasticsearchRam=Override("4096", 2048.0, 1.0), elasticsearchCpu=Override("2", 1.0, 1.0)),
    )
    assert (start.config.mem_mb, start.config.cpus) == (3072, 2.0)
    assert set(start.overrides.flags) == {"elasticsearchCpu"}
    (line,) = start.lines
    assert "--elasticsearchRam '3072.0' given at start differs from '2048.0'" in line and "dropped" in line


def test_at_start_overrides_that_no_longer_apply_are_dropped_and_said() -> None:
    start = at_start(FLAGS, stored(frameworkName=Override("x", "elasticsearch", 1.0)))
    assert start.config is FLAGS and start.overrides.empty and "not changeable" in start.lines[0]
    mesos = config(frameworkUseDocker="false", elasticsearchBinaryUrl="http://example.com/es.tar.gz")
    broken = at_start(mesos, stored(elasticsearchBinaryUrl=Override("", "http://example.com/es.tar.gz", 1.0)))
    assert broken.config is mesos and broken.overrides.empty and "all are dropped" in broken.lines[-1]
