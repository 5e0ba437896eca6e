"""The ``es-mesos-executor`` process: logging, the pymesos executor driver, and the exit code."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pymesos import MesosExecutorDriver

from es_framework.executor.logs import configure_logging, logger
from es_framework.executor.node_executor import NodeExecutor

#: What a Mesos agent sets for every executor it starts (pymesos' executor driver needs them).
AGENT_ENV = ("MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID")


def main() -> int:
    """Run the executor until its task ends; 2 when not started by a Mesos agent, 1 when the driver stops."""
    sandbox = Path(os.environ.get("MESOS_SANDBOX") or os.environ.get("MESOS_DIRECTORY") or os.getcwd())
    configure_logging(sandbox)
    missing = [n for n in AGENT_ENV if not os.environ.get(n)]
    if missing:
        logger.error("es-mesos-executor must be started by a Mesos agent: %s not set", ", ".join(missing))
        return 2
    executor = NodeExecutor()
    driver = MesosExecutorDriver(executor, use_addict=False)
    executor.driver = driver
    logger.info(
        "es-mesos-executor %s starting (agent %s)", os.environ["MESOS_EXECUTOR_ID"], os.environ["MESOS_AGENT_ENDPOINT"]
    )
    driver.start()
    try:
        while not executor.finished.wait(0.5):
            if driver.aborted:
                logger.error("the executor driver stopped")
                return 1
    except KeyboardInterrupt:
        logger.info("interrupted")
    # Updates are sent synchronously (the agent has them): give the agent a moment, then leave.
    time.sleep(0.5)
    driver.stop()
    logger.info("es-mesos-executor exits")
    return 0
