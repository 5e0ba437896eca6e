"""What the rollout end-to-end tests watch while nodes restart: the development master's running tasks
(so the watch goes on while the scheduler itself is down or failing over) and the document count
through the scheduler's endpoints whenever it answers."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any

import requests

from es_framework.dev.devcluster import DevMaster
from examples.client import connect
from tests.harness.e2e import running_tasks

#: The step states in which a node is (being) taken down (``core/rollout_model.IN_PROGRESS``).
IN_PROGRESS = {"draining", "restarting", "waiting-healthy"}


def api_json(api: str, path: str) -> Any:
    response = requests.get(api + path, timeout=10)
    response.raise_for_status()
    return response.json()


def finished_rollout(api: str, reason: str | None = None, rollout_id: str | None = None) -> dict[str, Any] | None:
    """The last finished rollout (of ``reason``, or with ``rollout_id``) once none is under way, else None."""
    with contextlib.suppress(requests.RequestException, ValueError):
        answer = api_json(api, "/v1/rollouts")
        done = [
            r
            for r in answer["finished"]
            if (reason is None or r["reason"] == reason) and (rollout_id is None or r["id"] == rollout_id)
        ]
        return done[0] if answer["current"] is None and done else None
    return None


def registered(api: str) -> bool:
    """Whether the scheduler behind ``api`` leads and is subscribed to Mesos (its API answers before)."""
    with contextlib.suppress(requests.RequestException, ValueError, KeyError):
        return bool(api_json(api, "/v1/cluster")["registered"])
    return False


class MasterWatcher:
    """Polls the master's tasks every 0.2 s — which of ``nodes`` were not running, every task id each
    node had, in order, with when it was first seen — and the document count of ``index`` every 0.5 s
    whenever the scheduler answers (a node stopping under the client is recorded, not fatal)."""

    def __init__(self, master: DevMaster, api: str, nodes: Iterable[int], index: str = "books") -> None:
        self.master, self.api, self.index = master, api, index
        self.nodes = tuple(nodes)
        self.down: list[tuple[float, list[int]]] = []
        self.task_ids: dict[int, dict[str, float]] = {i: {} for i in self.nodes}
        self.counts: list[int] = []
        self.count_errors: list[str] = []
        #: What the scheduler said it had taken away: rollout steps in progress, nodes draining.
        self.away: list[tuple[float, list[int], list[int]]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._tasks),
            threading.Thread(target=self._count),
            threading.Thread(target=self._away),
        ]

    def _tasks(self) -> None:
        while not self._stop.wait(0.2):
            now = time.time()
            seen = running_tasks(self.master)
            self.down.append((now, [i for i in self.nodes if i not in seen]))
            for node_id, task in seen.items():
                if node_id in self.task_ids:
                    self.task_ids[node_id].setdefault(task["task_id"], now)

    def _away(self) -> None:
        while not self._stop.wait(0.3):
            with contextlib.suppress(requests.RequestException, ValueError, KeyError, TypeError):
                current = api_json(self.api, "/v1/rollouts")["current"]
                steps = [s["node_id"] for s in current["steps"] if s["state"] in IN_PROGRESS] if current else []
                drains = [d["node_id"] for d in api_json(self.api, "/v1/cluster")["drain"] if d["status"] == "draining"]
                self.away.append((time.time(), steps, drains))

    def most_away(self) -> int:
        """The most nodes the scheduler had taken away at once (rollout steps and drains together)."""
        return max((len(set(steps) | set(drains)) for _, steps, drains in self.away), default=0)

    def _count(self) -> None:
        while not self._stop.wait(0.5):
            try:
                client = connect(self.api)
            except Exception as error:  # the scheduler is down for a while: no endpoints
                self.count_errors.append(repr(error))
                continue
            try:
                self.counts.append(int(client.count(index=self.index)["count"]))
            except Exception as error:
                self.count_errors.append(repr(error))
            finally:
                client.close()

    def __enter__(self) -> MasterWatcher:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def restart_order(self) -> list[int]:
        """The nodes in the order their second task was first seen."""
        second = {i: sorted(ids.values())[1] for i, ids in self.task_ids.items() if len(ids) > 1}
        return sorted(second, key=second.__getitem__)
