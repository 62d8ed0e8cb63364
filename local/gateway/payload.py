"""Requests as received, the payload format 2.0 events API Gateway makes of them, and the responses it
makes of the functions' results (or of its own errors)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.gateway.routes import ApiDefinition, Route
from local.template import ACCOUNT_ID, REGION, text

HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2: methods and header names
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 §5.5: not in a header value
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_SUBTYPES = ("json", "javascript", "xml", "x-www-form-urlencoded", "graphql", "x-yaml", "yaml")
_TEXT_TYPES = {f"application/{subtype}" for subtype in _TEXT_SUBTYPES}


def joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The values of repeated names joined with commas, as API Gateway does for headers and queries."""
    result: dict[str, str] = {}
    for name, value in pairs:
        result[name] = f"{result[name]},{value}" if name in result else value
    return result


def joined_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return joined((key.lower(), value) for key, value in headers).get(name.lower())


@dataclass
class HttpRequest:
    """A request as received: raw path and query string, headers in order (names as sent), body bytes."""

    method: str
    raw_path: str
    raw_query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    server_host: str = "127.0.0.1"
    server_port: int = 3000

    @property
    def path(self) -> str:
        """The path as HTTP APIs hand it to functions: percent-decoded, unlike the query string."""
        return unquote(self.raw_path)

    @property
    def query(self) -> dict[str, str]:
        return joined(parse_qsl(self.raw_query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return joined_header(self.headers, name)


def request_id() -> str:
    """An id shaped like API Gateway's (``JKJaXmPLvHcESHA=``)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


@dataclass(frozen=True)
class RequestFacts:
    """Values one request's events share (the authorizer's and the integration's)."""

    request_id: str
    now: float
    trace_id: str

    @classmethod
    def new(cls) -> RequestFacts:
        now = time.time()
        return cls(request_id(), now, f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")


def build_event(
    request: HttpRequest,
    api: ApiDefinition,
    route: Route,
    *,
    path_parameters: Mapping[str, str],
    facts: RequestFacts,
    authorizer_context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends the route's function for this request."""
    event = _request_fields(request, api, route, facts)
    if not event["cookies"]:
        del event["cookies"]
    if route.authorizer is not None:
        event["requestContext"]["authorizer"] = {"lambda": dict(authorizer_context or {})}
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["isBase64Encoded"] = False
    # API Gateway passes a body of a text type as text, any other base64-encoded.
    media = event["headers"].get("content-type", "").split(";", 1)[0].strip().lower()
    if request.body and (
        media.startswith("text/") or media.endswith(("+json", "+xml")) or media in _TEXT_TYPES
    ):
        with contextlib.suppress(UnicodeDecodeError):  # text that is not UTF-8 goes base64-encoded
            event["body"] = request.body.decode("utf-8")
    if request.body and "body" not in event:
        event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode(), True
    return event


def build_authorizer_event(
    request: HttpRequest,
    api: ApiDefinition,
    route: Route,
    *,
    path_parameters: Mapping[str, str],
    identity: Sequence[str],
    facts: RequestFacts,
) -> dict[str, Any]:
    """The payload format 2.0 event of a Lambda REQUEST authorizer."""
    stage_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api.api_id}/$default"
    return _request_fields(request, api, route, facts) | {
        "type": "REQUEST",
        "routeArn": f"{stage_arn}/{request.method}{request.raw_path}",
        "identitySource": list(identity),
        "pathParameters": dict(path_parameters),
        "stageVariables": {},
    }


def _request_fields(
    request: HttpRequest, api: ApiDefinition, route: Route, facts: RequestFacts
) -> dict[str, Any]:
    """What both events carry: headers as API Gateway forwards them (cookies apart), query and context."""
    headers = joined((name.lower(), value) for name, value in request.headers if name.lower() != "cookie")
    cookies = ";".join(value for name, value in request.headers if name.lower() == "cookie").split(";")
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    headers["x-forwarded-port"] = str(request.server_port)
    headers["x-forwarded-proto"] = "http"
    headers.setdefault("x-amzn-trace-id", facts.trace_id)
    host = headers.setdefault("host", f"{request.server_host}:{request.server_port}") or request.server_host
    domain = host.rsplit(":", 1)[0] if re.fullmatch(r"[^:]+:\d+", host) else host
    moment = time.gmtime(facts.now)
    month = _MONTHS[moment.tm_mon - 1]  # English whatever the locale
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "cookies": [cookie.strip() for cookie in cookies if cookie.strip()],
        "headers": headers,
    }
    if request.raw_query:
        event["queryStringParameters"] = request.query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": facts.request_id,
        "routeKey": route.key,
        "stage": "$default",
        "time": time.strftime(f"%d/{month}/%Y:%H:%M:%S +0000", moment),
        "timeEpoch": int(facts.now * 1000),
    }
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return joined_header(self.headers, name)

    def json(self) -> Any:
        return json.loads(self.body)


def gateway_error(status: int, message: str) -> HttpResponse:
    """API Gateway's own error format: ``{"message": "..."}``."""
    return HttpResponse(
        status, [("content-type", "application/json")], json.dumps({"message": message}).encode()
    )


class InvalidResponse(ValueError):
    """The function's result is not a valid HTTP API response."""


def translate_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a payload format 2.0 function result."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Format 2.0 infers the response: 200, JSON, the result as the body.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            raise InvalidResponse(f"header {name} has a non-scalar value")
        headers.append((str(name), text(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if not isinstance(values, list):
            raise InvalidResponse(f"multiValueHeaders.{name} is not a list")
        if str(name).lower() not in {key.lower() for key, _ in headers}:  # headers wins, as in API Gateway
            headers += [(str(name), text(value)) for value in values]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    for name, value in headers:
        # HTTP/1.1 cannot carry them (a line break would even start a header of its own).
        if not HTTP_TOKEN.fullmatch(name):
            raise InvalidResponse(f"header name {name!r} is not an HTTP token")
        if CONTROL_CHARACTERS.search(value):
            raise InvalidResponse(f"header {name} has a control character")
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
    body = "" if result.get("body") is None else result["body"]
    if not isinstance(body, str):
        raise InvalidResponse("body is not a string")
    if result.get("isBase64Encoded") is not True:
        return HttpResponse(status, headers, body.encode("utf-8"))
    try:
        return HttpResponse(status, headers, base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidResponse("isBase64Encoded but the body is not base64") from exc
