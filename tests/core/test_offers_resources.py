from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import Ports
from es_framework.core.offers import OfferError, offers_from_document, parse_offer, parse_resource
from es_framework.core.resources import (
    CarveError,
    PortsUnavailableError,
    Requirements,
    available,
    carve,
    choose_ports,
    merge_ranges,
    role_may_use,
    usable,
)
from tests.harness.builders import offer, ports, scalar


def test_parse_offer_keeps_identity_domain_and_attributes() -> None:
    raw = offer(3)
    raw["domain"] = {"fault_domain": {"region": {"name": "eu"}, "zone": {"name": "eu-1a"}}}
    raw["attributes"] = [
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
        {"name": "ssd", "type": "SCALAR", "scalar": {"value": 1}},
        {"name": "zones", "type": "SET", "set": {"item": ["a", "b"]}},
        {"name": "r", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2}]}},
    ]
    parsed = parse_offer(raw)
    assert (parsed.id, parsed.agent_id, parsed.hostname) == ("offer-3", "agent-3-S0", "agent3.example.com")
    assert parsed.framework_id == "fw-1"
    assert (parsed.region, parsed.zone) == ("eu", "eu-1a")
    assert [(a.name, a.value) for a in parsed.attributes] == [
        ("rack", "r1"),
        ("ssd", 1.0),
        ("zones", frozenset({"a", "b"})),
        ("r", ((1, 2),)),
    ]
    assert [r.name for r in parsed.resources] == ["cpus", "mem", "disk", "ports"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("id"), "'id' must be an object"),
        (lambda o: o.update(agent_id={"value": ""}), "'agent_id'"),
        (lambda o: o.update(hostname=5), "'hostname'"),
        (lambda o: o.update(resources={}), "'resources' must be a list"),
        (lambda o: o.update(attributes="x"), "'attributes' must be a list"),
        (lambda o: o["resources"].append({"name": "cpus", "type": "SCALAR"}), "SCALAR needs"),
        (lambda o: o["resources"].append({"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}), "non-negative"),
        (lambda o: o["resources"].append({"name": "cpus", "type": "SCALAR", "scalar": {"value": "1"}}), "number"),
        (lambda o: o["resources"].append({"name": "x", "type": "BLOB"}), "'type' must be"),
        (lambda o: o["resources"].append({"type": "SCALAR"}), "'name'"),
        (
            lambda o: o["resources"].append(
                {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 4}]}}
            ),
            "begin <= end",
        ),
        (lambda o: o["resources"].append({"name": "s", "type": "SET", "set": {"item": [1]}}), "SET needs"),
        (lambda o: o["attributes"].append({"name": "a", "type": "TEXT"}), "unknown type or no value"),
    ],
)
def test_malformed_offers_get_a_clear_error(mutate: Any, message: str) -> None:
    raw = offer(1)
    mutate(raw)
    with pytest.raises(OfferError, match=message):
        parse_offer(raw)


def test_offers_from_document_forms() -> None:
    one = offer(1)
    assert offers_from_document([one]) == [one]
    assert offers_from_document({"offers": [one]}) == [one]
    assert offers_from_document({"type": "OFFERS", "offers": {"offers": [one]}}) == [one]
    for bad in ({}, {"offers": 3}, "x", 5, {"type": "OFFERS", "offers": {"x": []}}):
        with pytest.raises(OfferError, match="expected a list of offers"):
            offers_from_document(bad)


def test_scalars_are_exact_thousandths() -> None:
    resource = parse_resource(scalar("cpus", 0.1))
    assert resource.scalar_milli == 100
    total = available(parse_offer(offer(resources=[scalar("cpus", 0.1), scalar("cpus", 0.2)])), "*")
    assert total.cpus_milli == 300


