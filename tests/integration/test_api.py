"""Every route, through the real handlers, on the template's resources in moto."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jwt.utils import base64url_decode

from feedback_core import services
from feedback_core.apikeys import ApiKeyStore, hash_key
from feedback_core.aws import dynamodb
from feedback_core.events import build_event
from feedback_core.stats import record_delta
from local.functions import LambdaContext, lambda_context
from local.harness import in_process
from local.streams import StreamReader
from tests.conftest import AwsCalls
from tests.integration.api import PARAMETERS, Api
from tests.support.handlers import http_event, load_function


def test_submit_update_read_retract(api: Api, full_key: str) -> None:
    token = api.token(
        full_key, run_id="run-1", user_id="alice", session_id="s1", agent="bot", context={"m": 1}
    )
    created = api.submit(token, {"outcome": "positive", "score": 7, "comment": "great"})
    assert created.status == 201
    assert created.headers["etag"] == '"1"'
    record = created.body
    assert (record["run_id"], record["user_id"], record["session_id"], record["agent"]) == (
        "run-1",
        "alice",
        "s1",
        "bot",
    )
    assert record["context"] == {"m": 1}
    assert record["project"] == "acme"

    updated = api.submit(token, {"outcome": "negative"})
    assert updated.status == 200
    assert (updated.body["version"], updated.body["score"], updated.body["outcome"]) == (2, 7, "negative")

    mine = api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": token})
    assert mine.status == 200
    assert mine.body == updated.body

    assert (
        api.call("submit_feedback", "retract_own_feedback", headers={"x-feedback-token": token}).status == 204
    )
    assert api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": token}).status == 404
    assert (
        api.call("submit_feedback", "retract_own_feedback", headers={"x-feedback-token": token}).status == 404
    )


def test_token_in_body_and_base64_body(api: Api, full_key: str) -> None:
    token = api.token(full_key, user_id="alice")
    body = {"feedback_token": token, "outcome": "positive"}
    response = api.call("submit_feedback", "submit_feedback", body=body, headers={"x-feedback-token": None})
    assert response.status == 201
    response = api.call(
        "submit_feedback",
        "submit_feedback",
        raw_body=json.dumps({"outcome": "negative"}),
        base64_body=True,
        headers={"x-feedback-token": token},
    )
    assert response.status == 200
    assert response.body["outcome"] == "negative"


def test_aws_call_counts(api: Api, full_key: str, aws_calls: AwsCalls) -> None:
    token = api.token(full_key, user_id="alice")
    api.submit(token, {"outcome": "positive"})  # warms the public key cache
    aws_calls.reset()
    assert api.submit(token, {"outcome": "negative"}).status == 200
    assert aws_calls.operations() == {"dynamodb:UpdateItem": 1}

    aws_calls.reset()
    expired = api.token(full_key, ttl_seconds=1)
    aws_calls.reset()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in ["not-a-token", forged.split(".")[0] + ".e30.sig"]:
        assert api.submit(bad, {"outcome": "positive"}).status == 401
    assert aws_calls.count() == 0
    assert expired


def test_issuing_a_token_is_one_kms_call_with_signing_mode_kms() -> None:
    with in_process("feedback-it", PARAMETERS | {"SigningMode": "kms"}) as harness:
        boto3.setup_default_session()  # the deployment's moto replaced the session: count on a new one
        services.reset()
        aws_calls = AwsCalls()
        api = Api(harness)
        assert (api.function("issue_token").environment or {})["SIGNING_MODE"] == "kms"
        authorizer_context = api.authorize(f"Bearer {api.create_key('acme', 'tokens:write')}")
        for run in ["a", "b"]:
            aws_calls.reset()
            response = api.call(
                "issue_token", "issue_token", body={"run_id": run}, authorizer=authorizer_context
            )
            assert response.status == 201
            assert aws_calls.operations() == {"kms:Sign": 1}
            assert "kid" in json.loads(base64url_decode(response.body["feedback_token"].split(".")[0]))


def test_issuing_tokens_by_default_is_one_kms_call_per_certificate(
    api: Api, full_key: str, aws_calls: AwsCalls
) -> None:
    """The template's default SigningMode=delegated: the first token certifies a key, the next cost none."""
    authorizer_context = api.authorize(f"Bearer {full_key}")
    signs = []
    for run in ["a", "b", "c"]:
        aws_calls.reset()
        response = api.call("issue_token", "issue_token", body={"run_id": run}, authorizer=authorizer_context)
        assert response.status == 201
        signs.append(aws_calls.operations().get("kms:Sign", 0))
    assert signs == [1, 0, 0]


