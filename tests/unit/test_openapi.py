"""The served OpenAPI document is generated from the handlers and kept up to date."""

from __future__ import annotations

import json

from scripts.build_openapi import TARGET, render

ROUTES = {
    "/v1/tokens": {"post"},
    "/v1/feedback": {"get", "post"},
    "/v1/feedback/me": {"get", "delete"},
    "/v1/runs/{run_id}/feedback": {"get"},
    "/v1/runs/{run_id}/feedback/{user_id}": {"get", "delete"},
    "/v1/users/{user_id}/feedback": {"delete"},
    "/v1/stats": {"get"},
    "/.well-known/jwks.json": {"get"},
    "/v1/openapi.json": {"get"},
    "/v1/docs": {"get"},
    "/v1/health": {"get"},
}


def test_committed_document_is_current() -> None:
    assert TARGET.read_text() == render(), "run `make openapi` and commit functions/meta/openapi.json"


def test_document_lists_every_route_with_its_credential() -> None:
    document = json.loads(TARGET.read_text())
    assert {path: set(operations) for path, operations in document["paths"].items()} == ROUTES
    assert document["paths"]["/v1/tokens"]["post"]["security"] == [{"apiKey": []}]
    assert document["paths"]["/v1/feedback"]["post"]["security"] == [{"feedbackToken": []}]
    assert "security" not in document["paths"]["/v1/health"]["get"]
