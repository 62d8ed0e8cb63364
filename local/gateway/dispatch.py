"""The gateway without a socket: body limit, CORS preflight, throttling, routing, authorizer, integration."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from local.functions import FunctionError, Invocable
from local.gateway.payload import (
    HttpRequest,
    HttpResponse,
    InvalidResponse,
    RequestFacts,
    build_authorizer_event,
    build_event,
    gateway_error,
    translate_response,
)
from local.gateway.routes import ApiDefinition, CorsConfig, Route, Throttle

log = logging.getLogger("local.gateway")
access_log = logging.getLogger("local.access")

MAX_BODY_BYTES = 10 * 1024 * 1024
"""HTTP API's payload limit."""

LocalRoute = Callable[[HttpRequest], HttpResponse]
Result = TypeVar("Result")
Clock = Callable[[], float]


class _Answered(Exception):
    """The gateway answers the request itself with its JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = gateway_error(status, message)


class Gateway:
    """Dispatches requests as the HTTP API would. Until :meth:`configure` it answers 503."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.api: ApiDefinition | None = None
        self.functions: Mapping[str, Invocable] = {}
        # The authorizer's answers by identity: (expiry, allowed, context).
        self._decisions: dict[tuple[str, ...], tuple[float, bool, dict[str, Any]]] = {}
        self._tokens, self._refilled, self._lock = 0.0, 0.0, threading.Lock()  # the stage's throttling
        self._local_routes: dict[tuple[str, str], LocalRoute] = {}
        self._clock = clock

    def configure(self, api: ApiDefinition, functions: Mapping[str, Invocable]) -> None:
        self.functions = functions
        self._tokens, self._refilled = float(api.throttle.burst if api.throttle else 0), self._clock()
        self.api = api

    def add_local_route(self, method: str, path: str, handler: LocalRoute) -> None:
        """A route that is not the template's (the demo page): used only when no API route matches."""
        self._local_routes[(method.upper(), path)] = handler

    def handle(self, request: HttpRequest) -> HttpResponse:
        facts = RequestFacts.new()
        started = time.monotonic()
        try:
            response, route_key = self._dispatch(request, facts)
        except Exception:
            log.exception("gateway error on %s %s", request.method, request.raw_path)
            response, route_key = gateway_error(500, "Internal Server Error"), "-"
        response.headers.append(("apigw-requestid", facts.request_id))
        line = f"{request.method} {request.raw_path}" + (f"?{request.raw_query}" if request.raw_query else "")
        elapsed = (time.monotonic() - started) * 1000
        access_log.info('%s "%s" %d %s %.0fms', request.source_ip, line, response.status, route_key, elapsed)
        return response

    def _dispatch(self, request: HttpRequest, facts: RequestFacts) -> tuple[HttpResponse, str]:
        api = self.api
        if api is None:
            return gateway_error(503, "Service Unavailable"), "-"
        route_key = "-"
        try:
            if len(request.body) > MAX_BODY_BYTES:
                raise _Answered(413, "Request Entity Too Large")
            asked = request.header("origin"), request.header("access-control-request-method")
            if api.cors is not None and request.method == "OPTIONS" and None not in asked:
                return _preflight(api.cors, request), "preflight"
            if api.throttle is not None and not self._take_token(api.throttle):
                raise _Answered(429, "Too Many Requests")
            found = api.find_route(request.method, request.raw_path)
            local = self._local_routes.get((request.method, request.raw_path))
            if found is None and local is not None:
                return local(request), "local"
            if found is None:
                raise _Answered(404, "Not Found")
            route, parameters = found
            route_key = route.key
            context = self._authorize(request, api, route, parameters, facts) if route.authorizer else None
            event = build_event(
                request, api, route, path_parameters=parameters, facts=facts, authorizer_context=context
            )
            response = self._call(route.function, event, translate_response)
        except _Answered as answered:
            response = answered.response
        return _with_cors(api.cors, request, response), route_key

    def _authorize(
        self,
        request: HttpRequest,
        api: ApiDefinition,
        route: Route,
        parameters: Mapping[str, str],
        facts: RequestFacts,
    ) -> dict[str, Any]:
        """The authorizer's context; 401 without an identity (the authorizer is not called), 403 if denied."""
        assert route.authorizer is not None
        config = api.authorizers[route.authorizer]
        identity = [
            request.header(source.removeprefix("$request.header.")) or ""
            for source in config.identity_sources
        ]
        if not all(identity):
            raise _Answered(401, "Unauthorized")
        key = (config.name, *identity)
        expiry, allowed, context = self._decisions.get(key, (0.0, False, {}))
        if self._clock() >= expiry:
            event = build_authorizer_event(
                request, api, route, path_parameters=parameters, identity=identity, facts=facts
            )
            allowed, context = self._call(config.function, event, authorizer_decision)
            if config.ttl_seconds > 0:
                self._decisions[key] = (self._clock() + config.ttl_seconds, allowed, context)
        if not allowed:
            raise _Answered(403, "Forbidden")
        return context

    def _take_token(self, throttle: Throttle) -> bool:
        """Default route throttling: ``burst`` requests at once, refilled at ``rate`` per second."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(throttle.burst), self._tokens + (now - self._refilled) * throttle.rate)
            self._refilled = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def _call(self, function: str, event: dict[str, Any], read: Callable[[Any], Result]) -> Result:
        """``read`` of what the function returns; its error, or a result ``read`` refuses, is a 500."""
        try:
            return read(self.functions[function].invoke(event))
        except FunctionError:
            raise _Answered(500, "Internal Server Error") from None
        except InvalidResponse as exc:
            log.error("%s returned an invalid response: %s", function, exc)
            raise _Answered(500, "Internal Server Error") from exc


def authorizer_decision(result: Any) -> tuple[bool, dict[str, Any]]:
    """(allowed, context) from an authorizer's simple response."""
    if not isinstance(result, dict):
        raise InvalidResponse("not a JSON object")
    context = result.get("context") or {}
    if not isinstance(context, dict):
        raise InvalidResponse("context is not an object")
    allowed = result.get("isAuthorized")
    if not isinstance(allowed, bool):
        raise InvalidResponse("isAuthorized is not a boolean")
    return allowed, context