def test_expired_token_costs_no_aws_call(
    api: Api, full_key: str, aws_calls: AwsCalls, monkeypatch: Any
) -> None:
    token = api.token(full_key, ttl_seconds=1)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 5)
    aws_calls.reset()
    response = api.submit(token, {"outcome": "positive"})
    assert response.status == 401
    assert "expired" in response.body["error"]["message"]
    assert aws_calls.count() == 0


def test_a_token_for_run_a_cannot_touch_run_b(api: Api, full_key: str) -> None:
    token_a = api.token(full_key, run_id="run-a", user_id="alice")
    token_b = api.token(full_key, run_id="run-b", user_id="alice")
    assert api.submit(token_b, {"outcome": "positive"}).status == 201
    refused = api.submit(token_a, {"outcome": "negative", "run_id": "run-b"})
    assert refused.status == 422
    assert api.submit(token_a, {"outcome": "negative"}).status == 201
    assert (
        api.call("submit_feedback", "retract_own_feedback", headers={"x-feedback-token": token_a}).status
        == 204
    )
    remaining = api.call(
        "query", "read_user_run_feedback", key=full_key, path_params={"run_id": "run-b", "user_id": "alice"}
    )
    assert remaining.status == 200
    assert remaining.body["outcome"] == "positive"


def test_a_bound_token_rejects_another_user(api: Api, full_key: str) -> None:
    token = api.token(full_key, user_id="alice")
    refused = api.submit(token, {"outcome": "positive", "user_id": "mallory"})
    assert refused.status == 403
    assert refused.body["error"]["code"] == "forbidden"
    headers = {"x-feedback-token": token}
    assert (
        api.call("submit_feedback", "read_own_feedback", headers=headers, query={"user_id": "mallory"}).status
        == 403
    )
    assert api.submit(token, {"outcome": "positive", "user_id": "alice"}).status == 201


def test_unbound_token_names_its_user_or_is_anonymous(api: Api, full_key: str) -> None:
    token = api.token(full_key)
    assert api.submit(token, {"outcome": "positive", "user_id": "bob"}).body["user_id"] == "bob"
    assert api.submit(token, {"outcome": "negative"}).body["user_id"] == "anonymous"
    headers = {"x-feedback-token": token}
    mine = api.call("submit_feedback", "read_own_feedback", headers=headers, query={"user_id": "bob"})
    assert mine.body["outcome"] == "positive"


def test_a_key_never_sees_another_projects_data(api: Api, full_key: str) -> None:
    other_key = api.create_key("globex", "tokens:write", "feedback:read", "feedback:write")
    api.submit(api.token(other_key, run_id="run-1", user_id="alice"), {"outcome": "negative"})
    api.submit(api.token(full_key, run_id="run-1", user_id="alice"), {"outcome": "positive"})

    listed = api.call("query", "list_feedback", key=full_key, query={})
    assert [item["project"] for item in listed.body["items"]] == ["acme"]
    run = api.call("query", "list_run_feedback", key=full_key, path_params={"run_id": "run-1"})
    assert [(item["project"], item["outcome"]) for item in run.body["items"]] == [("acme", "positive")]
    assert api.call("admin", "erase_user_feedback", key=full_key, path_params={"user_id": "alice"}).body == {
        "deleted": 1,
        "complete": True,
    }
    theirs = api.call(
        "query", "read_user_run_feedback", key=other_key, path_params={"run_id": "run-1", "user_id": "alice"}
    )
    assert theirs.body["outcome"] == "negative"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic abc",
        "Bearer",
        "Bearer fbk_",
        "Bearer fbk_short",
        "Bearer fbk_" + "x" * 44,
        "Bearer fbk_" + "é" * 43,
        "fbk_" + "x" * 43,
    ],
)
def test_a_header_that_cannot_hold_a_key_is_denied_by_shape_alone(
    api: Api, full_key: str, aws_calls: AwsCalls, authorization: str
) -> None:
    services.reset()  # clients made from here on are counted
    aws_calls.reset()
    assert api.authorize(authorization) is None  # API Gateway answers 403 {"message": "Forbidden"}
    assert aws_calls.count() == 0
    assert api.authorize("Bearer fbk_" + "x" * 43) == {"authenticated": False}  # well-shaped: looked up
    assert aws_calls.operations() == {"dynamodb:GetItem": 1}


