"""Resource arithmetic over one offer: what our role may use, which ports to take, and carving
the exact TaskInfo resources out of the offer's own entries.

Everything here costs O(size of the offer), never O(size of the cluster).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from es_framework.config import Ports
from es_framework.core.offers import Offer, Resource

Ranges = tuple[tuple[int, int], ...]


def role_may_use(reservation_role: str, role: str) -> bool:
    """Unreserved resources, and those reserved to our role or an ancestor of it (Mesos shares a
    parent's reservations with its children), are usable."""
    return reservation_role in ("*", role) or role.startswith(reservation_role + "/")


def usable(resource: Resource, role: str) -> bool:
    if resource.unusable_because is not None:
        return False
    if resource.allocation_role is not None and resource.allocation_role != role:
        return False
    return role_may_use(resource.reservation_role, role)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(ranges):
        if merged and begin <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return tuple(merged)


def in_ranges(port: int, ranges: Ranges) -> bool:
    return any(begin <= port <= end for begin, end in ranges)


@dataclass(frozen=True)
class Available:
    """The resources of one offer that our role may use, summed over every entry of a name."""

    cpus_milli: int = 0
    mem_milli: int = 0
    disk_milli: int = 0
    ports: Ranges = ()
    #: GPUs anywhere in the offer, usable or not: their presence marks a GPU agent.
    gpus_milli: int = 0

    @property
    def port_count(self) -> int:
        return sum(end - begin + 1 for begin, end in self.ports)


def available(offer: Offer, role: str) -> Available:
    totals = {"cpus": 0, "mem": 0, "disk": 0}
    port_ranges: list[tuple[int, int]] = []
    gpus = 0
    for resource in offer.resources:
        if resource.name == "gpus":
            gpus += resource.scalar_milli
        if not usable(resource, role):
            continue
        if resource.name in totals and resource.type == "SCALAR":
            totals[resource.name] += resource.scalar_milli
        elif resource.name == "ports" and resource.type == "RANGES":
            port_ranges.extend(resource.ranges)
    return Available(
        cpus_milli=totals["cpus"],
        mem_milli=totals["mem"],
        disk_milli=totals["disk"],
        ports=merge_ranges(port_ranges),
        gpus_milli=gpus,
    )


class PortsUnavailableError(Exception):
    """Why the wanted ports cannot come from this offer (the message is the decline reason)."""


def choose_ports(offered: Ranges, wanted: Ports) -> tuple[int, int]:
    """The (http, transport) ports to use: fixed ones must be offered; 0 takes the lowest free one."""
    for label, port in (("HTTP", wanted.http), ("transport", wanted.transport)):
        if port and not in_ranges(port, offered):
            raise PortsUnavailableError(
                f"{label} port {port} is not offered (offered: {format_ranges(offered) or 'none'})"
            )
    taken = set(wanted.fixed)
    chosen: list[int] = []
    for port in (wanted.http, wanted.transport):
        if port:
            chosen.append(port)
            continue
        found = _lowest_free(offered, taken)
        if found is None:
            needed = 2 - len(wanted.fixed)
            raise PortsUnavailableError(
                f"{needed} port(s) needed from the offer, offered: {format_ranges(offered) or 'none'}"
            )
        taken.add(found)
        chosen.append(found)
    return chosen[0], chosen[1]


def _lowest_free(ranges: Ranges, taken: set[int]) -> int | None:
    for begin, end in ranges:
        port = begin
        # ``taken`` holds at most two ports, so this inner loop runs at most three times per range.
        while port <= end and port in taken:
            port += 1
        if port <= end:
            return port
    return None


def format_ranges(ranges: Ranges) -> str:
    return ",".join(str(b) if b == e else f"{b}-{e}" for b, e in ranges)


def format_milli(value: int) -> str:
    return f"{value / 1000:g}"


@dataclass(frozen=True)
class Requirements:
    """What one node takes from an offer."""

    cpus_milli: int
    mem_milli: int
    disk_milli: int
    ports: tuple[int, int]


class CarveError(ValueError):
    """The offer cannot supply the requirements (the strategy should have declined it)."""


def _carve_order(entries: Sequence[Resource]) -> list[Resource]:
    # Reserved entries first: they are set aside for us, while unreserved ones could serve others.
    return sorted(entries, key=lambda r: 0 if r.reserved else 1)


def _piece(resource: Resource, **replace: Any) -> dict[str, Any]:
    piece = copy.deepcopy(dict(resource.raw))
    for key in ("scalar", "ranges", "set"):
        piece.pop(key, None)
    piece.update(replace)
    return piece


def carve(offer: Offer, role: str, requirements: Requirements) -> list[dict[str, Any]]:
    """The resources for a TaskInfo, taken from the offer's own entries.

    Each piece keeps its entry's ``role``, ``reservations``, ``allocation_info`` and other fields;
    a requirement met by several entries takes a piece of each.
    """
    out: list[dict[str, Any]] = []
    entries = [r for r in offer.resources if usable(r, role)]
    for name, wanted in (
        ("cpus", requirements.cpus_milli),
        ("mem", requirements.mem_milli),
        ("disk", requirements.disk_milli),
    ):
        left = wanted
        for resource in _carve_order([r for r in entries if r.name == name and r.type == "SCALAR"]):
            if left <= 0:
                break
            take = min(left, resource.scalar_milli)
            if take > 0:
                out.append(_piece(resource, scalar={"value": take / 1000}))
                left -= take
        if left > 0:
            raise CarveError(f"offer {offer.id} lacks {format_milli(left)} {name}")
    port_entries = _carve_order([r for r in entries if r.name == "ports" and r.type == "RANGES"])
    for port in requirements.ports:
        # Ports are few per task; give each its own range so every piece names its exact entry.
        owner = next((r for r in port_entries if in_ranges(port, r.ranges)), None)
        if owner is None:
            raise CarveError(f"offer {offer.id} does not offer port {port}")
        out.append(_piece(owner, ranges={"range": [{"begin": port, "end": port}]}))
    return _coalesce_ports(out)


def _coalesce_ports(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge port pieces cut from the same entry into one resource (Mesos accepts either, but one
    entry per source reads better in the task and in the master's UI)."""
    out: list[dict[str, Any]] = []
    for piece in pieces:
        if piece.get("name") == "ports":
            same = next(
                (p for p in out if p.get("name") == "ports" and {**p, "ranges": None} == {**piece, "ranges": None}),
                None,
            )
            if same is not None:
                same["ranges"]["range"].extend(piece["ranges"]["range"])
                continue
        out.append(piece)
    return out
