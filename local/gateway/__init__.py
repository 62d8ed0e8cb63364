"""An API Gateway HTTP API on 127.0.0.1 in front of the handlers: routes, Lambda authorizers, CORS and
throttling come from the template's resolved OpenAPI body and ``$default`` stage, none are written here.
Not emulated: timeouts, custom domains, stage variables, mutual TLS, parameter mapping."""

from local.gateway.dispatch import MAX_BODY_BYTES, Gateway
from local.gateway.payload import HttpRequest, HttpResponse
from local.gateway.routes import ApiDefinition
from local.gateway.server import MAX_REQUEST_HEAD_BYTES, GatewayServer

__all__ = ["MAX_BODY_BYTES", "MAX_REQUEST_HEAD_BYTES", "ApiDefinition", "Gateway", "GatewayServer"]
__all__ += ["HttpRequest", "HttpResponse"]
