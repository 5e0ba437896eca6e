"""The OpenAPI document against the app, with schemathesis, in-process over ASGI.

schemathesis generates requests from ``/v1/openapi.json`` (valid ones, and invalid ones that the
app must refuse with a 4xx) and checks every answer: no 5xx, status codes, content types, headers
and bodies as documented, 405 for undocumented methods, 401 without the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from es_framework.api.app import ApiApp
from es_framework.dev.fake_api import FakeCore, StubElasticsearch, sample_node

TOKEN = "schema-test-token"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubElasticsearch]:
    node = StubElasticsearch()
    yield node
    node.stop()


@pytest.fixture
def api_schema(stub: StubElasticsearch) -> Any:
    core = FakeCore(
        (
            sample_node(1, http_address=stub.address),
            sample_node(2, http_address=stub.address),
            sample_node(3, state="TASK_UNREACHABLE"),
        )
    )
    loaded = schemathesis.openapi.from_asgi("/v1/openapi.json", ApiApp(core, token=TOKEN))
    # Invalid requests too: each must be refused with a 4xx, never a 5xx or a 2xx.
    loaded.config.generation.update(modes=list(GenerationMode))
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: Any) -> None:
    # The gone confirmation must name the node of the path ("node 4 is gone" for /v1/nodes/4/gone),
    # a link between path and body that JSON Schema cannot state: a schema-valid body for another
    # node is rightly refused, so "valid data is accepted" cannot hold for that operation. Nor for a
    # configuration change: whether a value is valid is the flag's parser's to say (a Docker image
    # reference, a URL), as on the command line.
    excluded = [positive_data_acceptance] if case.operation.path.endswith(("/gone", "/configuration")) else []
    # The Elasticsearch proxy passes any query parameter and body to the node, which judges them (as
    # Elasticsearch does): what the document lists is what a user typically sends, not a closed set.
    if case.operation.path.startswith("/v1/es/"):
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=excluded)
