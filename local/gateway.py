"""An API Gateway HTTP API on 127.0.0.1: the template's routes, authorizer and CORS, in front of the handlers.

The API is read from the deployed template: the OpenAPI body SAM generates for the
``AWS::Serverless::HttpApi`` (routes and their Lambda integrations, the Lambda authorizers with their
identity sources and cache TTL, ``x-amazon-apigateway-cors``) and its ``$default`` stage (throttling),
with every parameter already resolved (see ``Stack.resolved``). Nothing about the routes is written here.

What API Gateway does, and this gateway does too:

- events in payload format 2.0 (lower-case header names, repeated headers and query parameters joined
  with commas, ``cookies``, path parameters, ``requestContext`` with ``authorizer.lambda``), the body
  base64-encoded unless its content type is text;
- REQUEST authorizers: a missing identity source is 401 ``{"message":"Unauthorized"}`` without calling
  the authorizer, a denial 403 ``{"message":"Forbidden"}``, answers cached per identity for
  ``authorizerResultTtlInSeconds``;
- responses: ``statusCode``/``headers``/``multiValueHeaders``/``cookies``/``body``/``isBase64Encoded``,
  and a result without ``statusCode`` sent as a 200 JSON body (format 2.0's inference rule); a function
  error or an invalid response is 500 ``{"message":"Internal Server Error"}``; no route is 404
  ``{"message":"Not Found"}``; over the stage's rate limit 429 ``{"message":"Too Many Requests"}``;
- CORS: preflight requests answered by the gateway; on every response to an allowed origin,
  ``access-control-allow-origin`` and ``-expose-headers`` (the function's own CORS headers are replaced);
  nothing for other origins;
- HTTP: every answer the server gives itself (malformed request 400, request line or headers over the
  HTTP API quota 414/431, HTTP version 505) is the same JSON error, never an HTML page; any method token
  is routed, and one no route takes is 404.

Not emulated: timeouts (a function that overruns its ``Timeout`` or the 30 s integration limit still
answers), custom domains and stage variables, mutual TLS, request/response parameter mapping.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fnmatch
import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.functions import FunctionError, Invocable

log = logging.getLogger("local.gateway")
access_log = logging.getLogger("local.access")

MAX_BODY_BYTES = 10 * 1024 * 1024
"""HTTP API's payload limit."""
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = {
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/graphql",
    "application/x-yaml",
    "application/yaml",
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2: methods and header names
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 §5.5: not in a header value
_INTEGRATION_URI = re.compile(
    r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<arn>.+)/invocations$"
)


class ApiDefinitionError(ValueError):
    """The API uses something this gateway does not emulate."""


# ------------------------------------------------------------------------------------------ requests


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
        """The path as HTTP APIs hand it to functions (``rawPath``, ``requestContext.http.path``):
        percent-decoded, unlike the query string."""
        return unquote(self.raw_path)

    def header(self, name: str) -> str | None:
        """All values of one header joined with commas (as API Gateway does), or None."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def gateway_error(status: int, message: str) -> HttpResponse:
    """API Gateway's own error format: ``{"message": "..."}``."""
    return HttpResponse(
        status,
        [("content-type", "application/json")],
        json.dumps({"message": message}).encode(),
    )


# ------------------------------------------------------------------------------------ API definition


