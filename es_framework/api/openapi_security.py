"""The security part of the OpenAPI document (:func:`es_framework.api.openapi.openapi_document`):
``GET /v1/cluster/ca.pem``, the cluster CA's certificate (``--elasticsearchSecurity auto``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PEM_EXAMPLE = "-----BEGIN CERTIFICATE-----\nMIID...\n-----END CERTIFICATE-----\n"


def security_paths(error: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return {
        "/v1/cluster/ca.pem": {
            "get": {
                "summary": "The certificate of the cluster's certificate authority (PEM), never its key",
                "description": (
                    "With --elasticsearchSecurity auto the scheduler creates the cluster's CA once; clients "
                    "verify the nodes' certificates with this one. No token needed: a certificate is public. "
                    "In this release the nodes do not use it yet."
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
        }
    }
