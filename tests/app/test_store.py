"""Where the scheduler keeps its state (app/store.py)."""

from __future__ import annotations

from es_framework.app.store import state_url
from es_framework.config import ZooKeeperUrl, parse_state_url, redact_url
from tests.harness.builders import config


def test_a_state_url_derived_from_a_master_with_credentials_keeps_them() -> None:
    # The ensemble of --zookeeperMesosUrl, credentials and all: the store must log in as the master does.
    cfg = config(mesosMaster="zk://ops:s%40cret@zk1:2181,zk2:2181/mesos")
    url = state_url(cfg)
    parsed = parse_state_url(url)
    assert isinstance(parsed, ZooKeeperUrl)
    assert parsed.auth is not None and parsed.auth.reveal() == "ops:s@cret"
    assert parsed.hosts == (("zk1", 2181), ("zk2", 2181))
    assert "s@cret" not in str(redact_url(url)) and "s%40cret" not in str(redact_url(url))
