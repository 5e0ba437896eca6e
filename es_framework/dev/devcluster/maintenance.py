"""Mesos maintenance as data: schedules, machine modes, inverse-offer answers (development tool, not for production).

Pure: frozen dataclasses and functions, no clock (timestamps are passed in). The development
master (:mod:`.maintenance_ops`) keeps one :class:`Maintenance` and replaces it through these
functions. What it follows, besides the real Mesos 1.12 master recorded in
``shared/notes/mesos-maintenance-domains-reservations.md`` §2:

- the messages of apache/mesos ``include/mesos/v1/maintenance/maintenance.proto`` (``Window``,
  ``Schedule``, ``ClusterStatus``) and ``include/mesos/v1/mesos.proto`` (``MachineID``,
  ``Unavailability``, ``MachineInfo.Mode``);
- the validation of ``src/master/maintenance.cpp`` (``validation::schedule``, ``::machines``,
  ``::machine``, ``::unavailability``): a window needs a machine, a machine appears once, a ``DOWN``
  machine cannot leave the schedule, a duration is not negative;
- the mode changes of ``src/master/http.cpp`` (``_updateMaintenanceSchedule``,
  ``_startMaintenance``, ``_stopMaintenance``): a newly scheduled machine is ``DRAINING``, a machine
  left out of a new schedule is ``UP`` again, only ``DRAINING`` goes ``DOWN``, only ``DOWN`` comes
  ``UP`` (and leaves the schedule; an emptied window or schedule goes too). A machine is known to the
  master when it is scheduled or an agent runs on it (``Master::machines``), which decides between
  "is not part of a maintenance schedule" and "is not in ... mode".

A machine is ``(hostname, ip)`` and matches an agent only when both are equal, as Mesos compares
``MachineID`` (an agent's machine is its hostname and the IP of its address).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

_CONVERT = "Failed to convert JSON into Call protobuf: "


class MaintenanceError(ValueError):
    """A maintenance call refused; the text is Mesos' (HTTP 400, ``text/plain``)."""


class Mode(Enum):
    UP = "UP"
    DRAINING = "DRAINING"
    DOWN = "DOWN"


@dataclass(frozen=True, order=True)
class MachineId:
    hostname: str = ""
    ip: str = ""

    def to_json(self) -> dict[str, str]:
        """Fields in the proto's order, empty ones left out (as ``JSON::protobuf`` writes it)."""
        out: dict[str, str] = {}
        if self.hostname:
            out["hostname"] = self.hostname
        if self.ip:
            out["ip"] = self.ip
        return out

    def text(self) -> str:
        """How Mesos names the machine in a refusal: compact JSON."""
        return json.dumps(self.to_json(), separators=(",", ":"))


def machine_of(spec: Any) -> MachineId:
    """The machine an agent runs on: its hostname and IP (``Master::_registerSlave``)."""
    return MachineId(str(spec.hostname), str(spec.ip))


@dataclass(frozen=True)
class Unavailability:
    start_ns: int
    duration_ns: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": {"nanoseconds": self.start_ns}}
        if self.duration_ns is not None:
            out["duration"] = {"nanoseconds": self.duration_ns}
        return out


@dataclass(frozen=True)
class Window:
    machines: tuple[MachineId, ...]
    unavailability: Unavailability

    def to_json(self) -> dict[str, Any]:
        return {"machine_ids": [m.to_json() for m in self.machines], "unavailability": self.unavailability.to_json()}


@dataclass(frozen=True)
class Schedule:
    windows: tuple[Window, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"windows": [w.to_json() for w in self.windows]} if self.windows else {}

    def machines(self) -> dict[MachineId, Unavailability]:
        return {m: w.unavailability for w in self.windows for m in w.machines}


@dataclass(frozen=True)
class Response:
    """A framework's latest answer to an inverse offer for a machine (only the latest is kept)."""

    framework_id: str
    status: str  # "ACCEPT" or "DECLINE"
    timestamp_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "framework_id": {"value": self.framework_id},
            "timestamp": {"nanoseconds": self.timestamp_ns},
        }


@dataclass(frozen=True)
class InverseOffer:
    """An inverse offer the master sent and the framework has not answered (ids share the offer counter)."""

    id: str
    framework_id: str
    agent_id: str
    machine: MachineId


