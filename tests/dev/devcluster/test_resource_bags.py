"""Resource arithmetic of the development master."""

from __future__ import annotations

import pytest

from es_framework.dev.devcluster.resource_bags import ResourceBag, ResourceError


def bag(*resources: dict[str, object]) -> ResourceBag:
    return ResourceBag.from_json(list(resources))


def cpus(value: float, **extra: object) -> dict[str, object]:
    return {"name": "cpus", "type": "SCALAR", "scalar": {"value": value}, "role": "*", **extra}


def ports(*ranges: tuple[int, int], **extra: object) -> dict[str, object]:
    return {
        "name": "ports",
        "type": "RANGES",
        "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]},
        **extra,
    }


def test_scalars_and_ranges_are_contained_and_subtracted() -> None:
    offered = bag(cpus(4), ports((31000, 31999)))
    used = bag(cpus(1.5), ports((31000, 31000), (31500, 31500)))
    assert offered.contains(used)
    left = offered - used
    assert left.scalar("cpus") == 2.5
    assert left.to_json()[0]["ranges"]["range"] == [
        {"begin": 31001, "end": 31499},
        {"begin": 31501, "end": 31999},
    ]
    assert left + used == offered
    assert not offered.contains(bag(cpus(4.001)))
    assert not offered.contains(bag(ports((31999, 32000))))


def test_reservations_and_other_fields_are_part_of_the_identity() -> None:
    offered = bag(cpus(4), cpus(2, role="es", reservations=[{"type": "STATIC", "role": "es"}]))
    assert offered.contains(bag(cpus(2, role="es", reservations=[{"type": "STATIC", "role": "es"}])))
    assert offered.contains(bag(cpus(1, role="es")))  # the old-style role is a static reservation
    assert not offered.contains(bag(cpus(3, role="es", reservations=[{"type": "STATIC", "role": "es"}])))
    assert not offered.contains(bag(cpus(1, revocable={})))
    # allocation_info is checked by the master, not by the bag
    assert offered.contains(bag(cpus(1, allocation_info={"role": "*"})))


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}},
        {"name": "cpus", "type": "SCALAR"},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 4}]}},
        {"name": "x", "type": "TEXT"},
        {"type": "SCALAR", "scalar": {"value": 1}},
    ],
)
def test_invalid_resources(raw: dict[str, object]) -> None:
    with pytest.raises(ResourceError):
        bag(raw)
