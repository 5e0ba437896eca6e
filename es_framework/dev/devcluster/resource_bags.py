"""Resource arithmetic for the development master (development tool, not for production).

A :class:`ResourceBag` holds resources keyed the way Mesos compares them: name, type, the
reservation chain (``reservations``, or the deprecated ``role`` of an old-style static
reservation) and every other identity field (``disk``, ``revocable``, ``shared``, ...).
``allocation_info`` is not part of the key: the master checks it separately against the role the
offer was made to. Scalars are kept in thousandths, as Mesos does, so sums are exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Ranges = tuple[tuple[int, int], ...]
Value = int | Ranges | frozenset[str]

#: Fields that carry a resource's quantity or that the bag handles itself.
_VALUE_FIELDS = frozenset({"name", "type", "scalar", "ranges", "set", "role", "reservations", "allocation_info"})
#: Order of resources in an offer (as a real agent reports them: ports, cpus, mem, disk).
_NAME_ORDER = {"ports": 0, "cpus": 1, "mem": 2, "disk": 3, "gpus": 4}


class ResourceError(ValueError):
    """JSON that is not a valid Mesos resource."""


@dataclass(frozen=True, order=True)
class ResourceKey:
    name: str
    type: str
    #: Canonical JSON of the reservation chain (``[]`` when unreserved).
    reservations: str
    #: Canonical JSON of the other identity fields (``{}`` for plain resources).
    extra: str

    @property
    def reservation_role(self) -> str:
        chain = json.loads(self.reservations)
        return str(chain[-1]["role"]) if chain else "*"


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((begin, end))
    return tuple(out)


def _ranges_contain(outer: Ranges, inner: Ranges) -> bool:
    return all(any(b >= ob and e <= oe for ob, oe in outer) for b, e in inner)


def _subtract_ranges(outer: Ranges, inner: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    for begin, end in outer:
        pieces = [(begin, end)]
        for ib, ie in inner:
            next_pieces: list[tuple[int, int]] = []
            for pb, pe in pieces:
                if ie < pb or ib > pe:
                    next_pieces.append((pb, pe))
                    continue
                if pb < ib:
                    next_pieces.append((pb, ib - 1))
                if ie < pe:
                    next_pieces.append((ie + 1, pe))
            pieces = next_pieces
        out.extend(pieces)
    return merge_ranges(out)


def reservation_chain(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The reservations of a resource; an old-style ``role`` other than ``*`` is a static one."""
    reservations = raw.get("reservations")
    if reservations:
        if not isinstance(reservations, list) or not all(
            isinstance(r, dict) and isinstance(r.get("role"), str) for r in reservations
        ):
            raise ResourceError(f"bad reservations in resource {raw.get('name')!r}")
        return [dict(r) for r in reservations]
    role = raw.get("role")
    if role is not None and not isinstance(role, str):
        raise ResourceError(f"bad role in resource {raw.get('name')!r}")
    return [{"type": "STATIC", "role": role}] if role not in (None, "*") else []


def parse_resource(raw: object) -> tuple[ResourceKey, Value]:
    if not isinstance(raw, dict):
        raise ResourceError(f"resource is not a JSON object: {raw!r}")
    name, kind = raw.get("name"), raw.get("type")
    if not isinstance(name, str) or not name:
        raise ResourceError("resource without a name")
    extra = {k: v for k, v in raw.items() if k not in _VALUE_FIELDS}
    key = ResourceKey(name, str(kind), _canonical(reservation_chain(raw)), _canonical(extra))
    value: Value
    if kind == "SCALAR":
        scalar = raw.get("scalar")
        number = scalar.get("value") if isinstance(scalar, dict) else None
        if not isinstance(number, int | float) or isinstance(number, bool) or not math.isfinite(number) or number < 0:
            raise ResourceError(f"resource {name}: bad scalar {scalar!r}")
        value = round(number * 1000)
    elif kind == "RANGES":
        ranges = raw.get("ranges")
        items = ranges.get("range") if isinstance(ranges, dict) else None
        if not isinstance(items, list):
            raise ResourceError(f"resource {name}: bad ranges {ranges!r}")
        pairs: list[tuple[int, int]] = []
        for item in items:
            begin = item.get("begin") if isinstance(item, dict) else None
            end = item.get("end") if isinstance(item, dict) else None
            if not isinstance(begin, int) or not isinstance(end, int) or begin > end or begin < 0:
                raise ResourceError(f"resource {name}: bad range {item!r}")
            pairs.append((begin, end))
        value = merge_ranges(pairs)
    elif kind == "SET":
        items_set = raw.get("set")
        members = items_set.get("item") if isinstance(items_set, dict) else None
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ResourceError(f"resource {name}: bad set {items_set!r}")
        value = frozenset(members)
    else:
        raise ResourceError(f"resource {name}: unknown type {kind!r}")
    return key, value


