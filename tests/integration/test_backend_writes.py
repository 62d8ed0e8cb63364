"""Feedback written with an API key: PUT /v1/runs/{run_id}/feedback/{user_id} and POST /v1/feedback/batch,
through the gateway and the real handlers, on the template's resources in moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import event, given
from hypothesis import strategies as st

from feedback_core import aws, services
from feedback_core.backend import BATCH_WORKERS
from local.functions import lambda_context
from tests.conftest import AwsCalls
from tests.integration.api import Api
from tests.integration.test_api import ShrinkingLambdaContext, json_values, request_fuzz
from tests.integration.writes_in_flight import RefusedWrites, WritesInFlight, throughput_exceeded
from tests.support.aws_limits import StrictAws
from tests.support.handlers import HttpResult, http_event, http_result, load_function

MAX_UPDATES = 5  # the integration stack's MaxUpdatesPerRecord (tests/integration/api.py)


def put(api: Api, key: str, run_id: str, user_id: str, body: Any, **fields: Any) -> HttpResult:
    return api.call(
        "admin",
        "write_feedback",
        key=key,
        path_params={"run_id": run_id, "user_id": user_id},
        body=body,
        **fields,
    )


def batch(api: Api, key: str, items: Any, **fields: Any) -> HttpResult:
    return api.call("admin", "write_feedback_batch", key=key, body={"items": items}, **fields)


def read(api: Api, key: str, run_id: str, user_id: str) -> HttpResult:
    return api.call(
        "query", "read_user_run_feedback", key=key, path_params={"run_id": run_id, "user_id": user_id}
    )


# ------------------------------------------------------------------------------------------------ PUT


def test_put_creates_then_updates_the_same_record_shape_as_a_token(api: Api, full_key: str) -> None:
    body = {"outcome": "positive", "score": 6, "session_id": "s-9", "agent": "bot", "context": {"m": 1}}
    created = put(api, full_key, "run-1", "alice", body)
    assert created.status == 201, created.body
    assert created.headers["etag"] == '"1"'
    record = created.body
    assert (record["project"], record["run_id"], record["user_id"], record["version"]) == (
        "acme",
        "run-1",
        "alice",
        1,
    )
    assert (record["session_id"], record["agent"], record["context"]) == ("s-9", "bot", {"m": 1})
    assert (record["source"], record["weight"], record["expires_at"] is not None) == ("backend", 1.0, True)

    # left out: kept; null: cleared (like every other field)
    updated = put(api, full_key, "run-1", "alice", {"outcome": "negative", "agent": None})
    assert updated.status == 200, updated.body
    assert updated.headers["etag"] == '"2"'
    assert (updated.body["outcome"], updated.body["score"], updated.body["version"]) == ("negative", 6, 2)
    assert (updated.body["session_id"], updated.body["context"], updated.body["agent"]) == (
        "s-9",
        {"m": 1},
        None,
    )
    assert updated.body["created_at"] == record["created_at"]
    assert updated.body["feedback_id"] == record["feedback_id"]
    assert read(api, full_key, "run-1", "alice").body == updated.body

    # the session index follows the kept session id
    listing = api.call("query", "list_feedback", key=full_key, query={"session_id": "s-9"})
    assert [item["user_id"] for item in listing.body["items"]] == ["alice"]

    # the source is the caller's when given
    assert put(api, full_key, "run-1", "alice", {"score": 1, "source": "crm"}).body["source"] == "crm"


def test_put_validates_like_the_token_path(api: Api, full_key: str) -> None:
    for body, status in [
        ({}, 422),
        ({"tags": ["x"]}, 422),
        ({"outcome": "meh"}, 422),
        ({"score": 11}, 422),
        ({"outcome": "positive", "feedback_token": "x"}, 422),
        ({"outcome": "positive", "user_id": "bob"}, 422),
        ({"outcome": "positive", "context": {"x": "y" * 2000}}, 422),
        ({"outcome": "positive", "details": {"x": "y" * 9000}}, 413),
        ([1, 2], 422),
    ]:
        response = put(api, full_key, "run-v", "alice", body)
        assert response.status == status, (body, response.body)
        assert response.body["error"]["message"]
    unsupported = put(
        api,
        full_key,
        "run-v",
        "alice",
        None,
        raw_body="outcome=positive",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert unsupported.status == 415
    assert put(api, full_key, "run-v", "alice", None, raw_body="{").status == 400
    assert read(api, full_key, "run-v", "alice").status == 404


def test_put_needs_the_write_scope(api: Api) -> None:
    reader = api.create_key("acme", "feedback:read", "tokens:write")
    response = put(api, reader, "run-1", "alice", {"outcome": "positive"})
    assert response.status == 403
    assert "feedback:write" in response.body["error"]["message"]
    assert batch(api, reader, [{"run_id": "r", "user_id": "u", "outcome": "positive"}]).status == 403
    assert read(api, api.create_key("acme", "feedback:read"), "run-1", "alice").status == 404


def test_put_versions_if_match_and_the_update_cap(api: Api, full_key: str) -> None:
    assert put(api, full_key, "run-c", "u", {"score": 0}, headers={"if-match": '"0"'}).status == 201
    assert put(api, full_key, "run-c", "u", {"score": 1}, headers={"if-match": '"0"'}).status == 409
    stale = put(api, full_key, "run-c", "u", {"score": 1}, headers={"if-match": '"7"'})
    assert stale.status == 409
    assert put(api, full_key, "run-c", "u", {"score": 1}, headers={"if-match": '"1"'}).status == 200
    assert put(api, full_key, "run-c", "u", {"score": 1}, headers={"if-match": "x"}).status == 422
    for version in range(3, MAX_UPDATES + 1):
        assert put(api, full_key, "run-c", "u", {"score": version}).body["version"] == version
    capped = put(api, full_key, "run-c", "u", {"score": 9})
    assert capped.status == 429
    assert capped.body["error"]["code"] == "too_many_updates"
    assert capped.headers["retry-after"]


def test_a_key_writes_only_its_own_project(api: Api, full_key: str) -> None:
    other = api.create_key("globex", "feedback:read", "feedback:write")
    assert put(api, other, "run-1", "alice", {"outcome": "negative"}).status == 201
    assert put(api, full_key, "run-1", "alice", {"outcome": "positive"}).status == 201
    assert read(api, other, "run-1", "alice").body["outcome"] == "negative"
    assert read(api, full_key, "run-1", "alice").body["project"] == "acme"


def test_ownership_between_tokens_and_the_backend(api: Api, full_key: str) -> None:
    # a user's own record (written through a token bound to them): the backend may change it ...
    alice = api.token(full_key, run_id="run-o", user_id="alice")
    assert api.submit(alice, {"outcome": "positive"}).status == 201
    assert put(api, full_key, "run-o", "alice", {"outcome": "negative"}).status == 200
    # ... and it stays hers: her token still acts on it, a token with no user bound still may not
    assert api.submit(alice, {"score": 2}).body["version"] == 3
    unbound = api.token(full_key, run_id="run-o")
    assert api.submit(unbound, {"outcome": "positive", "user_id": "alice"}).status == 403

    # what the backend writes for a named user is that user's own: unbound tokens are refused ...
    assert put(api, full_key, "run-o", "bob", {"outcome": "positive"}).status == 201
    assert api.submit(unbound, {"outcome": "negative", "user_id": "bob"}).status == 403
    headers = {"x-feedback-token": unbound}
    query = {"user_id": "bob"}
    assert api.call("submit_feedback", "read_own_feedback", headers=headers, query=query).status == 403
    assert api.call("submit_feedback", "retract_own_feedback", headers=headers, query=query).status == 403
    # ... while bob's own token reads and changes it
    bob = api.token(full_key, run_id="run-o", user_id="bob")
    assert api.submit(bob, {"outcome": "negative"}).status == 200

    # the shared anonymous record is nobody's own
    assert put(api, full_key, "run-o", "anonymous", {"outcome": "positive"}).status == 201
    assert api.submit(unbound, {"outcome": "negative"}).status == 200


def test_put_replaces_an_expired_record(api: Api, full_key: str) -> None:
    first = put(api, full_key, "run-x", "alice", {"outcome": "positive", "session_id": "old"})
    boto3.client("dynamodb").update_item(
        TableName=api.stack.outputs["FeedbackTableName"],
        Key={"pk": {"S": "acme#run-x"}, "sk": {"S": "alice"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    fresh = put(api, full_key, "run-x", "alice", {"outcome": "negative"})
    assert fresh.status == 201
    assert fresh.body["version"] == 1
    assert fresh.body["feedback_id"] != first.body["feedback_id"]
    assert fresh.body["session_id"] is None  # nothing of the expired record is kept


def test_put_is_one_update_item(api: Api, full_key: str, aws_calls: AwsCalls) -> None:
    context = api.authorize(f"Bearer {full_key}")
    for status in (201, 200):
        aws_calls.reset()
        response = api.call(
            "admin",
            "write_feedback",
            authorizer=context,
            path_params={"run_id": "run-n", "user_id": "alice"},
            body={"outcome": "positive"},
        )
        assert response.status == status
        assert aws_calls.operations() == {"dynamodb:UpdateItem": 1}


# ---------------------------------------------------------------------------------------------- batch


def test_batch_answers_each_item_in_order(api: Api, full_key: str) -> None:
    assert put(api, full_key, "run-b", "carol", {"outcome": "positive"}).status == 201
    items: list[Any] = [
        {"run_id": "run-b", "user_id": "alice", "outcome": "positive", "score": 4, "agent": "bot"},
        {"run_id": "run-b", "user_id": "bob", "score": 99},
        {"run_id": "run-b", "user_id": "carol", "outcome": "negative"},
        {"run_id": "run-b", "user_id": "alice", "outcome": "negative"},  # the same record again
        {"run_id": "run/b", "user_id": "dave", "outcome": "positive"},
        {"run_id": "run-b", "outcome": "positive"},
        {"run_id": "run-b", "user_id": "erin", "outcome": "positive", "details": {"x": "y" * 9000}},
        {"run_id": "run-b", "user_id": "frank", "outcome": "positive", "feedback_token": "t"},
    ]
    response = batch(api, full_key, items)
    assert response.status == 200, response.body
    body = response.body
    assert [r["index"] for r in body["results"]] == list(range(len(items)))
    assert [r["status"] for r in body["results"]] == ["created", "error", "updated", "updated"] + [
        "error"
    ] * 4
    assert (body["created"], body["updated"], body["failed"]) == (1, 2, 5)
    codes = [r.get("error", {}).get("code") for r in body["results"]]
    assert codes == [
        None,
        "validation_error",
        None,
        None,
        "validation_error",
        "validation_error",
        "payload_too_large",
        "validation_error",
    ]
    bad_score = body["results"][1]["error"]
    assert bad_score["details"][0]["field"] == "score"
    assert "user_id" in body["results"][5]["error"]["message"]
    # applied in order: the fourth item updated what the first wrote
    assert [body["results"][i]["version"] for i in (0, 3)] == [1, 2]
    assert body["results"][0]["feedback_id"] == body["results"][3]["feedback_id"]
    alice = read(api, full_key, "run-b", "alice").body
    assert (alice["outcome"], alice["score"], alice["agent"], alice["source"], alice["version"]) == (
        "negative",
        4,
        "bot",
        "backend",
        2,
    )
    assert read(api, full_key, "run-b", "bob").status == 404
    assert set(body["results"][0]) == {"index", "status", "feedback_id", "version"}
    assert set(body["results"][1]) == {"index", "status", "error"}


def test_batch_per_item_update_cap(api: Api, full_key: str) -> None:
    items = [{"run_id": "run-cap", "user_id": "u", "score": n} for n in range(MAX_UPDATES + 1)]
    response = batch(api, full_key, items)
    statuses = [r["status"] for r in response.body["results"]]
    assert statuses == ["created"] + ["updated"] * (MAX_UPDATES - 1) + ["error"]
    assert response.body["results"][-1]["error"]["code"] == "too_many_updates"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"items": []}, 422),
        ({"items": [{"run_id": "r", "user_id": "u", "score": 1}] * 101}, 422),
        ({"items": [1]}, 422),
        ({"items": "x"}, 422),
        ({}, 422),
        ({"items": [{"run_id": "r", "user_id": "u", "score": 1}], "x": 1}, 422),
        ([], 422),
    ],
)
def test_a_batch_that_is_not_1_to_100_objects_is_422(api: Api, full_key: str, body: Any, status: int) -> None:
    response = api.call("admin", "write_feedback_batch", key=full_key, body=body)
    assert response.status == status, response.body
    assert response.body["error"]["message"]


def test_batch_body_limit(api: Api, full_key: str) -> None:
    # 100 items of ~9 KB: far over a single request's 32 KiB, within a batch's 1 MiB
    item = {"run_id": "run-big", "outcome": "positive", "comment": "c" * 5000, "details": {"d": "e" * 4000}}
    items = [item | {"user_id": f"u{index}"} for index in range(100)]
    response = batch(api, full_key, items)
    assert response.status == 200, response.body
    assert response.body["created"] == 100
    oversized = api.call(
        "admin", "write_feedback_batch", key=full_key, raw_body='{"items": [' + " " * (1024 * 1024) + "]}"
    )
    assert (oversized.status, oversized.body["error"]["code"]) == (413, "payload_too_large")
    # a single write keeps its own limit
    single = put(api, full_key, "run-big", "u0", None, raw_body='{"score": 1' + " " * (32 * 1024) + "}")
    assert (single.status, single.body["error"]["code"]) == (413, "payload_too_large")


def test_batch_costs_one_update_item_per_valid_item(api: Api, full_key: str, aws_calls: AwsCalls) -> None:
    context = api.authorize(f"Bearer {full_key}")
    items = [{"run_id": "run-n", "user_id": f"u{index}", "outcome": "positive"} for index in range(10)]
    items.append({"run_id": "run-n", "user_id": "bad", "score": 100})
    aws_calls.reset()
    response = api.call("admin", "write_feedback_batch", authorizer=context, body={"items": items})
    assert response.body["created"] == 10
    assert aws_calls.operations() == {"dynamodb:UpdateItem": 10}


def test_the_admin_function_writes_a_batchs_records_at_once(api: Api, full_key: str) -> None:
    """Its first BATCH_WORKERS writes wait for one another before they are sent (WritesInFlight): written
    one at a time, they would never meet; one record's items still go one after another."""
    context = api.authorize(f"Bearer {full_key}")
    services.reset()  # the function's clients are made again, with the hooks
    writes = WritesInFlight(aws.listen, meet=BATCH_WORKERS)
    items: list[dict[str, Any]] = [
        {"run_id": "run-c", "user_id": f"u{index}", "outcome": "positive"} for index in range(20)
    ]
    items += [{"run_id": "run-c", "user_id": "u0", "score": score} for score in (1, 2, 3)]
    response = api.call("admin", "write_feedback_batch", authorizer=context, body={"items": items})
    assert response.status == 200, response.body
    assert (response.body["created"], response.body["updated"], response.body["failed"]) == (20, 3, 0)
    assert [r["version"] for r in response.body["results"][20:]] == [2, 3, 4]
    assert (writes.most, writes.most_per_record, writes.started) == (BATCH_WORKERS, 1, len(items))
    assert read(api, full_key, "run-c", "u0").body["score"] == 3


