"""The template's own resources in moto, its real functions, and the gateway serving its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.cloud import Stack
from local.harness import Harness, in_process
from tests.integration.api import PARAMETERS, Api


@pytest.fixture
def harness() -> Iterator[Harness]:
    with in_process("feedback-it", PARAMETERS) as deployed:
        yield deployed


@pytest.fixture
def stack(harness: Harness) -> Stack:
    return harness.stack


@pytest.fixture
def api(harness: Harness) -> Api:
    return Api(harness)


@pytest.fixture
def full_key(api: Api) -> str:
    return api.create_key("acme", "tokens:write", "feedback:read", "feedback:write")
