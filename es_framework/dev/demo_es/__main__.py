"""``python -m es_framework.dev.demo_es``: run a demo Elasticsearch node (development tool, not Elasticsearch)."""

from __future__ import annotations

import sys

from es_framework.dev.demo_es.node import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