def _throughput_exceeded(_: Any) -> ClientError:
    return throughput_exceeded()


def test_a_throttled_item_fails_alone_with_a_retryable_code(
    api: Api, full_key: str, strict_aws: StrictAws
) -> None:
    """DynamoDB still throttles the first item's write after the SDK's retries: that item fails alone,
    with the retryable code `throttled`, and the others are written."""
    context = api.authorize(f"Bearer {full_key}")
    # alice's write, whichever of the batch's concurrent writes is sent first (see BATCH_WORKERS)
    services.reset()
    refused = RefusedWrites(aws.listen, ["alice"], throughput_exceeded)
    items = [
        {"run_id": "run-t", "user_id": user, "outcome": "positive"} for user in ("alice", "bob", "carol")
    ]
    response = api.call("admin", "write_feedback_batch", authorizer=context, body={"items": items})
    assert response.status == 200, response.body
    assert [r["status"] for r in response.body["results"]] == ["error", "created", "created"]
    assert response.body["results"][0]["error"]["code"] == "throttled"
    assert (response.body["created"], response.body["failed"]) == (2, 1)
    assert read(api, full_key, "run-t", "alice").status == 404
    assert read(api, full_key, "run-t", "bob").status == 200
    assert refused.pending == []
    # the same answer on PUT is the request's own 429
    strict_aws.inject("dynamodb", "UpdateItem", _throughput_exceeded)
    throttled = put(api, full_key, "run-t", "alice", {"outcome": "positive"})
    assert (throttled.status, throttled.body["error"]["code"]) == (429, "throttled")
    assert throttled.headers["retry-after"] == "1"


