"""Connect elasticsearch-py to an es-mesos cluster through the scheduler's endpoints API.

    python examples/client.py http://scheduler-host:31100 [--sniff] [--apiTokenFile FILE] [--password PASSWORD]

Asks ``GET /v1/cluster/endpoints`` for the running nodes' HTTP addresses, connects to all of them
(elasticsearch-py spreads requests and retries on another node when one fails), and prints the
cluster's health. With ``--sniff`` the client also asks the cluster for its nodes at start and
when a node fails, so nodes launched later are found without asking the scheduler again.

A cluster secured by the scheduler (``--elasticsearchSecurity auto``, the default outside local
mode) serves its CA at ``GET /v1/cluster/ca.pem``: the client then speaks HTTPS and verifies every
node's certificate, host name included, with that CA, and authenticates as ``elastic`` with the
password of ``GET /v1/cluster/credentials``, which needs the scheduler's API token
(``--apiTokenFile``, the same file the scheduler was given). ``--password`` gives the password
instead (a cluster secured with your own bundle and ``--elasticsearchPasswordFile``).

It needs elasticsearch-py, which es-mesos itself does not: ``.venv/bin/pip install -e '.[client]'``
(``scripts/setup.sh --dev`` installs it too). Pin the client to your cluster's major
(elasticsearch>=8,<9 for Elasticsearch 8).
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

#: What to do when elasticsearch-py is missing (``setup.py``'s ``client`` extra installs it).
MISSING_CLIENT = (
    "examples/client.py needs elasticsearch-py: install it with .venv/bin/pip install -e '.[client]' "
    "(or bash scripts/setup.sh --dev)"
)


def endpoints(scheduler: str, scheme: str = "http") -> list[str]:
    answer = requests.get(f"{scheduler.rstrip('/')}/v1/cluster/endpoints", timeout=10)
    answer.raise_for_status()
    return [f"{scheme}://{address}" for address in answer.json()["http"]]


def cluster_ca(scheduler: str) -> str | None:
    """The cluster CA's certificate (PEM), None when the scheduler has none (security off)."""
    answer = requests.get(f"{scheduler.rstrip('/')}/v1/cluster/ca.pem", timeout=10)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.text


def elastic_password(scheduler: str, token: str | None) -> str:
    if token is None:
        raise SystemExit("the cluster is secured: give --apiTokenFile (to read its password) or --password")
    answer = requests.get(
        f"{scheduler.rstrip('/')}/v1/cluster/credentials", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if answer.status_code == 401:
        raise SystemExit("the scheduler refused the API token of --apiTokenFile")
    answer.raise_for_status()
    return str(answer.json()["password"])


def connect(
    scheduler: str, *, sniff: bool = False, password: str | None = None, token: str | None = None
) -> Elasticsearch:
    try:
        from elasticsearch import Elasticsearch  # noqa: PLC0415 - an optional dependency: say how to install it
    except ModuleNotFoundError:
        raise SystemExit(MISSING_CLIENT) from None
    ca = cluster_ca(scheduler)
    if ca is not None and password is None:
        password = elastic_password(scheduler, token)
    hosts = endpoints(scheduler, "https" if ca is not None else "http")
    if not hosts:
        raise SystemExit("no node of the cluster is running yet")
    return Elasticsearch(
        hosts,
        basic_auth=("elastic", password) if password else None,
        # The default context verifies each node's certificate and that it names the host dialled.
        ssl_context=ssl.create_default_context(cadata=ca) if ca is not None else None,
        sniff_on_start=sniff,
        sniff_on_node_failure=sniff,
        retry_on_timeout=True,
        max_retries=3,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("scheduler", help="the scheduler's API, e.g. http://scheduler-host:31100")
    parser.add_argument("--sniff", action="store_true", help="let the client discover nodes itself")
    parser.add_argument(
        "--apiTokenFile", type=Path, help="the scheduler's API token file (to read a secured cluster's password)"
    )
    parser.add_argument("--password", help="the elastic user's password (instead of asking the scheduler)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = args.apiTokenFile.read_text(encoding="utf-8").strip() if args.apiTokenFile else None
    client = connect(args.scheduler, sniff=args.sniff, password=args.password, token=token)
    health = client.cluster.health()
    sys.stdout.write(f"{health['cluster_name']}: {health['status']}, {health['number_of_nodes']} nodes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
