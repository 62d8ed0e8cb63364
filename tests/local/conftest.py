"""The local stack's parts, tested on their own: gateway (against the template's API), pollers (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from unittest import mock

import pytest
from moto import mock_aws

from local.cloud import Stack, deploy_stack
from local.gateway import ApiDefinition, Gateway
from local.harness import api_definition
from tests.conftest import TEST_ENV
from tests.local.fakes import FakeFunction, GatewayUnderTest


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
