"""Fuzzing the messages the scheduler and the executor exchange (es_framework/contract.py): seed-host
framework messages and ``TaskStatus.data`` node reports, malformed and truncated. A reader gets the
message or a named refusal (:class:`ContractError` / None), never another exception, and the executor
writes ``unicast_hosts.txt`` only from a well-formed, newer message.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from es_framework.contract import ContractError, NodeReport, SeedHosts
from es_framework.executor.node_executor import NodeExecutor
from es_framework.executor.volumes import UNICAST_HOSTS
from tests.core.test_fuzz_status_updates import NASTY

FUZZ = settings(
    max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

JSON = st.recursive(
    st.one_of(st.sampled_from(NASTY[:-3]), st.text(max_size=6), st.integers(), st.floats()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
HOSTS = st.lists(
    st.one_of(st.sampled_from(["10.0.0.1:9300", "a.example.com:9300", "[::1]:9300"]), st.sampled_from(NASTY)),
    max_size=4,
)
SEED_DOCUMENTS = st.one_of(
    st.fixed_dictionaries({"version": st.one_of(st.integers(), st.sampled_from(NASTY)), "seed_hosts": HOSTS}),
    st.fixed_dictionaries({}, optional={"version": JSON, "seed_hosts": JSON}),
    JSON,
)


def encoded(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode("utf-8")


#: Raw bytes as they might arrive: a document, cut anywhere, or bytes that are not JSON at all.
RAW = st.one_of(
    SEED_DOCUMENTS.map(encoded),
    st.tuples(SEED_DOCUMENTS.map(encoded), st.integers(0, 60)).map(lambda t: t[0][: t[1]]),
    st.binary(max_size=40),
    st.sampled_from([b"[" * 50_000, b'{"version":' * 30_000, b"\xff\xfe", b"", b"null"]),
)


@FUZZ
@given(raw=RAW)
def test_seed_hosts_decode_gives_a_message_or_a_contract_error(raw: bytes) -> None:
    try:
        message = SeedHosts.decode(raw)
    except ContractError as error:
        assert str(error).startswith("not a seed-hosts message")
        return
    assert isinstance(message.version, int)
    assert all(isinstance(h, str) and h and not any(c.isspace() for c in h) for h in message.seed_hosts)
    assert SeedHosts.decode(message.encode()) == message


@FUZZ
@given(raw=RAW | st.sampled_from([NodeReport("u", "8.1", "n", 2).encode()]))
def test_node_report_decode_gives_a_report_or_none(raw: bytes) -> None:
    report = NodeReport.decode(raw)
    assert report is None or isinstance(report, NodeReport)
    wire = NodeReport.decode_wire(base64.b64encode(raw).decode("ascii"))
    assert wire == report


@FUZZ
@given(data=st.one_of(st.sampled_from(NASTY), st.text(max_size=20), st.binary(max_size=20), JSON))
def test_node_report_decode_wire_takes_anything(data: Any) -> None:
    report = NodeReport.decode_wire(data)
    assert report is None or isinstance(report, NodeReport)


MESSAGES = st.one_of(
    RAW.map(lambda b: base64.b64encode(b).decode("ascii")),
    RAW,
    st.sampled_from([*NASTY, 10**12, -3, bytearray(b"{}"), "not base64!"]),
)


@FUZZ
@given(messages=st.lists(MESSAGES, min_size=1, max_size=5))
def test_the_executor_never_raises_and_writes_only_well_formed_newer_seed_hosts(
    tmp_path: Path, messages: list[Any]
) -> None:
    executor = NodeExecutor({})
    executor._settings = SimpleNamespace(config_path=tmp_path)  # type: ignore[assignment]
    target = tmp_path / UNICAST_HOSTS
    target.unlink(missing_ok=True)
    good = SeedHosts(7, ("10.0.0.1:9300",))
    executor.apply_message(base64.b64encode(good.encode()).decode("ascii"))
    for data in messages:
        executor.apply_message(data)  # never raises
        executor.frameworkMessage(None, data)  # the pymesos callback: never raises either
    written = target.read_text(encoding="utf-8").split()
    assert written, "a well-formed message was written"
    assert all(h and not any(c.isspace() for c in h) for h in written)
    assert executor._seed_version >= 7


# --- regressions found by the properties above ---------------------------------------------------


def test_json_nested_past_the_parser_limit_is_refused_by_name() -> None:
    # Found by fuzzing: json.loads raised RecursionError, which decode did not turn into ContractError.
    for raw in (b"[" * 50_000, b'{"a":' * 30_000):
        assert NodeReport.decode(raw) is None
        try:
            SeedHosts.decode(raw)
        except ContractError as error:
            assert "RecursionError" in str(error)
        else:
            raise AssertionError("accepted")


def test_seed_hosts_that_are_not_host_texts_are_refused() -> None:
    # Found by fuzzing: str(h) turned null, numbers and objects into "seed hosts", and a host with a
    # line break became two lines of unicast_hosts.txt.
    for hosts in ([None], [9300], [{"h": 1}], ["a:9300\nevil:1"], ["a b:9300"], [""]):
        raw = json.dumps({"version": 1, "seed_hosts": hosts}).encode()
        try:
            SeedHosts.decode(raw)
        except ContractError:
            continue
        raise AssertionError(f"accepted {hosts!r}")


def test_an_integer_framework_message_is_not_read_as_that_many_zero_bytes(tmp_path: Path) -> None:
    # Found by fuzzing: bytes(10**12) would allocate a terabyte of zeros before failing to decode.
    executor = NodeExecutor({})
    executor.apply_message(10**12)
    executor.apply_message(-3)
    assert executor._seed_version == 0
