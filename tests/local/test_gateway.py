"""The local gateway behaves as API Gateway's HTTP API does for the template's routes."""

from __future__ import annotations

import base64
import calendar
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from local.functions import LocalFunction
from local.gateway import ApiDefinition, Gateway, HttpRequest, HttpResponse
from local.gateway.payload import InvalidResponse, RequestFacts, build_event, translate_response
from local.gateway.routes import ApiDefinitionError, CorsConfig, Route
from local.harness import Harness
from tests.local.fakes import FakeFunction, GatewayUnderTest

EVENTS = Path(__file__).resolve().parents[2] / "events"
HTTP_SAMPLES = sorted(EVENTS.glob("http_*.json"))
# Headers API Gateway adds itself (the request does not carry them).
ADDED_BY_GATEWAY = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"}
ORIGIN = "http://localhost:3000"


def request_of(sample: dict[str, Any]) -> HttpRequest:
    """The HTTP request behind a sample event."""
    body = sample.get("body")
    raw = b""
    if body is not None:
        raw = base64.b64decode(body) if sample.get("isBase64Encoded") else body.encode()
    http = sample["requestContext"]["http"]
    return HttpRequest(
        method=http["method"],
        raw_path=sample["rawPath"],
        raw_query=sample.get("rawQueryString", ""),
        headers=[(name, value) for name, value in sample["headers"].items() if name not in ADDED_BY_GATEWAY],
        body=raw,
        source_ip=http["sourceIp"],
        protocol=http["protocol"],
        server_port=443,
    )