def _is_empty(value: Value) -> bool:
    return not value


class ResourceBag:
    """An immutable multiset of resources. Operations return new bags."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[ResourceKey, Value] | None = None) -> None:
        self._entries: dict[ResourceKey, Value] = {k: v for k, v in (entries or {}).items() if not _is_empty(v)}

    @classmethod
    def from_json(cls, resources: object) -> ResourceBag:
        if not isinstance(resources, list):
            raise ResourceError("resources must be a JSON array")
        bag = cls()
        for raw in resources:
            key, value = parse_resource(raw)
            bag = bag + cls({key: value})
        return bag

    @property
    def entries(self) -> Mapping[ResourceKey, Value]:
        return dict(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResourceBag) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(frozenset(self._entries.items()))

    def __repr__(self) -> str:
        return f"ResourceBag({self.describe()})"

    def __add__(self, other: ResourceBag) -> ResourceBag:
        out = dict(self._entries)
        for key, value in other._entries.items():
            mine = out.get(key)
            if mine is None:
                out[key] = value
            elif isinstance(mine, int) and isinstance(value, int):
                out[key] = mine + value
            elif isinstance(mine, frozenset) and isinstance(value, frozenset):
                out[key] = mine | value
            elif isinstance(mine, tuple) and isinstance(value, tuple):
                out[key] = merge_ranges((*mine, *value))
            else:
                raise ResourceError(f"cannot add {key.name} values of different types")
        return ResourceBag(out)

    def contains(self, other: ResourceBag) -> bool:
        for key, value in other._entries.items():
            mine = self._entries.get(key)
            if mine is None:
                return False
            if isinstance(mine, int) and isinstance(value, int):
                if value > mine:
                    return False
            elif isinstance(mine, frozenset) and isinstance(value, frozenset):
                if not value <= mine:
                    return False
            elif isinstance(mine, tuple) and isinstance(value, tuple):
                if not _ranges_contain(mine, value):
                    return False
            else:
                return False
        return True

    def __sub__(self, other: ResourceBag) -> ResourceBag:
        """``self`` minus ``other``; ``other`` must be contained in ``self``."""
        if not self.contains(other):
            raise ResourceError(f"{other.describe()} is not contained in {self.describe()}")
        out = dict(self._entries)
        for key, value in other._entries.items():
            mine = out[key]
            if isinstance(mine, int) and isinstance(value, int):
                out[key] = mine - value
            elif isinstance(mine, frozenset) and isinstance(value, frozenset):
                out[key] = frozenset(mine - value)
            elif isinstance(mine, tuple) and isinstance(value, tuple):
                out[key] = _subtract_ranges(mine, value)
        return ResourceBag(out)

    def filter(self, keep: Any) -> ResourceBag:
        """The entries whose key satisfies ``keep(key)``."""
        return ResourceBag({k: v for k, v in self._entries.items() if keep(k)})

    def scalar(self, name: str) -> float:
        return sum(v for k, v in self._entries.items() if k.name == name and isinstance(v, int)) / 1000

    def to_json(self, allocation_role: str | None = None) -> list[dict[str, Any]]:
        """Mesos v1 JSON, with the deprecated ``role`` field, and ``allocation_info`` if a role is given."""
        out: list[dict[str, Any]] = []
        ordered = sorted(
            self._entries.items(), key=lambda kv: (kv[0].reservations != "[]", _NAME_ORDER.get(kv[0].name, 9), kv[0])
        )
        for key, value in ordered:
            entry: dict[str, Any] = {"name": key.name, "type": key.type}
            if isinstance(value, int):
                entry["scalar"] = {"value": value / 1000}
            elif isinstance(value, tuple):
                entry["ranges"] = {"range": [{"begin": b, "end": e} for b, e in value]}
            else:
                entry["set"] = {"item": sorted(value)}
            entry["role"] = key.reservation_role
            chain = json.loads(key.reservations)
            if chain:
                entry["reservations"] = chain
            if allocation_role is not None:
                entry["allocation_info"] = {"role": allocation_role}
            entry.update(json.loads(key.extra))
            out.append(entry)
        return out

    def describe(self) -> str:
        """Mesos-like text, e.g. ``cpus(*):4; mem(*):4096; ports(*):[31000-32000]``."""
        parts: list[str] = []
        for key, value in sorted(self._entries.items()):
            if isinstance(value, int):
                text = f"{value / 1000:g}"
            elif isinstance(value, tuple):
                text = "[" + ", ".join(f"{b}-{e}" for b, e in value) + "]"
            else:
                text = "{" + ", ".join(sorted(value)) + "}"
            parts.append(f"{key.name}({key.reservation_role}):{text}")
        return "; ".join(parts) or "{}"
