"""The HTTP API as the template's resolved OpenAPI body and ``$default`` stage define it."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

_INTEGRATION_URI = re.compile(r"arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(.+)/invocations")
_PATH_VARIABLE = re.compile(r"\{([^}]+)\}")
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch"}


class ApiDefinitionError(ValueError):
    """The API uses something this gateway does not emulate."""


@dataclass(frozen=True)
class Route:
    """A route as the template declares them: one method, a path with ``{name}`` segments (no ``ANY``,
    greedy ``{name+}`` or ``$default`` route, which the template does not use)."""

    method: str  # upper-case
    path: str
    function: str  # logical id of the integration's function
    authorizer: str | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def rank(self) -> tuple[int, int]:
        """Lower is more specific: literal segments before variables."""
        segments = [s for s in self.path.split("/") if s]
        return sum(s.startswith("{") for s in segments), -len(segments)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route takes the request, else None."""
        if self.method != method:
            return None
        parts = _PATH_VARIABLE.split(self.path)  # literal, variable, literal, ...
        found = re.fullmatch("([^/]+)".join(map(re.escape, parts[::2])), path)
        return None if found is None else dict(zip(parts[1::2], map(unquote, found.groups()), strict=True))


@dataclass(frozen=True)
class AuthorizerConfig:
    name: str
    function: str  # logical id of the authorizer function
    identity_sources: tuple[str, ...]  # headers: $request.header.Authorization
    ttl_seconds: int = 0


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
            if fnmatch.fnmatchcase(origin.lower(), allowed.lower()):  # "*" matches any text
                return origin
        return None


@dataclass(frozen=True)
class Throttle:
    burst: int
    rate: float


@dataclass(frozen=True)
class ApiDefinition:
    """What the gateway serves: routes (most specific first), authorizers, CORS and throttling."""

    api_id: str
    routes: tuple[Route, ...]
    authorizers: Mapping[str, AuthorizerConfig]
    cors: CorsConfig | None = None
    throttle: Throttle | None = None

    @classmethod
    def from_openapi(
        cls,
        body: Mapping[str, Any],
        functions_by_arn: Mapping[str, str],
        api_id: str,
        stage: Mapping[str, Any] | None = None,
    ) -> ApiDefinition:
        """From the OpenAPI body of an ``AWS::ApiGatewayV2::Api`` and its stage's properties;
        ``functions_by_arn`` maps the function ARNs integration URIs name to logical ids."""

        def function_for(uri: Any, where: str) -> str:
            match = _INTEGRATION_URI.fullmatch(str(uri))
            if match is None or match[1] not in functions_by_arn:
                raise ApiDefinitionError(f"{where}: integration {uri!r} is not a function of the stack")
            return functions_by_arn[match[1]]

        authorizers: dict[str, AuthorizerConfig] = {}
        for name, scheme in (body.get("components", {}).get("securitySchemes") or {}).items():
            settings = scheme.get("x-amazon-apigateway-authorizer")
            if not settings:
                continue
            if settings.get("type") != "request" or not _boolean(settings.get("enableSimpleResponses")):
                raise ApiDefinitionError(f"authorizer {name}: only Lambda authorizers with simple responses")
            identity = settings.get("identitySource") or []  # headers only, as the template's
            sources = tuple([identity] if isinstance(identity, str) else identity)
            function = function_for(settings.get("authorizerUri"), f"authorizer {name}")
            ttl = int(settings.get("authorizerResultTtlInSeconds", 0) or 0)
            authorizers[name] = AuthorizerConfig(name, function, sources, ttl)

        routes: list[Route] = []
        for path, operations in (body.get("paths") or {}).items():
            for method, operation in operations.items():
                if not isinstance(operation, Mapping) or "x-amazon-apigateway-integration" not in operation:
                    continue
                where = f"{method.upper()} {path}"
                if method not in _HTTP_METHODS or "+}" in path or path == "/$default":
                    raise ApiDefinitionError(f"{where}: ANY, greedy and $default routes are not emulated")
                integration = operation["x-amazon-apigateway-integration"]
                if integration.get("type") != "aws_proxy":
                    raise ApiDefinitionError(f"{where}: only Lambda proxy integrations are emulated")
                version = str(integration.get("payloadFormatVersion", "2.0"))
                if version != "2.0":
                    raise ApiDefinitionError(f"{where}: payload format {version} is not emulated (2.0 is)")
                security = operation.get("security", body.get("security")) or []
                names = [name for requirement in security for name in requirement if name != "NONE"]
                function = function_for(integration.get("uri"), where)
                routes.append(Route(method.upper(), path, function, next(iter(names), None)))

        cors = body.get("x-amazon-apigateway-cors")
        throttling = (stage or {}).get("DefaultRouteSettings") or {}
        throttle = None
        if "ThrottlingBurstLimit" in throttling and "ThrottlingRateLimit" in throttling:
            throttle = Throttle(
                int(throttling["ThrottlingBurstLimit"]), float(throttling["ThrottlingRateLimit"])
            )
        routes.sort(key=lambda route: route.rank)
        return cls(api_id, tuple(routes), authorizers, _cors(cors) if cors else None, throttle)

    def find_route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:  # most specific first
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None


def _cors(settings: Mapping[str, Any]) -> CorsConfig:
    return CorsConfig(
        allow_origins=tuple(settings.get("allowOrigins") or ()),
        allow_methods=tuple(m.upper() for m in settings.get("allowMethods") or ()),
        allow_headers=tuple(h.lower() for h in settings.get("allowHeaders") or ()),
        expose_headers=tuple(h.lower() for h in settings.get("exposeHeaders") or ()),
        max_age=int(settings["maxAge"]) if settings.get("maxAge") is not None else None,
        allow_credentials=_boolean(settings.get("allowCredentials", False)),
    )


def _boolean(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
