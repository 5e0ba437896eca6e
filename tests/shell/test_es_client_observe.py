"""What the scale-down drain reads from Elasticsearch fails closed: an answer the client cannot read
is an error ("not safe"), never "no shards" or "nothing in flight"."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.shell.es_client import ElasticsearchClient, ElasticsearchError

HEALTH = {"status": "green", "unassigned_shards": 0, "relocating_shards": 0, "initializing_shards": 0}
ROWS = [
    {"index": "books", "shard": "0", "prirep": "p", "state": "STARTED", "node": "elasticsearch1"},
    {
        "index": "books",
        "shard": "0",
        "prirep": "r",
        "state": "RELOCATING",
        "node": "elasticsearch2 -> 10.0.0.3 x elasticsearch3",
    },
    {"index": "books", "shard": "1", "prirep": "r", "state": "UNASSIGNED", "node": None},
]


def client(answers: dict[str, Any]) -> ElasticsearchClient:
    es = ElasticsearchClient("127.0.0.1:9")

    def call(method: str, path: str, **_: Any) -> Any:
        for prefix, answer in answers.items():
            if path.startswith(prefix):
                return answer
        return {}

    es._call = call  # type: ignore[method-assign]
    return es


def test_a_readable_answer_is_counted_by_the_copy_s_source_node() -> None:
    seen = client({"/_cat/shards": ROWS, "/_cluster/health": {**HEALTH, "relocating_shards": 1}}).observe()
    assert seen.shards_by_node == {"elasticsearch1": 1, "elasticsearch2": 1}
    assert (seen.unassigned_shards, seen.relocating_shards, seen.initializing_shards) == (0, 1, 0)


@pytest.mark.parametrize(
    "health",
    [
        {},  # no answer body (the client turns a non-object into {})
        {k: v for k, v in HEALTH.items() if k != "unassigned_shards"},
        {**HEALTH, "relocating_shards": "1"},
        {**HEALTH, "initializing_shards": None},
        {**HEALTH, "unassigned_shards": True},
        {**HEALTH, "unassigned_shards": -1},
    ],
)
def test_an_unreadable_health_answer_is_not_safe(health: dict[str, Any]) -> None:
    with pytest.raises(ElasticsearchError, match="not safe"):
        client({"/_cat/shards": ROWS, "/_cluster/health": health}).observe()


@pytest.mark.parametrize("rows", [{}, "garbage", [ROWS[0], "row"], None])
def test_an_unreadable_shard_list_is_not_safe(rows: Any) -> None:
    with pytest.raises(ElasticsearchError, match="not safe"):
        client({"/_cat/shards": rows, "/_cluster/health": HEALTH}).observe()
