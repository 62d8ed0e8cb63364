"""The SDK against the local stack, over HTTP: every operation, sync and async, and its errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from feedback_client import (
    AsyncFeedbackClient,
    BadRequest,
    FeedbackClient,
    Forbidden,
    Unauthorized,
    ValidationFailed,
)
from tests.e2e.emulator import wait_until

pytestmark = [pytest.mark.sdk, pytest.mark.e2e]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_token_lifecycle_reads_and_stats(client: FeedbackClient) -> None:
    run_id, agent = unique("run"), unique("agent")
    token = client.issue_token(run_id, user_id="ana", session_id="s-1", agent=agent, context={"model": "m1"})
    first = client.send_feedback(
        token.feedback_token, outcome="positive", score=7, comment="good", tags=["a"]
    )
    assert (first.run_id, first.user_id, first.version, first.source) == (run_id, "ana", 1, "web")
    assert first.context == {"model": "m1"}
    changed = client.send_feedback(token.feedback_token, outcome="negative")
    assert (changed.version, changed.outcome, changed.score) == (2, "negative", 7)
    mine = client.get_my_feedback(token.feedback_token)
    assert mine is not None
    assert mine.feedback_id == first.feedback_id

    assert [r.feedback_id for r in client.list_feedback(agent=agent)] == [first.feedback_id]
    assert [r.user_id for r in client.get_run_feedback(run_id)] == ["ana"]
    one = client.get_feedback(run_id, "ana")
    assert one is not None
    assert one.version == 2
    assert client.get_feedback(run_id, "nobody") is None

    stats = wait_until(
        lambda: (s := client.stats(agent=agent, granularity="total")).total.negative == 1 and s
    )
    assert (stats.total.positive, stats.total.score_count, stats.total.comments) == (0, 1, 1)

    assert client.retract(token.feedback_token) is True
    assert client.retract(token.feedback_token) is False
    assert client.get_my_feedback(token.feedback_token) is None


def test_list_feedback_follows_cursors_across_pages(client: FeedbackClient) -> None:
    agent = unique("paged")
    for n in range(5):
        token = client.issue_token(f"{agent}-run-{n}", user_id=f"user-{n}", agent=agent)
        client.send_feedback(token.feedback_token, score=n)
    pages = list(client.list_feedback_pages(agent=agent, page_size=2))
    assert [len(page.items) for page in pages] == [2, 2, 1]
    records = list(client.list_feedback(agent=agent, page_size=2))
    assert sorted(r.score or 0 for r in records) == [0, 1, 2, 3, 4]
    assert [r.created_at for r in records] == sorted((r.created_at for r in records), reverse=True)


def test_erase_user_and_admin_delete(client: FeedbackClient) -> None:
    user = unique("user")
    for _ in range(3):
        token = client.issue_token(unique("run"), user_id=user)
        client.send_feedback(token.feedback_token, outcome="positive")
    erasure = wait_until(lambda: (e := client.erase_user(user)).deleted and e, timeout=20)
    assert erasure.complete
    total = erasure.deleted + client.erase_user(user).deleted
    assert total == 3
    assert list(client.list_feedback(user_id=user)) == []

    run_id = unique("run")
    token = client.issue_token(run_id, user_id="bo")
    client.send_feedback(token.feedback_token, outcome="negative")
    assert client.delete_feedback(run_id, "bo") is True
    assert client.delete_feedback(run_id, "bo") is False


def test_service_errors_carry_code_message_and_request_id(
    client: FeedbackClient, credentials: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        client.issue_token("run", ttl_seconds=0)
    assert invalid.value.status == 422
    assert invalid.value.request_id
    assert invalid.value.details
    token = client.issue_token(unique("run"), user_id="ana")
    with pytest.raises(Forbidden) as mismatch:
        client.send_feedback(token.feedback_token, outcome="positive", user_id="mallory")
    assert mismatch.value.code == "forbidden"
    with pytest.raises(Unauthorized):
        client.send_feedback(token.feedback_token[:-4] + "AAAA", outcome="positive")
    unknown_key = "fbk_" + "A" * 43
    with (
        FeedbackClient(credentials["endpoint"], unknown_key) as stranger,
        pytest.raises(Unauthorized) as refused,
    ):
        stranger.stats()
    assert refused.value.request_id
    with pytest.raises(BadRequest, match="cursor"):
        list(client.list_feedback(cursor="bogus"))


def test_async_client_against_the_stack(credentials: dict[str, Any]) -> None:
    agent = unique("async")

    async def scenario() -> list[str]:
        async with AsyncFeedbackClient(credentials["endpoint"], credentials["api_key"], timeout=30) as client:
            tokens = await asyncio.gather(
                *(client.issue_token(f"{agent}-{n}", user_id="ana", agent=agent) for n in range(3))
            )
            await asyncio.gather(
                *(client.send_feedback(t.feedback_token, outcome="positive") for t in tokens)
            )
            mine = await client.get_my_feedback(tokens[0].feedback_token)
            assert mine is not None
            assert await client.retract(tokens[0].feedback_token) is True
            return [record.run_id async for record in client.list_feedback(agent=agent, page_size=1)]

    assert sorted(asyncio.run(scenario())) == [f"{agent}-1", f"{agent}-2"]
