"""Mesos offers as plain, typed data, parsed once from the v1 JSON the master sends.

The original JSON of every resource is kept, because a launch must hand resources back to Mesos
with their ``role``, ``reservations``, ``allocation_info`` and anything else the master put in,
or the master refuses the launch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from es_framework.config.constraints import HOSTNAME_FIELDS, scalar_text
from es_framework.core.maintenance import MaintenanceError, Unavailability, parse_unavailability


class OfferError(ValueError):
    """An offer (or a resource in it) is not the JSON the Mesos v1 API defines."""


@dataclass(frozen=True)
class Resource:
    name: str
    type: str
    #: Scalars in thousandths (Mesos' own fixed-point precision), so sums are exact.
    scalar_milli: int = 0
    ranges: tuple[tuple[int, int], ...] = ()
    items: frozenset[str] = frozenset()
    #: The role whose reservation this is (the last in a refined chain), or ``*`` for unreserved.
    reservation_role: str = "*"
    #: ``allocation_info.role``: the role the master offered it to (multi-role frameworks).
    allocation_role: str | None = None
    #: Why this entry can never back one of our tasks (revocable, persistent volume, ...), or None.
    unusable_because: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def reserved(self) -> bool:
        return self.reservation_role != "*"


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str
    value: str | float | tuple[tuple[int, int], ...] | frozenset[str]


@dataclass(frozen=True)
class Offer:
    id: str
    agent_id: str
    hostname: str
    resources: tuple[Resource, ...]
    attributes: tuple[Attribute, ...] = ()
    framework_id: str | None = None
    zone: str | None = None
    region: str | None = None
    #: The agent's maintenance window (Mesos adds it to every offer of an agent in the schedule).
    unavailability: Unavailability | None = None


def _value_field(obj: Mapping[str, Any], key: str, where: str) -> str:
    inner = obj.get(key)
    if not isinstance(inner, Mapping) or not isinstance(inner.get("value"), str) or not inner["value"]:
        raise OfferError(f"{where}: '{key}' must be an object with a non-empty string 'value'")
    value: str = inner["value"]
    return value


def _scalar_milli(value: object, where: str) -> int:
    if not isinstance(value, (int, float)) or not _finite(value) or value < 0:
        raise OfferError(f"{where}: scalar value must be a finite, non-negative number, got {value!r}")
    if isinstance(value, int):
        return value * 1000
    milli = value * 1000
    # Beyond ~1.8e305 the product is no longer a finite double; the value itself still is.
    return round(milli) if math.isfinite(milli) else int(value) * 1000


def _ranges(obj: object, where: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(obj, Mapping):
        raise OfferError(f"{where}: 'ranges' must be an object with a 'range' list")
    items = obj.get("range")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise OfferError(f"{where}: 'ranges.range' must be a list, got {type(items).__name__}")
    out: list[tuple[int, int]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise OfferError(f"{where}: each range must be an object with begin and end")
        begin, end = item.get("begin"), item.get("end")
        if (
            not isinstance(begin, int)
            or not isinstance(end, int)
            or isinstance(begin, bool)
            or isinstance(end, bool)
            or begin < 0
            or end < begin
        ):
            raise OfferError(f"{where}: range {dict(item)!r} must have integer begin <= end, both >= 0")
        out.append((begin, end))
    return tuple(sorted(out))


def _reservation_role(raw: Mapping[str, Any]) -> str:
    reservations = raw.get("reservations")
    if isinstance(reservations, list) and reservations:
        last = reservations[-1]
        if isinstance(last, Mapping) and isinstance(last.get("role"), str):
            last_role: str = last["role"]
            return last_role
    # Pre-1.5 ("pre-refinement") format: the deprecated top-level role names the reservation.
    role = raw.get("role")
    return role if isinstance(role, str) and role else "*"


def _unusable_because(raw: Mapping[str, Any]) -> str | None:
    if "revocable" in raw:
        return "revocable"
    if "shared" in raw:
        return "shared"
    disk = raw.get("disk")
    if isinstance(disk, Mapping):
        if "persistence" in disk:
            return "a persistent volume"
        source = disk.get("source")
        if isinstance(source, Mapping) and source.get("type") not in (None, "PATH"):
            # MOUNT disks must be taken whole and BLOCK/RAW ones need a CSI volume; neither is a
            # few hundred MB of scratch space we can carve.
            return f"a {source.get('type')} disk"
    return None


def parse_resource(raw: object, where: str = "resource") -> Resource:
    if not isinstance(raw, Mapping):
        raise OfferError(f"{where}: must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise OfferError(f"{where}: 'name' must be a non-empty string")
    where = f"{where} {name!r}"
    kind = raw.get("type")
    if kind not in ("SCALAR", "RANGES", "SET", "TEXT"):
        raise OfferError(f"{where}: 'type' must be SCALAR, RANGES, SET or TEXT, got {kind!r}")
    scalar = 0
    ranges: tuple[tuple[int, int], ...] = ()
    items: frozenset[str] = frozenset()
    if kind == "SCALAR":
        scalar_obj = raw.get("scalar")
        if not isinstance(scalar_obj, Mapping):
            raise OfferError(f"{where}: a SCALAR needs 'scalar': {{'value': ...}}")
        scalar = _scalar_milli(scalar_obj.get("value"), where)
    elif kind == "RANGES":
        ranges = _ranges(raw.get("ranges"), where)
    elif kind == "SET":
        set_obj = raw.get("set")
        item_list = set_obj.get("item", []) if isinstance(set_obj, Mapping) else None
        if not isinstance(item_list, list) or not all(isinstance(i, str) for i in item_list):
            raise OfferError(f"{where}: a SET needs 'set': {{'item': [strings]}}")
        items = frozenset(item_list)
    allocation = raw.get("allocation_info")
    allocation_role = allocation.get("role") if isinstance(allocation, Mapping) else None
    return Resource(
        name=name,
        type=kind,
        scalar_milli=scalar,
        ranges=ranges,
        items=items,
        reservation_role=_reservation_role(raw),
        allocation_role=allocation_role if isinstance(allocation_role, str) else None,
        unusable_because=_unusable_because(raw),
        raw=raw,
    )


def _attribute(raw: object, where: str) -> Attribute:
    """One agent attribute (Mesos ``Attribute``: a name, a type and that type's required value)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise OfferError(f"{where}: an attribute needs a string 'name'")
    name: str = raw["name"]
    where = f"{where} {name!r}"
    kind = raw.get("type")
    value: str | float | tuple[tuple[int, int], ...] | frozenset[str]
    inner = raw.get(str(kind).lower()) if kind in ("TEXT", "SCALAR", "SET") else None
    if kind == "TEXT" and isinstance(inner, Mapping) and isinstance(inner.get("value"), str):
        value = inner["value"]
    elif kind == "SCALAR" and isinstance(inner, Mapping) and _finite(inner.get("value")):
        value = float(inner["value"])
    elif kind == "RANGES":
        value = _ranges(raw.get("ranges"), where)
    elif kind == "SET" and isinstance(inner, Mapping) and _strings(inner.get("item", [])):
        value = frozenset(inner.get("item", []))
    else:
        raise OfferError(f"{where}: has an unknown type or no value of its type (type {kind!r})")
    return Attribute(name=name, type=str(kind), value=value)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and _fits_float(value)


def _fits_float(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond a double's range
        return False


def _strings(items: object) -> bool:
    return isinstance(items, list) and all(isinstance(item, str) for item in items)


def _fault_domain(raw: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """The agent's (zone, region) names from ``domain.fault_domain`` (Mesos ``DomainInfo``: both are
    optional, but each present part must have the shape Mesos defines)."""
    domain = raw.get("domain")
    if domain is None:
        return None, None
    if not isinstance(domain, Mapping):
        raise OfferError(f"{where}: 'domain' must be an object")
    fault = domain.get("fault_domain")
    if fault is None:
        return None, None
    if not isinstance(fault, Mapping):
        raise OfferError(f"{where}: 'domain.fault_domain' must be an object")
    names: list[str | None] = []
    for part in ("zone", "region"):
        info = fault.get(part)
        name = info.get("name") if isinstance(info, Mapping) else None
        if info is not None and (not isinstance(name, str) or not name):
            raise OfferError(f"{where}: 'domain.fault_domain.{part}' must be an object with a non-empty string 'name'")
        names.append(name)
    return names[0], names[1]


def parse_offer(raw: object) -> Offer:
    """One offer from the v1 API's JSON (``event.offers.offers[i]``)."""
    if not isinstance(raw, Mapping):
        raise OfferError("an offer must be a JSON object")
    offer_id = _value_field(raw, "id", "offer")
    where = f"offer {offer_id}"
    agent_id = _value_field(raw, "agent_id", where)
    hostname = raw.get("hostname")
    if not isinstance(hostname, str) or not hostname:
        raise OfferError(f"{where}: 'hostname' must be a non-empty string")
    resources_raw = raw.get("resources", [])
    if not isinstance(resources_raw, list):
        raise OfferError(f"{where}: 'resources' must be a list")
    attributes_raw = raw.get("attributes", [])
    if not isinstance(attributes_raw, list):
        raise OfferError(f"{where}: 'attributes' must be a list")
    framework = raw.get("framework_id")
    framework_id = framework.get("value") if isinstance(framework, Mapping) else None
    zone, region = _fault_domain(raw, where)
    try:
        unavailability = parse_unavailability(raw.get("unavailability"), where)
    except MaintenanceError as error:
        raise OfferError(str(error)) from error
    return Offer(
        id=offer_id,
        agent_id=agent_id,
        hostname=hostname,
        resources=tuple(parse_resource(r, f"{where}: resource #{i}") for i, r in enumerate(resources_raw)),
        attributes=tuple(_attribute(a, f"{where}: attribute #{i}") for i, a in enumerate(attributes_raw)),
        framework_id=framework_id if isinstance(framework_id, str) else None,
        zone=zone,
        region=region,
        unavailability=unavailability,
    )


def offers_from_document(document: object) -> list[object]:
    """The raw offers in a JSON document: a list of offers, ``{"offers": [...]}``, or an OFFERS event."""
    if isinstance(document, list):
        return document
    if isinstance(document, Mapping):
        if document.get("type") == "OFFERS" and isinstance(document.get("offers"), Mapping):
            inner = document["offers"].get("offers")
        else:
            inner = document.get("offers")
        if isinstance(inner, list):
            return inner
    raise OfferError('expected a list of offers, {"offers": [...]}, or a Mesos OFFERS event')


def attribute_text(attribute: Attribute) -> str:
    """An attribute's value as text, the form placement constraints compare, exactly as Marathon
    formats it (``getValueString`` in mesosphere/marathon ``src/main/scala/mesosphere/mesos/Constraints.scala``,
    documented in ``docs/docs/constraints.md``): a text as is, a scalar by :func:`scalar_text`,
    ranges ``[a-b,c-d]`` sorted by their start, a set ``{a,b}`` sorted, without spaces."""
    value = attribute.value
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return scalar_text(value)
    if isinstance(value, frozenset):
        return "{" + ",".join(sorted(value)) + "}"
    return "[" + ",".join(f"{begin}-{end}" for begin, end in value) + "]"


def attribute_texts(offer: Offer) -> dict[str, str]:
    """Every attribute of the offer's agent, as text (the first of two with one name)."""
    texts: dict[str, str] = {}
    for attribute in offer.attributes:
        texts.setdefault(attribute.name, attribute_text(attribute))
    return texts


def agent_zone(offer: Offer, zone_attribute: str | None) -> str | None:
    """The agent's zone: the attribute ``zone_attribute`` names, else the fault domain's zone."""
    if zone_attribute:
        return attribute_texts(offer).get(zone_attribute)
    return offer.zone


def field_value(offer: Offer, field: str) -> str | None:
    """The value a placement constraint over ``field`` sees in this offer: the agent's hostname for
    ``hostname`` (or ``@hostname``), else the attribute of that name as text; None when the agent has
    no such attribute."""
    if field in HOSTNAME_FIELDS:
        return offer.hostname
    for attribute in offer.attributes:
        if attribute.name == field:
            return attribute_text(attribute)
    return None