@dataclass(frozen=True)
class Maintenance:
    """The schedule, the machines not ``UP``, and the answers per ``DRAINING`` machine."""

    schedule: Schedule = Schedule()
    modes: Mapping[MachineId, Mode] = field(default_factory=dict)
    responses: Mapping[MachineId, tuple[Response, ...]] = field(default_factory=dict)

    def mode(self, machine: MachineId) -> Mode:
        return self.modes.get(machine, Mode.UP)

    def unavailability(self, machine: MachineId) -> Unavailability | None:
        """The window of a machine that is not ``UP`` (what offers and inverse offers carry)."""
        if self.mode(machine) is Mode.UP:
            return None
        return self.schedule.machines().get(machine)

    def status_json(self) -> dict[str, Any]:
        """``ClusterStatus``: no key for an empty list, no ``statuses`` before any answer."""
        order = list(self.schedule.machines())
        draining: list[dict[str, Any]] = []
        down: list[dict[str, str]] = []
        for machine in order + sorted(m for m in self.modes if m not in order):
            mode = self.mode(machine)
            if mode is Mode.DRAINING:
                entry: dict[str, Any] = {"id": machine.to_json()}
                answers = self.responses.get(machine, ())
                if answers:
                    entry["statuses"] = [r.to_json() for r in answers]
                draining.append(entry)
            elif mode is Mode.DOWN:
                down.append(machine.to_json())
        out: dict[str, Any] = {}
        if draining:
            out["draining_machines"] = draining
        if down:
            out["down_machines"] = down
        return out


# ---------------------------------------------------------------------------------------- parsing


def _nanoseconds(obj: object, where: str) -> int:
    if not isinstance(obj, dict) or "nanoseconds" not in obj:
        raise MaintenanceError(_CONVERT + f"Missing required fields: {where}.nanoseconds")
    value = obj["nanoseconds"]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)  # protobuf's JSON form writes int64 as a string too
    if not isinstance(value, int) or isinstance(value, bool):
        raise MaintenanceError(_CONVERT + f"Not expecting a JSON {type(value).__name__} for field 'nanoseconds'")
    return value


def parse_machine(obj: object) -> MachineId:
    if not isinstance(obj, dict):
        raise MaintenanceError(_CONVERT + "Expecting a JSON object for field 'machine_ids'")
    hostname, ip = obj.get("hostname", ""), obj.get("ip", "")
    if not isinstance(hostname, str) or not isinstance(ip, str):
        raise MaintenanceError(_CONVERT + "Expecting a JSON string for fields 'hostname' and 'ip'")
    return MachineId(hostname, ip)


def parse_schedule(obj: object) -> Schedule:
    """``Schedule`` JSON → :class:`Schedule` (shape only; :func:`validate_schedule` checks meaning)."""
    if not isinstance(obj, dict):
        raise MaintenanceError(_CONVERT + "Expecting a JSON object for field 'schedule'")
    raw_windows = obj.get("windows", [])
    if not isinstance(raw_windows, list):
        raise MaintenanceError(_CONVERT + "Expecting a JSON array for field 'windows'")
    windows = []
    for n, raw in enumerate(raw_windows):
        where = f"update_maintenance_schedule.schedule.windows[{n}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("unavailability"), dict):
            raise MaintenanceError(_CONVERT + f"Missing required fields: {where}.unavailability")
        machines = raw.get("machine_ids", [])
        if not isinstance(machines, list):
            raise MaintenanceError(_CONVERT + "Expecting a JSON array for field 'machine_ids'")
        unavailability = raw["unavailability"]
        start = _nanoseconds(unavailability.get("start"), f"{where}.unavailability.start")
        duration = unavailability.get("duration")
        duration_ns = None if duration is None else _nanoseconds(duration, f"{where}.unavailability.duration")
        windows.append(Window(tuple(parse_machine(m) for m in machines), Unavailability(start, duration_ns)))
    return Schedule(tuple(windows))


def parse_machines(obj: object) -> tuple[MachineId, ...]:
    if not isinstance(obj, list):
        raise MaintenanceError(_CONVERT + "Expecting a JSON array for field 'machines'")
    return tuple(parse_machine(m) for m in obj)


# ------------------------------------------------------------------------------------- validation


def validate_machine(machine: MachineId) -> None:
    """``validation::machine``: a hostname or an IP, and the IP an IPv4 address."""
    if not machine.hostname and not machine.ip:
        raise MaintenanceError("Both 'hostname' and 'ip' for a machine are empty")
    if machine.ip:
        try:
            ipaddress.IPv4Address(machine.ip)
        except ValueError:
            raise MaintenanceError(f"Failed to parse IP '{machine.ip}'") from None


