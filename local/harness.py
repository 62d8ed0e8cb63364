"""The template in this process: deployed in moto, its real functions, and the gateway serving its API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from local.cloud import Stack, deploy_stack, environment_of
from local.functions import LocalFunction
from local.gateway import ApiDefinition, Gateway, HttpRequest, HttpResponse


class Harness:
    """The stack's functions and the gateway routing to them (after :meth:`serve_api`); ``table_names``
    (logical id -> DynamoDB Local's table) replaces the tables in the functions' environments."""

    def __init__(
        self, stack: Stack, table_names: Mapping[str, str] | None = None, gateway: Gateway | None = None
    ) -> None:
        self.stack = stack
        tables = {lid: stack.resources[lid] for lid in stack.resources_of_type("AWS::DynamoDB::Table")}
        self.table_names = {**tables, **(table_names or {})}
        renamed = {stack.resources[lid]: name for lid, name in self.table_names.items()}
        self.gateway = gateway if gateway is not None else Gateway()
        self.functions: dict[str, LocalFunction] = {}
        for logical_id in stack.resources_of_type("AWS::Lambda::Function"):
            code, configuration = stack.code[logical_id], stack.function_configuration(logical_id)
            environment = {
                name: renamed.get(value, value) for name, value in environment_of(configuration).items()
            }
            function = LocalFunction.from_configuration(logical_id, code, configuration, environment)
            function.load()
            self.functions[logical_id] = function

    def shared_variables(self) -> dict[str, str]:
        """The Powertools variables all functions share (Powertools reads ``os.environ``)."""
        items = [set((function.environment or {}).items()) for function in self.functions.values()]
        return {name: value for name, value in set.intersection(*items) if name.startswith("POWERTOOLS_")}

    def serve_api(self) -> Harness:
        by_arn = {function.arn: logical_id for logical_id, function in self.functions.items()}
        self.gateway.configure(api_definition(self.stack, by_arn), self.functions)
        return self

    def handle(self, request: HttpRequest) -> HttpResponse:
        return self.gateway.handle(request)


@contextmanager
def in_process(stack_name: str, parameters: Mapping[str, Any] | None = None) -> Iterator[Harness]:
    """The template deployed in moto's in-process mock (``mock_aws``), serving its API."""
    from moto import mock_aws  # noqa: PLC0415 (only where the emulator runs in-process)

    with mock_aws():
        yield Harness(deploy_stack(stack_name=stack_name, parameters=parameters)).serve_api()


def api_definition(stack: Stack, functions_by_arn: Mapping[str, str]) -> ApiDefinition:
    """The gateway's view of the stack's HTTP API (resolved OpenAPI body and ``$default`` stage)."""
    (api,) = stack.resources_of_type("AWS::ApiGatewayV2::Api")  # the template has one, and one stage
    (stage,) = stack.resources_of_type("AWS::ApiGatewayV2::Stage")
    body = stack.resolved[api]["Body"]
    return ApiDefinition.from_openapi(body, functions_by_arn, stack.resources[api], stack.resolved[stage])
