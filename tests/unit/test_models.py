from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from feedback_core.models import FeedbackSubmission, ListQuery, TokenRequest, json_depth


def submission(**fields: Any) -> FeedbackSubmission:
    return FeedbackSubmission.model_validate(fields)


def error_fields(error: ValidationError) -> set[str]:
    return {".".join(str(part) for part in entry["loc"]) for entry in error.errors()}


def test_minimal_submission_and_the_fields_it_sets() -> None:
    accepted = submission(outcome="positive")
    assert accepted.record_fields() == {"outcome": "positive"}


def test_null_clears_and_absent_keeps() -> None:
    accepted = submission(score=3, comment=None, tags=["a"])
    assert accepted.record_fields() == {"score": 3, "comment": None, "tags": ["a"]}


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"outcome": "meh"}, "outcome"),
        ({"score": 11}, "score"),
        ({"score": -11}, "score"),
        ({"score": 2.5}, "score"),
        ({"score": "5"}, "score"),
        ({"score": True}, "score"),
        ({"outcome": "positive", "weight": 1.5}, "weight"),
        ({"comment": "x" * 5001}, "comment"),
        ({"outcome": "positive", "tags": ["t"] * 11}, "tags"),
        ({"outcome": "positive", "tags": ["x" * 65]}, "tags.0"),
        ({"outcome": "positive", "details": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, "details"),
        ({"outcome": "positive", "details": [1]}, "details"),
        ({"outcome": "positive", "user_id": ""}, "user_id"),
        ({"outcome": "positive", "user_id": "a\nb"}, "user_id"),
        ({"outcome": "positive", "unexpected": 1}, "unexpected"),
        ({"comment": "lone \ud800 surrogate"}, "comment"),
        ({"outcome": "positive", "details": {"n": float("nan")}}, "details"),
        ({"outcome": "positive", "details": {"n": float("inf")}}, "details"),
        ({"outcome": "positive", "details": {"n": 10**40}}, "details"),
        ({"outcome": "positive", "details": {"n": 1e-200}}, "details"),
        ({"outcome": "positive", "details": {"": 1}}, "details"),
        ({"outcome": "positive", "details": {"k": ["\udfff"]}}, "details"),
        ({"outcome": "positive", "tags": ["\ud800"]}, "tags.0"),
    ],
)
def test_invalid_fields_are_named(fields: dict[str, Any], bad_field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        submission(**fields)
    assert bad_field in error_fields(caught.value)


def test_one_of_outcome_score_or_comment_is_required() -> None:
    with pytest.raises(ValidationError, match="at least one of outcome, score or comment"):
        submission(tags=["x"])
    with pytest.raises(ValidationError):
        submission(outcome=None, score=None, comment=None)


def test_details_depth_five_is_allowed() -> None:
    details = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    assert json_depth(details) == 5
    assert submission(outcome="negative", details=details).details == details


def test_details_size_is_measured_as_json() -> None:
    assert submission(outcome="negative", details={"k": "v" * 100}).details_size() == len('{"k":""}') + 100


def test_token_request_limits() -> None:
    assert TokenRequest.model_validate({"run_id": "r"}).ttl_seconds is None
    with pytest.raises(ValidationError):
        TokenRequest.model_validate({"run_id": "r", "ttl_seconds": 0})
    with pytest.raises(ValidationError):
        TokenRequest.model_validate({"run_id": "r", "context": {"big": "x" * 2000}})
    with pytest.raises(ValidationError):
        TokenRequest.model_validate({})


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_list_limit_outside_1_to_100_is_refused(limit: str) -> None:
    with pytest.raises(ValidationError):
        ListQuery.model_validate({"limit": limit})


def test_list_query_defaults() -> None:
    assert ListQuery.model_validate({}).limit == 20
