"""What the demo node (development tool, not Elasticsearch) says it is, in ``GET /``, ``/_nodes`` and its logs."""

from __future__ import annotations

DEMO_VERSION = "8.x-demo"
TAGLINE = "es-mesos demo node — not Elasticsearch"
