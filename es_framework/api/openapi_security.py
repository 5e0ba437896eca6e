"""The security part of the OpenAPI document (:func:`es_framework.api.openapi.openapi_document`):
``GET /v1/cluster/ca.pem``, the cluster CA's certificate, and ``GET /v1/cluster/credentials``, the
generated ``elastic`` user and password behind the token (``--elasticsearchSecurity auto``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PEM_EXAMPLE = "-----BEGIN CERTIFICATE-----\nMIID...\n-----END CERTIFICATE-----\n"


CREDENTIALS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string", "example": "elastic"}, "password": {"type": "string"}},
}


def security_paths(error: Callable[[str], dict[str, Any]], secured: bool = False) -> dict[str, Any]:
    """``secured``: the app has a token (declared as the ``bearerToken`` scheme)."""
    credentials: dict[str, Any] = {
        "summary": "The elastic user's generated password (--elasticsearchSecurity auto), behind the token",
        "description": (
            "Clients of the nodes authenticate as this user, over HTTPS verified with GET /v1/cluster/ca.pem. "
            "Never logged; the answer is not to be cached."
        ),
        "responses": {
            "200": {
                "description": "the credentials",
                "content": {"application/json": {"schema": CREDENTIALS_SCHEMA}},
            },
            "401": error("missing or wrong bearer token"),
            "404": error("no generated credentials (--elasticsearchSecurity is not auto)"),
        },
    }
    if secured:
        credentials["security"] = [{"bearerToken": []}]
    return {
        "/v1/cluster/credentials": {"get": credentials},
        "/v1/cluster/ca.pem": {
            "get": {
                "summary": "The certificate of the cluster's certificate authority (PEM), never its key",
                "description": (
                    "With --elasticsearchSecurity auto the scheduler creates the cluster's CA once; clients "
                    "verify the nodes' certificates (HTTPS and the transport) with this one. No token needed: "
                    "a certificate is public."
                ),
                "responses": {
                    "200": {
                        "description": "the CA certificate",
                        "content": {
                            "application/x-pem-file": {
                                "schema": {"type": "string", "pattern": "^-----BEGIN CERTIFICATE-----"},
                                "example": PEM_EXAMPLE,
                            }
                        },
                    },
                    "404": error("no certificate authority (--elasticsearchSecurity off)"),
                },
            }
        },
    }
