"""The local stack's parts, tested on their own: gateway (against the template's API), pollers (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from moto import mock_aws

from local.cloud import Stack, deploy_stack
from local.functions import FunctionError
from local.gateway import ApiDefinition, Gateway
from local.harness import api_definition
from tests.conftest import TEST_ENV

ACCOUNT = "123456789012"


@dataclass
class FakeFunction:
    """Records its events and answers with ``result`` (or raises when ``result`` is an exception)."""

    logical_id: str
    result: Any = None
    events: list[Any] = field(default_factory=list)
    respond: Any = None
    """A callable(event) -> result, used instead of ``result`` when set."""

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:test-{self.logical_id}"

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        result = self.respond(event) if self.respond is not None else self.result
        if isinstance(result, BaseException):
            raise FunctionError(str(result)) from result
        return result


@pytest.fixture(scope="module")
def template_stack() -> Iterator[Stack]:
    """The template deployed in moto (once per module)."""
    with mock.patch.dict(os.environ, TEST_ENV), mock_aws():
        yield deploy_stack(stack_name="gateway-test")


@pytest.fixture(scope="module")
def template_functions(template_stack: Stack) -> dict[str, str]:
    """ARN -> logical id of the template's functions."""
    with mock.patch.dict(os.environ, TEST_ENV):
        return {
            str(template_stack.function_configuration(logical_id)["FunctionArn"]): logical_id
            for logical_id in template_stack.resources_of_type("AWS::Lambda::Function")
        }


@pytest.fixture(scope="module")
def template_api(template_stack: Stack, template_functions: dict[str, str]) -> ApiDefinition:
    """The gateway's definition of the template's HTTP API (routes, authorizer, CORS, throttling)."""
    return api_definition(template_stack, template_functions)


@dataclass
class GatewayUnderTest:
    gateway: Gateway
    functions: dict[str, FakeFunction]
    clock: list[float]

    def function(self, logical_id: str) -> FakeFunction:
        return self.functions[logical_id]


@pytest.fixture
def gateway(template_api: ApiDefinition) -> GatewayUnderTest:
    """A gateway serving the template's API with fake functions: the authorizer allows every key with
    the context of events/http_list_feedback.json, the others answer 200 ``{}``."""
    clock = [1000.0]
    functions = {
        route.function: FakeFunction(route.function, {"statusCode": 200, "body": "{}"})
        for route in template_api.routes
    }
    for authorizer in template_api.authorizers.values():
        functions[authorizer.function] = FakeFunction(
            authorizer.function,
            {
                "isAuthorized": True,
                "context": {
                    "authenticated": True,
                    "project": "demo",
                    "scopes": "feedback:read",
                    "key_id": "k1",
                },
            },
        )
    under_test = Gateway(clock=lambda: clock[0])
    under_test.configure(template_api, functions)
    return GatewayUnderTest(under_test, functions, clock)
