"""``feedbackctl`` against the local stack: every command, its tables and ``--output json``, its errors
(one line on stderr, non-zero exit) and ``events tail`` reading the stack's tap queues."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from feedback_client import FeedbackClient
from tests.e2e.emulator import wait_until
from tests.sdk.conftest import feedbackctl, feedbackctl_process

pytestmark = [pytest.mark.sdk, pytest.mark.e2e]

COMMANDS = [
    [],
    ["tokens"],
    ["tokens", "issue"],
    ["feedback"],
    ["feedback", "list"],
    ["feedback", "export"],
    ["feedback", "import"],
    ["stats"],
    ["users"],
    ["users", "erase"],
    ["events"],
    ["events", "tail"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "feedbackctl")
def test_help_everywhere(command: list[str]) -> None:
    ran = feedbackctl("http://unused", "", *command, "--help")
    assert ran.exit_code == 0, ran.stderr
    assert "Usage: " in ran.stdout
    assert "--help" in ran.stdout


def test_tokens_list_stats_and_erase(credentials: dict[str, Any], client: FeedbackClient) -> None:
    endpoint, key = credentials["endpoint"], credentials["api_key"]
    run_id, agent = f"cli-run-{uuid.uuid4().hex[:8]}", f"cli-{uuid.uuid4().hex[:8]}"

    issued = feedbackctl(endpoint, key, "--output", "json", "tokens", "issue", run_id, "--user-id", "cleo",
                         "--agent", agent, "--context", '{"model": "m2"}')  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    token = issued.json()["feedback_token"]
    client.send_feedback(token, outcome="positive", score=5, comment="clear answer")
    plain = feedbackctl(endpoint, key, "tokens", "issue", run_id, "--ttl", "60")
    assert plain.exit_code == 0
    assert plain.stdout.count(".") == 2  # the compact JWS alone on stdout
    assert "expires at" in plain.stderr

    listed = feedbackctl(endpoint, key, "-o", "json", "feedback", "list", "--agent", agent)
    assert [item["run_id"] for item in listed.json()["items"]] == [run_id]
    assert listed.json()["items"][0]["context"] == {"model": "m2"}
    table = feedbackctl(endpoint, key, "feedback", "list", "--agent", agent, "--outcome", "positive")
    assert table.exit_code == 0
    assert run_id in table.stdout
    assert "clear answer" in table.stdout

    def counted() -> Any:
        result = feedbackctl(endpoint, key, "-o", "json", "stats", "--agent", agent)
        return result.json()["total"]["positive"] == 1 and result.json()

    stats = wait_until(counted)
    assert stats["total"]["score_sum"] == 5
    shown = feedbackctl(endpoint, key, "stats", "--agent", agent)
    assert shown.exit_code == 0
    assert "total" in shown.stdout
    assert "█" in shown.stdout  # the chart
    assert "+1 -0" in shown.stdout

    erased = feedbackctl(endpoint, key, "-o", "json", "users", "erase", "cleo", "--yes")
    assert erased.exit_code == 0, erased.stderr
    assert erased.json()["complete"] is True
    assert erased.json()["deleted"] >= 1
    assert client.get_feedback(run_id, "cleo") is None
    refused = feedbackctl(endpoint, key, "users", "erase", "cleo")  # no --yes, no confirmation typed
    assert refused.exit_code != 0


def test_errors_are_one_line_and_a_non_zero_exit(credentials: dict[str, Any], tmp_path: Path) -> None:
    unconfigured = feedbackctl_process("stats")
    assert unconfigured.exit_code == 1
    assert unconfigured.stderr.strip().splitlines() == [
        "feedbackctl: configuration_error: no endpoint: pass endpoint= or set FEEDBACK_ENDPOINT"
    ]
    stranger = feedbackctl_process(
        "stats", env={"FEEDBACK_ENDPOINT": credentials["endpoint"], "FEEDBACK_API_KEY": "fbk_" + "A" * 43}
    )
    assert stranger.exit_code == 1
    assert len(stranger.stderr.strip().splitlines()) == 1
    assert stranger.stderr.startswith("feedbackctl: unauthorized: ")
    assert "(HTTP 401, request " in stranger.stderr
    invalid = feedbackctl(credentials["endpoint"], credentials["api_key"], "stats", "--start", "yesterday")
    assert invalid.exit_code == 1
    assert invalid.stderr.startswith("feedbackctl: validation_error: ")
    unreachable = feedbackctl_process(
        "--timeout",
        "2",
        "stats",
        env={"FEEDBACK_ENDPOINT": "http://127.0.0.1:9", "FEEDBACK_API_KEY": "fbk_" + "A" * 43},
    )
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith("feedbackctl: connection_error: ")
    no_stack = feedbackctl_process("events", "tail", "--once", "--credentials", str(tmp_path / "none.json"))
    assert no_stack.exit_code == 1
    assert no_stack.stderr.strip().splitlines() == [
        f"feedbackctl: {tmp_path / 'none.json'} not found: start the local stack first (make run)"
    ]
    bad_option = feedbackctl_process("feedback", "list", "--limit", "0")
    assert bad_option.exit_code == 2  # usage errors keep their own status


def test_events_tail_prints_bus_and_sns_events(credentials_file: Path, client: FeedbackClient) -> None:
    run_id = f"tail-{uuid.uuid4().hex[:8]}"
    token = client.issue_token(run_id, user_id="dora")
    client.send_feedback(token.feedback_token, outcome="positive")
    seen: list[str] = []

    def tailed() -> bool:
        ran = feedbackctl_process("events", "tail", "--once", "--credentials", str(credentials_file))
        assert ran.exit_code == 0, ran.stderr
        seen.append(ran.stdout)
        lines = [line for line in "".join(seen).splitlines() if f"run={run_id}" in line]
        return any(line.startswith("[bus] Feedback Submitted") for line in lines) and any(
            line.startswith("[sns] Feedback Submitted") for line in lines
        )

    wait_until(tailed, timeout=60)  # behind the backlog of events the other tests made
    text = "".join(seen)
    assert f"run={run_id} user=dora outcome=positive version=1 actor=user" in text
    assert "event_type:Submitted" in text

    client.retract(token.feedback_token)
    messages: list[dict[str, Any]] = []

    def tailed_json() -> bool:
        ran = feedbackctl_process(
            "-o", "json", "events", "tail", "--once", "--credentials", str(credentials_file)
        )
        messages.extend(json.loads(line) for line in ran.stdout.splitlines())
        return {m["source"] for m in messages if run_id in json.dumps(m)} == {"bus", "sns"}

    wait_until(tailed_json, timeout=60)
    bus = next(m["message"] for m in messages if m["source"] == "bus" and run_id in json.dumps(m))
    assert bus["detail-type"] == "Feedback Retracted"
    assert bus["detail"]["previous"]["outcome"] == "positive"
