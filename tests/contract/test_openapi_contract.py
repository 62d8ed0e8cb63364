"""The served /v1/openapi.json holds: schemathesis finds no failure but the open findings.

The tests run in file order: the first one meets a stack or run that failed to start, and the last one
holds the stack's shutdown, so neither is reported under an expected failure.
"""

from __future__ import annotations

import pytest

from tests.contract.conftest import ContractRun, exploring
from tests.contract.findings import OPEN_FINDINGS, OpenFinding

# Lines of a report are cut to this length: generated query strings run to kilobytes.
REPORT_LINE_LIMIT = 300


def shortened(report: str) -> str:
    return "\n".join(
        line if len(line) <= REPORT_LINE_LIMIT else f"{line[:REPORT_LINE_LIMIT]}..."
        for line in report.splitlines()
    )


def test_schemathesis_tested_every_operation(contract_run: ContractRun) -> None:
    assert contract_run.operations, contract_run.output[-6000:]
    assert not contract_run.errors, "\n\n".join(
        f"{operation}: {shortened(error)}" for operation, error in contract_run.errors.items()
    )


@pytest.mark.parametrize(
    "finding",
    [
        # Strict in `make test`: once a finding is fixed its test passes, which fails the run until the
        # entry leaves findings.py. `make fuzz` draws other examples, which need not meet every finding.
        pytest.param(finding, marks=pytest.mark.xfail(strict=not exploring(), reason=finding.finding))
        for finding in OPEN_FINDINGS
    ],
    ids=lambda finding: f"{finding.operation} {finding.code}",
)
def test_open_finding_is_fixed(finding: OpenFinding, contract_run: ContractRun) -> None:
    assert finding.key not in contract_run.failures(), shortened(contract_run.reports[finding.operation])


def test_schemathesis_finds_nothing_else(contract_run: ContractRun) -> None:
    tolerated = {finding.key for finding in OPEN_FINDINGS}
    unexpected = sorted(contract_run.failures() - tolerated)
    reports = "\n\n".join(
        f"=== {operation}\n{shortened(contract_run.reports[operation])}"
        for operation in sorted({operation for operation, _ in unexpected})
    )
    assert not unexpected, f"failures beyond tests/contract/findings.py: {unexpected}\n\n{reports}"
