"""Connect elasticsearch-py to an es-mesos cluster through the scheduler's endpoints API.

    python examples/client.py http://scheduler-host:31100 [--token TOKEN] [--sniff]

Asks ``GET /v1/cluster/endpoints`` for the running nodes' HTTP addresses, connects to all of them
(elasticsearch-py spreads requests and retries on another node when one fails), and prints the
cluster's health. With ``--sniff`` the client also asks the cluster for its nodes at start and
when a node fails, so nodes launched later are found without asking the scheduler again.
Pin the client to your cluster's major (elasticsearch>=8,<9 for Elasticsearch 8).
"""

from __future__ import annotations

import argparse
import sys

import requests
from elasticsearch import Elasticsearch


def endpoints(scheduler: str) -> list[str]:
    answer = requests.get(f"{scheduler.rstrip('/')}/v1/cluster/endpoints", timeout=10)
    answer.raise_for_status()
    return [f"http://{address}" for address in answer.json()["http"]]


def connect(scheduler: str, *, sniff: bool = False, password: str | None = None) -> Elasticsearch:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scheduler", help="the scheduler's API, e.g. http://scheduler-host:31100")
    parser.add_argument("--sniff", action="store_true", help="let the client discover nodes itself")
    parser.add_argument("--password", help="the elastic user's password (with security on)")
    args = parser.parse_args(argv)
    client = connect(args.scheduler, sniff=args.sniff, password=args.password)
    health = client.cluster.health()
    sys.stdout.write(f"{health['cluster_name']}: {health['status']}, {health['number_of_nodes']} nodes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
