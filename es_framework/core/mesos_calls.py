"""The calls the scheduler makes to Mesos, as plain values.

The engine returns them; the driver shell sends them (Mesos scheduler HTTP API, ``Call`` types
ACCEPT, DECLINE, KILL, ACKNOWLEDGE, RECONCILE, SUPPRESS, REVIVE, MESSAGE and
ACCEPT/DECLINE_INVERSE_OFFERS:
https://mesos.apache.org/documentation/latest/scheduler-http-api/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Accept:
    offer_id: str
    task_infos: tuple[dict[str, Any], ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str | None


@dataclass(frozen=True)
class Acknowledge:
    agent_id: str
    task_id: str
    uuid: str


@dataclass(frozen=True)
class Reconcile:
    """``tasks`` empty means implicit reconciliation (every task the master knows)."""

    tasks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Suppress:
    pass


@dataclass(frozen=True)
class Revive:
    pass


@dataclass(frozen=True)
class Message:
    """A framework message to one node's executor (``data`` is the raw payload)."""

    agent_id: str
    executor_id: str
    data: bytes


@dataclass(frozen=True)
class AnswerInverseOffers:
    """ACCEPT_INVERSE_OFFERS (``accept``) or DECLINE_INVERSE_OFFERS of maintenance inverse offers."""

    inverse_offer_ids: tuple[str, ...]
    accept: bool
    refuse_seconds: float


Call = Accept | Decline | Kill | Acknowledge | Reconcile | Suppress | Revive | Message | AnswerInverseOffers
