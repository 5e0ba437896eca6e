"""The executor's own bootstrap checks (pure): when Elasticsearch enforces them, each agent-dependent
check with Elasticsearch's threshold, the values read or injected, and Elasticsearch's own messages
read back into the same checks."""

from __future__ import annotations

import json
import resource
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework import contract
from es_framework.contract import AgentCheckReport
from es_framework.executor import bootstrap_checks as bc
from es_framework.executor.bootstrap_checks import UNLIMITED, AgentLimits, BootstrapCheckError

#: An agent prepared for Elasticsearch: every check passes.
GOOD = AgentLimits(
    max_map_count=262144,
    max_file_descriptors=65535,
    max_threads=4096,
    memlock=UNLIMITED,
    max_virtual_memory=UNLIMITED,
    max_file_size=UNLIMITED,
)
HOSTS = {
    "agent1.example.com": ("10.0.0.1",),
    "loopy": ("127.0.1.1",),
    "localhost": ("127.0.0.1", "::1"),
    "mixed": ("127.0.0.1", "10.0.0.2"),
}


def resolve(name: str) -> tuple[str, ...]:
    if name not in HOSTS:
        raise OSError(f"[Errno -2] Name or service not known: {name}")
    return HOSTS[name]


def names(checks: tuple[contract.AgentCheck, ...]) -> list[str]:
    return [check.name for check in checks]


def short(**limits: int) -> AgentLimits:
    return AgentLimits(**{**GOOD.__dict__, **limits})


# ---------------------------------------------------------------------- the checks


def test_a_prepared_agent_passes_every_check_even_with_memory_locking() -> None:
    assert bc.failures(GOOD, {"bootstrap.memory_lock": "true"}) == ()
    assert bc.failures(AgentLimits(), {"bootstrap.memory_lock": "true"}) == ()  # unknown values pass


def test_the_linux_default_max_map_count_fails_with_the_sysctl_fix() -> None:
    (check,) = bc.failures(short(max_map_count=65530), {})
    assert check.name == "vm.max_map_count"
    assert (check.found, check.needed) == ("65530", "at least 262144")
    assert "sysctl -w vm.max_map_count=262144" in check.fix
    assert "/etc/sysctl.d/" in check.fix
    assert check.sentence().startswith("vm.max_map_count is 65530, Elasticsearch needs at least 262144 (fix: ")


@given(value=st.integers(min_value=0, max_value=2**40))
def test_each_threshold_is_elasticsearchs(value: int) -> None:
    for field, minimum in (("max_map_count", 262144), ("max_file_descriptors", 65535), ("max_threads", 4096)):
        failed = bc.failures(short(**{field: value}), {})
        assert bool(failed) is (value < minimum), (field, value)
    for field in ("max_virtual_memory", "max_file_size"):
        failed = bc.failures(short(**{field: value}), {})
        assert names(failed) == [next(c.name for c in bc.CHECKS if c.field == field)]
        assert failed[0].needed == "unlimited"
    memlock = bc.failures(short(memlock=value), {"bootstrap.memory_lock": "true"})
    assert names(memlock) == ["max locked memory (RLIMIT_MEMLOCK)"]


def test_memory_locking_is_checked_only_when_asked_for() -> None:
    limits = short(memlock=65536)
    assert bc.failures(limits, {}) == ()
    assert bc.failures(limits, {"bootstrap.memory_lock": "false"}) == ()
    (check,) = bc.failures(limits, {"bootstrap.memory_lock": "true"})
    assert (check.found, check.needed) == ("65536", "unlimited")
    assert "LimitMEMLOCK=infinity" in check.fix and "posix/rlimits" in check.fix and "memlock=-1:-1" in check.fix


def test_max_map_count_is_not_checked_when_mmap_is_off() -> None:
    assert bc.failures(short(max_map_count=65530), {"node.store.allow_mmap": "false"}) == ()


def test_failures_come_in_elasticsearchs_order_and_fit_a_report() -> None:
    limits = AgentLimits(
        max_map_count=65530,
        max_file_descriptors=4096,
        max_threads=1024,
        memlock=0,
        max_virtual_memory=1,
        max_file_size=1,
    )
    failed = bc.failures(limits, {"bootstrap.memory_lock": "true"})
    assert names(failed) == [check.name for check in bc.CHECKS]
    report = bc.report("agent1.example.com", failed)
    expected = AgentCheckReport("agent1.example.com", failed, contract.CONTRACT_VERSION)
    assert AgentCheckReport.decode(report.encode()) == expected


def test_every_fix_is_short_enough_for_the_report() -> None:
    for check in bc.CHECKS:
        assert 0 < len(check.fix) <= contract.MAX_REPORT_TEXT, check.name


# ---------------------------------------------------------------------- the values


def test_injected_values_win_and_the_rest_come_from_the_system() -> None:
    env = {contract.ENV_AGENT_MAX_MAP_COUNT: "65530", contract.ENV_AGENT_MEMLOCK_LIMIT: "unlimited"}
    limits = bc.read_limits(env, lambda: short(memlock=64))
    assert limits == short(max_map_count=65530, memlock=UNLIMITED)
    every = {check.env: "7" for check in bc.CHECKS}
    assert set(bc.read_limits(every, lambda: GOOD).__dict__.values()) == {7}