def test_a_batch_stops_writing_before_its_time_runs_out(api: Api, full_key: str) -> None:
    """Items left when the function's remaining time nears its reserve fail as `not_attempted` (worth
    sending again) instead of the request timing out."""
    context = api.authorize(f"Bearer {full_key}")
    items = [{"run_id": "run-slow", "user_id": f"u{index}", "outcome": "positive"} for index in range(6)]
    event = http_event("write_feedback_batch", body={"items": items}, authorizer=context)
    # 6 s left, 1 s spent per look: 5, 4 and 3 s left before the first three items, then under the 3 s reserve
    lambda_ctx = ShrinkingLambdaContext(**vars(lambda_context("admin")), remaining_ms=6000, step_ms=1000)
    with api.environment("admin"):
        answer = http_result(load_function("admin").lambda_handler(event, lambda_ctx))
    assert answer.status == 200, answer.body
    statuses = [(r["status"], r.get("error", {}).get("code")) for r in answer.body["results"]]
    assert statuses == [("created", None)] * 3 + [("error", "not_attempted")] * 3
    assert (answer.body["created"], answer.body["failed"]) == (3, 3)
    assert read(api, full_key, "run-slow", "u3").status == 404


item_fields = st.sampled_from(
    [
        "run_id",
        "user_id",
        "outcome",
        "score",
        "weight",
        "comment",
        "details",
        "tags",
        "source",
        "session_id",
        "agent",
        "context",
        "x",
    ]
)
bodies = json_values.filter(lambda value: value is not None)  # None: http_event keeps the sample's body
items = st.dictionaries(item_fields, json_values, max_size=6).map(
    lambda item: {"run_id": "run-fuzz", "user_id": "u", "outcome": "positive"} | item
)


