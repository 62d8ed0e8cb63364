"""The served OpenAPI document is generated from the handlers and kept up to date."""

from __future__ import annotations

import json
import re

from scripts.build_openapi import ROOT, TARGET, render

ROUTES = {
    "/v1/tokens": {"post"},
    "/v1/feedback": {"get", "post"},
    "/v1/feedback/me": {"get", "delete"},
    "/v1/runs/{run_id}/feedback": {"get"},
    "/v1/runs/{run_id}/feedback/{user_id}": {"get", "put", "delete"},
    "/v1/feedback/batch": {"post"},
    "/v1/users/{user_id}/feedback": {"delete"},
    "/v1/stats": {"get"},
    "/.well-known/jwks.json": {"get"},
    "/v1/openapi.json": {"get"},
    "/v1/docs": {"get"},
    "/v1/widget.js": {"get"},
    "/v1/health": {"get"},
}


def test_committed_document_is_current() -> None:
    assert TARGET.read_text() == render(), "run `make openapi` and commit functions/meta/openapi.json"


def test_document_lists_every_route_with_its_credential() -> None:
    document = json.loads(TARGET.read_text())
    assert {path: set(operations) for path, operations in document["paths"].items()} == ROUTES
    assert document["paths"]["/v1/tokens"]["post"]["security"] == [{"apiKey": []}]
    assert document["paths"]["/v1/feedback"]["post"]["security"] == [{"feedbackToken": []}]
    assert document["paths"]["/v1/health"]["get"]["security"] == []


def test_every_error_status_has_the_error_schema() -> None:
    document = json.loads(TARGET.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["description"], (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = json.dumps(response["content"]["application/json"]["schema"])
                    expected = "GatewayError" if status in ("414", "431") else "#/components/schemas/Error"
                    assert expected in schema, (method, path, status)


def test_path_parameters_are_declared() -> None:
    document = json.loads(TARGET.read_text())
    for path, operations in document["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_the_docs_page_is_html_and_submissions_need_a_field() -> None:
    document = json.loads(TARGET.read_text())
    assert list(document["paths"]["/v1/docs"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    rule = document["components"]["schemas"]["FeedbackSubmission"]["anyOf"]
    assert sorted(branch["required"][0] for branch in rule) == ["comment", "outcome", "score"]


GATEWAY_ANSWERS = {"414", "429", "431"}
"""Statuses every operation may get from API Gateway itself; docs/API.md says so once, not per route."""


def documented_in_prose() -> dict[tuple[str, str], set[str]]:
    """(method, path) → the statuses docs/API.md lists under that operation's heading."""
    text = (ROOT / "docs" / "API.md").read_text()
    sections = re.split(r"^### `(GET|POST|PUT|DELETE) ([^`]+)`$", text, flags=re.MULTILINE)
    operations = {}
    for method, path, body in zip(sections[1::3], sections[2::3], sections[3::3], strict=True):
        line = re.search(r"^Statuses: ([0-9, ]+)\.$", body, flags=re.MULTILINE)
        assert line, f"docs/API.md: {method} {path} has no 'Statuses:' line"
        operations[(method.lower(), path)] = {status.strip() for status in line[1].split(",")}
    return operations


def test_api_doc_and_openapi_list_the_same_operations_and_statuses() -> None:
    document = json.loads(TARGET.read_text())
    served = {
        (method, path): set(operation["responses"]) - GATEWAY_ANSWERS
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert documented_in_prose() == served
