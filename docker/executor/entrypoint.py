"""PyInstaller entry point of the frozen ``es-mesos-executor`` (see docker/executor/Dockerfile)."""

import sys

from es_framework.executor import main

if __name__ == "__main__":
    sys.exit(main())