@request_fuzz
@given(body=st.fixed_dictionaries({"items": st.lists(items | json_values, min_size=1, max_size=5)}) | bodies)
def test_no_batch_makes_a_server_error(api: Api, full_key: str, body: Any) -> None:
    response = api.call("admin", "write_feedback_batch", key=full_key, body=body)
    event(str(response.status))
    assert response.status in {200, 400, 413, 422}, (body, response.body)
    if response.status == 200:
        results = response.body["results"]
        assert [result["index"] for result in results] == list(range(len(body["items"])))
        assert all(result["status"] != "error" or result["error"]["message"] for result in results)
        event("items " + " ".join(sorted({result["status"] for result in results})))


@request_fuzz
@given(body=st.dictionaries(item_fields, json_values, max_size=6).map(lambda b: {"score": 1} | b) | bodies)
def test_no_put_body_makes_a_server_error(api: Api, full_key: str, body: Any) -> None:
    response = put(api, full_key, "run-fuzz", "u", body)
    event(str(response.status))
    assert response.status in {200, 201, 400, 413, 422, 429}, (body, response.body)


# What API Gateway can hand a handler as a path parameter: decoded UTF-8 text, never empty.
path_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)


@request_fuzz
@given(run_id=path_text, user_id=path_text)
def test_any_path_id_is_written_back_as_given_or_422(
    api: Api, full_key: str, run_id: str, user_id: str
) -> None:
    response = put(api, full_key, run_id, user_id, {"outcome": "positive"})
    event(str(response.status))
    assert response.status in {200, 201, 422}, (run_id, user_id, response.body)
    if response.status != 422:
        assert (response.body["run_id"], response.body["user_id"]) == (run_id, user_id)
        assert read(api, full_key, run_id, user_id).body == response.body