def test_scopes_and_keys(api: Api, full_key: str) -> None:
    reader = api.create_key("acme", "feedback:read")
    assert api.call("issue_token", "issue_token", key=reader, body={"run_id": "r"}).status == 403
    params = {"run_id": "r", "user_id": "u"}
    assert api.call("admin", "remove_feedback", key=reader, path_params=params).status == 403
    assert api.call("query", "list_feedback", key=reader, query={}).status == 200

    unknown = api.call("query", "list_feedback", key="fbk_" + "x" * 43, query={})
    assert unknown.status == 401
    assert unknown.body["error"]["code"] == "unauthorized"
    assert api.call("query", "list_feedback", query={}, authorizer={"authenticated": False}).status == 401

    ApiKeyStore(dynamodb(), api.stack.outputs["ApiKeysTableName"]).revoke(hash_key(reader))
    assert api.call("query", "list_feedback", key=reader, query={}).status == 401


def test_listing_with_filters_and_cursor(api: Api, full_key: str) -> None:
    for index in range(7):
        token = api.token(full_key, run_id=f"run-{index}", user_id=f"user-{index % 2}", session_id="s")
        api.submit(token, {"outcome": "negative" if index % 3 == 0 else "positive"})
    seen, cursor = [], None
    while True:
        query = {"limit": "3", "outcome": "positive"} | ({"cursor": cursor} if cursor else {})
        page = api.call("query", "list_feedback", key=full_key, query=query)
        assert page.status == 200
        seen += [item["run_id"] for item in page.body["items"]]
        cursor = page.body["next_cursor"]
        if not cursor:
            break
    assert seen == ["run-5", "run-4", "run-2", "run-1"]
    by_user = api.call("query", "list_feedback", key=full_key, query={"user_id": "user-0", "session_id": "s"})
    assert [item["run_id"] for item in by_user.body["items"]] == ["run-6", "run-4", "run-2", "run-0"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"limit": "0"}, 422),
        ({"limit": "101"}, 422),
        ({"limit": "abc"}, 422),
        ({"outcome": "maybe"}, 422),
        ({"start": "not-a-date"}, 422),
        ({"unknown": "1"}, 422),
        ({"cursor": "garbage"}, 400),
        ({"cursor": "eyJiZWZvcmUiOiJ4In0.AAAAAAAAAAAAAAAAAAAAAA"}, 400),
    ],
)
def test_listing_rejects_bad_queries(api: Api, full_key: str, query: dict[str, str], status: int) -> None:
    response = api.call("query", "list_feedback", key=full_key, query=query)
    assert response.status == status
    assert response.body["error"]["message"]


def test_admin_removal_and_erasure(api: Api, full_key: str) -> None:
    for run in ["r1", "r2"]:
        api.submit(api.token(full_key, run_id=run, user_id="alice"), {"outcome": "positive"})
    params = {"run_id": "r1", "user_id": "alice"}
    assert api.call("admin", "remove_feedback", key=full_key, path_params=params).status == 204
    assert api.call("admin", "remove_feedback", key=full_key, path_params=params).status == 404
    assert api.call("query", "read_user_run_feedback", key=full_key, path_params=params).status == 404
    erased = api.call("admin", "erase_user_feedback", key=full_key, path_params={"user_id": "alice"})
    assert (erased.status, erased.body) == (200, {"deleted": 1, "complete": True})
    anonymous = api.call("admin", "erase_user_feedback", key=full_key, path_params={"user_id": "anonymous"})
    assert anonymous.status == 422


@dataclass
class ShrinkingLambdaContext(LambdaContext):
    """A Lambda context whose remaining time drops by `step_ms` at each look, like a slow request's."""

    remaining_ms: int = 0
    step_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= self.step_ms
        return self.remaining_ms


