"""Request bodies the API refuses before parsing, and bodies no parser may turn into a server error.

The API speaks JSON only; every other body type is 415 (form encodings are what a cross-site HTML form
posts without a CORS preflight). Invalid UTF-8, deep nesting and malformed JSON are 400; numbers that
cannot be stored are 422. Every case runs on both routes that take a body. Cases share one deployed
stack per test (deploying it is the slow part), so each test loops over its cases.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from feedback_core.http import MAX_JSON_DEPTH
from tests.integration.api import Api
from tests.support.handlers import HttpResult, http_event

BODY_ROUTES = ["submit_feedback", "issue_token"]


class BodyPoster:
    """POSTs raw bodies to either body route, authenticated as each route needs."""

    def __init__(self, api: Api, key: str) -> None:
        self.api = api
        self.key = key
        self.token = api.token(key, user_id="body-user")

    def post(
        self, route: str, body: str | bytes, content_type: str | None = "application/json"
    ) -> HttpResult:
        headers: dict[str, str | None] = {"content-type": content_type}
        if route == "submit_feedback":
            headers["x-feedback-token"] = self.token
            return self.api.call(route, route, raw_body=body, headers=headers)
        return self.api.call(route, route, key=self.key, raw_body=body, headers=headers)


def assert_error(response: HttpResult, status: int, code: str, words: str, case: Any) -> None:
    assert response.status == status, (case, response.body)
    assert response.headers["content-type"] == "application/json", case
    assert response.body["error"]["code"] == code, (case, response.body)
    assert words in response.body["error"]["message"], (case, response.body)


def test_every_body_that_is_not_json_is_415(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    multipart = '--xyz\r\nContent-Disposition: form-data; name="outcome"\r\n\r\npositive\r\n--xyz--\r\n'
    json_body = json.dumps({"outcome": "positive", "run_id": "r-form"})
    cases = {
        "multipart/form-data; boundary=xyz": multipart,
        "multipart/form-data": multipart,
        "application/x-www-form-urlencoded": "outcome=positive&run_id=r-form",
        "text/plain": json_body,
        "text/plain;charset=UTF-8": json_body,
        "application/xml": "<outcome>positive</outcome>",
        "application/json-patch+json": json_body,
        "application/json; charset=latin-1": json_body,
        "": json_body,
        None: json_body,
    }
    for route in BODY_ROUTES:
        for content_type, body in cases.items():
            response = poster.post(route, body, content_type)
            assert_error(response, 415, "unsupported_media_type", "application/json", (route, content_type))


def test_json_with_or_without_charset_is_accepted(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    bodies = {"submit_feedback": {"outcome": "positive"}, "issue_token": {"run_id": "r-json"}}
    for route in BODY_ROUTES:
        for content_type in (
            "application/json",
            "application/json; charset=utf-8",
            'Application/JSON; charset="UTF-8"',
        ):
            response = poster.post(route, json.dumps(bodies[route]), content_type)
            assert response.status in (200, 201), (route, content_type, response.body)


def test_a_refused_form_post_stores_nothing(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    assert (
        poster.post("submit_feedback", "outcome=positive", "application/x-www-form-urlencoded").status == 415
    )
    read = api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": poster.token})
    assert read.status == 404


def test_invalid_utf8_is_400(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    bodies = [b'{"outcome": "positive", "comment": "\xff\xfe"}', b"\xc3\x28", b'{"run_id": "\xed\xa0\x80"}']
    for route in BODY_ROUTES:
        for body in bodies:
            assert_error(poster.post(route, body), 400, "bad_request", "UTF-8", (route, body))


def test_deep_nesting_is_400_before_parsing(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    for route, field in (("submit_feedback", "details"), ("issue_token", "context")):
        for depth in (MAX_JSON_DEPTH, 300, 5000):
            nested = '{"a":' * depth + "1" + "}" * depth
            body = '{"run_id": "r", "outcome": "positive", "' + field + '": ' + nested + "}"
            assert_error(poster.post(route, body), 400, "bad_request", "deeper", (route, depth))
        deep_array = "[" * 100_000 + "]" * 100_000  # within the size limit? no: 413 comes first
        assert poster.post(route, deep_array).status == 413
        assert_error(poster.post(route, "[" * 10_000), 400, "bad_request", "deeper", route)


def test_nesting_within_the_limit_reaches_validation(api: Api, full_key: str) -> None:
    body = '{"outcome": "positive", "details": ' + '{"a":' * 8 + "1" + "}" * 8 + "}"
    response = BodyPoster(api, full_key).post("submit_feedback", body)
    assert_error(response, 422, "validation_error", "nested at most 5 levels", body)


def test_huge_integers_are_422_in_any_field(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    fields = ["score", "weight", "outcome", "details", "ttl_seconds", "context", "run_id", "unknown"]
    for route in BODY_ROUTES:
        for field in fields:
            for digits in (39, 5000):
                number = "9" * digits
                value = '{"k": ' + number + "}" if field in ("details", "context") else number
                body = '{"run_id": "r", "outcome": "positive", "' + field + '": ' + value + "}"
                response = poster.post(route, body)
                assert_error(response, 422, "validation_error", "digits", (route, field, digits))


def test_malformed_json_is_400(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    cases = {
        '{"outcome": "positive", "weight": NaN}': "NaN",
        '{"outcome": "positive", "weight": -Infinity}': "Infinity",
        '{"outcome": "positive"': "not valid JSON",
        '{"outcome": "positive"} trailing': "not valid JSON",
        "\ufeff{}": "not valid JSON",
    }
    for route in BODY_ROUTES:
        for body, words in cases.items():
            assert_error(poster.post(route, body), 400, "bad_request", words, (route, body))


def test_a_base64_body_that_does_not_decode_is_400(api: Api, full_key: str) -> None:
    request = http_event("submit_feedback", headers={"x-feedback-token": api.token(full_key)})
    request |= {"body": "!!not base64!!", "isBase64Encoded": True}
    assert_error(api.invoke("submit_feedback", request), 400, "bad_request", "base64", request["body"])


def test_no_body_on_a_body_route_is_a_readable_422(api: Api, full_key: str) -> None:
    poster = BodyPoster(api, full_key)
    for route in BODY_ROUTES:
        for content_type in (None, "application/json", "text/plain"):
            response = poster.post(route, "", content_type)
            assert_error(response, 422, "validation_error", "body", (route, content_type))


body_bytes = st.binary(max_size=64) | st.text(max_size=40).map(str.encode)
nested = st.integers(1, 200).map(lambda depth: ("[" * depth + "]" * depth).encode())
huge = st.integers(30, 6000).map(lambda digits: b'{"score": ' + b"1" * digits + b"}")
content_types = st.sampled_from(
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-16",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/octet-stream",
        "*/*",
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(BODY_ROUTES), body=body_bytes | nested | huge, content_type=content_types)
def test_no_raw_body_makes_a_server_error(
    api: Api, full_key: str, route: str, body: bytes, content_type: str | None
) -> None:
    poster = getattr(api, "_body_poster", None) or BodyPoster(api, full_key)
    api._body_poster = poster  # type: ignore[attr-defined]
    response = poster.post(route, body, content_type)
    event(f"{route} {response.status}")
    assert response.status in {200, 201, 400, 413, 415, 422}, response.body
    assert response.headers["content-type"] == "application/json"
    if response.status >= 400:
        assert response.body["error"]["message"]
