"""The template's own resources, created in moto, and the real handlers invoked in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from feedback_core import services
from feedback_core.apikeys import ApiKeyStore
from feedback_core.aws import dynamodb
from local.cloud import Stack, deploy_stack
from tests.support.handlers import (
    ROOT,
    FakeLambdaContext,
    HttpResult,
    http_event,
    invoke_http,
    load_function,
    sample_event,
)

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
REGION = "us-east-1"
OPENAPI = json.loads((ROOT / "functions" / "meta" / "openapi.json").read_text())
PARAMETERS = {"MaxUpdatesPerRecord": "5", "TokenTtlSeconds": "3600", "TimeIndexShards": "3"}


class Api:
    """Calls handlers as API Gateway would: API-key routes first go through the authorizer function."""

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self._monkeypatch = monkeypatch
        self._environment: dict[str, str] = {}

    def use_function(self, function: str) -> None:
        """Run with exactly the environment the template gives this function (clients rebuilt on change)."""
        environment = self.stack.function_environment(FUNCTIONS[function])
        if environment == self._environment:
            return
        for name in self._environment:
            self._monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            self._monkeypatch.setenv(name, value)
        self._environment = environment
        services.reset()

    def authorize(self, authorization: str | None) -> dict[str, Any] | None:
        """The authorizer's context for this header, or None if it denies the request."""
        event = sample_event("authorizer_request")
        if authorization is None:
            event["headers"].pop("authorization")
        else:
            event["headers"]["authorization"] = authorization
        self.use_function("authorizer")
        response: dict[str, Any] = load_function("authorizer").lambda_handler(event, _context("authorizer"))
        return dict(response.get("context") or {}) if response["isAuthorized"] else None

    def call(self, function: str, sample: str, *, key: str | None = None, **event_fields: Any) -> HttpResult:
        if key is not None:
            context = self.authorize(f"Bearer {key}")
            if context is None:  # API Gateway answers a denial itself; no route function runs
                return HttpResult(403, {"content-type": "application/json"}, {"message": "Forbidden"})
            event_fields["authorizer"] = context
            event_fields.setdefault("headers", {})["authorization"] = f"Bearer {key}"
        event = http_event(sample, **event_fields)
        self.use_function(function)
        result = invoke_http(function, event)
        assert_documented(event["routeKey"], result)
        return result

    def create_key(self, project: str, *scopes: Any) -> str:
        self.use_function("authorizer")
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


def _context(function: str) -> Any:
    return FakeLambdaContext(function_name=function)


def detach_moto_stream_invocations(stack: Stack) -> None:
    """moto runs a table's event source mappings itself (through Docker, absent here) and then drops the
    stream's records; detach them so the stream keeps its records for the test to deliver, as Lambda would."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[stack.outputs["FeedbackTableName"]]
    table.lambda_event_source_mappings.clear()


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        deployed = deploy_stack(stack_name="feedback-it", parameters=PARAMETERS)
        detach_moto_stream_invocations(deployed)
        yield deployed


@pytest.fixture
def api(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Api:
    return Api(stack, monkeypatch)


@pytest.fixture
def full_key(api: Api) -> str:
    return api.create_key("acme", "tokens:write", "feedback:read", "feedback:write")


def dumps(value: Any) -> str:
    return json.dumps(value)
