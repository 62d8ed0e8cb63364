from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from feedback_core.errors import ValidationFailed
from feedback_core.fields import DATE_MESSAGE, json_depth, utc_moment
from feedback_core.models import FeedbackSubmission, ListQuery, TokenRequest
from feedback_core.stats import StatsQuery


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


# ---- dates: one rule for every start/end -------------------------------------------------------------------

BAD_DATES = [
    "0",
    "1700000000",
    "1700000000.5",
    "",
    " ",
    "2026-W48-1",  # week date
    "2026-327",  # ordinal date
    "20261123",  # basic format
    "2026-11-23T08:00:00",  # no zone
    "2026-11-23 08:00:00Z",  # space, not T
    "2026-11-23T08Z",
    "2026-11-23T08:00:00.1234567890Z",  # more than 9 fraction digits
    "2026-11-23T08:00:00+0100",
    "2026-11-23T08:00:00+01:60",
    "2026-11-23T08:00:00+24:00",
    "2026-11-23T24:00:00Z",
    "2026-11-23T08:00:60Z",
    "2026-02-30",
    "2026-13-01",
    "1999-12-31",
    "2000-01-01T00:30:00+01:00",  # 1999 in UTC
    "9999-12-31T23:00:00-05:00",  # beyond 9999 in UTC
    "0000-01-01",
    "+2026-11-23",
    "\uff12\uff10\uff12\uff16-11-23",  # fullwidth digits
    "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0663",  # Arabic-Indic digits
    "2026-11-23\n",
    "yesterday",
]


@pytest.mark.parametrize("value", BAD_DATES)
@pytest.mark.parametrize("model", [ListQuery, StatsQuery])
def test_bad_dates_get_one_message_everywhere(model: type[BaseModel], value: str) -> None:
    for field in ("start", "end"):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({field: value})
        [error] = caught.value.errors()
        assert (error["loc"], error["msg"]) == ((field,), DATE_MESSAGE)


@pytest.mark.parametrize("value", [0, 1_700_000_000, 1.5, True, ["2026-11-23"]])
def test_dates_are_text(value: Any) -> None:
    with pytest.raises(ValidationError, match="must be an ISO 8601 date"):
        ListQuery.model_validate({"start": value})


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
        ("2026-11-23T08:00Z", datetime(2026, 11, 23, 8, tzinfo=UTC)),
        ("2026-11-23T08:00:00Z", datetime(2026, 11, 23, 8, tzinfo=UTC)),
        ("2026-11-23T09:30:00.5+01:30", datetime(2026, 11, 23, 8, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-11-23T03:00:00.123456789-05:00", datetime(2026, 11, 23, 8, 0, 0, 123_456, tzinfo=UTC)),
        ("2000-01-01", datetime(2000, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999Z", datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)),
        ("2028-02-29", datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_good_dates_are_utc_moments(value: str, moment: datetime) -> None:
    assert utc_moment(value) == moment
    assert ListQuery.model_validate({"start": value}).start == moment
    assert StatsQuery.model_validate({"end": value}).end == moment


def test_a_stats_date_time_counts_as_its_utc_day() -> None:
    query = StatsQuery.model_validate(
        {"start": "2026-11-22T23:30:00-01:00", "end": "2026-11-24T00:30:00+01:00"}
    )
    assert query.window(date(2026, 12, 1)) == (date(2026, 11, 23), date(2026, 11, 23))


def test_window_messages_name_start() -> None:
    with pytest.raises(ValidationFailed) as after:
        StatsQuery.model_validate({"start": "2026-11-24", "end": "2026-11-23"}).window(date(2026, 12, 1))
    assert after.value.message == "invalid request: start: must not be after end"
    assert after.value.details == [{"field": "start", "message": "must not be after end"}]
    with pytest.raises(ValidationFailed) as wide:
        StatsQuery.model_validate({"start": "2025-11-22", "end": "2026-11-23"}).window(date(2026, 12, 1))
    assert wide.value.message.startswith("invalid request: start: must be at most 365 days before end")
    widest = StatsQuery.model_validate({"start": "2025-11-23", "end": "2026-11-23"}).window(date(2026, 12, 1))
    assert widest == (date(2025, 11, 23), date(2026, 11, 23))  # 366 days, both ends included


@settings(max_examples=200)
@given(st.text(max_size=40) | st.integers().map(str) | st.dates().map(date.isoformat))
def test_any_text_is_a_moment_in_range_or_the_one_message(text: str) -> None:
    try:
        moment: datetime | str = utc_moment(text)
    except PydanticCustomError as error:
        moment = error.message()
    if isinstance(moment, str):
        assert moment == DATE_MESSAGE
    else:
        assert moment.tzinfo == UTC and 2000 <= moment.year <= 9999
