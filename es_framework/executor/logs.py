"""The executor's logging: one logger, lines about the node prefixed with its node id and task id."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("es_framework.executor")

#: The executor's own log in the sandbox (rotated); Elasticsearch's output has its own file.
LOG_FILE = "es-mesos-executor.log"


class NodeLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with the node id and task id."""

    def __init__(self, node_id: str, task_id: str) -> None:
        super().__init__(logger, {})
        self.prefix = f"node {node_id} task {task_id}: "

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.prefix}{msg}", kwargs


def configure_logging(sandbox: Path) -> None:
    """Log to stderr (the agent keeps it in the sandbox) and to :data:`LOG_FILE`, rotated."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    with contextlib.suppress(OSError):
        handlers.append(logging.handlers.RotatingFileHandler(sandbox / LOG_FILE, maxBytes=10 * 2**20, backupCount=3))
    root = logging.getLogger()
    root.handlers[:] = []
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