def test_erasure_of_a_heavy_user_answers_202_until_complete(api: Api, full_key: str) -> None:
    for index in range(6):
        api.submit(api.token(full_key, run_id=f"heavy-{index}", user_id="heavy"), {"outcome": "positive"})
    context = api.authorize(f"Bearer {full_key}")
    event = http_event("erase_user_feedback", path_params={"user_id": "heavy"}, authorizer=context)
    handler = load_function("admin").lambda_handler
    answers = []
    while not answers or answers[-1]["statusCode"] == 202:
        # 6 s of the function's timeout left, 1 s spent per look: two records per request, then 202
        context = ShrinkingLambdaContext(**vars(lambda_context("admin")), remaining_ms=6000, step_ms=1000)
        with api.environment("admin"):
            answers.append(handler(event, context))
        assert len(answers) <= 6, answers
    bodies = [json.loads(answer["body"]) for answer in answers]
    assert [answer["statusCode"] for answer in answers] == [202] * (len(answers) - 1) + [200]
    assert [body["complete"] for body in bodies] == [False] * (len(answers) - 1) + [True]
    assert sum(body["deleted"] for body in bodies) == 6
    listing = api.call("query", "list_feedback", key=full_key, query={"user_id": "heavy"})
    assert listing.body["items"] == []


def test_status_codes_for_bad_submissions(api: Api, full_key: str) -> None:
    token = api.token(full_key, user_id="alice")
    headers = {"x-feedback-token": token}

    def post(**fields: Any) -> Any:
        return api.call(
            "submit_feedback", "submit_feedback", headers=headers | fields.pop("headers", {}), **fields
        )

    malformed = post(raw_body="{not json")
    assert (malformed.status, malformed.body["error"]["code"]) == (400, "bad_request")
    assert post(raw_body="x" * 40_000).status == 413
    assert post(body={"outcome": "positive", "details": {"k": "v" * 9000}}).status == 413
    assert post(raw_body="outcome=positive", headers={"content-type": "text/plain"}).status == 415
    invalid = post(body={"outcome": "great", "score": 99})
    assert invalid.status == 422
    fields = {item["field"] for item in invalid.body["error"]["details"]}
    assert fields == {"outcome", "score"}
    assert "outcome" in invalid.body["error"]["message"]
    assert post(body={"tags": ["only"]}).status == 422
    assert post(body=[1, 2]).status == 422
    assert post(body={"outcome": "positive"}, headers={"x-feedback-token": None}).status == 401

    assert post(body={"outcome": "positive"}, headers={"if-match": '"0"'}).status == 201
    conflict = post(body={"outcome": "negative"}, headers={"if-match": '"7"'})
    assert conflict.status == 409
    assert post(body={"outcome": "negative"}, headers={"if-match": "abc"}).status == 422
    assert post(body={"outcome": "negative"}, headers={"if-match": '"1"'}).status == 200
    for _ in range(3):
        assert post(body={"score": 1}).status == 200
    capped = post(body={"score": 2})
    assert capped.status == 429
    assert int(capped.headers["retry-after"]) > 0


def test_token_request_validation(api: Api, full_key: str) -> None:
    assert (
        api.call("issue_token", "issue_token", key=full_key, body={"run_id": "r", "ttl_seconds": 3601}).status
        == 422
    )
    assert api.call("issue_token", "issue_token", key=full_key, body={"user_id": "u"}).status == 422
    assert api.call("issue_token", "issue_token", key=full_key, raw_body="[").status == 400


def test_meta_routes(api: Api) -> None:
    health = api.call("meta", "health")
    assert (health.status, health.body) == (200, {"status": "ok"})
    jwks = api.call("meta", "jwks")
    assert jwks.status == 200
    assert [key["kid"] for key in jwks.body["keys"]] == [api.stack.outputs["TokenKeyId"]]
    assert jwks.body["keys"][0]["kty"] == "EC"
    spec = api.call("meta", "openapi")
    assert spec.status == 200
    assert "/v1/feedback" in spec.body["paths"]
    docs = api.call("meta", "docs")
    assert docs.status == 200
    assert "openapi.json" in docs.body


def test_the_served_document_states_this_stacks_token_lifetime(api: Api, full_key: str) -> None:
    spec = api.call("meta", "openapi").body
    ttl = spec["components"]["schemas"]["TokenRequest"]["properties"]["ttl_seconds"]["anyOf"][0]
    assert ttl["maximum"] == 3600  # the stack's TokenTtlSeconds (conftest PARAMETERS)
    longest = {"run_id": "r", "ttl_seconds": ttl["maximum"]}
    assert api.call("issue_token", "issue_token", key=full_key, body=longest).status == 201
    too_long = longest | {"ttl_seconds": ttl["maximum"] + 1}
    assert api.call("issue_token", "issue_token", key=full_key, body=too_long).status == 422


