"""Connect elasticsearch-py to an es-mesos cluster through the scheduler's endpoints API.

    python examples/client.py http://scheduler-host:31100 [--sniff] [--password PASSWORD]

Asks ``GET /v1/cluster/endpoints`` for the running nodes' HTTP addresses, connects to all of them
(elasticsearch-py spreads requests and retries on another node when one fails), and prints the
cluster's health. With ``--sniff`` the client also asks the cluster for its nodes at start and
when a node fails, so nodes launched later are found without asking the scheduler again.
``--password`` is the ``elastic`` user's password, for a cluster with security on. The endpoints
API is a GET, which needs no API token (``--apiTokenFile`` guards only PUT, POST and DELETE).

It needs elasticsearch-py, which es-mesos itself does not: ``.venv/bin/pip install -e '.[client]'``
(``scripts/setup.sh --dev`` installs it too). Pin the client to your cluster's major
(elasticsearch>=8,<9 for Elasticsearch 8).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

#: What to do when elasticsearch-py is missing (``setup.py``'s ``client`` extra installs it).
MISSING_CLIENT = (
    "examples/client.py needs elasticsearch-py: install it with .venv/bin/pip install -e '.[client]' "
    "(or bash scripts/setup.sh --dev)"
)


def endpoints(scheduler: str) -> list[str]:
    answer = requests.get(f"{scheduler.rstrip('/')}/v1/cluster/endpoints", timeout=10)
    answer.raise_for_status()
    return [f"http://{address}" for address in answer.json()["http"]]


def connect(scheduler: str, *, sniff: bool = False, password: str | None = None) -> Elasticsearch:
    try:
        from elasticsearch import Elasticsearch  # noqa: PLC0415 - an optional dependency: say how to install it
    except ModuleNotFoundError:
        raise SystemExit(MISSING_CLIENT) from None
    hosts = endpoints(scheduler)
    if not hosts:
        raise SystemExit("no node of the cluster is running yet")
    return Elasticsearch(
        hosts,
        basic_auth=("elastic", password) if password else None,
        sniff_on_start=sniff,
        sniff_on_node_failure=sniff,
        retry_on_timeout=True,
        max_retries=3,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("scheduler", help="the scheduler's API, e.g. http://scheduler-host:31100")
    parser.add_argument("--sniff", action="store_true", help="let the client discover nodes itself")
    parser.add_argument("--password", help="the elastic user's password (with security on)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = connect(args.scheduler, sniff=args.sniff, password=args.password)
    health = client.cluster.health()
    sys.stdout.write(f"{health['cluster_name']}: {health['status']}, {health['number_of_nodes']} nodes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
