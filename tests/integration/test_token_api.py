"""Token sizes through the handlers of the template's stack: the largest token the service issues works on
every token route, and a request too long for KMS is a 422 that names what to shorten, never a 500."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from feedback_core import services
from feedback_core.fields import MAX_CONTEXT_BYTES, json_size
from feedback_core.tokens import MAX_TOKEN_LENGTH
from tests.conftest import AwsCalls
from tests.integration.api import Api
from tests.unit.test_token_limits import largest_that_issues

MAX_CONTEXT_CHARS = MAX_CONTEXT_BYTES - json_size({"note": ""})


@pytest.fixture
def kms_limit(api: Api) -> None:
    """The stack's KMS refuses a RAW message over 4,096 bytes, as AWS does (moto does not)."""
    if boto3.DEFAULT_SESSION is None:  # mock_aws drops the default session; clients make a new one
        boto3.setup_default_session()
    services.reset()  # the handlers' clients are created again, with the limit


def long_request(context_chars: int) -> dict[str, Any]:
    """Ids at the model's maximum length in 2-, 3- and 4-byte characters, and a context of ASCII."""
    return {
        "run_id": "é" * 256,
        "user_id": "€" * 256,
        "session_id": "😀" * 256,
        "agent": "a" * 64,
        "context": {"note": "x" * context_chars},
    }


@pytest.mark.usefixtures("kms_limit")
def test_the_largest_token_the_service_issues_works_on_every_token_route(api: Api, full_key: str) -> None:
    def status(context_chars: int) -> int:
        response = api.call("issue_token", "issue_token", key=full_key, body=long_request(context_chars))
        assert response.status in {201, 422}, response.body
        return response.status

    assert status(0) == 201 and status(MAX_CONTEXT_CHARS) == 422
    largest = largest_that_issues(lambda chars: status(chars) == 201, 0, MAX_CONTEXT_CHARS)
    request = long_request(largest)
    token = api.token(full_key, **request)
    assert MAX_TOKEN_LENGTH - 3 <= len(token) <= MAX_TOKEN_LENGTH

    created = api.submit(token, {"outcome": "positive"})
    assert created.status == 201, created.body
    in_body = {"feedback_token": token, "outcome": "negative"}
    updated = api.call("submit_feedback", "submit_feedback", body=in_body, headers={"x-feedback-token": None})
    assert updated.status == 200, updated.body
    mine = api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": token})
    assert mine.status == 200, mine.body
    fields = ("run_id", "user_id", "session_id", "agent", "context")
    assert {name: mine.body[name] for name in fields} == request
    assert mine.body["outcome"] == "negative"


@pytest.mark.usefixtures("kms_limit")
def test_a_token_request_too_long_for_kms_is_a_422_naming_what_to_shorten(
    api: Api, full_key: str, aws_calls: AwsCalls
) -> None:
    api.authorize(f"Bearer {full_key}")  # warm the authorizer, so only the token request is counted
    # And the issuer: with SigningMode=delegated (the default) its first token certifies a key.
    assert api.call("issue_token", "issue_token", key=full_key, body={"run_id": "r"}).status == 201
    aws_calls.reset()
    response = api.call("issue_token", "issue_token", key=full_key, body=long_request(MAX_CONTEXT_CHARS))
    assert response.status == 422, response.body
    error = response.body["error"]
    assert error["code"] == "validation_error"
    assert "shorten" in error["message"]
    assert {item["field"] for item in error["details"]} == {
        "run_id",
        "user_id",
        "session_id",
        "agent",
        "context",
    }
    assert aws_calls.operations()["kms:Sign"] == 0
