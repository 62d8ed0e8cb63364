"""Contract tier: schemathesis, a fuzzer we did not write, against the local stack's own OpenAPI document
(see :mod:`tests.contract.schemathesis_cli`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from local.process import LocalProcess
from tests.contract.schemathesis_cli import (
    ContractRun,
    SeededRecord,
    run_schemathesis,
    seeded_ids,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.contract)
            # `make fuzz` (pytest -m fuzz) runs this tier too, with fresh examples.
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(scope="package")
def api_key(local_stack: LocalProcess) -> str:
    return str(local_stack.credentials()["api_key"])


@pytest.fixture(scope="package")
def seeded_record(local_stack: LocalProcess, api_key: str) -> SeededRecord:
    run_id, user_id = seeded_ids()
    with httpx.Client(base_url=local_stack.endpoint, timeout=15) as client:
        issued = client.post(
            "/v1/tokens",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"run_id": run_id, "user_id": user_id},
        )
        assert issued.status_code == 201, issued.text
        token = str(issued.json()["feedback_token"])
        submitted = client.post(
            "/v1/feedback",
            headers={"X-Feedback-Token": token},
            json={"outcome": "positive", "score": 7, "comment": "seeded for the contract tier"},
        )
        assert submitted.status_code in (200, 201), submitted.text
    return SeededRecord(run_id=run_id, user_id=user_id, feedback_token=token)


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
