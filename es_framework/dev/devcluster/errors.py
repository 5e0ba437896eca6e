"""Errors of the development master's scheduler API (development tool, not for production)."""

from __future__ import annotations


class CallError(Exception):
    """A scheduler call refused with an HTTP status and Mesos' plain-text reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
