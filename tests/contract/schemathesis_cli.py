"""One ``schemathesis run`` (a fuzzer we did not write) against the local stack's ``/v1/openapi.json``:
every phase and every check but ``unsupported_method``, configured by ``schemathesis.toml`` next to this
file (which says why, and which statuses it accepts beyond schemathesis's defaults). ``apiKey`` operations
get the demo project's key; ``feedbackToken`` ones a token of a record seeded beforehand.

The CLI rather than the pytest integration: its engine keeps testing an operation after a failure and
reports every distinct failure, runs the stateful phase without Hypothesis replaying call sequences
against a server whose state moved on, and leaves one JUnit verdict per operation to check here.
``make test`` (profile ``gate``) replays a fixed seed; ``make fuzz`` (``explore``) draws fresh examples.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import settings

CONFIG_FILE = Path(__file__).resolve().parent / "schemathesis.toml"
GATE_SEED = 20261123
# Fuzzing-phase examples per operation (and stateful scenarios); the examples and coverage phases add
# their own cases, derived from the document.
MAX_EXAMPLES = {"gate": 25, "explore": 150}
# Within pytest-timeout's 300 s per test, so that a run too slow still shows what it printed.
RUN_TIMEOUT = 270


def exploring() -> bool:
    return settings.get_current_profile_name() == "explore"


@dataclass(frozen=True)
class SeededRecord:
    """The record seeded for the run and user named in schemathesis.toml's dictionaries."""

    run_id: str
    user_id: str
    feedback_token: str


@dataclass
class ContractRun:
    """What one ``schemathesis run`` found, per operation, read from its JUnit report."""

    output: str
    operations: list[str] = field(default_factory=list)
    failure_codes: dict[str, set[str]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def failures(self) -> set[tuple[str, str]]:
        return {(operation, code) for operation, codes in self.failure_codes.items() for code in codes}


def seeded_ids() -> tuple[str, str]:
    dictionaries = tomllib.loads(CONFIG_FILE.read_text())["dictionaries"]
    return dictionaries["seeded_run_ids"]["values"][0], dictionaries["seeded_user_ids"]["values"][0]


def run_options() -> list[str]:
    if exploring():
        return ["--max-examples", str(MAX_EXAMPLES["explore"])]
    return ["--max-examples", str(MAX_EXAMPLES["gate"]), "--seed", str(GATE_SEED)]


def read_junit(path: Path, run: ContractRun) -> None:
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        operation = case.get("name", "")
        run.operations.append(operation)
        # An operation can have several test cases (phases), and the stateful phase files its failures
        # under "Stateful tests".
        for failure in case.iter("failure"):
            codes = {code.strip() for code in failure.get("message", "").split(",") if code.strip()}
            run.failure_codes.setdefault(operation, set()).update(codes)
            run.reports[operation] = f"{run.reports.get(operation, '')}{failure.text or ''}\n"
        for error in case.iter("error"):
            run.errors[operation] = f"{error.get('message', '')}\n{error.text or ''}"


def run_schemathesis(endpoint: str, api_key: str, feedback_token: str, work: Path) -> ContractRun:
    """Runs the CLI against the stack at ``endpoint`` in the scratch directory ``work``."""
    junit = work / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG_FILE),
        "run",
        f"{endpoint}/v1/openapi.json",
        *run_options(),
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
        "--no-color",
    ]
    environment = {
        **os.environ,
        "FEEDBACK_API_KEY": api_key,
        "FEEDBACK_TOKEN": feedback_token,
    }
    # The working directory is a scratch one: whatever the CLI leaves behind stays out of the repository.
    try:
        finished = subprocess.run(
            command,
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        printed = expired.stdout if isinstance(expired.stdout, str) else ""
        pytest.fail(f"schemathesis ran longer than {RUN_TIMEOUT} s\n{printed[-6000:]}")
    output = finished.stdout + finished.stderr
    (work / "schemathesis.log").write_text(output)
    run = ContractRun(output=output)
    if not junit.exists():
        pytest.fail(f"schemathesis wrote no report (exit code {finished.returncode})\n{output[-6000:]}")
    read_junit(junit, run)
    return run


def seed_record(endpoint: str, api_key: str) -> SeededRecord:
    """The record named in schemathesis.toml's dictionaries, created through the API."""
    run_id, user_id = seeded_ids()
    with httpx.Client(base_url=endpoint, timeout=15) as client:
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
