"""The README's word on the API stays true: every proxied path is in the REST table, and the local-mode
section says which of them the demo node answers (the demo node documents its HTTP surface)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import es_framework.dev.demo_es

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
LOCAL_MODE = README[README.index("## Local mode (development tool)") : README.index("## Demo Elasticsearch node")]
REST_TABLE = README[README.index("| request | what |") : README.index("**Scaling up**")]
#: The demo node's HTTP surface as its package documents it (anything else answers 400).
DEMO_SURFACE = es_framework.dev.demo_es.__doc__ or ""
#: The proxied paths the README's table names, and the Elasticsearch path of each.
_PROXIED = {
    "/v1/es/_cluster/health": "_cluster/health",
    "/v1/es/_cluster/stats": "_cluster/stats",
    "/v1/es/_search": "_search",
    "/v1/es/_count": "_count",
}


@pytest.mark.parametrize(("path", "target"), sorted(_PROXIED.items()))
def test_the_readme_says_what_the_demo_node_answers_of_each_proxied_path(path: str, target: str) -> None:
    assert f"`GET {path}" in REST_TABLE
    answered = re.search(rf"/{re.escape(target)}\b", DEMO_SURFACE) is not None
    sentence = next((s for s in re.split(r"(?<=[.;])\s", LOCAL_MODE) if f"`{target}`" in s), None)
    assert sentence is not None, f"the local-mode section does not say whether the demo node answers {target}"
    assert ("answers 400" in sentence) is not answered, sentence


def test_the_local_mode_section_does_not_say_the_demo_nodes_stay_apart() -> None:
    # The demo cluster forms (bootstrapped once, as on Mesos): every node lists all of them.
    assert "reports only itself" not in LOCAL_MODE
    assert "`/_nodes` on any node lists" in LOCAL_MODE