@dataclass(frozen=True)
class Route:
    method: str
    """Upper-case method, or ``ANY``."""
    path: str
    """As in the template, with ``{name}`` and ``{name+}`` path variables, or ``$default``."""
    function: str
    """Logical id of the integration's function."""
    authorizer: str | None = None
    payload_version: str = "2.0"

    @property
    def key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route takes the request, else None."""
        if self.method not in ("ANY", method):
            return None
        if self.path == "$default":
            return {}
        match = _path_pattern(self.path).fullmatch(path)
        if match is None:
            return None
        return {name.removesuffix("+"): unquote(value) for name, value in _named_groups(self.path, match)}

    @property
    def rank(self) -> tuple[int, int, int, int, int]:
        """Lower is more specific: literal paths, then path variables, then greedy ones, then ``$default``;
        a method before ``ANY``."""
        segments = [s for s in self.path.split("/") if s]
        variables = sum(1 for s in segments if s.startswith("{"))
        greedy = sum(1 for s in segments if s.endswith("+}"))
        return (self.path == "$default", greedy, variables, -len(segments), self.method == "ANY")


def _variable_names(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def _path_pattern(path: str) -> re.Pattern[str]:
    pattern = ""
    for index, part in enumerate(re.split(r"(\{[^}]+\})", path)):
        if index % 2 == 0:
            pattern += re.escape(part)
        elif part.endswith("+}"):
            pattern += f"(?P<v{index}>.+)"
        else:
            pattern += f"(?P<v{index}>[^/]+)"
    return re.compile(pattern)


def _named_groups(path: str, match: re.Match[str]) -> Iterable[tuple[str, str]]:
    names = _variable_names(path)
    values = [value for _, value in sorted(match.groupdict().items(), key=lambda item: int(item[0][1:]))]
    return zip(names, values, strict=True)


@dataclass(frozen=True)
class AuthorizerConfig:
    name: str
    function: str
    """Logical id of the authorizer function."""
    identity_sources: tuple[str, ...]
    """e.g. ``$request.header.Authorization``, ``$request.querystring.key``."""
    ttl_seconds: int = 0
    simple_responses: bool = True
    payload_version: str = "2.0"


@dataclass(frozen=True)
class CorsConfig:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allowed_origin(self, origin: str | None) -> str | None:
        """The value of ``access-control-allow-origin`` for this origin, or None if it is not allowed."""
        if not origin:
            return None
        for allowed in self.allow_origins:
            if allowed == "*":
                return origin if self.allow_credentials else "*"
            if allowed.lower() == origin.lower() or (
                "*" in allowed and fnmatch.fnmatchcase(origin.lower(), allowed.lower())
            ):
                return origin
        return None


@dataclass(frozen=True)
class Throttle:
    burst: int
    rate: float


@dataclass(frozen=True)
class ApiDefinition:
    """What the gateway serves: routes, authorizers, CORS and throttling of one HTTP API."""

    api_id: str
    account_id: str
    region: str
    routes: tuple[Route, ...]
    authorizers: Mapping[str, AuthorizerConfig]
    cors: CorsConfig | None = None
    throttle: Throttle | None = None

    @classmethod
    def from_openapi(
        cls,
        body: Mapping[str, Any],
        functions_by_arn: Mapping[str, str],
        *,
        api_id: str,
        account_id: str,
        region: str,
        stage: Mapping[str, Any] | None = None,
    ) -> ApiDefinition:
        """From the (resolved) OpenAPI body of an ``AWS::ApiGatewayV2::Api`` and its stage's properties.

        ``functions_by_arn`` maps function ARNs (as the integration URIs name them) to logical ids.
        """

        def function_for(uri: Any, where: str) -> str:
            match = _INTEGRATION_URI.match(str(uri))
            arn = match.group("arn") if match else None
            if arn is None or arn not in functions_by_arn:
                raise ApiDefinitionError(f"{where}: integration {uri!r} is not a function of the stack")
            return functions_by_arn[arn]

        authorizers: dict[str, AuthorizerConfig] = {}
        for name, scheme in (body.get("components", {}).get("securitySchemes") or {}).items():
            settings = scheme.get("x-amazon-apigateway-authorizer")
            if not settings:
                continue
            if settings.get("type") != "request":
                raise ApiDefinitionError(f"authorizer {name}: only Lambda REQUEST authorizers are emulated")
            identity = settings.get("identitySource") or []
            sources = tuple([identity] if isinstance(identity, str) else identity)
            for source in sources:
                if not re.match(r"^\$request\.(header|querystring)\.", source):
                    raise ApiDefinitionError(f"authorizer {name}: identity source {source} is not emulated")
            authorizers[name] = AuthorizerConfig(
                name=name,
                function=function_for(settings.get("authorizerUri"), f"authorizer {name}"),
                identity_sources=sources,
                ttl_seconds=int(settings.get("authorizerResultTtlInSeconds", 0) or 0),
                simple_responses=_boolean(settings.get("enableSimpleResponses", False)),
                payload_version=str(settings.get("authorizerPayloadFormatVersion", "2.0")),
            )

        default_security = body.get("security") or []
        routes: list[Route] = []
        for path, operations in (body.get("paths") or {}).items():
            for method, operation in operations.items():
                if not isinstance(operation, Mapping) or "x-amazon-apigateway-integration" not in operation:
                    continue
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                route_path = "$default" if path == "/$default" else path
                where = f"{verb} {route_path}"
                integration = operation["x-amazon-apigateway-integration"]
                if integration.get("type") != "aws_proxy":
                    raise ApiDefinitionError(f"{where}: only Lambda proxy integrations are emulated")
                version = str(integration.get("payloadFormatVersion", "2.0"))
                if version != "2.0":
                    raise ApiDefinitionError(f"{where}: payload format {version} is not emulated (2.0 is)")
                security = operation.get("security", default_security) or []
                names = [name for requirement in security for name in requirement]
                authorizer = next((name for name in names if name in authorizers), None)
                unknown = [name for name in names if name not in authorizers and name != "NONE"]
                if unknown:
                    raise ApiDefinitionError(f"{where}: unknown authorizer {unknown[0]}")
                routes.append(
                    Route(
                        method=verb,
                        path=route_path,
                        function=function_for(integration.get("uri"), where),
                        authorizer=authorizer,
                        payload_version=version,
                    )
                )

        cors: CorsConfig | None = None
        settings = body.get("x-amazon-apigateway-cors")
        if settings:
            cors = CorsConfig(
                allow_origins=tuple(settings.get("allowOrigins") or ()),
                allow_methods=tuple(m.upper() for m in settings.get("allowMethods") or ()),
                allow_headers=tuple(h.lower() for h in settings.get("allowHeaders") or ()),
                expose_headers=tuple(h.lower() for h in settings.get("exposeHeaders") or ()),
                max_age=int(settings["maxAge"]) if settings.get("maxAge") is not None else None,
                allow_credentials=_boolean(settings.get("allowCredentials", False)),
            )
        throttle: Throttle | None = None
        route_settings = (stage or {}).get("DefaultRouteSettings") or {}
        if "ThrottlingBurstLimit" in route_settings and "ThrottlingRateLimit" in route_settings:
            throttle = Throttle(
                burst=int(route_settings["ThrottlingBurstLimit"]),
                rate=float(route_settings["ThrottlingRateLimit"]),
            )
        return cls(
            api_id=api_id,
            account_id=account_id,
            region=region,
            routes=tuple(sorted(routes, key=lambda route: route.rank)),
            authorizers=authorizers,
            cors=cors,
            throttle=throttle,
        )

    def find_route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:  # most specific first
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None


def _boolean(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


# ------------------------------------------------------------------------------------------- events


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text (else it is base64-encoded)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def request_id() -> str:
    """An id shaped like API Gateway's (``JKJaXmPLvHcESHA=``)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def trace_id(now: float) -> str:
    return f"Root=1-{int(now):08x}-{secrets.token_hex(12)}"