# Every request fuzz test: the stack fixture is shared across examples (deploying it per example is slow).
request_fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
fields = st.sampled_from(
    ["outcome", "score", "weight", "comment", "details", "tags", "user_id", "source", "x"]
)


@request_fuzz
@given(body=st.dictionaries(fields, json_values, max_size=6) | json_values)
def test_no_body_makes_a_server_error(api: Api, full_key: str, body: Any) -> None:
    token = getattr(api, "_fuzz_token", None) or api.token(full_key)
    api._fuzz_token = token  # type: ignore[attr-defined]
    response = api.submit(token, body)
    assert response.status < 500, response.body
    assert response.status in {200, 201, 403, 413, 422}


# What API Gateway can hand a handler: decoded UTF-8 text (never lone surrogates), possibly empty.
request_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
query_names = st.sampled_from(
    [
        "start",
        "end",
        "outcome",
        "session_id",
        "user_id",
        "agent",
        "source",
        "limit",
        "cursor",
        "granularity",
        "x",
    ]
)
query_strings = st.dictionaries(
    query_names, request_text | st.sampled_from(["", "0", "100", "2026-01-31"]), max_size=5
)


@request_fuzz
@given(query=query_strings, route=st.sampled_from(["list_feedback", "list_run_feedback", "read_stats"]))
def test_no_query_string_makes_a_server_error(
    api: Api, full_key: str, route: str, query: dict[str, str]
) -> None:
    response = api.call("query", route, key=full_key, query=query)
    event(f"{route} {response.status}")
    assert response.status in {200, 400, 422}, (query, response.body)
    if response.status != 200:
        assert response.body["error"]["message"]


@request_fuzz
@given(
    # API Gateway routes no empty path segment to a {parameter}: it answers 404 itself
    params=st.fixed_dictionaries({"run_id": request_text.filter(bool), "user_id": request_text.filter(bool)}),
    route=st.sampled_from(
        [("query", "read_user_run_feedback"), ("admin", "remove_feedback"), ("admin", "erase_user_feedback")]
    ),
)
def test_no_path_parameter_makes_a_server_error(
    api: Api, full_key: str, route: tuple[str, str], params: dict[str, str]
) -> None:
    function, sample = route
    if sample == "erase_user_feedback":
        params = {"user_id": params["user_id"]}
    response = api.call(function, sample, key=full_key, path_params=params)
    event(f"{sample} {response.status}")
    assert response.status in {200, 404, 422}, (params, response.body)


token_fields = st.sampled_from(["run_id", "user_id", "session_id", "agent", "context", "ttl_seconds", "x"])


@request_fuzz
@given(body=st.dictionaries(token_fields, json_values, max_size=6) | json_values)
def test_no_token_request_makes_a_server_error(api: Api, full_key: str, body: Any) -> None:
    response = api.call("issue_token", "issue_token", key=full_key, body=body)
    event(str(response.status))
    assert response.status in {201, 413, 422}, (body, response.body)
    if response.status == 201:
        assert response.body["feedback_token"].count(".") == 2


def test_ids_with_url_syntax_reach_their_records_through_path_routes(api: Api, full_key: str) -> None:
    run, user = "run ?#€ 😀 %41", "ü ser#1?x=y"
    assert api.submit(api.token(full_key, run_id=run, user_id=user), {"outcome": "positive"}).status == 201
    params = {"run_id": run, "user_id": user}
    mine = api.call("query", "read_user_run_feedback", key=full_key, path_params=params)
    assert (mine.status, mine.body["run_id"], mine.body["user_id"]) == (200, run, user)
    # HTTP APIs cut a decoded rawPath at "?"; the route and its decoded parameters are what count.
    cut = api.call(
        "query", "list_run_feedback", key=full_key, path_params={"run_id": run}, raw_path="/v1/runs/run "
    )
    assert [item["user_id"] for item in cut.body["items"]] == [user]
    assert api.call("admin", "remove_feedback", key=full_key, path_params=params).status == 204
    assert api.call("query", "read_user_run_feedback", key=full_key, path_params=params).status == 404