@pytest.mark.parametrize("value", ["lots", "-1", "1.5"])
def test_an_injected_value_that_is_no_limit_is_refused_by_name(value: str) -> None:
    with pytest.raises(BootstrapCheckError, match=contract.ENV_AGENT_MAX_THREADS):
        bc.read_limits({contract.ENV_AGENT_MAX_THREADS: value}, lambda: GOOD)


def test_the_system_values_are_what_elasticsearch_would_see(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {
        resource.RLIMIT_NOFILE: (1024, 65536),  # the JVM raises the soft limit to the hard one
        resource.RLIMIT_NPROC: (2048, 8192),
        resource.RLIMIT_MEMLOCK: (65536, UNLIMITED),
        resource.RLIMIT_AS: (UNLIMITED, UNLIMITED),
        resource.RLIMIT_FSIZE: (UNLIMITED, UNLIMITED),
    }
    monkeypatch.setattr(resource, "getrlimit", limits.__getitem__)
    read = bc.system_limits()
    assert (read.max_file_descriptors, read.max_threads, read.memlock) == (65536, 2048, 65536)
    assert read.max_virtual_memory == read.max_file_size == UNLIMITED


# ---------------------------------------------------------------------- when they are enforced


@pytest.mark.parametrize(
    ("settings", "enforced"),
    [
        ({"network.host": "127.0.0.2", "network.publish_host": "127.0.0.2"}, False),
        ({}, False),  # Elasticsearch's default, _local_
        ({"network.host": "_local_", "network.publish_host": "localhost"}, False),
        ({"network.host": "0.0.0.0", "network.publish_host": "127.0.0.1"}, True),
        ({"network.host": "127.0.0.1", "network.publish_host": "agent1.example.com"}, True),
        ({"network.host": "127.0.0.1", "network.publish_host": "loopy"}, False),
        ({"network.host": "127.0.0.1", "network.publish_host": "mixed"}, True),
        ({"network.host": "127.0.0.1", "network.publish_host": "unknown.invalid"}, True),
        ({"network.host": "_site_"}, True),
        ({"network.host": ["127.0.0.1", "_eth0_"]}, True),
        ({"network.host": "0.0.0.0", "transport.host": "127.0.0.1"}, False),  # transport.host wins
        ({"network.host": "127.0.0.1", "transport.bind_host": "::"}, True),
        ({"network.host": "127.0.0.1", "transport.publish_host": "10.1.2.3"}, True),
        ({"network.host": "0.0.0.0", "discovery.type": "single-node"}, False),
    ],
)
def test_enforced_as_elasticsearchs_enforce_limits_decides(settings: Mapping[str, str], enforced: bool) -> None:
    assert bc.mode(settings, force=False, resolve=resolve).enforced is enforced


def test_forced_checks_are_enforced_everywhere() -> None:
    for settings in ({}, {"network.host": "0.0.0.0", "discovery.type": "single-node"}):
        decided = bc.mode(settings, force=True, resolve=resolve)
        assert decided.enforced and "es.enforce.bootstrap.checks=true" in decided.reason


def test_the_switch_and_elasticsearchs_own_property() -> None:
    assert not bc.forced({})
    assert bc.forced({contract.ENV_ENFORCE_BOOTSTRAP_CHECKS: "TRUE"})
    assert not bc.forced({contract.ENV_ENFORCE_BOOTSTRAP_CHECKS: "false"})
    assert bc.forced({"ES_JAVA_OPTS": "-Xms1g -Des.enforce.bootstrap.checks=true"})
    with pytest.raises(BootstrapCheckError, match="expected true or false"):
        bc.forced({contract.ENV_ENFORCE_BOOTSTRAP_CHECKS: "yes"})
    with pytest.raises(BootstrapCheckError, match=r"\[es.enforce.bootstrap.checks\] must be \[true\] but was \[1\]"):
        bc.forced({"ES_JAVA_OPTS": "-Des.enforce.bootstrap.checks=1"})


def test_elasticsearch_is_told_to_enforce_once() -> None:
    env = bc.with_enforcement({"ES_JAVA_OPTS": "-Xms1g -Xmx1g", "OTHER": "x"})
    assert env == {"ES_JAVA_OPTS": "-Xms1g -Xmx1g -Des.enforce.bootstrap.checks=true", "OTHER": "x"}
    assert bc.with_enforcement(env) == env
    assert bc.with_enforcement({})["ES_JAVA_OPTS"] == "-Des.enforce.bootstrap.checks=true"


# ---------------------------------------------------------------------- Elasticsearch's own messages

# What Elasticsearch 7 prints (one check per line, as BootstrapChecks.check joins them).
ES_7_OUTPUT = """\
ERROR: [3] bootstrap checks failed. You must address the points described in the following [3] lines before starting Elasticsearch.
bootstrap check failure [1] of [3]: max file descriptors [4096] for elasticsearch process is too low, increase to at least [65535]
bootstrap check failure [2] of [3]: max number of threads [1024] for user [elasticsearch] is too low, increase to at least [4096]
bootstrap check failure [3] of [3]: max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]
ERROR: Elasticsearch did not exit normally - check the logs at /usr/share/elasticsearch/logs/docker-cluster.log"""  # noqa: E501


def test_elasticsearchs_lines_name_the_agent_checks() -> None:
    failed = bc.parse_failures(ES_7_OUTPUT.splitlines())
    assert [(c.name, c.found) for c in failed] == [
        ("max file descriptors (RLIMIT_NOFILE)", "4096"),
        ("max threads (RLIMIT_NPROC)", "1024"),
        ("vm.max_map_count", "65530"),
    ]
    assert failed[2].fix.startswith("on the agent: sysctl -w vm.max_map_count=262144")


def test_an_elasticsearch_8_json_log_line_with_its_reference_link_is_read_too() -> None:
    message = (
        "node validation exception\n[2] bootstrap checks failed. You must address the points described in the "
        "following [2] lines before starting Elasticsearch. For more information see [https://ela.st/bc]\n"
        "bootstrap check failure [1] of [2]: memory locking requested for elasticsearch process but memory is not "
        "locked; for more information see [https://ela.st/memlock]\nbootstrap check failure [2] of [2]: max size "
        "virtual memory [4294967296] for user [elasticsearch] is too low, increase to [unlimited]; for more "
        "information see [https://ela.st/as]"
    )
    line = json.dumps({"@timestamp": "2024-01-01T00:00:00Z", "log.level": "ERROR", "message": message})
    failed = bc.parse_failures([line])
    assert [(c.name, c.found) for c in failed] == [
        ("max locked memory (RLIMIT_MEMLOCK)", "too low: memory is not locked"),
        ("max virtual memory (RLIMIT_AS)", "4294967296"),
    ]


def test_development_mode_warnings_and_other_checks_are_not_the_agents() -> None:
    lines = [
        "[WARN ][o.e.b.BootstrapChecks] max virtual memory areas vm.max_map_count [65530] is too low, increase to "
        "at least [262144]",
        "bootstrap check failure [1] of [1]: the default discovery settings are unsuitable for production use",
    ]
    assert bc.parse_failures(lines) == ()


@given(
    descriptors=st.integers(min_value=0, max_value=65534),
    threads=st.integers(min_value=0, max_value=4095),
    size=st.integers(min_value=0, max_value=2**62),
    map_count=st.integers(min_value=0, max_value=262143),
    user=st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True),
)
def test_what_elasticsearch_prints_reads_back_as_what_the_executor_finds(
    descriptors: int, threads: int, size: int, map_count: int, user: str
) -> None:
    messages = [
        f"max file descriptors [{descriptors}] for elasticsearch process is too low, increase to at least [65535]",
        "memory locking requested for elasticsearch process but memory is not locked",
        f"max number of threads [{threads}] for user [{user}] is too low, increase to at least [4096]",
        f"max size virtual memory [{size}] for user [{user}] is too low, increase to [unlimited]",
        f"max file size [{size}] for user [{user}] is too low, increase to [unlimited]",
        f"max virtual memory areas vm.max_map_count [{map_count}] is too low, increase to at least [262144]",
    ]
    lines = [f"bootstrap check failure [{i}] of [6]: {m}" for i, m in enumerate(messages, start=1)]
    limits = AgentLimits(map_count, descriptors, threads, 0, size, size)
    own = bc.failures(limits, {"bootstrap.memory_lock": "true"})
    parsed = bc.parse_failures(lines)
    assert names(parsed) == names(own)
    assert [c.found for c in parsed if "MEMLOCK" not in c.name] == [c.found for c in own if "MEMLOCK" not in c.name]


