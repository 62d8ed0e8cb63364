"""``pip install ./clients/python`` into a fresh virtual environment gives a working ``feedbackctl`` and
``feedback_client``, with httpx, pydantic, typer and rich only: neither the service's core nor boto3.

Dependencies come from the package index through pip's cache, as a user's install would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.sdk.conftest import ROOT

pytestmark = [pytest.mark.sdk, pytest.mark.e2e]


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FEEDBACK_", "PYTHON", "VIRTUAL_ENV"))
    }
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=environment | (env or {})
    )


def test_fresh_install_of_the_client_package(tmp_path: Path, credentials: dict[str, Any]) -> None:
    # A copy, so the build's scratch files stay out of the repository.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "clients" / "python", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", str(venv)])
    assert created.returncode == 0, created.stderr
    python, feedbackctl = venv / "bin" / "python", venv / "bin" / "feedbackctl"
    installed = run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)]
    )
    assert installed.returncode == 0, installed.stderr

    helped = run([str(feedbackctl), "--help"])
    assert helped.returncode == 0, helped.stderr
    assert "tokens" in helped.stdout
    assert "events" in helped.stdout

    isolated = run(
        [
            str(python),
            "-c",
            "import importlib.util as u, feedback_client, feedbackctl.cli; "
            "print([m for m in ('feedback_core', 'boto3', 'botocore', 'feedback_operator') "
            "if u.find_spec(m)])",
        ]
    )
    assert isolated.returncode == 0, isolated.stderr
    assert isolated.stdout.strip() == "[]"

    env = {"FEEDBACK_ENDPOINT": credentials["endpoint"], "FEEDBACK_API_KEY": credentials["api_key"]}
    issued = run(
        [str(feedbackctl), "-o", "json", "tokens", "issue", "installed-run", "--user-id", "ivy"], env
    )
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["feedback_token"]
    program = textwrap.dedent(
        f"""
        from feedback_client import FeedbackClient
        with FeedbackClient() as client:
            record = client.send_feedback({token!r}, outcome="positive", score=3)
            mine = client.get_my_feedback({token!r})
            print(record.version, mine.score if mine else None)
        """
    )
    used = run([str(python), "-c", program], env)
    assert used.returncode == 0, used.stderr
    assert used.stdout.split() == ["1", "3"]
