"""End-to-end tier: the local stack started as ``make run`` starts it (:mod:`local.process`), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.process import LocalProcess
from local.template import ROOT  # noqa: F401 (the tier's tests import it from here)
from tests.conftest import tier_stack_fixture
from tests.e2e.emulator import EventLog

stack = tier_stack_fixture("stack")


@pytest.fixture(scope="package")
def credentials(stack: LocalProcess) -> dict[str, Any]:
    return stack.credentials()


@pytest.fixture
def api(stack: LocalProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.endpoint, timeout=15) as client:
        yield client


@pytest.fixture
def key_headers(credentials: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}


@pytest.fixture(scope="package")
def event_log(credentials: dict[str, Any]) -> EventLog:
    return EventLog(credentials)
