"""The SDK tier: the client and ``feedbackctl`` against the local stack (``python -m local``), and helpers
to run the command in-process or as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from feedback_client import FeedbackClient
from feedback_operator.cli import main as operator_main
from feedbackctl.cli import app
from local.process import LocalProcess
from local.template import ROOT
from tests.conftest import tier_stack_fixture

local_stack = tier_stack_fixture()


@pytest.fixture(scope="package")
def credentials(local_stack: LocalProcess) -> dict[str, Any]:
    return local_stack.credentials()


@pytest.fixture(scope="package")
def credentials_file(local_stack: LocalProcess) -> Path:
    return local_stack.state_dir / "credentials.json"


@pytest.fixture
def client(credentials: dict[str, Any]) -> Iterator[FeedbackClient]:
    with FeedbackClient(credentials["endpoint"], credentials["api_key"], timeout=30) as feedback:
        yield feedback


def new_project_key(credentials: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """A project of its own and an API key for it, made as an operator makes them (feedback-operator)."""
    project = f"p-{uuid.uuid4().hex[:12]}"
    table, endpoint = credentials["api_keys_table"], credentials["dynamodb_endpoint_url"]
    options = ["--table", table, "--endpoint-url", endpoint, "--region", credentials["aws_region"]]
    assert operator_main(["keys", "create", *options, "--project", project]) == 0, capsys.readouterr().err
    return project, str(json.loads(capsys.readouterr().out)["api_key"])


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def feedbackctl(endpoint: str, api_key: str, *args: str) -> Ran:
    """``feedbackctl <args>`` in-process, configured through the environment."""
    environment = {"FEEDBACK_ENDPOINT": endpoint, "FEEDBACK_API_KEY": api_key, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def feedbackctl_process(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``python -m feedbackctl <args>`` as a subprocess: what a shell sees (exit status, stderr)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **(env or {})}
    command = [sys.executable, "-m", "feedbackctl", *args]
    ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env)
    return Ran(ran.returncode, ran.stdout, ran.stderr)