@pytest.mark.parametrize("field", ["run_id", "user_id"])
def test_run_and_user_ids_cannot_hold_a_slash(api: Api, full_key: str, field: str) -> None:
    response = api.call("issue_token", "issue_token", key=full_key, body={"run_id": "r", field: "a/b"})
    assert response.status == 422
    assert "must not contain '/'" in response.body["error"]["message"]
    token = api.token(full_key, run_id="r")
    assert api.submit(token, {"outcome": "positive", "user_id": "a/b"}).status == 422


def test_an_unbound_token_cannot_touch_a_users_own_feedback(
    api: Api, full_key: str, aws_calls: AwsCalls
) -> None:
    alice = api.token(full_key, user_id="alice")
    owned = api.submit(alice, {"outcome": "positive", "comment": "mine"}).body
    unbound = api.token(full_key)
    headers, as_alice = {"x-feedback-token": unbound}, {"user_id": "alice"}

    aws_calls.reset()
    read = api.call("submit_feedback", "read_own_feedback", headers=headers, query=as_alice)
    assert (read.status, read.body["error"]["code"]) == (403, "forbidden")
    assert "bound to its user" in read.body["error"]["message"]
    assert api.submit(unbound, {"outcome": "negative", "user_id": "alice"}).status == 403
    for version in ['"0"', '"1"', '"9"']:
        refused = api.submit(
            unbound, {"outcome": "negative", "user_id": "alice"}, headers={"if-match": version}
        )
        assert refused.status == 403
    assert api.call("submit_feedback", "retract_own_feedback", headers=headers, query=as_alice).status == 403
    # Each refusal is the request's one DynamoDB call: the ownership check is part of its condition.
    dynamodb_calls = {name: n for name, n in aws_calls.operations().items() if name.startswith("dynamodb:")}
    assert dynamodb_calls == {
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": 4,
        "dynamodb:DeleteItem": 1,
    }

    params = {"run_id": "run-1", "user_id": "alice"}
    assert api.call("query", "read_user_run_feedback", key=full_key, path_params=params).body == owned
    mine = api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": alice})
    assert mine.body == owned
    # Admin routes are unaffected.
    assert api.call("admin", "remove_feedback", key=full_key, path_params=params).status == 204


def test_unbound_tokens_keep_anonymous_and_unowned_feedback_until_a_bound_token_writes(
    api: Api, full_key: str
) -> None:
    unbound = api.token(full_key)
    headers = {"x-feedback-token": unbound}
    assert api.submit(unbound, {"outcome": "negative", "user_id": "bob"}).status == 201
    assert api.submit(unbound, {"score": 2, "user_id": "bob"}).status == 200
    assert api.submit(unbound, {"outcome": "positive"}).status == 201
    as_bob = {"user_id": "bob"}
    assert api.call("submit_feedback", "read_own_feedback", headers=headers, query=as_bob).status == 200

    bob = api.token(full_key, user_id="bob")
    taken = api.submit(bob, {"comment": "mine now"})
    assert (taken.status, taken.body["version"], taken.body["score"]) == (200, 3, 2)
    assert api.submit(unbound, {"outcome": "positive", "user_id": "bob"}).status == 403
    assert api.call("submit_feedback", "read_own_feedback", headers=headers, query=as_bob).status == 403
    assert api.call("submit_feedback", "retract_own_feedback", headers=headers, query=as_bob).status == 403

    assert api.submit(unbound, {"outcome": "negative"}).status == 200  # anonymous stays shared
    assert api.call("submit_feedback", "retract_own_feedback", headers=headers).status == 204
    assert (
        api.call("submit_feedback", "retract_own_feedback", headers={"x-feedback-token": bob}).status == 204
    )
    assert api.submit(unbound, {"outcome": "positive", "user_id": "bob"}).status == 201  # gone: unowned again


