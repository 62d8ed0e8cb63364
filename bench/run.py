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
import subprocess
import sys
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

from local.cloud import deploy_stack
from local.template import load_template
from tests.conftest import AwsCalls
from tests.e2e.conftest import running
from tests.integration.conftest import Api

ROUNDS = 300
STARTS = 3
COLD_RUNS = 11
ROOT = Path(__file__).resolve().parents[1]
REPORT = "docs/BENCHMARKS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


Result = tuple[float, float, float]
Row = tuple[int, Callable[[int], Any]]
"""(the status every request of the row must get, the request for round i)."""


def measure(rows: dict[str, Row], calls: AwsCalls, rounds: int = ROUNDS) -> dict[str, Result]:
    """Per row: (median ms, p95 ms, AWS calls per request), after one warm-up request. Rows run one after
    the other: the harness gives each function its process state back only while it keeps running that
    function (switching rebuilds the cached clients and keys, which a Lambda container would keep)."""
    results = {}
    for name, (expected, action) in rows.items():
        times = []
        for index in range(-1, rounds):
            if index == 0:
                calls.reset()
            start = time.perf_counter()
            status = action(index).status
            elapsed = (time.perf_counter() - start) * 1000
            assert status == expected, (name, index, status)
            if index >= 0:
                times.append(elapsed)
        times.sort()
        results[name] = (statistics.median(times), times[int(len(times) * 0.95) - 1], calls.count() / rounds)
    return results


def run() -> dict[str, Result]:
    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        boto3.setup_default_session()
        calls = AwsCalls()
        api = Api(deploy_stack(stack_name="feedback-bench"), monkeypatch)  # the template's defaults
        key = api.create_key("bench", "tokens:write", "feedback:read", "feedback:write")
        context = api.authorize(f"Bearer {key}")
        tokens = [api.token(key, run_id=f"run-{i}", user_id="u") for i in range(-1, ROUNDS)]
        expired = api.token(key, run_id="x", ttl_seconds=1)
        forged = tokens[0][:-6] + ("AAAAAA" if not tokens[0].endswith("AAAAAA") else "BBBBBB")
        time.sleep(1.1)

        def token(index: int) -> str:
            return tokens[index + 1]  # round -1 is the warm-up

        rows: dict[str, Row] = {
            "issue a token (POST /v1/tokens, 201)": (
                201,
                lambda i: api.call(
                    "issue_token", "issue_token", body={"run_id": f"r{i}"}, authorizer=context
                ),
            ),
            "first submit of a record (POST /v1/feedback, 201)": (
                201,
                lambda i: api.submit(token(i), {"outcome": "positive", "score": 3}),
            ),
            "change a vote (POST /v1/feedback, 200)": (
                200,
                lambda i: api.submit(token(i), {"outcome": "negative"}),
            ),
            "read own feedback (GET /v1/feedback/me, 200)": (
                200,
                lambda i: api.call(
                    "submit_feedback", "read_own_feedback", headers={"x-feedback-token": token(i)}
                ),
            ),
            "list 20, newest first (GET /v1/feedback, 200)": (
                200,
                lambda i: api.call("query", "list_feedback", query={"limit": "20"}, authorizer=context),
            ),
            "expired token refused (POST /v1/feedback, 401)": (
                401,
                lambda i: api.submit(expired, {"outcome": "positive"}),
            ),
            "forged token refused (POST /v1/feedback, 401)": (
                401,
                lambda i: api.submit(forged, {"outcome": "positive"}),
            ),
        }
        return measure(rows, calls)


def local_startup_seconds() -> list[float]:
    """Seconds from launching the local stack (as `make run` does) to a healthy /v1/health, per start."""
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(STARTS):
            began = time.monotonic()
            with running(Path(tmp), f"start-{start}"):
                seconds.append(time.monotonic() - began)
    return seconds


TRACING_ON_IMPORT = "import app\nfrom feedback_core.observability import tracer\ntracer.get()"
"""A function's cold import with tracing on, including the Tracer its first traced call builds."""
BOTO3_IMPORT = "import boto3"


