"""Settings: a function requires only its own variables, a missing or invalid one fails the invocation with
a message naming it, and the services follow the settings of the invocation's environment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from feedback_core import services
from feedback_core.http import INTERNAL_ERROR_BODY
from feedback_core.settings import (
    ConfigurationError,
    CursorSettings,
    EventSettings,
    FeedbackTableSettings,
    TokenVerifySettings,
    function_environment,
    load_settings,
)
from tests.support.handlers import http_event, invoke_http


def test_a_missing_variable_is_named_with_its_meaning() -> None:
    with function_environment({}), pytest.raises(ConfigurationError) as raised:
        load_settings(FeedbackTableSettings)
    assert str(raised.value) == "FEEDBACK_TABLE is not set (the Feedback table's name)"


def test_an_empty_variable_is_not_set() -> None:
    with function_environment({"CURSOR_SECRET_ARN": ""}), pytest.raises(ConfigurationError) as raised:
        load_settings(CursorSettings)
    assert str(raised.value).startswith("CURSOR_SECRET_ARN is not set (the Secrets Manager secret")


def test_an_invalid_variable_is_named_with_the_rule_it_breaks() -> None:
    variables = {"FEEDBACK_TABLE": "Feedback", "TIME_INDEX_SHARDS": "0"}
    with function_environment(variables), pytest.raises(ConfigurationError) as raised:
        load_settings(FeedbackTableSettings)
    assert str(raised.value) == "TIME_INDEX_SHARDS is invalid: Input should be greater than or equal to 1"


def test_every_faulty_variable_is_reported() -> None:
    with function_environment({"TOKEN_VERIFY_KEY_IDS": " , "}), pytest.raises(ConfigurationError) as raised:
        load_settings(TokenVerifySettings)
    problems = sorted(str(raised.value).split("; "))
    assert problems[0] == "TOKEN_ISSUER is not set (the `iss` of the tokens, the stack's name)"
    assert problems[1].startswith("TOKEN_VERIFY_KEY_IDS is not set (comma-separated KMS key ids")


def test_a_function_requires_only_the_variables_of_its_concern() -> None:
    variables = {"EVENT_BUS_NAME": "bus", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic"}
    with function_environment(variables):
        settings = load_settings(EventSettings)
    assert (settings.event_bus_name, settings.event_detail) == ("bus", "full")


def test_services_follow_the_environment_of_each_thread_and_are_cached_per_settings_value() -> None:
    def table_of_store(table: str) -> tuple[str, int]:
        with function_environment({"FEEDBACK_TABLE": table}):
            store = services.feedback_store()
            assert services.feedback_store() is store
            return store.table_name, id(store)

    with ThreadPoolExecutor(max_workers=2) as pool:
        (first, first_id), (second, second_id) = pool.map(table_of_store, ["Feedback-a", "Feedback-b"])
    assert (first, second) == ("Feedback-a", "Feedback-b")
    assert first_id != second_id


def test_a_misconfigured_function_answers_500_and_logs_the_missing_variable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with function_environment({}):
        result = invoke_http("admin", http_event("remove_feedback"))
    assert result.status == 500
    assert result.body == {
        "error": {"code": "internal_error", "message": "the request could not be completed"}
    }
    assert [
        (record.levelname, record.getMessage(), record.__dict__.get("configuration_error"))
        for record in caplog.records
    ] == [("ERROR", "the function is misconfigured", "FEEDBACK_TABLE is not set (the Feedback table's name)")]


def test_a_route_that_reads_no_setting_still_fails_when_its_function_is_misconfigured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with function_environment({"TOKEN_TTL_SECONDS": "3600"}):
        result = invoke_http("meta", http_event("health"))
    assert (result.status, result.body) == (500, INTERNAL_ERROR_BODY)
    assert [record.__dict__.get("configuration_error") for record in caplog.records] == [
        "TOKEN_VERIFY_KEY_IDS is not set (comma-separated KMS key ids whose tokens are accepted: the current "
        "key plus keys being rotated out)"
    ]