def shape(value: Any) -> Any:
    """Keys and value types, recursively."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def call(gateway: GatewayUnderTest, method: str, path: str, **fields: Any) -> Any:
    return gateway.gateway.handle(HttpRequest(method=method, raw_path=path, **fields))


# ------------------------------------------------------------------------------------ event shapes


def test_every_sample_route_is_a_template_route(template_api: ApiDefinition) -> None:
    keys = {route.key for route in template_api.routes}
    for path in HTTP_SAMPLES:
        assert json.loads(path.read_text())["routeKey"] in keys, path.name


@pytest.mark.parametrize("sample_path", HTTP_SAMPLES, ids=lambda path: path.stem)
def test_event_matches_the_sample(gateway: GatewayUnderTest, sample_path: Path) -> None:
    """Same keys and value types as the payload 2.0 sample, and the same request values."""
    sample = json.loads(sample_path.read_text())
    authorizer = sample["requestContext"].get("authorizer")
    if authorizer is not None:
        for function in gateway.functions.values():
            if isinstance(function.result, dict) and "isAuthorized" in function.result:
                function.result = {"isAuthorized": True, "context": authorizer["lambda"]}
    response = gateway.gateway.handle(request_of(sample))
    assert response.status == 200, response.body
    route = next(route for route in gateway.gateway.api.routes if route.key == sample["routeKey"])  # type: ignore[union-attr]
    event = gateway.function(route.function).events[-1]

    assert shape(event) == shape(sample)
    for key in (
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "queryStringParameters",
        "pathParameters",
    ):
        assert event.get(key) == sample.get(key), key
    assert event.get("body") == sample.get("body")
    assert event["isBase64Encoded"] == sample["isBase64Encoded"]
    for name, value in sample["headers"].items():
        if name not in ADDED_BY_GATEWAY:
            assert event["headers"][name] == value, name
    context, expected = event["requestContext"], sample["requestContext"]
    assert context["routeKey"] == expected["routeKey"]
    assert context["stage"] == "$default"
    assert context["http"] == expected["http"]
    assert context.get("authorizer") == expected.get("authorizer")
    assert context["domainName"] == sample["headers"]["host"]
    assert context["domainPrefix"] == sample["headers"]["host"].split(".")[0]


def test_authorizer_event_matches_the_sample(gateway: GatewayUnderTest) -> None:
    sample = json.loads((EVENTS / "authorizer_request.json").read_text())
    call(gateway, "POST", sample["rawPath"], headers=list(sample["headers"].items()))
    authorizer = next(f for f in gateway.functions.values() if f.events and "identitySource" in f.events[-1])
    event = authorizer.events[-1]
    assert shape(event) == shape(sample)
    assert event["identitySource"] == sample["identitySource"]
    assert event["routeKey"] == sample["routeKey"]
    api = gateway.gateway.api
    assert api is not None
    assert (
        event["routeArn"]
        == f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/$default/POST/v1/tokens"
    )


def test_request_details_in_the_event(gateway: GatewayUnderTest) -> None:
    response = call(
        gateway,
        "GET",
        "/v1/runs/run%2042/feedback/user-7",
        raw_query="limit=2&tag=a&tag=b%20c&empty=",
        headers=[
            ("Authorization", "Bearer fbk_x"),
            ("X-Custom", "one"),
            ("x-custom", "two"),
            ("Cookie", "a=1; b=2"),
            ("User-Agent", "tests"),
            ("Host", "127.0.0.1:3000"),
        ],
        source_ip="10.1.2.3",
    )
    assert response.status == 200
    event = gateway.function("QueryFunction").events[-1]
    assert event["routeKey"] == "GET /v1/runs/{run_id}/feedback/{user_id}"
    # HTTP APIs hand over the path percent-decoded, the query string as sent.
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/v1/runs/run 42/feedback/user-7"
    assert event["pathParameters"] == {"run_id": "run 42", "user_id": "user-7"}
    assert event["rawQueryString"] == "limit=2&tag=a&tag=b%20c&empty="
    assert event["queryStringParameters"] == {"limit": "2", "tag": "a,b c", "empty": ""}
    assert event["headers"]["x-custom"] == "one,two"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-forwarded-for"] == "10.1.2.3"
    assert event["requestContext"]["http"]["sourceIp"] == "10.1.2.3"
    assert event["requestContext"]["http"]["userAgent"] == "tests"
    assert event["requestContext"]["domainName"] == "127.0.0.1"
    assert event["requestContext"]["authorizer"] == {
        "lambda": {"authenticated": True, "project": "demo", "scopes": "feedback:read", "key_id": "k1"}
    }
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert response.header("apigw-requestid") == event["requestContext"]["requestId"]


@pytest.mark.parametrize(
    ("content_type", "base64_encoded"),
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("text/plain", False),
        ("application/vnd.api+json", False),
        ("application/octet-stream", True),
        ("image/png", True),
        (None, True),
    ],
)
def test_body_is_base64_unless_text(
    gateway: GatewayUnderTest, content_type: str | None, base64_encoded: bool
) -> None:
    body = b'{"outcome": "positive"}'
    headers = [("content-type", content_type)] if content_type else []
    call(gateway, "POST", "/v1/feedback", headers=headers, body=body)
    event = gateway.function("SubmitFeedbackFunction").events[-1]
    assert event["isBase64Encoded"] is base64_encoded
    decoded = base64.b64decode(event["body"]) if base64_encoded else event["body"].encode()
    assert decoded == body


def test_invalid_utf8_text_is_base64(gateway: GatewayUnderTest) -> None:
    call(gateway, "POST", "/v1/feedback", headers=[("content-type", "text/plain")], body=b"\xff\xfe")
    event = gateway.function("SubmitFeedbackFunction").events[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


# --------------------------------------------------------------------------------------- routing


def test_unknown_route_is_404_without_calling_a_function(gateway: GatewayUnderTest) -> None:
    for method, path in (("GET", "/v1/nope"), ("PUT", "/v1/feedback"), ("GET", "/v1/health/")):
        response = call(gateway, method, path)
        assert response.status == 404
        assert response.json() == {"message": "Not Found"}
        assert response.header("content-type") == "application/json"
    assert not any(function.events for function in gateway.functions.values())


def test_literal_routes_win_over_path_variables() -> None:
    routes = (
        Route("GET", "/items/{id}", "ById"),
        Route("GET", "/items/special", "Special"),
    )
    api = ApiDefinition("a", tuple(sorted(routes, key=lambda r: r.rank)), {})
    assert api.find_route("GET", "/items/special") == (routes[1], {})
    assert api.find_route("GET", "/items/7") == (routes[0], {"id": "7"})
    assert api.find_route("GET", "/items/a/b") is None
    assert api.find_route("POST", "/items/special") is None


ANY = "x-amazon-apigateway-any-method"


@pytest.mark.parametrize(
    ("method", "path"), [(ANY, "/items"), ("get", "/items/{proxy+}"), (ANY, "/$default")]
)
def test_routes_the_template_does_not_use_are_refused(template: Harness, method: str, path: str) -> None:
    """ANY, greedy and $default routes are not emulated: an API with one is refused when read."""
    body = copy.deepcopy(template.stack.resolved["FeedbackApi"]["Body"])
    body["paths"][path] = {method: next(iter(body["paths"]["/v1/health"].values()))}
    by_arn = {function.arn: logical_id for logical_id, function in template.functions.items()}
    with pytest.raises(ApiDefinitionError, match="not emulated"):
        ApiDefinition.from_openapi(body, by_arn, "a")


# ------------------------------------------------------------------------------------- responses


def test_response_fields_are_translated() -> None:
    response = translate_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Count": 3, "content-length": "999"},
            "multiValueHeaders": {"X-Many": ["a", "b"], "x-count": ["ignored"]},
            "cookies": ["s=1; Path=/", "t=2"],
            "body": '{"ok": true}',
        }
    )
    assert response.status == 201
    assert response.body == b'{"ok": true}'
    assert ("X-Count", "3") in response.headers
    assert [v for k, v in response.headers if k == "X-Many"] == ["a", "b"]
    assert [v for k, v in response.headers if k == "set-cookie"] == ["s=1; Path=/", "t=2"]
    assert "ignored" not in [v for _, v in response.headers]
    assert all(k.lower() != "content-length" for k, _ in response.headers)


def test_base64_response_body_is_decoded() -> None:
    png = bytes(range(256))
    response = translate_response(
        {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(png).decode()}
    )
    assert response.body == png


@pytest.mark.parametrize("result", [{"message": "hi"}, ["a", 1], "text", 42, None])
def test_result_without_status_code_is_a_200_json_body(result: Any) -> None:
    response = translate_response(result)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == result


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "200"},
        {"statusCode": 99},
        {"statusCode": True},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"},
        {"statusCode": 200, "headers": {"x": ["list"]}},
    ],
)
def test_invalid_responses_are_rejected(result: Any) -> None:
    with pytest.raises(InvalidResponse):
        translate_response(result)


def test_invalid_function_response_is_500(gateway: GatewayUnderTest) -> None:
    gateway.function("MetaFunction").result = {"statusCode": "oops"}
    response = call(gateway, "GET", "/v1/health")
    assert response.status == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_function_exception_is_500_and_logged(
    gateway: GatewayUnderTest, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "boom.py").write_text("def handler(event, context):\n    raise RuntimeError('boom')\n")
    function = LocalFunction(
        "Boom", "boom", "arn:aws:lambda:us-east-1:1:function:boom", tmp_path, "boom.handler"
    )
    gateway.functions["MetaFunction"] = function  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="local.functions"):
        response = call(gateway, "GET", "/v1/health")
    assert response.status == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert "RuntimeError: boom" in caplog.text
    assert "Traceback" in caplog.text


# ------------------------------------------------------------------------------------------- CORS


def test_template_cors_settings_are_used(template_api: ApiDefinition) -> None:
    cors = template_api.cors
    assert cors is not None
    assert ORIGIN in cors.allow_origins
    assert set(cors.allow_headers) >= {"authorization", "x-feedback-token", "content-type"}
    assert cors.expose_headers == ("retry-after", "etag")
    assert cors.max_age == 600


def test_preflight_from_an_allowed_origin(gateway: GatewayUnderTest) -> None:
    response = call(
        gateway,
        "OPTIONS",
        "/v1/feedback",
        headers=[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-feedback-token"),
        ],
    )
    assert response.status == 204
    assert response.header("access-control-allow-origin") == ORIGIN
    assert set(response.header("access-control-allow-methods").split(",")) >= {"GET", "POST", "DELETE"}
    assert "x-feedback-token" in response.header("access-control-allow-headers").split(",")
    assert response.header("access-control-max-age") == "600"
    assert not any(function.events for function in gateway.functions.values())


def test_preflight_from_another_origin_gets_no_cors_headers(gateway: GatewayUnderTest) -> None:
    response = call(
        gateway,
        "OPTIONS",
        "/v1/feedback",
        headers=[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")],
    )
    assert response.status == 204
    assert not [name for name, _ in response.headers if name.lower().startswith("access-control-")]


def test_actual_response_gets_cors_headers_for_allowed_origins_only(gateway: GatewayUnderTest) -> None:
    gateway.function("MetaFunction").result = {
        "statusCode": 200,
        "headers": {"Access-Control-Allow-Origin": "*", "content-type": "application/json"},
        "body": "{}",
    }
    allowed = call(gateway, "GET", "/v1/health", headers=[("Origin", ORIGIN)])
    assert allowed.header("access-control-allow-origin") == ORIGIN
    assert allowed.header("access-control-expose-headers") == "retry-after,etag"
    other = call(gateway, "GET", "/v1/health", headers=[("Origin", "https://evil.example")])
    assert other.header("access-control-allow-origin") is None  # the function's own header is dropped
    unauthenticated = call(gateway, "GET", "/v1/feedback", headers=[("Origin", ORIGIN)])
    assert unauthenticated.status == 401
    assert unauthenticated.header("access-control-allow-origin") == ORIGIN


def test_origin_patterns() -> None:
    cors = CorsConfig(allow_origins=("https://*.example.com", "http://localhost:3000"))
    assert cors.allowed_origin("https://app.example.com") == "https://app.example.com"
    assert cors.allowed_origin("HTTP://LOCALHOST:3000") == "HTTP://LOCALHOST:3000"
    assert cors.allowed_origin("https://example.org") is None
    assert CorsConfig(allow_origins=("*",)).allowed_origin("https://x.test") == "*"


# ------------------------------------------------------------------------------------- authorizer


def authorizer_of(gateway: GatewayUnderTest) -> FakeFunction:
    api = gateway.gateway.api
    assert api is not None
    return gateway.function(api.authorizers["ApiKeyAuthorizer"].function)


def test_authorizer_settings_come_from_the_template(template_api: ApiDefinition) -> None:
    authorizer = template_api.authorizers["ApiKeyAuthorizer"]
    assert authorizer.function == "AuthorizerFunction"
    assert authorizer.identity_sources == ("$request.header.Authorization",)
    assert authorizer.ttl_seconds == 60  # and simple responses, or the definition would be refused
    public = {route.key for route in template_api.routes if route.authorizer is None}
    assert public == {
        "POST /v1/feedback",
        "GET /v1/feedback/me",
        "DELETE /v1/feedback/me",
        "GET /.well-known/jwks.json",
        "GET /v1/openapi.json",
        "GET /v1/docs",
        "GET /v1/docs/{asset}",
        "GET /v1/widget.js",
        "GET /dashboard",
        "GET /dashboard/{asset}",
        "GET /v1/health",
    }


def test_missing_identity_is_401_without_calling_the_authorizer(gateway: GatewayUnderTest) -> None:
    response = call(gateway, "GET", "/v1/feedback")
    assert response.status == 401
    assert response.json() == {"message": "Unauthorized"}
    assert authorizer_of(gateway).events == []
    assert gateway.function("QueryFunction").events == []


def test_denied_is_403(gateway: GatewayUnderTest) -> None:
    authorizer_of(gateway).result = {"isAuthorized": False}
    response = call(gateway, "GET", "/v1/feedback", headers=[("Authorization", "Bearer fbk_bad")])
    assert response.status == 403
    assert response.json() == {"message": "Forbidden"}
    assert gateway.function("QueryFunction").events == []


@pytest.mark.parametrize("answer", [{"isAuthorized": "yes"}, "allow", RuntimeError("authorizer bug")])
def test_authorizer_failure_is_500(gateway: GatewayUnderTest, answer: Any) -> None:
    authorizer_of(gateway).result = answer
    response = call(gateway, "GET", "/v1/feedback", headers=[("Authorization", "Bearer fbk_x")])
    assert response.status == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_answers_are_cached_per_identity_for_the_ttl(gateway: GatewayUnderTest) -> None:
    authorizer = authorizer_of(gateway)
    key_a = [("Authorization", "Bearer fbk_a")]
    for path in ("/v1/feedback", "/v1/stats", "/v1/feedback"):
        assert call(gateway, "GET", path, headers=key_a).status == 200
    assert len(authorizer.events) == 1  # cached across routes, as API Gateway does
    assert call(gateway, "GET", "/v1/feedback", headers=[("Authorization", "Bearer fbk_b")]).status == 200
    assert len(authorizer.events) == 2
    gateway.clock[0] += 59
    call(gateway, "GET", "/v1/feedback", headers=key_a)
    assert len(authorizer.events) == 2
    gateway.clock[0] += 2
    call(gateway, "GET", "/v1/feedback", headers=key_a)
    assert len(authorizer.events) == 3


def test_denials_are_cached_too(gateway: GatewayUnderTest) -> None:
    authorizer = authorizer_of(gateway)
    authorizer.result = {"isAuthorized": False}
    headers = [("Authorization", "Bearer fbk_no")]
    assert call(gateway, "GET", "/v1/feedback", headers=headers).status == 403
    authorizer.result = {"isAuthorized": True, "context": {}}
    assert call(gateway, "GET", "/v1/feedback", headers=headers).status == 403
    assert len(authorizer.events) == 1


def test_authorizers_without_simple_responses_are_refused(template: Harness) -> None:
    """The template's authorizer answers simple responses; IAM policy answers are not emulated."""
    body = copy.deepcopy(template.stack.resolved["FeedbackApi"]["Body"])
    for scheme in body["components"]["securitySchemes"].values():
        scheme["x-amazon-apigateway-authorizer"]["enableSimpleResponses"] = False
    by_arn = {function.arn: logical_id for logical_id, function in template.functions.items()}
    with pytest.raises(ApiDefinitionError, match="simple responses"):
        ApiDefinition.from_openapi(body, by_arn, "a")