def test_ownership_is_internal_to_the_table(api: Api, full_key: str) -> None:
    """The stored owner_bound attribute shows up in no response, event or stats bucket."""
    reader = StreamReader(boto3.client("dynamodbstreams"), api.stack.outputs["FeedbackTableStreamArn"])
    unbound = api.token(full_key)
    responses = [api.submit(unbound, {"outcome": "negative", "user_id": "carol"})]
    carol = api.token(full_key, user_id="carol")
    responses.append(api.submit(carol, {"outcome": "positive", "comment": "c"}))
    responses.append(api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": carol}))
    responses.append(api.call("query", "list_feedback", key=full_key, query={}))
    responses.append(api.call("query", "list_run_feedback", key=full_key, path_params={"run_id": "run-1"}))
    assert (
        api.call("submit_feedback", "retract_own_feedback", headers={"x-feedback-token": carol}).status == 204
    )
    assert all(response.status < 300 for response in responses)
    assert all("owner_bound" not in json.dumps(response.body) for response in responses)

    records = [record for batch in reader.poll().values() for record in batch]
    assert any("owner_bound" in json.dumps(record) for record in records)  # it is in the stream images
    events = [build_event(DynamoDBStreamRecordModel.model_validate(record)) for record in records]
    assert [feedback_event.detail_type for feedback_event in events if feedback_event] == [
        "Feedback Submitted",
        "Feedback Updated",
        "Feedback Retracted",
    ]
    assert all("owner_bound" not in json.dumps(e.envelope()) for e in events if e)
    assert all(
        "owner_bound" not in str(record_delta(DynamoDBStreamRecordModel.model_validate(r))) for r in records
    )


DATE_RULE = (
    "must be an ISO 8601 date (2026-11-23) or date-time with zone (2026-11-23T08:00:00Z), "
    "in the years 2000 to 9999"
)


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "1700000000",
        "",
        "2026-W48-1",
        "2026-327",
        "20261123",
        "2026-11-23T08:00:00",
        "1999-12-31",
        "2026-02-30",
    ],
)
@pytest.mark.parametrize("field", ["start", "end"])
def test_a_bad_date_gets_the_same_answer_on_every_route(
    api: Api, full_key: str, field: str, value: str
) -> None:
    answers = [
        api.call("query", route, key=full_key, query={field: value})
        for route in ("list_feedback", "read_stats")
    ]
    assert [answer.status for answer in answers] == [422, 422]
    assert answers[0].body == answers[1].body
    assert answers[0].body["error"] == {
        "code": "validation_error",
        "message": f"invalid request: {field}: {DATE_RULE}",
        "details": [{"field": field, "message": DATE_RULE}],
    }


def test_dates_and_date_times_in_any_zone_work_on_every_route(api: Api, full_key: str) -> None:
    api.submit(api.token(full_key, user_id="alice"), {"outcome": "positive"})
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for start, end in [
        ("2000-01-01", "9999-12-31"),
        ("2000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"),
        (f"{today}T00:00:00+14:00", f"{today}T23:59:59-12:00"),
    ]:
        listed = api.call("query", "list_feedback", key=full_key, query={"start": start, "end": end})
        assert (listed.status, len(listed.body["items"])) == (200, 1)
    stats = api.call(
        "query", "read_stats", key=full_key, query={"start": f"{today}T23:00:00+01:00", "end": today}
    )
    assert stats.status == 200, stats.body


def test_window_errors_read_alike_on_every_route(api: Api, full_key: str) -> None:
    backwards = {"start": "2026-11-24", "end": "2026-11-23"}
    listed = api.call("query", "list_feedback", key=full_key, query=backwards)
    stats = api.call("query", "read_stats", key=full_key, query=backwards)
    assert listed.body["error"]["message"] == "invalid request: start: must be before end"
    assert stats.body["error"]["message"] == "invalid request: start: must not be after end"
    assert (
        listed.body["error"]["details"][0]["field"] == stats.body["error"]["details"][0]["field"] == "start"
    )
    wide = api.call("query", "read_stats", key=full_key, query={"start": "2024-01-01", "end": "2026-01-01"})
    assert wide.status == 422
    assert wide.body["error"]["message"].startswith(
        "invalid request: start: must be at most 365 days before end"
    )


@pytest.mark.parametrize(
    "if_match",
    [
        pytest.param('"' + "9" * 39 + '"', id="39 digits"),  # beyond DynamoDB's 38: was a 500
        pytest.param("9" * 4400, id="4400 digits"),  # beyond what Python converts to int at all
        pytest.param('"1234567890"', id="10 digits"),  # more versions than any record can have
        pytest.param('"\u00b2"', id="superscript two"),  # str.isdigit() says yes
        pytest.param('"\u0663"', id="Arabic-Indic three"),
        pytest.param('"-1"', id="negative"),
        pytest.param("", id="empty"),
        pytest.param('""', id="empty quoted"),
        pytest.param('"3', id="unbalanced quote"),
        pytest.param('W/"3', id="weak unbalanced"),
        pytest.param('""3""', id="doubled quotes"),
        pytest.param('"3", "4"', id="list"),
        pytest.param("*", id="star"),
    ],
)
def test_if_match_must_be_a_small_ascii_version(api: Api, full_key: str, if_match: str) -> None:
    token = api.token(full_key, user_id="alice")
    refused = api.submit(token, {"outcome": "positive"}, headers={"if-match": if_match})
    assert refused.status == 422, refused.body
    assert refused.body["error"]["message"] == 'If-Match must be a record version, e.g. "3"'
    assert refused.body["error"]["details"][0]["field"] == "If-Match"


