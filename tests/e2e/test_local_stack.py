"""The local stack over HTTP: what a newcomer does after `make run`, and what the service promises."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from local.process import LocalProcess, running
from tests.conftest import SKIP_DDBLOCAL_ENV
from tests.e2e.conftest import ROOT
from tests.e2e.emulator import EventLog, wait_until


def curl_lines(banner: str) -> list[str]:
    """The shell lines of the start banner (what a user pastes)."""
    return [line for line in banner.splitlines() if line.startswith(("export ", "TOKEN=", "curl "))]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def issue_token(api: httpx.Client, key_headers: dict[str, str], **fields: Any) -> str:
    response = api.post("/v1/tokens", headers=key_headers, json=fields)
    assert response.status_code == 201, response.text
    return str(response.json()["feedback_token"])


# ----------------------------------------------------------------------------------------- startup


def test_starts_healthy_and_prints_how_to_use_it(stack: LocalProcess, credentials: dict[str, Any]) -> None:
    # Starting fails the tier unless /v1/health answers within STARTUP_TIMEOUT (the promised minute);
    # how long it actually takes is measured by `make bench`, not asserted here.
    banner = stack.stdout()
    assert f"running at {stack.endpoint}" in banner
    assert credentials["api_key"] in banner
    assert "make events" in banner
    assert len(curl_lines(banner)) == 4
    expected = {
        "endpoint",
        "project",
        "api_key",
        "aws_endpoint_url",
        "aws_region",
        "feedback_table",
        "api_keys_table",
        "stats_table",
        "event_bus_name",
        "events_topic_arn",
        "events_queue_url",
        "sns_queue_url",
    }
    assert expected <= set(credentials)
    assert credentials["endpoint"] == stack.endpoint
    assert credentials["project"] == "demo"
    assert credentials["api_key"].startswith("fbk_")
    assert credentials["events_queue_url"].endswith("/feedback-events-local")
    assert credentials["sns_queue_url"].endswith("/feedback-sns-local")
    assert oct((stack.state_dir / "credentials.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_printed_curl_lines_work_verbatim(stack: LocalProcess) -> None:
    script = "set -eu\n" + "\n".join(curl_lines(stack.stdout()))
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert '"outcome":"positive"' in result.stdout.replace(" ", "")
    assert '"items":[' in result.stdout.replace(" ", "")
    assert '"comment":"spoton"' in result.stdout.replace(" ", "")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_quickstart_lines_work(stack: LocalProcess) -> None:
    """The README's lines, with this stack's port and state directory instead of 3000 and .local."""
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quickstart, re.DOTALL)
    assert len(blocks) == 2
    script = (
        blocks[1]
        .replace("http://127.0.0.1:3000", stack.endpoint)
        .replace(".local/credentials.json", str(stack.state_dir / "credentials.json"))
    )
    assert "3000" not in script
    result = subprocess.run(
        ["bash", "-c", "set -eu\n" + script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    compact = result.stdout.replace(" ", "")
    assert compact.count('"feedback_id"') >= 3  # submit, read, list
    assert '"total":{' in compact
    assert result.stdout.rstrip().endswith("204")


def test_second_instance_on_a_busy_port_fails_clearly(stack: LocalProcess) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "local",
            "--port",
            str(stack.port),
            "--state-dir",
            str(stack.state_dir / "other"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    # It fails before deploying anything: no credentials were written for a stack that never started.
    assert not (stack.state_dir / "other" / "credentials.json").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{stack.port}" in lines[0]
    assert "already in use" in lines[0]
    assert result.stdout == ""
    assert not (stack.state_dir / "other").exists()


# ------------------------------------------------------------------------------------------ flows


def test_feedback_lifecycle_reaches_events_and_stats(
    api: httpx.Client, key_headers: dict[str, str], event_log: EventLog
) -> None:
    run_id, agent = unique("run"), unique("agent")
    alice = issue_token(
        api, key_headers, run_id=run_id, user_id="alice", agent=agent, context={"model": "m1"}
    )
    bob = issue_token(api, key_headers, run_id=run_id, user_id="bob", agent=agent)
    carol = issue_token(api, key_headers, run_id=run_id, user_id="carol", agent=agent)

    created = api.post(
        "/v1/feedback", headers={"X-Feedback-Token": alice}, json={"outcome": "positive", "score": 8}
    )
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert created.headers["etag"] == '"1"'
    updated = api.post("/v1/feedback", headers={"X-Feedback-Token": alice}, json={"outcome": "negative"})
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert updated.json()["score"] == 8
    mine = api.get("/v1/feedback/me", headers={"X-Feedback-Token": alice})
    assert mine.status_code == 200
    assert (mine.json()["outcome"], mine.json()["context"]) == ("negative", {"model": "m1"})

    assert (
        api.post(
            "/v1/feedback", headers={"X-Feedback-Token": bob}, json={"outcome": "positive", "comment": "ok"}
        ).status_code
        == 201
    )
    retracted = api.delete("/v1/feedback/me", headers={"X-Feedback-Token": bob})
    assert retracted.status_code == 204
    assert api.get("/v1/feedback/me", headers={"X-Feedback-Token": bob}).status_code == 404
    assert api.delete("/v1/feedback/me", headers={"X-Feedback-Token": bob}).status_code == 404
    assert api.post("/v1/feedback", json={"outcome": "positive", "feedback_token": carol}).status_code == 201

    expected = [
        ("Feedback Submitted", "alice"),
        ("Feedback Updated", "alice"),
        ("Feedback Submitted", "bob"),
        ("Feedback Retracted", "bob"),
        ("Feedback Submitted", "carol"),
    ]

    def arrived(source: str) -> list[tuple[str, str]]:
        events = [e for e in event_log.envelopes(source) if e["detail"]["run_id"] == run_id]
        events.sort(key=lambda e: int(e["detail"]["sequence"]))
        return [(e["detail-type"], e["detail"]["user_id"]) for e in events]

    event_log.wait_for(
        lambda log: sorted(arrived("bus")) == sorted(expected) and sorted(arrived("sns")) == sorted(expected)
    )
    update = next(
        e
        for e in event_log.envelopes("bus")
        if e["detail"]["run_id"] == run_id and e["detail-type"] == "Feedback Updated"
    )
    assert update["source"] == "feedback.service"
    assert update["detail"]["previous"]["outcome"] == "positive"
    assert update["detail"]["feedback"]["outcome"] == "negative"
    notification = next(
        m for m in event_log.received["sns"] if run_id in m["Message"] and "Retracted" in m["Message"]
    )
    assert notification["MessageAttributes"]["event_type"]["Value"] == "Retracted"
    assert notification["MessageAttributes"]["project"]["Value"] == "demo"

    def totals() -> dict[str, Any] | None:
        response = api.get("/v1/stats", headers=key_headers, params={"agent": agent, "granularity": "total"})
        assert response.status_code == 200, response.text
        total = response.json()["total"]
        return total if (total["positive"], total["negative"]) == (1, 1) else None

    total = wait_until(totals)
    assert total["score_count"] == 1
    assert total["score_sum"] == 8.0
    assert total["comments"] == 0


def test_list_with_filters_and_cursor(api: httpx.Client, key_headers: dict[str, str]) -> None:
    session = unique("session")
    for index in range(5):
        token = issue_token(
            api, key_headers, run_id=f"{session}-run-{index}", user_id=f"u{index}", session_id=session
        )
        outcome = "negative" if index % 2 else "positive"
        assert (
            api.post(
                "/v1/feedback", headers={"X-Feedback-Token": token}, json={"outcome": outcome}
            ).status_code
            == 201
        )

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"session_id": session, "limit": 2}
    pages = 0
    while True:
        response = api.get("/v1/feedback", headers=key_headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        pages += 1
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert pages == 3
    assert [item["user_id"] for item in seen] == ["u4", "u3", "u2", "u1", "u0"]  # newest first
    negatives = api.get(
        "/v1/feedback", headers=key_headers, params={"session_id": session, "outcome": "negative"}
    )
    assert [item["user_id"] for item in negatives.json()["items"]] == ["u3", "u1"]
    by_user = api.get("/v1/feedback", headers=key_headers, params={"user_id": "u2", "session_id": session})
    assert [item["run_id"] for item in by_user.json()["items"]] == [f"{session}-run-2"]
    run = api.get(f"/v1/runs/{session}-run-4/feedback/u4", headers=key_headers)
    assert run.status_code == 200
    assert run.json()["outcome"] == "positive"

    tampered = api.get(
        "/v1/feedback", headers=key_headers, params={"session_id": session, "cursor": "x" + params["cursor"]}
    )
    assert tampered.status_code == 400
    assert tampered.json()["error"]["code"]
    other_filters = api.get(
        "/v1/feedback", headers=key_headers, params={"outcome": "positive", "cursor": params["cursor"]}
    )
    assert other_filters.status_code == 400
    assert api.get("/v1/feedback", headers=key_headers, params={"limit": 0}).status_code == 422


def test_erase_a_user(api: httpx.Client, key_headers: dict[str, str], event_log: EventLog) -> None:
    user = unique("ü ser?#")  # URL syntax in an id: percent-encoded in the path, decoded by the gateway
    path = f"/v1/users/{quote(user, safe='')}/feedback"
    for _ in range(3):
        token = issue_token(api, key_headers, run_id=unique("erase-run"), user_id=user)
        assert (
            api.post(
                "/v1/feedback", headers={"X-Feedback-Token": token}, json={"outcome": "positive"}
            ).status_code
            == 201
        )
    erased = api.delete(path, headers=key_headers)
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"deleted": 3, "complete": True}
    assert api.get("/v1/feedback", headers=key_headers, params={"user_id": user}).json()["items"] == []
    assert api.delete(path, headers=key_headers).json() == {"deleted": 0, "complete": True}

    def erased_events(log: EventLog) -> bool:
        mine = [e for e in log.envelopes("bus") if e["detail"]["user_id"] == user]
        return sorted(e["detail-type"] for e in mine) == ["Feedback Erased"] * 3 + ["Feedback Submitted"] * 3

    event_log.wait_for(erased_events)


def test_cors_preflight_from_allowed_and_disallowed_origins(api: httpx.Client, stack: LocalProcess) -> None:
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-feedback-token",
    }
    allowed = api.options("/v1/feedback", headers={"Origin": stack.endpoint, **request})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == stack.endpoint
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-feedback-token" in allowed.headers["access-control-allow-headers"]
    assert allowed.headers["access-control-max-age"] == "600"
    assert (
        api.options("/v1/feedback", headers={"Origin": "http://localhost:3000", **request}).headers[
            "access-control-allow-origin"
        ]
        == "http://localhost:3000"
    )

    denied = api.options("/v1/feedback", headers={"Origin": "https://evil.example", **request})
    assert not [name for name in denied.headers if name.lower().startswith("access-control-")]

    actual = api.get("/v1/health", headers={"Origin": stack.endpoint})
    assert actual.headers["access-control-allow-origin"] == stack.endpoint
    assert actual.headers["access-control-expose-headers"] == "retry-after,etag"
    assert (
        "access-control-allow-origin"
        not in api.get("/v1/health", headers={"Origin": "https://evil.example"}).headers
    )


def test_gateway_and_service_errors(api: httpx.Client, key_headers: dict[str, str]) -> None:
    missing = api.get("/v1/feedback")
    assert (missing.status_code, missing.json()) == (401, {"message": "Unauthorized"})
    malformed_key = api.get("/v1/feedback", headers={"Authorization": "Bearer fbk_not-a-real-key-at-all"})
    assert (malformed_key.status_code, malformed_key.json()) == (403, {"message": "Forbidden"})
    unknown = api.get("/v1/feedback", headers={"Authorization": "Bearer fbk_" + "x" * 43})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["code"] == "unauthorized"
    assert (api.get("/v1/nowhere").status_code, api.get("/v1/nowhere").json()) == (
        404,
        {"message": "Not Found"},
    )
    forged = api.post("/v1/feedback", headers={"X-Feedback-Token": "a.b.c"}, json={"outcome": "positive"})
    assert forged.status_code == 401
    malformed = api.post(
        "/v1/tokens", headers={**key_headers, "content-type": "application/json"}, content=b"{"
    )
    assert malformed.status_code == 400
    assert "error" in malformed.json()
    assert api.get("/.well-known/jwks.json").json()["keys"]
    assert api.get("/v1/openapi.json").json()["paths"]


def test_demo_page_offers_tokens_that_work(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    tokens = re.findall(r'<feedback-widget token="([^"]+)"', page.text)
    assert len(tokens) == 4
    assert re.search(r'<script type="module" src="/v1/widget\.js\?v=[0-9a-f]{16}"></script>', page.text)
    assert "script-src 'self';" in page.headers["content-security-policy"]
    response = api.post(
        "/v1/feedback",
        headers={"X-Feedback-Token": tokens[2]},
        json={"outcome": "negative", "comment": "wrong"},
    )
    assert response.status_code in (200, 201)
    assert response.json()["run_id"] == "demo-run-3"
    assert api.get("/v1/feedback/me", headers={"X-Feedback-Token": tokens[2]}).json()["comment"] == "wrong"
    assert api.delete("/v1/feedback/me", headers={"X-Feedback-Token": tokens[2]}).status_code == 204


# -------------------------------------------------------------------------------------- --persist


def test_persist_keeps_data_key_and_tokens_across_a_restart(tmp_path: Path) -> None:
    if os.environ.get(SKIP_DDBLOCAL_ENV) == "1":
        pytest.skip(f"{SKIP_DDBLOCAL_ENV}=1: DynamoDB Local is skipped on request")
    data = tmp_path / "data"
    with running(tmp_path, "first", "--persist", str(data)) as first:
        credentials = first.credentials()
        headers = {"Authorization": f"Bearer {credentials['api_key']}"}
        with httpx.Client(base_url=first.endpoint, timeout=15) as api:
            token = issue_token(api, headers, run_id="persisted-run", user_id="dana")
            created = api.post(
                "/v1/feedback", headers={"X-Feedback-Token": token}, json={"outcome": "positive"}
            )
            assert created.status_code == 201
            wait_until(
                lambda: (
                    api.get("/v1/stats", headers=headers, params={"granularity": "total"}).json()["total"][
                        "positive"
                    ]
                    == 1
                )
            )
        assert first.terminate(stop_signal=signal.SIGINT) == 0, first.output()  # Ctrl-C
        assert "stopped" in first.stderr()
        assert "Traceback" not in first.stderr()

    with running(tmp_path, "second", "--persist", str(data)) as second:
        again = second.credentials()
        assert again["api_key"] == credentials["api_key"]
        with httpx.Client(base_url=second.endpoint, timeout=15) as api:
            mine = api.get("/v1/feedback/me", headers={"X-Feedback-Token": token})
            assert mine.status_code == 200, mine.text
            assert mine.json()["feedback_id"] == created.json()["feedback_id"]
            listed = api.get("/v1/feedback", headers=headers)
            assert [item["feedback_id"] for item in listed.json()["items"]] == [created.json()["feedback_id"]]
            stats = api.get("/v1/stats", headers=headers, params={"granularity": "total"})
            assert stats.json()["total"]["positive"] == 1
            updated = api.post(
                "/v1/feedback", headers={"X-Feedback-Token": token}, json={"outcome": "negative"}
            )
            assert updated.status_code == 200
            assert updated.json()["version"] == 2
        log = EventLog(again)
        log.wait_for(lambda log: any(e["detail-type"] == "Feedback Updated" for e in log.envelopes("bus")))
        # The change made before the restart is not published again: the pollers resumed after it.
        assert [e["detail-type"] for e in log.envelopes("bus")] == ["Feedback Updated"]

        with httpx.Client(base_url=second.endpoint, timeout=15) as api:
            assert api.delete("/v1/feedback/me", headers={"X-Feedback-Token": token}).status_code == 204
        tail = [
            sys.executable,
            "-m",
            "feedbackctl",
            "events",
            "tail",
            "--once",
            "--credentials",
            str(second.state_dir / "credentials.json"),
        ]

        def tailed() -> str:
            result = subprocess.run(tail, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
            assert result.returncode == 0, result.stderr
            return result.stdout

        seen: list[str] = []

        def retraction_tailed() -> bool:
            seen.append(tailed())
            text = "".join(seen)
            return "[sns] Feedback Retracted" in text and "[bus] Feedback Retracted" in text

        wait_until(retraction_tailed)
        seen_text = "".join(seen)
        assert "run=persisted-run user=dana outcome=negative" in seen_text
        assert "event_type:Retracted" in seen_text
        assert second.terminate() == 0, second.output()
