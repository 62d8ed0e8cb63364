"""The SDK's HTTP behaviour against mocked transports (respx): retries with backoff and jitter on 429, 503
and connection errors, `Retry-After`, one exception class per error code, configuration, cursors,
batches. Waits are recorded by an injected sleep, never slept or timed."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
import respx

from feedback_client import (
    AsyncFeedbackClient,
    ConfigurationError,
    ConnectionFailed,
    FeedbackClient,
    Forbidden,
    NotFound,
    RetryPolicy,
    ServiceUnavailable,
    Throttled,
    TooManyUpdates,
    ValidationFailed,
)

pytestmark = pytest.mark.sdk

ENDPOINT = "https://feedback.example.test"
KEY = "fbk_" + "k" * 43
TOKEN_ANSWER = {"feedback_token": "tok", "expires_at": "2026-11-24T00:00:00.000Z"}


def record(run_id: str = "run-1", user_id: str = "ana", **values: Any) -> dict[str, Any]:
    return {
        "feedback_id": f"fb-{run_id}-{user_id}",
        "project": "demo",
        "run_id": run_id,
        "user_id": user_id,
        "outcome": "positive",
        "created_at": "2026-11-23T10:00:00.000Z",
        "updated_at": "2026-11-23T10:00:00.000Z",
        "version": 1,
        **values,
    }


def error(
    status: int, code: str, message: str = "no", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": message}},
        headers={"apigw-requestid": "req-1", **(headers or {})},
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> FeedbackClient:
    retry = RetryPolicy(attempts=4, base_delay=0.5, max_delay=4, rng=random.Random(7))
    return FeedbackClient(ENDPOINT, KEY, retry=retry, sleep=sleeps)


@respx.mock(base_url=ENDPOINT)
def test_503_is_retried_with_jittered_exponential_backoff(
    respx_mock: respx.MockRouter, client: FeedbackClient, sleeps: Sleeps
) -> None:
    route = respx_mock.post("/v1/tokens").mock(
        side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(201, json=TOKEN_ANSWER)]
    )
    token = client.issue_token("run-1", user_id="ana")
    assert token.feedback_token == "tok"
    assert route.call_count == 3
    # Full jitter: each wait is drawn from [0, min(max_delay, base * 2**retry)].
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0
    expected = random.Random(7)
    assert sleeps == [expected.uniform(0, 0.5), expected.uniform(0, 1.0)]
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"run_id": "run-1", "user_id": "ana"}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"


@respx.mock(base_url=ENDPOINT)
def test_retry_after_is_honoured_and_capped(respx_mock: respx.MockRouter, sleeps: Sleeps) -> None:
    client = FeedbackClient(ENDPOINT, KEY, retry=RetryPolicy(max_retry_after=30), sleep=sleeps)
    respx_mock.get("/v1/stats").mock(
        side_effect=[
            error(429, "throttled", headers={"Retry-After": "3"}),
            httpx.Response(429, json={"message": "Too Many Requests"}, headers={"Retry-After": "120"}),
            httpx.Response(200, json={"total": {"start": "2026-11-01"}, "buckets": []}),
        ]
    )
    stats = client.stats(granularity="total")
    assert stats.total.positive == 0
    assert sleeps == [3.0, 30.0]


@respx.mock(base_url=ENDPOINT)
def test_retries_stop_after_the_attempts_and_raise_the_last_error(
    respx_mock: respx.MockRouter, client: FeedbackClient, sleeps: Sleeps
) -> None:
    route = respx_mock.get("/v1/stats").mock(return_value=error(503, "service_unavailable", "busy"))
    with pytest.raises(ServiceUnavailable) as raised:
        client.stats()
    assert route.call_count == 4
    assert len(sleeps) == 3
    assert (raised.value.status, raised.value.code, raised.value.request_id) == (
        503,
        "service_unavailable",
        "req-1",
    )


@respx.mock(base_url=ENDPOINT)
def test_a_records_cap_of_versions_is_not_retried(
    respx_mock: respx.MockRouter, client: FeedbackClient, sleeps: Sleeps
) -> None:
    route = respx_mock.post("/v1/feedback").mock(
        return_value=error(429, "too_many_updates", "capped", headers={"Retry-After": "86400"})
    )
    with pytest.raises(TooManyUpdates) as raised:
        client.send_feedback("tok", outcome="negative")
    assert route.call_count == 1
    assert sleeps == []
    assert raised.value.retry_after == 86400
    assert route.calls.last.request.headers["X-Feedback-Token"] == "tok"
    assert "Authorization" not in route.calls.last.request.headers


@respx.mock(base_url=ENDPOINT)
def test_connection_errors_and_timeouts_are_retried_then_reported(
    respx_mock: respx.MockRouter, client: FeedbackClient, sleeps: Sleeps
) -> None:
    route = respx_mock.get("/v1/stats").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
        ]
    )
    with pytest.raises(ConnectionFailed, match="timed out"):
        client.stats()
    assert route.call_count == 4
    assert len(sleeps) == 3

    route.side_effect = [
        httpx.ConnectError("refused"),
        httpx.Response(200, json={"total": {"start": "x"}, "buckets": []}),
    ]
    assert client.stats().buckets == []


@respx.mock(base_url=ENDPOINT)
def test_client_errors_map_to_one_class_per_code_and_are_not_retried(
    respx_mock: respx.MockRouter, client: FeedbackClient, sleeps: Sleeps
) -> None:
    respx_mock.post("/v1/tokens").mock(
        return_value=httpx.Response(
            422,
            json={
                "error": {
                    "code": "validation_error",
                    "message": "invalid request",
                    "details": [{"field": "run_id", "message": "too long"}],
                }
            },
            headers={"apigw-requestid": "req-422"},
        )
    )
    with pytest.raises(ValidationFailed) as raised:
        client.issue_token("x" * 300)
    assert raised.value.details == [{"field": "run_id", "message": "too long"}]
    assert raised.value.request_id == "req-422"
    assert "run_id: too long" in str(raised.value)
    assert "req-422" in str(raised.value)
    # API Gateway's own answers ({"message": ...}) get the class of their status.
    respx_mock.get("/v1/stats").mock(return_value=httpx.Response(403, json={"message": "Forbidden"}))
    with pytest.raises(Forbidden, match="Forbidden"):
        client.stats()
    assert sleeps == []


@respx.mock(base_url=ENDPOINT)
def test_not_found_reads_are_none_and_retractions_false(
    respx_mock: respx.MockRouter, client: FeedbackClient
) -> None:
    respx_mock.get("/v1/feedback/me").mock(return_value=error(404, "not_found"))
    respx_mock.delete("/v1/feedback/me").mock(return_value=error(404, "not_found"))
    respx_mock.get("/v1/runs/r%2F1%20x/feedback/%C3%BC").mock(return_value=error(404, "not_found"))
    assert client.get_my_feedback("tok", user_id="ana") is None
    assert client.retract("tok") is False
    assert client.get_feedback("r/1 x", "ü") is None
    with pytest.raises(NotFound):
        FeedbackClient(ENDPOINT, KEY)._send(  # the exception itself, where None is not an answer
            __import__("feedback_client._core", fromlist=["Call"]).Call(
                "GET", "/v1/feedback/me", "token", token="t"
            )
        )


def test_configuration_comes_from_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDBACK_ENDPOINT", raising=False)
    monkeypatch.delenv("FEEDBACK_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="FEEDBACK_ENDPOINT"):
        FeedbackClient()
    monkeypatch.setenv("FEEDBACK_ENDPOINT", ENDPOINT + "/")
    monkeypatch.setenv("FEEDBACK_API_KEY", KEY)
    client = FeedbackClient()
    assert (client.config.endpoint, client.config.api_key) == (ENDPOINT, KEY)
    assert FeedbackClient("http://other", "fbk_other").config.api_key == "fbk_other"
    monkeypatch.delenv("FEEDBACK_API_KEY")
    with respx.mock(base_url=ENDPOINT, assert_all_called=False) as router:
        route = router.get("/v1/stats")
        with pytest.raises(ConfigurationError, match="API key"):
            FeedbackClient().stats()
    assert route.call_count == 0


@respx.mock(base_url=ENDPOINT)
def test_list_feedback_follows_the_cursors(respx_mock: respx.MockRouter, client: FeedbackClient) -> None:
    route = respx_mock.get("/v1/feedback").mock(
        side_effect=[
            httpx.Response(200, json={"items": [record("r1"), record("r2")], "next_cursor": "c1"}),
            httpx.Response(200, json={"items": [record("r3")], "next_cursor": None}),
        ]
    )
    runs = [item.run_id for item in client.list_feedback(outcome="positive", start="2026-11-01", page_size=2)]
    assert runs == ["r1", "r2", "r3"]
    first, second = (call.request.url.params for call in route.calls)
    assert dict(first) == {"outcome": "positive", "start": "2026-11-01", "limit": "2"}
    assert dict(second) == {"outcome": "positive", "start": "2026-11-01", "limit": "2", "cursor": "c1"}


@respx.mock(base_url=ENDPOINT)
def test_erase_user_repeats_until_complete(respx_mock: respx.MockRouter, client: FeedbackClient) -> None:
    route = respx_mock.delete("/v1/users/ana/feedback").mock(
        side_effect=[
            httpx.Response(202, json={"deleted": 500, "complete": False}),
            httpx.Response(200, json={"deleted": 7, "complete": True}),
        ]
    )
    erasure = client.erase_user("ana")
    assert (erasure.deleted, erasure.complete, route.call_count) == (507, True, 2)


def batch_answer(request: httpx.Request) -> httpx.Response:
    """Refuses every item whose comment is "refuse", creates the others."""
    items = json.loads(request.content)["items"]
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if item.get("comment") == "refuse":
            results.append(
                {"index": index, "status": "error", "error": {"code": "forbidden", "message": "owned"}}
            )
        else:
            results.append({"index": index, "status": "created", "feedback_id": f"f{index}", "version": 1})
    failed = sum(1 for result in results if result["status"] == "error")
    return httpx.Response(
        200, json={"results": results, "created": len(items) - failed, "updated": 0, "failed": failed}
    )


def import_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"run_id": f"run-{n}", "user_id": "ana", "outcome": "positive"} for n in range(25)
    ]
    items[3]["comment"] = "refuse"  # refused by the service
    items[11] = {"run_id": "run-11", "user_id": "ana", "outcome": "sideways"}  # refused before sending
    items[20]["comment"] = "refuse"
    return items


@respx.mock(base_url=ENDPOINT)
def test_import_reports_partial_failures_by_input_position(
    respx_mock: respx.MockRouter, client: FeedbackClient
) -> None:
    route = respx_mock.post("/v1/feedback/batch").mock(side_effect=batch_answer)
    progress: list[int] = []
    report = client.import_feedback(import_items(), batch_size=10, concurrency=3, on_progress=progress.append)
    assert route.call_count == 3  # 24 valid items in batches of 10
    assert sorted(len(json.loads(call.request.content)["items"]) for call in route.calls) == [4, 10, 10]
    assert (report.created, report.updated, report.failed) == (22, 0, 3)
    assert [(f.index, f.run_id, f.code) for f in report.failures] == [
        (3, "run-3", "forbidden"),
        (11, "run-11", "validation_error"),
        (20, "run-20", "forbidden"),
    ]
    assert sum(progress) == 25
    sent = json.loads(route.calls[0].request.content)["items"][0]
    assert sent == {"run_id": "run-0", "user_id": "ana", "outcome": "positive"}


@respx.mock(base_url=ENDPOINT)
def test_a_batch_failing_as_a_whole_fails_each_of_its_items(
    respx_mock: respx.MockRouter, client: FeedbackClient
) -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if json.loads(request.content)["items"][0]["run_id"] == "run-0":
            return error(413, "payload_too_large", "too large")
        return batch_answer(request)

    respx_mock.post("/v1/feedback/batch").mock(side_effect=answer)
    items = [{"run_id": f"run-{n}", "user_id": "ana", "score": 1} for n in range(15)]
    report = client.import_feedback(items, batch_size=10, concurrency=1)
    assert (report.created, report.failed, calls) == (5, 10, 2)
    assert {f.code for f in report.failures} == {"payload_too_large"}
    assert [f.index for f in report.failures] == list(range(10))


@respx.mock(base_url=ENDPOINT)
def test_a_refused_credential_stops_the_import(respx_mock: respx.MockRouter, client: FeedbackClient) -> None:
    route = respx_mock.post("/v1/feedback/batch").mock(return_value=error(403, "forbidden", "missing scope"))
    with pytest.raises(Forbidden, match="missing scope"):
        client.import_feedback(
            [{"run_id": f"r{n}", "user_id": "u", "score": 1} for n in range(300)], concurrency=2
        )
    assert route.call_count <= 3


# ----------------------------------------------------------------------------------------- async


class AsyncSleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_async_client_retries_and_imports_the_same_way() -> None:
    sleeps = AsyncSleeps()

    async def scenario() -> None:
        async with AsyncFeedbackClient(
            ENDPOINT, KEY, retry=RetryPolicy(rng=random.Random(1)), sleep=sleeps
        ) as client:
            with respx.mock(base_url=ENDPOINT) as router:
                tokens = router.post("/v1/tokens").mock(
                    side_effect=[
                        error(429, "throttled", headers={"Retry-After": "2"}),
                        httpx.ConnectError("refused"),
                        httpx.Response(201, json=TOKEN_ANSWER),
                    ]
                )
                assert (await client.issue_token("run-1")).feedback_token == "tok"
                assert tokens.call_count == 3
                router.post("/v1/feedback/batch").mock(side_effect=batch_answer)
                progress: list[int] = []
                report = await client.import_feedback(
                    import_items(), batch_size=10, concurrency=2, on_progress=progress.append
                )
                assert (report.created, report.failed, sum(progress)) == (22, 3, 25)
                assert [f.index for f in report.failures] == [3, 11, 20]
                router.get("/v1/feedback").mock(
                    side_effect=[
                        httpx.Response(200, json={"items": [record("r1")], "next_cursor": "c1"}),
                        httpx.Response(200, json={"items": [record("r2")], "next_cursor": None}),
                    ]
                )
                assert [r.run_id async for r in client.list_feedback()] == ["r1", "r2"]
                router.get("/v1/stats").mock(return_value=error(429, "throttled"))
                with pytest.raises(Throttled):
                    await client.stats()

    asyncio.run(scenario())
    assert sleeps[0] == 2.0
    assert 0 <= sleeps[1] <= 0.5
    assert len(sleeps) == 2 + 3  # two for the token, three for the throttled stats