def test_if_match_spellings_of_a_version(api: Api, full_key: str) -> None:
    token = api.token(full_key, user_id="alice")
    assert api.submit(token, {"outcome": "positive"}, headers={"if-match": '"0"'}).status == 201
    for version, if_match in [(1, 'W/"1"'), (2, '"2"'), (3, "3"), (4, ' "000000004" ')]:
        accepted = api.submit(token, {"score": version}, headers={"if-match": if_match})
        assert (accepted.status, accepted.body["version"]) == (200, version + 1), if_match
    stale = api.submit(token, {"score": 1}, headers={"if-match": '"999999999"'})
    assert stale.status == 409


# Numbers as text: ASCII, other scripts' digits (str.isdigit() accepts them), and far beyond any int64.
digit_text = (
    st.integers(min_value=-(10**60), max_value=10**60).map(str)
    | st.text(st.sampled_from("0123456789\u0660\u0665\u00b2\u0966\uff15-+"), min_size=1, max_size=50)
    | st.integers(min_value=39, max_value=5000).map(lambda digits: "9" * digits)
)


@request_fuzz
@given(limit=digit_text, route=st.sampled_from(["list_feedback", "list_run_feedback"]))
def test_any_limit_is_a_page_size_or_422(api: Api, full_key: str, route: str, limit: str) -> None:
    response = api.call("query", route, key=full_key, query={"limit": limit}, path_params={"run_id": "r"})
    if response.status == 200:
        assert limit.strip().lstrip("+").isascii() and 1 <= int(limit) <= 100
    else:
        assert response.status == 422, response.body
        assert response.body["error"]["details"][0]["field"] == "limit"


@request_fuzz
@given(cursor=request_text | digit_text, route=st.sampled_from(["list_feedback", "list_run_feedback"]))
def test_any_cursor_is_a_page_or_400(api: Api, full_key: str, route: str, cursor: str) -> None:
    response = api.call("query", route, key=full_key, query={"cursor": cursor}, path_params={"run_id": "r"})
    expected = {422} if len(cursor) > 1024 else {400}
    assert response.status in expected, response.body


@request_fuzz
@given(ttl=st.integers(min_value=-(10**45), max_value=10**45) | st.sampled_from([0, 1, 3600, 3601, 10**38]))
def test_any_ttl_seconds_is_a_token_or_422(api: Api, full_key: str, ttl: int) -> None:
    response = api.call("issue_token", "issue_token", key=full_key, body={"run_id": "r", "ttl_seconds": ttl})
    assert response.status == (201 if 1 <= ttl <= 3600 else 422), response.body


@request_fuzz
@given(
    user_id=request_text | digit_text, route=st.sampled_from(["read_own_feedback", "retract_own_feedback"])
)
def test_any_user_id_query_is_an_answer_not_a_server_error(
    api: Api, full_key: str, route: str, user_id: str
) -> None:
    token = getattr(api, "_unbound_token", None) or api.token(full_key)
    api._unbound_token = token  # type: ignore[attr-defined]
    response = api.call(
        "submit_feedback", route, headers={"x-feedback-token": token}, query={"user_id": user_id}
    )
    assert response.status in {404, 422}, response.body


@pytest.mark.parametrize("user_id", ["", "a\nb", "a/b", "x" * 257])
def test_an_unusable_user_id_query_is_422(api: Api, full_key: str, user_id: str) -> None:
    headers = {"x-feedback-token": api.token(full_key)}
    for route in ["read_own_feedback", "retract_own_feedback"]:
        response = api.call("submit_feedback", route, headers=headers, query={"user_id": user_id})
        assert response.status == 422, response.body
        assert response.body["error"]["details"][0]["field"] == "user_id"
