"""Test doubles of the gateway's functions, and the gateway serving the template's API with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from local.functions import FunctionError
from local.gateway import Gateway

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


@dataclass
class GatewayUnderTest:
    gateway: Gateway
    functions: dict[str, FakeFunction]
    clock: list[float]

    def function(self, logical_id: str) -> FakeFunction:
        return self.functions[logical_id]