def request_time(now: float) -> str:
    """``23/Nov/2026:08:00:00 +0000`` (English month names whatever the locale)."""
    moment = time.gmtime(now)
    return (
        f"{moment.tm_mday:02d}/{_MONTHS[moment.tm_mon - 1]}/{moment.tm_year}:"
        f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} +0000"
    )


@dataclass(frozen=True)
class RequestFacts:
    """Values one request's events share (the authorizer's and the integration's)."""

    request_id: str
    now: float
    trace_id: str


def build_headers(request: HttpRequest, facts: RequestFacts) -> tuple[dict[str, str], list[str]]:
    """Lower-case headers (repeats joined with commas) plus what API Gateway adds; and the cookies."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    headers["x-forwarded-port"] = str(request.server_port)
    headers["x-forwarded-proto"] = "http"
    headers.setdefault("x-amzn-trace-id", facts.trace_id)
    headers.setdefault("host", f"{request.server_host}:{request.server_port}")
    return headers, cookies


def query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters, repeated names joined with commas."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def request_context(
    request: HttpRequest, api: ApiDefinition, route_key: str, headers: Mapping[str, str], facts: RequestFacts
) -> dict[str, Any]:
    host = headers.get("host") or request.server_host
    domain = host.rsplit(":", 1)[0] if re.fullmatch(r"[^:]+:\d+", host) else host
    return {
        "accountId": api.account_id,
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
        "routeKey": route_key,
        "stage": "$default",
        "time": request_time(facts.now),
        "timeEpoch": int(facts.now * 1000),
    }


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
    headers, cookies = build_headers(request, facts)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.raw_query:
        event["queryStringParameters"] = query_parameters(request.raw_query)
    context = request_context(request, api, route.key, headers, facts)
    if route.authorizer is not None:
        context["authorizer"] = {"lambda": dict(authorizer_context or {})}
    event["requestContext"] = context
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        text = _text_body(request.body, headers.get("content-type"))
        if text is not None:
            event["body"], event["isBase64Encoded"] = text, False
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode(), True
    else:
        event["isBase64Encoded"] = False
    return event


def _text_body(body: bytes, content_type: str | None) -> str | None:
    if not is_text(content_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
    headers, cookies = build_headers(request, facts)
    method_path = request.raw_path if route.path != "$default" else "$default"
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": (
            f"arn:aws:execute-api:{api.region}:{api.account_id}:{api.api_id}/$default/"
            f"{request.method}{method_path}"
        ),
        "identitySource": list(identity),
        "routeKey": route.key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "cookies": cookies,
        "headers": headers,
    }
    if request.raw_query:
        event["queryStringParameters"] = query_parameters(request.raw_query)
    event["requestContext"] = request_context(request, api, route.key, headers, facts)
    event["pathParameters"] = dict(path_parameters)
    event["stageVariables"] = {}
    return event


def identity_values(request: HttpRequest, sources: Sequence[str]) -> list[str] | None:
    """The identity source values, or None if one is missing or empty."""
    values: list[str] = []
    query = query_parameters(request.raw_query) if request.raw_query else {}
    for source in sources:
        kind, _, name = source.removeprefix("$request.").partition(".")
        value = request.header(name) if kind == "header" else query.get(name)
        if not value:
            return None
        values.append(value)
    return values


# ---------------------------------------------------------------------------------------- responses


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
        headers.append((str(name), _scalar(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if not isinstance(values, list):
            raise InvalidResponse(f"multiValueHeaders.{name} is not a list")
        already = {key.lower() for key, _ in headers}
        if str(name).lower() in already:
            continue  # headers wins, as in API Gateway
        headers += [(str(name), _scalar(value)) for value in values]
    for cookie in result.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise InvalidResponse("body is not a string")
    elif result.get("isBase64Encoded") is True:
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse("isBase64Encoded but the body is not base64") from exc
    else:
        payload = body.encode("utf-8")
    for name, value in headers:
        # HTTP/1.1 cannot carry them (a line break would even start a header of its own).
        if not _TOKEN.fullmatch(name):
            raise InvalidResponse(f"header name {name!r} is not an HTTP token")
        if _CONTROL_CHARACTERS.search(value):
            raise InvalidResponse(f"header {name} has a control character")
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
    return HttpResponse(status, headers, payload)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ----------------------------------------------------------------------------------------- gateway


class AuthorizerCache:
    """The authorizer's answers per identity (value tuple), each kept ``ttl`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, ...], tuple[float, bool, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> tuple[bool, dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, allowed, context = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            return allowed, context

    def put(self, key: tuple[str, ...], allowed: bool, context: dict[str, Any], ttl: int) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, allowed, context)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class TokenBucket:
    """The stage's default route throttling: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self._throttle = throttle
        self._clock = clock
        self._tokens = float(throttle.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            refill = (now - self._updated) * self._throttle.rate
            self._tokens = min(float(self._throttle.burst), self._tokens + refill)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


LocalRoute = Callable[[HttpRequest], HttpResponse]


class Gateway:
    """Dispatches HTTP requests as the HTTP API would. Until :meth:`configure` it answers 503."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.api: ApiDefinition | None = None
        self.functions: Mapping[str, Invocable] = {}
        self.authorizer_cache = AuthorizerCache(clock)
        self._bucket: TokenBucket | None = None
        self._local_routes: dict[tuple[str, str], LocalRoute] = {}
        self._clock = clock

    def configure(self, api: ApiDefinition, functions: Mapping[str, Invocable]) -> None:
        missing = {route.function for route in api.routes} | {a.function for a in api.authorizers.values()}
        missing -= set(functions)
        if missing:
            raise ApiDefinitionError(f"functions {sorted(missing)} are not loaded")
        self.functions = functions
        self._bucket = TokenBucket(api.throttle, self._clock) if api.throttle else None
        self.api = api

    def add_local_route(self, method: str, path: str, handler: LocalRoute) -> None:
        """A route that is not the template's (the demo page): used only when no API route matches."""
        self._local_routes[(method.upper(), path)] = handler

    # -- dispatch

    def handle(self, request: HttpRequest) -> HttpResponse:
        facts = RequestFacts(request_id=request_id(), now=time.time(), trace_id=trace_id(time.time()))
        started = time.monotonic()
        route_key = "-"
        try:
            response, route_key = self._dispatch(request, facts)
        except Exception:
            log.error("gateway error on %s %s\n%s", request.method, request.raw_path, traceback.format_exc())
            response = gateway_error(500, "Internal Server Error")
        response.headers.append(("apigw-requestid", facts.request_id))
        access_log.info(
            '%s "%s %s%s" %d %s %.0fms',
            request.source_ip,
            request.method,
            request.raw_path,
            f"?{request.raw_query}" if request.raw_query else "",
            response.status,
            route_key,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _dispatch(self, request: HttpRequest, facts: RequestFacts) -> tuple[HttpResponse, str]:
        api = self.api
        if api is None:
            return gateway_error(503, "Service Unavailable"), "-"
        if len(request.body) > MAX_BODY_BYTES:
            return self._with_cors(request, gateway_error(413, "Request Entity Too Large")), "-"
        if api.cors is not None and self._is_preflight(request):
            return self._preflight(request, api.cors), "preflight"
        if self._bucket is not None and not self._bucket.take():
            return self._with_cors(request, gateway_error(429, "Too Many Requests")), "-"
        found = api.find_route(request.method, request.raw_path)
        if found is None:
            local = self._local_routes.get((request.method, request.raw_path))
            if local is not None:
                return local(request), "local"
            return self._with_cors(request, gateway_error(404, "Not Found")), "-"
        route, parameters = found
        authorizer_context: dict[str, Any] | None = None
        if route.authorizer is not None:
            denied, authorizer_context = self._authorize(request, api, route, parameters, facts)
            if denied is not None:
                return self._with_cors(request, denied), route.key
        event = build_event(
            request,
            api,
            route,
            path_parameters=parameters,
            facts=facts,
            authorizer_context=authorizer_context,
        )
        try:
            result = self.functions[route.function].invoke(event)
            response = translate_response(result)
        except FunctionError:
            response = gateway_error(500, "Internal Server Error")
        except InvalidResponse as exc:
            log.error("%s returned an invalid response: %s", route.function, exc)
            response = gateway_error(500, "Internal Server Error")
        return self._with_cors(request, response), route.key

    def _authorize(
        self,
        request: HttpRequest,
        api: ApiDefinition,
        route: Route,
        parameters: Mapping[str, str],
        facts: RequestFacts,
    ) -> tuple[HttpResponse | None, dict[str, Any] | None]:
        assert route.authorizer is not None
        config = api.authorizers[route.authorizer]
        identity = identity_values(request, config.identity_sources)
        if identity is None:
            return gateway_error(401, "Unauthorized"), None
        key = (config.name, *identity)
        cached = self.authorizer_cache.get(key)
        if cached is None:
            event = build_authorizer_event(
                request, api, route, path_parameters=parameters, identity=identity, facts=facts
            )
            try:
                result = self.functions[config.function].invoke(event)
                allowed, context = _authorizer_decision(result, config, event["routeArn"])
            except FunctionError:
                return gateway_error(500, "Internal Server Error"), None
            except InvalidResponse as exc:
                log.error("authorizer %s returned an invalid response: %s", config.name, exc)
                return gateway_error(500, "Internal Server Error"), None
            self.authorizer_cache.put(key, allowed, context, config.ttl_seconds)
        else:
            allowed, context = cached
        if not allowed:
            return gateway_error(403, "Forbidden"), None
        return None, context

    # -- CORS

    @staticmethod
    def _is_preflight(request: HttpRequest) -> bool:
        return (
            request.method == "OPTIONS"
            and request.header("origin") is not None
            and request.header("access-control-request-method") is not None
        )

    @staticmethod
    def _preflight(request: HttpRequest, cors: CorsConfig) -> HttpResponse:
        response = HttpResponse(204)
        allowed = cors.allowed_origin(request.header("origin"))
        if allowed is None:
            return response
        headers = [("access-control-allow-origin", allowed)]
        if cors.allow_credentials:
            headers.append(("access-control-allow-credentials", "true"))
        if cors.allow_methods:
            methods = cors.allow_methods
            if "*" in methods:
                methods = (request.header("access-control-request-method") or "",)
            headers.append(("access-control-allow-methods", ",".join(methods)))
        requested = request.header("access-control-request-headers")
        if cors.allow_headers:
            allow = ",".join(cors.allow_headers)
            if "*" in cors.allow_headers and requested:
                allow = requested
            headers.append(("access-control-allow-headers", allow))
        if cors.max_age is not None:
            headers.append(("access-control-max-age", str(cors.max_age)))
        if allowed != "*":
            headers.append(("vary", "origin"))
        response.headers = headers
        return response

    def _with_cors(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        cors = self.api.cors if self.api is not None else None
        if cors is None:
            return response
        # API Gateway replaces the integration's CORS headers with its own.
        response.headers = [
            (k, v) for k, v in response.headers if not k.lower().startswith("access-control-")
        ]
        allowed = cors.allowed_origin(request.header("origin"))
        if allowed is None:
            return response
        response.headers.append(("access-control-allow-origin", allowed))
        if cors.allow_credentials:
            response.headers.append(("access-control-allow-credentials", "true"))
        if cors.expose_headers:
            response.headers.append(("access-control-expose-headers", ",".join(cors.expose_headers)))
        if allowed != "*":
            response.headers.append(("vary", "origin"))
        return response


def _authorizer_decision(
    result: Any, config: AuthorizerConfig, route_arn: str
) -> tuple[bool, dict[str, Any]]:
    """(allowed, context) from an authorizer's answer (simple response, or an IAM policy)."""
    if not isinstance(result, dict):
        raise InvalidResponse("not a JSON object")
    context = result.get("context") or {}
    if not isinstance(context, dict):
        raise InvalidResponse("context is not an object")
    if config.simple_responses:
        allowed = result.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise InvalidResponse("isAuthorized is not a boolean")
        return allowed, context
    document = result.get("policyDocument")
    if not isinstance(document, dict):
        raise InvalidResponse("no policyDocument")
    return _policy_allows(document, route_arn), context


def _policy_allows(document: Mapping[str, Any], route_arn: str) -> bool:
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        resources = statement.get("Resource") or []
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        applies = any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions) and any(
            fnmatch.fnmatchcase(route_arn, r) for r in resources
        )
        if applies and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (applies and statement.get("Effect") == "Allow")
    return allowed


# ------------------------------------------------------------------------------------------ server

MAX_REQUEST_HEAD_BYTES = 10240
"""HTTP API's quota "Total combined size of request line and header values", 10240 bytes, not adjustable:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html

Counted here as the request line plus every header line (name, colon and value), line endings left out:
with the names counted too, a request the local stack accepts fits the quota however API Gateway counts.
Over it: 414 when the request line alone is too long, else 431."""
_LINGER_SECONDS = 2.0
_REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")  # visible ASCII: a URI, never raw spaces or bytes
_HTTP_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_DECIMAL = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(r"[0-9A-Fa-f]{1,16}")


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server handing every request to a :class:`Gateway`.

    Binding happens in the constructor, so a busy port is known before anything else starts.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__((host, port), _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        thread.start()
        return thread

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback on stderr for whatever ends a connection's thread; a client
        that goes away is not an error of the gateway, anything else is logged with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %r", client_address, error)
        else:
            log.error("error on the connection from %s", client_address, exc_info=True)


class _Rejected(Exception):
    """The request cannot reach the gateway: the server answers ``status`` itself and closes."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 in front of the :class:`Gateway`.

    http.server's own request parsing is replaced: it answers errors with HTML pages, only serves the
    methods it has a ``do_*`` for (501 otherwise), and allows 64 KiB lines and 100 headers. Here any
    method token goes to the gateway, which routes it as API Gateway does; the request line and headers
    are held to HTTP API's quota (:data:`MAX_REQUEST_HEAD_BYTES`); and whatever the server answers
    itself is API Gateway's JSON error (:meth:`send_error`), followed by closing the connection.
    """

    protocol_version = "HTTP/1.1"
    server_version = "local-apigateway"
    sys_version = ""
    timeout = 60  # idle keep-alive connections
    server: GatewayServer
    _responded = False
    _linger = False
    """Input may be left unread when the connection closes (see :meth:`finish`)."""

    def handle_one_request(self) -> None:
        self.close_connection = True  # until a well-formed request says otherwise
        self.command, self.path, self.requestline, self.request_version = "", "", "", "HTTP/1.1"
        self._responded = False
        try:
            try:
                if not self._read_head():
                    return  # the client closed the connection between requests
                self._serve()
            except _Rejected as rejected:
                self.send_error(rejected.status)
            self.wfile.flush()
        except (ConnectionError, TimeoutError) as exc:
            # The client went away, or sent nothing for `timeout` seconds: there is no one to answer.
            log.debug("connection from %s ended: %r", self.client_address[0], exc)
            self.close_connection = True
        except Exception:
            log.error("error serving %r", _excerpt(self.requestline), exc_info=True)
            self.close_connection = True
            if not self._responded:
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """API Gateway's JSON error instead of http.server's HTML page, and the connection closed after
        it: what follows a refused request cannot be trusted to start the next one."""
        response = gateway_error(code, _reason(code) or message or "Error")
        response.headers += [("apigw-requestid", request_id()), ("connection", "close")]
        self.close_connection = True
        self._linger = True
        access_log.info('%s "%s" %d -', self.client_address[0], _excerpt(self.requestline), code)
        self._send(response)

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._drain()

    # -- the request's head

    def _read_head(self) -> bool:
        """Parses the request line and headers (RFC 9112) into ``command``, ``path``, ``request_version``
        and ``headers``; False if the connection ended before a request began."""
        budget = MAX_REQUEST_HEAD_BYTES
        request_line = self._read_line(budget, HTTPStatus.REQUEST_URI_TOO_LONG)
        if request_line == "":  # RFC 9112 §2.2: ignore an empty line before the request line
            request_line = self._read_line(budget, HTTPStatus.REQUEST_URI_TOO_LONG)
        if request_line is None:
            return False
        self.requestline = request_line
        words = request_line.split(" ")
        if len(words) != 3:  # also HTTP/0.9's "GET /", which API Gateway does not speak
            raise _Rejected(HTTPStatus.BAD_REQUEST)
        method, target, version = words
        version_number = _HTTP_VERSION.fullmatch(version)
        if version_number is None:
            raise _Rejected(HTTPStatus.BAD_REQUEST)
        if version_number.group(1) != "1":
            raise _Rejected(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
        if not _TOKEN.fullmatch(method) or not _REQUEST_TARGET.fullmatch(target):
            raise _Rejected(HTTPStatus.BAD_REQUEST)
        self.command, self.path, self.request_version = method, target, version

        budget -= len(request_line)
        headers = HTTPMessage()
        while True:
            line = self._read_line(budget, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            if line is None:
                raise _Rejected(HTTPStatus.BAD_REQUEST)  # the connection ended within the headers
            if not line:
                break
            # A name is a token right before the colon: no space, no obs-fold continuation line.
            name, colon, value = line.partition(":")
            value = value.strip(" \t")
            if not colon or not _TOKEN.fullmatch(name) or _CONTROL_CHARACTERS.search(value):
                raise _Rejected(HTTPStatus.BAD_REQUEST)
            headers[name] = value  # a Message keeps repeated names
            budget -= len(line)
        self.headers = headers

        options = {part.strip().lower() for part in ",".join(headers.get_all("connection") or []).split(",")}
        persistent = "keep-alive" in options if version == "HTTP/1.0" else "close" not in options
        self.close_connection = not persistent
        if (headers.get("expect") or "").lower() == "100-continue" and version != "HTTP/1.0":
            self.handle_expect_100()
        return True

    def _read_line(self, budget: int, too_long: HTTPStatus) -> str | None:
        """One line without its ending (CRLF, or a bare LF as RFC 9112 §2.2 allows), of at most
        ``budget`` bytes (else ``too_long``); None if the connection ended before the line began."""
        limit = budget + 2
        raw = self.rfile.readline(limit)
        if not raw:
            return None
        if not raw.endswith(b"\n"):
            # Longer than allowed, or cut short by the client closing the connection.
            raise _Rejected(too_long if len(raw) == limit else HTTPStatus.BAD_REQUEST)
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if len(line) > budget:
            raise _Rejected(too_long)
        return line.decode("latin-1")  # every byte maps to one character, as http.server reads heads

    # -- the body

    def _serve(self) -> None:
        body = self._read_body()
        raw_path, _, raw_query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        request = HttpRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            server_host=str(host),
            server_port=int(port),
        )
        response = self.server.gateway.handle(request)
        if self.close_connection:
            response.headers.append(("connection", "close"))
        elif self.request_version == "HTTP/1.0":
            response.headers.append(("connection", "keep-alive"))  # HTTP/1.0 closes unless told otherwise
        self._send(response)

    def _read_body(self) -> bytes:
        """The body, or its first ``MAX_BODY_BYTES + 1`` bytes when it is larger: enough for the gateway
        to answer 413, after which the connection is closed with the rest unread."""
        codings = [
            coding.strip().lower()
            for value in self.headers.get_all("transfer-encoding") or []
            for coding in value.split(",")
        ]
        if codings:
            if codings[-1] != "chunked":
                raise _Rejected(HTTPStatus.BAD_REQUEST)  # RFC 9112 §6.3: the length cannot be known
            if self.headers.get_all("content-length"):
                self._close_after_this_request()  # RFC 9112 §6.3: chunked wins, then the connection closes
            return self._read_chunked()
        lengths = {
            length.strip()
            for value in self.headers.get_all("content-length") or []
            for length in value.split(",")
        }
        if not lengths:
            return b""
        declared = lengths.pop()
        if lengths or not _DECIMAL.fullmatch(declared):
            raise _Rejected(HTTPStatus.BAD_REQUEST)  # RFC 9112 §6.3: an invalid or ambiguous length
        wanted = min(int(declared), MAX_BODY_BYTES + 1)
        body = self.rfile.read(wanted)
        if len(body) < wanted:
            raise _Rejected(HTTPStatus.BAD_REQUEST)  # the client stopped before the end of its body
        if wanted < int(declared):
            self._close_after_this_request()  # with the rest of the body unread
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self._read_line(1024, HTTPStatus.BAD_REQUEST)
            digits = (line or "").split(";", 1)[0].strip(" \t")
            if not _CHUNK_SIZE.fullmatch(digits):
                raise _Rejected(HTTPStatus.BAD_REQUEST)
            length = int(digits, 16)
            if length == 0:
                break
            wanted = min(length, MAX_BODY_BYTES + 1 - size)
            chunk = self.rfile.read(wanted)
            if len(chunk) < wanted:
                raise _Rejected(HTTPStatus.BAD_REQUEST)
            chunks.append(chunk)
            size += wanted
            if size > MAX_BODY_BYTES:
                self._close_after_this_request()  # with the rest of the body unread
                return b"".join(chunks)
            if self._read_line(0, HTTPStatus.BAD_REQUEST) != "":  # the CRLF closing the chunk
                raise _Rejected(HTTPStatus.BAD_REQUEST)
        budget = MAX_REQUEST_HEAD_BYTES  # trailer fields: held to the same quota as the headers
        while True:
            trailer = self._read_line(budget, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            if trailer is None:
                raise _Rejected(HTTPStatus.BAD_REQUEST)
            if not trailer:
                return b"".join(chunks)
            budget -= len(trailer)

    def _close_after_this_request(self) -> None:
        self.close_connection = True
        self._linger = True

    # -- the response

    def _send(self, response: HttpResponse) -> None:
        self._responded = True
        self.send_response(response.status, _reason(response.status))
        for name, value in response.headers:
            self.send_header(name, _latin1(value))
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _drain(self) -> None:
        """Reads and drops what the client still sends, for up to two seconds, before the connection
        closes: closing a socket with unread input resets the connection, and a client reset before it
        reads the response loses it."""
        deadline = time.monotonic() + _LINGER_SECONDS
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)  # the client sees the end of the response
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    return

    def version_string(self) -> str:
        return self.server_version  # http.server appends " " and sys_version, empty here

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def _latin1(value: str) -> str:
    """A header value as http.server writes it (Latin-1); other characters go out as their UTF-8 bytes."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8").decode("latin-1")
    return value


def _excerpt(request_line: str) -> str:
    """A request line fit for one log line: control characters escaped, at most 200 characters."""
    return repr(request_line[:200])[1:-1]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
