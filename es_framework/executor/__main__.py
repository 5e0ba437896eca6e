"""``python -m es_framework.executor``: the ``es-mesos-executor`` command (the development cluster runs it so)."""

import sys

from es_framework.executor.main import main

sys.exit(main())