def test_the_task_message_names_the_agent_each_value_needed_and_the_fix() -> None:
    report = bc.report("agent7.example.com", bc.failures(short(max_map_count=65530, max_threads=100), {}))
    message = bc.task_message(report, "the transport binds or publishes a non-loopback address (0.0.0.0)")
    assert message.startswith("agent agent7.example.com fails Elasticsearch's bootstrap checks (the transport")
    assert "max threads (RLIMIT_NPROC) is 100, Elasticsearch needs at least 4096 (fix: LimitNPROC=4096" in message
    assert "vm.max_map_count is 65530, Elasticsearch needs at least 262144 (fix: on the agent: sysctl -w" in message


def test_elasticsearch_7_early_failure_lines_are_read_too() -> None:
    """Before 7.16 Elasticsearch listed refused checks as ``[i]: <message>`` under ``[n] bootstrap checks failed``."""
    lines = [
        "ERROR: [2] bootstrap checks failed",
        "[1]: max file descriptors [4096] for elasticsearch process is too low, increase to at least [65535]",
        "[2]: max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]",
    ]
    found = [(check.name, check.found) for check in bc.parse_failures(lines)]
    assert found == [("max file descriptors (RLIMIT_NOFILE)", "4096"), ("vm.max_map_count", "65530")]
    # The same texts as development-mode warnings (no "[i]: ") are not failures.
    assert bc.parse_failures([line.split(": ", 1)[1] for line in lines[1:]]) == ()