# ---------------------------------------------------------------------------------- other limits


def test_not_ready_is_503() -> None:
    response = Gateway().handle(HttpRequest("GET", "/v1/health"))
    assert response.status == 503
    assert response.json() == {"message": "Service Unavailable"}


def test_throttling_from_the_stage(template_api: ApiDefinition, gateway: GatewayUnderTest) -> None:
    assert template_api.throttle is not None
    assert (template_api.throttle.burst, template_api.throttle.rate) == (200, 100.0)
    statuses = [call(gateway, "GET", "/v1/health").status for _ in range(201)]
    assert statuses[:200] == [200] * 200
    assert statuses[200] == 429
    gateway.clock[0] += 0.1  # 10 tokens back at 100 per second
    assert [call(gateway, "GET", "/v1/health").status for _ in range(11)] == [200] * 10 + [429]


def test_local_routes_only_when_no_api_route_matches(gateway: GatewayUnderTest) -> None:
    gateway.gateway.add_local_route("GET", "/", lambda request: HttpResponse(200, [], b"page"))
    gateway.gateway.add_local_route("GET", "/v1/health", lambda request: HttpResponse(200, [], b"shadowed"))
    assert call(gateway, "GET", "/").body == b"page"
    assert call(gateway, "GET", "/v1/health").body == b"{}"


def test_build_event_without_authorizer_has_no_authorizer_context(template_api: ApiDefinition) -> None:
    route = next(route for route in template_api.routes if route.key == "GET /v1/health")
    event = build_event(
        HttpRequest("GET", "/v1/health"),
        template_api,
        route,
        path_parameters={},
        facts=RequestFacts("id=", calendar.timegm((2026, 11, 23, 8, 0, 0)), "Root=1-0-0"),
    )
    assert "authorizer" not in event["requestContext"]
    assert event["requestContext"]["time"] == "23/Nov/2026:08:00:00 +0000"
    assert event["requestContext"]["timeEpoch"] == calendar.timegm((2026, 11, 23, 8, 0, 0)) * 1000
