"""The deploy smoke test (scripts/smoke.py) against the local stack, run as a user runs it after deploying.

`make smoke API=<endpoint>` with FEEDBACK_API_KEY and SMOKE_TOPIC_ARN from the stack's credentials.json,
and boto3 pointed at the stack's AWS emulator through AWS_ENDPOINT_URL, as docs/DEPLOY.md says.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from typing import Any

import pytest

from local.process import LocalProcess
from tests.e2e.conftest import ROOT
from tests.e2e.emulator import emulator_client

STEPS = [
    "health",
    "issue token",
    "subscribe to events",
    "submit feedback",
    "change feedback",
    "read it back",
    "list it",
    "stats count it",
    "event arrives",
    "retract it",
    "confirm it is gone",
    "remove queue",
]
STEP_LINE = re.compile(r"^(ok  |FAIL|skip) (.+?)(?: \(\d+\.\d\d s\))?(?::.*)?$")


def smoke_environment(credentials: dict[str, Any], api_key: str) -> dict[str, str]:
    """What a user exports after deploying: the key, the topic, and AWS credentials and region."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "SMOKE_", "FEEDBACK_")) and not name.startswith("MAKE")
    }
    return environment | {
        "FEEDBACK_API_KEY": api_key,
        "SMOKE_TOPIC_ARN": credentials["events_topic_arn"],
        "AWS_ENDPOINT_URL": credentials["aws_endpoint_url"],
        "AWS_DEFAULT_REGION": credentials["aws_region"],
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
    }


def steps(stdout: str) -> list[tuple[str, str]]:
    """(status, step) of every step line the script printed."""
    found = []
    for line in stdout.splitlines():
        match = STEP_LINE.match(line)
        if match:
            found.append((match[1].strip(), match[2]))
    return found


def smoke_queues(credentials: dict[str, Any]) -> list[str]:
    sqs = emulator_client(credentials, "sqs")
    return list(sqs.list_queues(QueueNamePrefix="feedback-smoke-").get("QueueUrls", []))


def smoke_subscriptions(credentials: dict[str, Any]) -> list[str]:
    sns = emulator_client(credentials, "sns")
    listed = sns.list_subscriptions_by_topic(TopicArn=credentials["events_topic_arn"])["Subscriptions"]
    return [item["Endpoint"] for item in listed if ":feedback-smoke-" in item["Endpoint"]]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_smoke_passes_every_step_including_the_event(
    stack: LocalProcess, credentials: dict[str, Any]
) -> None:
    # `-o .venv/.installed`: never reinstall the venv this test runs in (make setup would, were
    # pyproject.toml newer than its stamp); otherwise the very command of docs/DEPLOY.md.
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "smoke", f"API={stack.endpoint}"],
        cwd=ROOT,
        env=smoke_environment(credentials, credentials["api_key"]),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, report
    assert steps(result.stdout) == [("ok", step) for step in STEPS], report
    assert re.search(r"^ok   event arrives \(\d+\.\d\d s\): event_id [\w-]+$", result.stdout, re.MULTILINE), (
        report
    )
    assert re.search(r"^smoke: all 12 steps passed against ", result.stdout, re.MULTILINE), report
    assert result.stderr == "", report
    # Nothing left behind in the account: the temporary queue and its subscription are gone.
    assert smoke_queues(credentials) == []
    assert smoke_subscriptions(credentials) == []


def test_wrong_api_key_fails_with_one_clear_line(stack: LocalProcess, credentials: dict[str, Any]) -> None:
    # The script itself (make would add its own "Error 1" line to stderr).
    wrong_key = f"fbk_{secrets.token_urlsafe(32)}"
    result = subprocess.run(
        [sys.executable, "scripts/smoke.py", "--api", stack.endpoint],
        cwd=ROOT,
        env=smoke_environment(credentials, wrong_key),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 1, report
    assert steps(result.stdout) == [("ok", "health"), ("FAIL", "issue token")], report
    lines = result.stderr.splitlines()
    assert len(lines) == 1, report
    assert re.match(r"smoke: FAIL issue token: the API refused FEEDBACK_API_KEY \(40[13]\): ", lines[0]), (
        report
    )
    assert wrong_key not in result.stdout + result.stderr
    assert smoke_queues(credentials) == []
