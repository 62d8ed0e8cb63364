"""Backend writes over HTTP against the local stack: the record, its events on the bus and SNS, and the
stats, as for feedback given through a token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.e2e.emulator import EventLog, wait_until
from tests.e2e.test_local_stack import issue_token, unique


def test_put_then_events_and_stats(
    api: httpx.Client, key_headers: dict[str, str], event_log: EventLog
) -> None:
    run_id, agent, user = unique("run"), unique("agent"), unique("ü ser?#")
    path = f"/v1/runs/{quote(run_id, safe='')}/feedback/{quote(user, safe='')}"
    created = api.put(
        path,
        headers=key_headers,
        json={"outcome": "positive", "score": 6, "agent": agent, "context": {"m": 1}},
    )
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    assert (created.json()["user_id"], created.json()["source"]) == (user, "backend")
    updated = api.put(path, headers={**key_headers, "If-Match": '"1"'}, json={"outcome": "negative"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["version"], updated.json()["score"], updated.json()["agent"]) == (2, 6, agent)

    # a batch on the same run: another user, the first one again, and an invalid item
    items = [
        {"run_id": run_id, "user_id": "bob", "outcome": "positive", "agent": agent, "comment": "fine"},
        {"run_id": run_id, "user_id": user, "score": -2},
        {"run_id": run_id, "user_id": "carol", "score": 50},
    ]
    batch = api.post("/v1/feedback/batch", headers=key_headers, json={"items": items})
    assert batch.status_code == 200, batch.text
    assert [r["status"] for r in batch.json()["results"]] == ["created", "updated", "error"]
    assert (batch.json()["created"], batch.json()["updated"], batch.json()["failed"]) == (1, 1, 1)

    expected = [
        ("Feedback Submitted", user, 1),
        ("Feedback Updated", user, 2),
        ("Feedback Submitted", "bob", 1),
        ("Feedback Updated", user, 3),
    ]

    def arrived(source: str) -> list[tuple[str, str, int]]:
        """This run's events, each once (delivery is at least once: consumers de-duplicate on event_id)."""
        events = {
            e["detail"]["event_id"]: e for e in event_log.envelopes(source) if e["detail"]["run_id"] == run_id
        }
        return sorted(
            (e["detail-type"], e["detail"]["user_id"], e["detail"]["version"]) for e in events.values()
        )

    event_log.wait_for(
        lambda log: arrived("bus") == sorted(expected) == arrived("sns"),
        describe=lambda: f"bus {arrived('bus')}, sns {arrived('sns')}, expected {sorted(expected)}",
    )
    mine = [e for e in event_log.envelopes("bus") if e["detail"]["run_id"] == run_id]
    first_update = next(e for e in mine if e["detail"]["version"] == 2)
    assert first_update["detail"]["previous"]["outcome"] == "positive"
    assert first_update["detail"]["feedback"]["outcome"] == "negative"
    assert first_update["detail"]["feedback"]["source"] == "backend"
    assert first_update["detail"]["context"] == {"m": 1}
    assert first_update["detail"]["agent"] == agent

    def totals() -> dict[str, Any] | None:
        response = api.get("/v1/stats", headers=key_headers, params={"agent": agent, "granularity": "total"})
        assert response.status_code == 200, response.text
        total = response.json()["total"]
        return total if (total["positive"], total["negative"]) == (1, 1) else None

    total = wait_until(totals)
    assert (total["score_count"], total["score_sum"], total["comments"]) == (1, -2.0, 1)


def test_backend_writes_are_their_users_own(api: httpx.Client, key_headers: dict[str, str]) -> None:
    run_id = unique("run")
    path = f"/v1/runs/{run_id}/feedback/alice"
    assert api.put(path, headers=key_headers, json={"outcome": "positive"}).status_code == 201
    unbound = issue_token(api, key_headers, run_id=run_id)
    refused = api.post(
        "/v1/feedback",
        headers={"X-Feedback-Token": unbound},
        json={"outcome": "negative", "user_id": "alice"},
    )
    assert refused.status_code == 403
    alice = issue_token(api, key_headers, run_id=run_id, user_id="alice")
    mine = api.get("/v1/feedback/me", headers={"X-Feedback-Token": alice})
    assert (mine.status_code, mine.json()["source"]) == (200, "backend")


def test_backend_write_errors(api: httpx.Client, key_headers: dict[str, str]) -> None:
    assert api.put("/v1/runs/r/feedback/u", json={"outcome": "positive"}).status_code == 401
    assert api.put("/v1/runs/r/feedback/u", headers=key_headers, json={}).status_code == 422
    assert api.post("/v1/feedback/batch", headers=key_headers, json={"items": []}).status_code == 422
    too_many = {"items": [{"run_id": "r", "user_id": "u", "score": 1}] * 101}
    assert api.post("/v1/feedback/batch", headers=key_headers, json=too_many).status_code == 422
    huge = b'{"items": [' + b" " * (1024 * 1024) + b"]}"
    too_big = api.post(
        "/v1/feedback/batch", headers={**key_headers, "Content-Type": "application/json"}, content=huge
    )
    assert too_big.status_code == 413
    form = api.post(
        "/v1/feedback/batch",
        headers={**key_headers, "Content-Type": "application/x-www-form-urlencoded"},
        content=b"items=1",
    )
    assert form.status_code == 415
