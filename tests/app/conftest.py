"""A leadership with --elasticsearchSecurity auto makes this process's Elasticsearch clients trust the
cluster's CA (es_framework.shell.es_client.trust_cluster); no test leaves that behind for the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from es_framework.shell.es_client import forget_cluster_trust


@pytest.fixture(autouse=True)
def _no_cluster_trust_left() -> Iterator[None]:
    yield
    forget_cluster_trust()
