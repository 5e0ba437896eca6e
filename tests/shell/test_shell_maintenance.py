"""The shell answers Mesos maintenance: INVERSE_OFFERS reach the engine thread, and its answers go
out through pymesos' acceptInverseOffers / declineInverseOffer with refuse_seconds as a filter."""

from __future__ import annotations

from typing import Any

from addict import Dict  # type: ignore[import-untyped]

from es_framework.core.maintenance import REFUSE_S
from tests.core.test_maintenance import inverse
from tests.shell.test_scheduler_shell import RecordingDriver, start_shell, wait_for


class AnsweringDriver(RecordingDriver):
    def acceptInverseOffers(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("accept_inverse", (offer_ids, filters)))

    def declineInverseOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("decline_inverse", (offer_ids, filters)))


def test_an_inverse_offer_for_an_agent_without_our_nodes_is_accepted() -> None:
    shell, stop, thread, drivers = start_shell(driver_class=AnsweringDriver)
    try:
        driver = drivers[-1]
        shell.registered(driver, {"value": "fw-1"}, {})
        shell.inverseOffers(driver, [Dict(inverse(7, "agent-9-S0"))])
        wait_for(lambda: any(c[0] == "accept_inverse" for c in driver.calls))
        answer = next(c for c in driver.calls if c[0] == "accept_inverse")
        assert answer == ("accept_inverse", ([{"value": "master-O7"}], {"refuse_seconds": REFUSE_S}))
        assert not any(c[0] == "decline_inverse" for c in driver.calls)
    finally:
        stop.set()
        thread.join(10)
