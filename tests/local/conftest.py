"""The local stack's parts, tested on their own: gateway (against the template's API), pollers (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from unittest import mock

import pytest

from local.gateway import ApiDefinition, Gateway
from local.harness import Harness, in_process
from tests.conftest import TEST_ENV
from tests.local.fakes import FakeFunction, GatewayUnderTest

AUTHORIZER_CONTEXT = {"authenticated": True, "project": "demo", "scopes": "feedback:read", "key_id": "k1"}


@pytest.fixture(scope="module")
def template() -> Iterator[Harness]:
    """The template deployed in moto, its functions and its API (once per module)."""
    with mock.patch.dict(os.environ, TEST_ENV), in_process("gateway-test") as harness:
        yield harness


@pytest.fixture(scope="module")
def template_api(template: Harness) -> ApiDefinition:
    """The gateway's definition of the template's HTTP API (routes, authorizer, CORS, throttling)."""
    assert template.gateway.api is not None
    return template.gateway.api


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
        answer = {"isAuthorized": True, "context": AUTHORIZER_CONTEXT}
        functions[authorizer.function] = FakeFunction(authorizer.function, answer)
    under_test = Gateway(clock=lambda: clock[0])
    under_test.configure(template_api, functions)
    return GatewayUnderTest(under_test, functions, clock)
