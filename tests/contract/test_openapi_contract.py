"""The served /v1/openapi.json holds: schemathesis finds no failure.

The tests run in file order: the first one meets a stack or run that failed to start, and the last one
holds the stack's shutdown, so neither is reported under an expected failure.
"""

from __future__ import annotations

from tests.contract.schemathesis_cli import ContractRun

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


def test_schemathesis_finds_nothing(contract_run: ContractRun) -> None:
    failures = sorted(contract_run.failures())
    reports = "\n\n".join(
        f"=== {operation}\n{shortened(contract_run.reports[operation])}"
        for operation in sorted({operation for operation, _ in failures})
    )
    assert not failures, f"schemathesis failures (operation, code): {failures}\n\n{reports}"