def validate_schedule(schedule: Schedule, current: Maintenance) -> None:
    """``validation::schedule``, in its order."""
    seen: set[MachineId] = set()
    for window in schedule.windows:
        if not window.machines:
            raise MaintenanceError("List of machines in the maintenance window is empty")
        if window.unavailability.duration_ns is not None and window.unavailability.duration_ns < 0:
            raise MaintenanceError("Unavailability 'duration' is negative")
        for machine in window.machines:
            validate_machine(machine)
            if machine in seen:
                raise MaintenanceError(f"Machine '{machine.text()}' appears more than once in the schedule")
            seen.add(machine)
    for machine, mode in current.modes.items():
        if mode is Mode.DOWN and machine not in seen:
            raise MaintenanceError(f"Machine '{machine.text()}' is deactivated and cannot be removed from the schedule")


def validate_machines(machines: tuple[MachineId, ...]) -> None:
    """``validation::machines`` (START/STOP_MAINTENANCE's list)."""
    if not machines:
        raise MaintenanceError("List of machines is empty")
    seen: set[MachineId] = set()
    for machine in machines:
        validate_machine(machine)
        if machine in seen:
            raise MaintenanceError(f"Machine '{machine.text()}' appears more than once in the schedule")
        seen.add(machine)


# ------------------------------------------------------------------------------------ transitions


def update_schedule(current: Maintenance, schedule: Schedule) -> Maintenance:
    """UPDATE_MAINTENANCE_SCHEDULE after :func:`validate_schedule`: new machines ``DRAINING``,
    ``DOWN`` ones stay ``DOWN``, machines left out are ``UP`` (their answers forgotten)."""
    scheduled = schedule.machines()
    modes = {m: (Mode.DOWN if current.mode(m) is Mode.DOWN else Mode.DRAINING) for m in scheduled}
    responses = {m: r for m, r in current.responses.items() if modes.get(m) is Mode.DRAINING}
    return Maintenance(schedule, modes, responses)


def changed_machines(before: Maintenance, after: Maintenance) -> set[MachineId]:
    """Machines whose mode or window changed (Mesos' ``updateUnavailability`` runs for each)."""
    machines = set(before.modes) | set(after.modes)
    return {
        m
        for m in machines
        if before.mode(m) is not after.mode(m) or before.unavailability(m) != after.unavailability(m)
    }


def start_maintenance(current: Maintenance, machines: tuple[MachineId, ...], known: Iterable[MachineId]) -> Maintenance:
    """START_MAINTENANCE: every machine must be ``DRAINING``; they go ``DOWN``. ``known``: the
    machines agents run on (an unscheduled one of those is ``UP``, not unknown)."""
    validate_machines(machines)
    _check_modes(current, machines, set(known), Mode.DRAINING, "is not in DRAINING mode and cannot be brought down")
    modes = {**current.modes, **{m: Mode.DOWN for m in machines}}
    responses = {m: r for m, r in current.responses.items() if m not in machines}
    return Maintenance(current.schedule, modes, responses)


def stop_maintenance(current: Maintenance, machines: tuple[MachineId, ...], known: Iterable[MachineId]) -> Maintenance:
    """STOP_MAINTENANCE: every machine must be ``DOWN``; they are ``UP`` and leave the schedule."""
    validate_machines(machines)
    _check_modes(current, machines, set(known), Mode.DOWN, "is not in DOWN mode and cannot be brought up")
    gone = set(machines)
    windows = tuple(
        replace(w, machines=tuple(m for m in w.machines if m not in gone))
        for w in current.schedule.windows
        if any(m not in gone for m in w.machines)
    )
    modes = {m: mode for m, mode in current.modes.items() if m not in gone}
    return Maintenance(Schedule(windows), modes, dict(current.responses))


def _check_modes(
    current: Maintenance, machines: tuple[MachineId, ...], known: set[MachineId], wanted: Mode, refusal: str
) -> None:
    for machine in machines:
        if machine not in current.modes and machine not in known:
            raise MaintenanceError(f"Machine '{machine.text()}' is not part of a maintenance schedule")
        if current.mode(machine) is not wanted:
            raise MaintenanceError(f"Machine '{machine.text()}' {refusal}")


def record_response(
    current: Maintenance, machine: MachineId, framework_id: str, status: str, timestamp_ns: int
) -> Maintenance:
    """A framework answered an inverse offer: its previous answer for the machine is replaced in place."""
    if current.mode(machine) is not Mode.DRAINING:
        return current
    answers = list(current.responses.get(machine, ()))
    new = Response(framework_id, status, timestamp_ns)
    for n, answer in enumerate(answers):
        if answer.framework_id == framework_id:
            answers[n] = new
            break
    else:
        answers.append(new)
    return replace(current, responses={**current.responses, machine: tuple(answers)})
