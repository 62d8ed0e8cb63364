"""The integration tier's client of the in-process harness (template in moto, functions, gateway)."""

from __future__ import annotations

import base64
import json
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote, urlencode

from feedback_core.apikeys import ApiKeyStore
from feedback_core.aws import dynamodb
from feedback_core.settings import function_environment
from local.functions import LocalFunction
from local.gateway import HttpRequest
from local.harness import Harness
from tests.support.handlers import ROOT, HttpResult, http_event, http_result, sample_event

FUNCTIONS = {
    "issue_token": "IssueTokenFunction",
    "submit_feedback": "SubmitFeedbackFunction",
    "query": "QueryFunction",
    "admin": "AdminFunction",
    "authorizer": "AuthorizerFunction",
    "meta": "MetaFunction",
    "publish_events": "PublishEventsFunction",
    "stats": "StatsFunction",
}
OPENAPI = json.loads((ROOT / "functions" / "meta" / "openapi.json").read_text())
# No authorizer cache (a revoked key is refused at once) and no throttling of the tests' request rate.
PARAMETERS = {
    "MaxUpdatesPerRecord": "5",
    "TokenTtlSeconds": "3600",
    "TimeIndexShards": "3",
    "AuthorizerCacheSeconds": "0",
    "ThrottlingBurstLimit": "1000000",
    "ThrottlingRateLimit": "1000000",
}
# Set by API Gateway from the connection, not by the client.
_GATEWAY_HEADERS = {"content-length", "host", "x-amzn-trace-id"}


class Api:
    """Requests with an API key go through the gateway (the authorizer function, then the route); the
    others invoke the route's function with the sample event edited by the test."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.stack = harness.stack

    def function(self, name: str) -> LocalFunction:
        return self.harness.functions[FUNCTIONS[name]]

    def environment(self, name: str) -> AbstractContextManager[None]:
        """The function's settings, for a test calling its handler itself."""
        return function_environment(self.function(name).environment or {})

    def invoke(self, function: str, event: dict[str, Any]) -> HttpResult:
        return http_result(self.function(function).invoke(event))

    def authorize(self, authorization: str | None) -> dict[str, Any] | None:
        """The authorizer's context for this header, or None if it denies the request."""
        event = sample_event("authorizer_request")
        if authorization is None:
            event["headers"].pop("authorization")
        else:
            event["headers"]["authorization"] = authorization
        response: dict[str, Any] = self.function("authorizer").invoke(event)
        return dict(response.get("context") or {}) if response["isAuthorized"] else None

    def call(self, function: str, sample: str, *, key: str | None = None, **event_fields: Any) -> HttpResult:
        if key is not None:
            event_fields.setdefault("headers", {})["authorization"] = f"Bearer {key}"
        event = http_event(sample, **event_fields)
        if key is None:
            result = self.invoke(function, event)
        else:
            result = self._through_gateway(event, event_fields)
            if isinstance(result.body, dict) and set(result.body) == {"message"}:
                return result  # API Gateway's own answer (a denial): no route function ran
        assert_documented(event["routeKey"], result)
        return result

    def _through_gateway(self, event: dict[str, Any], event_fields: dict[str, Any]) -> HttpResult:
        body = (event.get("body") or "").encode()
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body)
        headers = [
            (name, value)
            for name, value in event["headers"].items()
            if name not in _GATEWAY_HEADERS and not name.startswith("x-forwarded-")
        ]
        if body:
            headers.append(("content-length", str(len(body))))
        method, path = event["routeKey"].split(" ", 1)
        for name, value in (event.get("pathParameters") or {}).items():  # sent percent-encoded
            path = path.replace(f"{{{name}}}", quote(value, safe="")).replace(f"{{{name}+}}", quote(value))
        query = event_fields.get("query")
        request = HttpRequest(
            method=method,
            raw_path=path,
            raw_query=urlencode(query) if query is not None else event["rawQueryString"],
            headers=headers,
            body=body,
        )
        response = self.harness.handle(request)
        headers_by_name = {name.lower(): response.header(name) or "" for name, _ in response.headers}
        return HttpResult.parse(response.status, headers_by_name, response.body.decode())

    def create_key(self, project: str, *scopes: Any) -> str:
        with self.environment("authorizer"):
            table = self.stack.outputs["ApiKeysTableName"]
            secret, _ = ApiKeyStore(dynamodb(), table).create(project, scopes or ("tokens:write",))
        return secret

    def token(self, key: str, **request: Any) -> str:
        response = self.call("issue_token", "issue_token", key=key, body={"run_id": "run-1", **request})
        assert response.status == 201, response.body
        return str(response.body["feedback_token"])

    def submit(self, token: str | None, body: dict[str, Any], **event_fields: Any) -> HttpResult:
        headers = {"x-feedback-token": token, **event_fields.pop("headers", {})}
        return self.call("submit_feedback", "submit_feedback", body=body, headers=headers, **event_fields)


def assert_documented(route_key: str, result: HttpResult) -> None:
    """Every answer a test sees is one the OpenAPI document lists for that operation, with its body
    schema's required fields: the document cannot fall behind the handlers unnoticed."""
    method, path = route_key.split(" ", 1)
    operation = OPENAPI["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return  # a route outside the API contract (static files of the docs page)
    response = operation["responses"].get(str(result.status))
    assert response is not None, f"{route_key} answered {result.status}, which openapi.json does not list"
    for header, spec in response.get("headers", {}).items():
        if spec.get("required"):
            assert header.lower() in result.headers, f"{route_key} {result.status} lacks header {header}"
    if result.status >= 400:
        assert set(result.body["error"]) <= {"code", "message", "details"}, result.body