def test_reservation_role_from_refined_and_legacy_formats() -> None:
    refined = scalar("cpus", 1, "es")
    refined["reservations"] = [{"type": "STATIC", "role": "eng"}, {"type": "DYNAMIC", "role": "eng/es"}]
    refined.pop("role")
    assert parse_resource(refined).reservation_role == "eng/es"
    legacy = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "es"}
    assert parse_resource(legacy).reservation_role == "es"
    assert parse_resource({"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}).reservation_role == "*"


@pytest.mark.parametrize(
    ("reservation", "role", "expected"),
    [
        ("*", "*", True),
        ("*", "es", True),
        ("es", "es", True),
        ("es", "*", False),
        ("other", "es", False),
        ("eng", "eng/es", True),  # a parent's reservation is shared with its children
        ("eng/es", "eng", False),
        ("en", "eng/es", False),
    ],
)
def test_role_may_use(reservation: str, role: str, expected: bool) -> None:
    assert role_may_use(reservation, role) is expected


@pytest.mark.parametrize(
    "extra",
    [
        {"revocable": {}},
        {"shared": {}},
        {"disk": {"persistence": {"id": "p1"}, "volume": {"container_path": "d", "mode": "RW"}}},
        {"disk": {"source": {"type": "MOUNT", "mount": {"root": "/mnt"}}}},
        {"disk": {"source": {"type": "BLOCK"}}},
    ],
)
def test_entries_we_must_not_carve_are_unusable(extra: dict[str, Any]) -> None:
    resource = parse_resource(scalar("disk", 5000, **extra))
    assert resource.unusable_because is not None
    assert not usable(resource, "*")


def test_path_disk_is_usable() -> None:
    assert usable(parse_resource(scalar("disk", 5000, disk={"source": {"type": "PATH", "path": {"root": "/d"}}})), "*")


def test_allocation_role_must_be_ours() -> None:
    assert not usable(parse_resource(scalar("cpus", 1, allocation_role="other")), "*")
    assert usable(parse_resource(scalar("cpus", 1, "es", allocation_role="es")), "es")
    assert not usable(parse_resource(scalar("cpus", 1, "es", allocation_role="es")), "other")


def test_available_sums_every_usable_entry_of_a_name() -> None:
    raw = offer(
        resources=[
            scalar("cpus", 1, "es", allocation_role="es"),
            scalar("cpus", 2, allocation_role="es"),
            scalar("cpus", 8, "other", allocation_role="es"),
            scalar("mem", 1024, "es", allocation_role="es"),
            scalar("mem", 3072, allocation_role="es"),
            scalar("disk", 100, allocation_role="es", revocable={}),
            ports((31000, 31001), role="es", allocation_role="es"),
            ports((31002, 31010), (32000, 32000), allocation_role="es"),
            scalar("gpus", 1, "other", allocation_role="es"),
        ]
    )
    total = available(parse_offer(raw), "es")
    assert total.cpus_milli == 3000
    assert total.mem_milli == 4096000
    assert total.disk_milli == 0
    assert total.ports == ((31000, 31010), (32000, 32000))
    assert total.port_count == 12
    # GPUs count even when not ours: they mark the agent as a GPU agent.
    assert total.gpus_milli == 1000


def test_merge_ranges() -> None:
    assert merge_ranges([(5, 6), (1, 2), (3, 4), (10, 12), (11, 20)]) == ((1, 6), (10, 20))
    assert merge_ranges([(5, 6), (1, 2), (3, 3)]) == ((1, 3), (5, 6))
    assert merge_ranges([]) == ()


@pytest.mark.parametrize(
    ("offered", "wanted", "expected"),
    [
        (((31000, 32000),), Ports(), (31000, 31001)),
        (((31000, 31000), (31005, 31005)), Ports(), (31000, 31005)),
        (((9200, 9200), (9300, 9300)), Ports(9200, 9300), (9200, 9300)),
        (((9200, 9300),), Ports(9200, 0), (9200, 9201)),
        (((9200, 9300),), Ports(0, 9200), (9201, 9200)),
        (((9199, 9201),), Ports(0, 9200), (9199, 9200)),
    ],
)
def test_choose_ports(offered: tuple[tuple[int, int], ...], wanted: Ports, expected: tuple[int, int]) -> None:
    assert choose_ports(offered, wanted) == expected


@pytest.mark.parametrize(
    ("offered", "wanted", "message"),
    [
        ((), Ports(), "2 port\\(s\\) needed from the offer, offered: none"),
        (((31000, 31000),), Ports(), "2 port\\(s\\) needed from the offer, offered: 31000"),
        (((31000, 32000),), Ports(9200, 0), "HTTP port 9200 is not offered"),
        (((9200, 9200),), Ports(9200, 9300), "transport port 9300 is not offered"),
        (((9200, 9200),), Ports(9200, 0), "1 port\\(s\\) needed"),
    ],
)
def test_choose_ports_failures(offered: tuple[tuple[int, int], ...], wanted: Ports, message: str) -> None:
    with pytest.raises(PortsUnavailableError, match=message):
        choose_ports(offered, wanted)


@given(
    ranges=st.lists(st.tuples(st.integers(1, 2000), st.integers(0, 5)), min_size=0, max_size=6),
    http=st.one_of(st.just(0), st.integers(1, 2010)),
    transport=st.one_of(st.just(0), st.integers(1, 2010)),
)
def test_chosen_ports_are_offered_distinct_and_honour_fixed_ones(
    ranges: list[tuple[int, int]], http: int, transport: int
) -> None:
    if http and http == transport:
        return
    offered = merge_ranges((b, b + n) for b, n in ranges)
    wanted = Ports(http, transport)
    try:
        chosen = choose_ports(offered, wanted)
    except PortsUnavailableError:
        offered_ports = {p for b, e in offered for p in range(b, e + 1)}
        fixed_ok = all(p in offered_ports for p in wanted.fixed)
        assert not fixed_ok or len(offered_ports - set(wanted.fixed)) < 2 - len(wanted.fixed)
        return
    assert chosen[0] != chosen[1]
    assert all(any(b <= p <= e for b, e in offered) for p in chosen)
    if http:
        assert chosen[0] == http
    if transport:
        assert chosen[1] == transport


def _scalar_sum(pieces: list[dict[str, Any]], name: str) -> float:
    return round(float(sum(p["scalar"]["value"] for p in pieces if p["name"] == name)), 3)


def test_carve_takes_reserved_first_and_keeps_each_entrys_fields() -> None:
    reserved_cpus = scalar("cpus", 0.5, "es", allocation_role="es")
    raw = offer(
        resources=[
            scalar("cpus", 4, allocation_role="es"),
            reserved_cpus,
            scalar("mem", 1024, "es", allocation_role="es"),
            scalar("mem", 8192, allocation_role="es"),
            scalar("disk", 100, "other", allocation_role="es"),
            scalar("disk", 2000, allocation_role="es"),
            ports((31000, 31000), role="es", allocation_role="es"),
            ports((31001, 31100), allocation_role="es"),
        ]
    )
    parsed = parse_offer(raw)
    pieces = carve(
        parsed, "es", Requirements(cpus_milli=1500, mem_milli=2048000, disk_milli=1024000, ports=(31000, 31050))
    )
    cpus = [p for p in pieces if p["name"] == "cpus"]
    assert [c["scalar"]["value"] for c in cpus] == [0.5, 1.0]
    assert cpus[0]["reservations"] == reserved_cpus["reservations"]
    assert cpus[0]["allocation_info"] == {"role": "es"}
    assert "reservations" not in cpus[1]
    mem = [p for p in pieces if p["name"] == "mem"]
    assert [m["scalar"]["value"] for m in mem] == [1024.0, 1024.0]
    assert mem[0]["reservations"][0]["role"] == "es"
    disk = [p for p in pieces if p["name"] == "disk"]
    assert disk == [{**raw["resources"][5], "scalar": {"value": 1024.0}}]
    port_pieces = [p for p in pieces if p["name"] == "ports"]
    assert [p["ranges"]["range"] for p in port_pieces] == [
        [{"begin": 31000, "end": 31000}],
        [{"begin": 31050, "end": 31050}],
    ]
    assert port_pieces[0]["reservations"][0]["role"] == "es"
    # The offer's own JSON is never modified by carving.
    assert raw["resources"][1]["scalar"]["value"] == 0.5


def test_carve_coalesces_ports_from_one_entry() -> None:
    parsed = parse_offer(offer())
    pieces = carve(parsed, "*", Requirements(1000, 1000, 0, (31000, 31001)))
    port_pieces = [p for p in pieces if p["name"] == "ports"]
    assert len(port_pieces) == 1
    assert port_pieces[0]["ranges"]["range"] == [{"begin": 31000, "end": 31000}, {"begin": 31001, "end": 31001}]
    assert not any(p["name"] == "disk" for p in pieces)


def test_carve_sums_exactly_what_is_required() -> None:
    raw = offer(
        resources=[scalar("cpus", 0.1), scalar("cpus", 0.2), scalar("cpus", 0.3), scalar("mem", 100), ports((1, 2))]
    )
    pieces = carve(parse_offer(raw), "*", Requirements(cpus_milli=600, mem_milli=100000, disk_milli=0, ports=(1, 2)))
    assert _scalar_sum(pieces, "cpus") == 0.6
    assert [p["scalar"]["value"] for p in pieces if p["name"] == "cpus"] == [0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        (Requirements(5000, 1000, 0, (31000, 31001)), "lacks 1 cpus"),
        (Requirements(1000, 9000 * 1000, 0, (31000, 31001)), "lacks 808 mem"),
        (Requirements(1000, 1000, 30000 * 1000, (31000, 31001)), "lacks 10000 disk"),
        (Requirements(1000, 1000, 0, (31000, 40000)), "does not offer port 40000"),
    ],
)
def test_carve_refuses_what_the_offer_cannot_supply(requirements: Requirements, message: str) -> None:
    with pytest.raises(CarveError, match=message):
        carve(parse_offer(offer()), "*", requirements)
