"""An API Gateway HTTP API on 127.0.0.1 in front of the handlers: routes, Lambda authorizers, CORS and
throttling read from the template's resolved OpenAPI body and ``$default`` stage, nothing written here.

Not emulated: timeouts (a function over its ``Timeout`` or the 30 s integration limit still answers),
custom domains and stage variables, mutual TLS, request/response parameter mapping.
"""

from local.gateway.dispatch import MAX_BODY_BYTES, Gateway, LocalRoute
from local.gateway.payload import HttpRequest, RequestFacts, build_authorizer_event, build_event
from local.gateway.responses import HttpResponse, InvalidResponse, gateway_error, translate_response
from local.gateway.routes import (
    ApiDefinition,
    ApiDefinitionError,
    AuthorizerConfig,
    CorsConfig,
    Route,
    Throttle,
)
from local.gateway.server import MAX_REQUEST_HEAD_BYTES, GatewayServer

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_REQUEST_HEAD_BYTES",
    "ApiDefinition",
    "ApiDefinitionError",
    "AuthorizerConfig",
    "CorsConfig",
    "Gateway",
    "GatewayServer",
    "HttpRequest",
    "HttpResponse",
    "InvalidResponse",
    "LocalRoute",
    "RequestFacts",
    "Route",
    "Throttle",
    "build_authorizer_event",
    "build_event",
    "gateway_error",
    "translate_response",
]
