"""Measures the request paths in-process on the template's resources in moto.

Absolute times depend on the machine and on moto standing in for AWS, so the report gives per-request
AWS call counts (what a request costs) and times relative to one another, taken in one run.
`make bench` writes the results into docs/BENCHMARKS.md (between the markers) and prints them.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
)

import boto3
import pytest
from moto import mock_aws

from tests.conftest import AwsCalls
from tests.e2e.conftest import running
from tests.integration.conftest import PARAMETERS, Api
from tests.support.cloud import deploy_stack

ROUNDS = 300
STARTS = 3
REPORT = "docs/BENCHMARKS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


Result = tuple[float, float, float]


def measure(action: Callable[[int], Any], calls: AwsCalls, rounds: int = ROUNDS) -> Result:
    """(median ms, p95 ms, AWS calls per request) over `rounds` runs after one warm-up."""
    action(-1)
    calls.reset()
    times = []
    for index in range(rounds):
        start = time.perf_counter()
        action(index)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], calls.count() / rounds


def run() -> dict[str, Result]:
    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        boto3.setup_default_session()
        calls = AwsCalls()
        api = Api(deploy_stack(stack_name="feedback-bench", parameters=PARAMETERS), monkeypatch)
        key = api.create_key("bench", "tokens:write", "feedback:read", "feedback:write")
        context = api.authorize(f"Bearer {key}")
        token = api.token(key, run_id="run-0", user_id="u")
        tokens = [api.token(key, run_id=f"run-{i}", user_id="u") for i in range(ROUNDS)]
        expired = api.token(key, run_id="x", ttl_seconds=1)
        forged = token[:-6] + "AAAAAA"
        time.sleep(1.1)

        def call(function: str, sample: str, **fields: Any) -> int:
            status = api.call(function, sample, **fields).status
            assert status < 400, (function, status)
            return status

        rows = {
            "issue a token (POST /v1/tokens)": lambda i: call(
                "issue_token", "issue_token", body={"run_id": f"r{i}"}, authorizer=context
            ),
            "first submit of a record (POST /v1/feedback, 201)": lambda i: api.submit(
                tokens[i] if i >= 0 else token, {"outcome": "positive", "score": 3}
            ),
            "change a vote (POST /v1/feedback, 200)": lambda i: api.submit(
                token, {"outcome": "negative" if i % 2 else "positive"}
            ),
            "read own feedback (GET /v1/feedback/me)": lambda i: call(
                "submit_feedback", "read_own_feedback", headers={"x-feedback-token": token}
            ),
            "list 20, newest first (GET /v1/feedback)": lambda i: call(
                "query", "list_feedback", query={"limit": "20"}, authorizer=context
            ),
            "expired token refused (401)": lambda i: api.submit(expired, {"outcome": "positive"}),
            "forged token refused (401)": lambda i: api.submit(forged, {"outcome": "positive"}),
        }
        return {name: measure(action, calls) for name, action in rows.items()}


def local_startup_seconds() -> list[float]:
    """Seconds from launching the local stack (as `make run` does) to a healthy /v1/health, per start."""
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(STARTS):
            began = time.monotonic()
            with running(Path(tmp), f"start-{start}"):
                seconds.append(time.monotonic() - began)
    return seconds


def report(results: dict[str, Result], startup: list[float]) -> None:
    base = results["change a vote (POST /v1/feedback, 200)"][0]
    lines = [
        f"Measured by `make bench` on {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; handlers in-process, AWS emulated by moto; {ROUNDS} requests per row; "
        f"the reference (a vote change) took {base:.1f} ms median here.",
        "",
        "| request | AWS calls per request | median time relative to a vote change | p95 / median |",
        "|---|---|---|---|",
    ]
    for name, (median, p95, per_request) in results.items():
        lines.append(f"| {name} | {per_request:.2f} | {median / base:.2f} | {p95 / median:.2f} |")
    lines += [
        "",
        f"Local stack (`make run` with dependencies installed): healthy `GET /v1/health` after "
        f"{statistics.median(startup):.1f} s (median of {len(startup)} starts; "
        f"{', '.join(f'{value:.1f}' for value in startup)} s).",
    ]
    table = "\n".join(lines)
    print(table)
    with open(REPORT) as handle:
        report = handle.read()
    pattern = re.compile(re.escape(BEGIN) + ".*" + re.escape(END), re.DOTALL)
    with open(REPORT, "w") as handle:
        handle.write(pattern.sub(f"{BEGIN}\n{table}\n{END}", report))


if __name__ == "__main__":
    with contextlib.redirect_stdout(io.StringIO()) as handler_output:  # the handlers' metric lines
        results = run()
    report(results, local_startup_seconds())
