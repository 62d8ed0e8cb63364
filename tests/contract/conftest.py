"""Contract tier: schemathesis, a fuzzer we did not write, against the local stack's own OpenAPI document
(see :mod:`tests.contract.schemathesis_cli`)."""

from __future__ import annotations

import pytest

from local.process import LocalProcess
from tests.conftest import tier_stack_fixture
from tests.contract.schemathesis_cli import (
    ContractRun,
    SeededRecord,
    run_schemathesis,
    seed_record,
)

local_stack = tier_stack_fixture()


@pytest.fixture(scope="package")
def api_key(local_stack: LocalProcess) -> str:
    return str(local_stack.credentials()["api_key"])


@pytest.fixture(scope="package")
def seeded_record(local_stack: LocalProcess, api_key: str) -> SeededRecord:
    return seed_record(local_stack.endpoint, api_key)


@pytest.fixture(scope="package")
def contract_run(
    local_stack: LocalProcess,
    api_key: str,
    seeded_record: SeededRecord,
    tmp_path_factory: pytest.TempPathFactory,
) -> ContractRun:
    return run_schemathesis(
        local_stack.endpoint, api_key, seeded_record.feedback_token, tmp_path_factory.mktemp("schemathesis")
    )