def _template_value(value: Any, parameters: dict[str, Any], name: str) -> str:
    """An environment value of the template: a parameter's default for a `Ref` to one, else a dummy."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return str(parameters[value["Ref"]].get("Default", f"dummy-{name.lower()}"))
    return str(value) if isinstance(value, str | int | float) else f"dummy-{name.lower()}"


def lambda_environments() -> dict[str, tuple[Path, dict[str, str], bool]]:
    """Per function folder: (folder, the environment Lambda gives it, whether the template traces it)."""
    template = load_template()
    parameters = template.get("Parameters") or {}
    defaults = (template.get("Globals") or {}).get("Function") or {}
    functions = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        folder = ROOT / properties["CodeUri"]
        variables = {
            **((defaults.get("Environment") or {}).get("Variables") or {}),
            **((properties.get("Environment") or {}).get("Variables") or {}),
        }
        environment = {name: _template_value(value, parameters, name) for name, value in variables.items()}
        environment.update(
            {
                "PATH": os.environ.get("PATH", ""),
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_SESSION_TOKEN": "bench",
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_LAMBDA_FUNCTION_NAME": logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", defaults["MemorySize"])),
                "LAMBDA_TASK_ROOT": str(folder),
                "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(folder)]),
            }
        )
        tracing = properties.get("Tracing", defaults.get("Tracing")) == "Active"
        functions[folder.name] = (folder, environment, tracing)
    return dict(sorted(functions.items()))


def _seconds(code: str, folder: Path, environment: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=folder, env=environment, check=True)  # noqa: S603 (our code)
    return time.perf_counter() - began


ColdImport = tuple[float, float]
"""(median seconds of a function's cold import, its median divided by that of `import boto3`)."""


def cold_imports(runs: int = COLD_RUNS) -> dict[str, dict[str, ColdImport]]:
    """Per function and tracing (as the template sets it, and off): each run a fresh interpreter imports
    the function, then another imports boto3 alone in the same environment, so drift hits both."""
    results: dict[str, dict[str, ColdImport]] = {}
    for name, (folder, environment, traced) in lambda_environments().items():
        setups = {
            "template": (environment if traced else {**environment, "POWERTOOLS_TRACE_DISABLED": "true"}),
            "off": {**environment, "POWERTOOLS_TRACE_DISABLED": "true"},
        }
        results[name] = {}
        for setup, env in setups.items():
            code = TRACING_ON_IMPORT if setup == "template" and traced else "import app"
            _seconds(code, folder, env)  # the first run reads the files from disk
            handler, boto3_alone = [], []
            for _ in range(runs):
                handler.append(_seconds(code, folder, env))
                boto3_alone.append(_seconds(BOTO3_IMPORT, folder, env))
            median = statistics.median(handler)
            results[name][setup] = (median, median / statistics.median(boto3_alone))
    return results


def report(results: dict[str, Result], startup: list[float], cold: dict[str, dict[str, ColdImport]]) -> None:
    base = results["change a vote (POST /v1/feedback, 200)"][0]
    lines = [
        f"Measured by `make bench` on {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; handlers in-process on the template's defaults, AWS emulated by moto; "
        f"{ROUNDS} requests per row, each answer's status asserted; "
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
        "",
        f"Cold import of each function (Lambda's init phase before the handler runs): a fresh interpreter "
        f"with the layer and the function's folder on the path and the template's environment (dummy "
        f'values), median of {COLD_RUNS} runs, divided by the median of `python -c "import boto3"` run '
        f"alternately in the same environment. With tracing on (the template's `Tracing: Active`), the "
        f"time includes building Powertools' Tracer, which the first traced call would otherwise do.",
        "",
        "| function | tracing as the template sets it | tracing off (POWERTOOLS_TRACE_DISABLED) |",
        "|---|---|---|",
    ]
    for name, setups in cold.items():
        cells = [f"{ratio:.2f}x ({seconds * 1000:.0f} ms)" for seconds, ratio in setups.values()]
        lines.append(f"| {name} | {' | '.join(cells)} |")
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
    report(results, local_startup_seconds(), cold_imports())