def _preflight(cors: CorsConfig, request: HttpRequest) -> HttpResponse:
    """Answered by the gateway itself: 204, with CORS headers only for an allowed origin."""
    allowed = cors.allowed_origin(request.header("origin"))
    if allowed is None:
        return HttpResponse(204)
    headers: list[tuple[str, str]] = []
    if cors.allow_methods:
        wildcard = "*" in cors.allow_methods
        methods = (request.header("access-control-request-method") or "",) if wildcard else cors.allow_methods
        headers.append(("access-control-allow-methods", ",".join(methods)))
    requested = request.header("access-control-request-headers")
    if cors.allow_headers:
        allow = requested if "*" in cors.allow_headers and requested else ",".join(cors.allow_headers)
        headers.append(("access-control-allow-headers", allow))
    if cors.max_age is not None:
        headers.append(("access-control-max-age", str(cors.max_age)))
    return HttpResponse(204, _origin_headers(cors, allowed, headers))


def _with_cors(cors: CorsConfig | None, request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """API Gateway replaces the integration's CORS headers with its own, given to allowed origins only."""
    if cors is None:
        return response
    response.headers = [(k, v) for k, v in response.headers if not k.lower().startswith("access-control-")]
    allowed = cors.allowed_origin(request.header("origin"))
    if allowed is not None:
        exposed = ",".join(cors.expose_headers)
        response.headers += _origin_headers(
            cors, allowed, [("access-control-expose-headers", exposed)] if exposed else []
        )
    return response


def _origin_headers(cors: CorsConfig, allowed: str, specific: list[tuple[str, str]]) -> list[tuple[str, str]]:
    credentials = [("access-control-allow-credentials", "true")] if cors.allow_credentials else []
    vary = [("vary", "origin")] if allowed != "*" else []
    return [("access-control-allow-origin", allowed), *credentials, *specific, *vary]
