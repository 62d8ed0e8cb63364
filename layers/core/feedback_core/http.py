"""The HTTP layer every API function shares: resolver, JSON errors, readable validation messages."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from feedback_core.errors import (
    BadRequest,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    ValidationFailed,
)
from feedback_core.fields import PathIdentifier
from feedback_core.observability import logger
from feedback_core.settings import ConfigurationError, FunctionSettings, load_settings

RunId = Annotated[PathIdentifier, Path(description="The run's id")]
UserId = Annotated[PathIdentifier, Path(description="The user's id")]
"""Path parameters, validated like the body fields that name the same ids (422 when invalid)."""

MAX_BODY_BYTES = 32 * 1024
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    """A JSON answer. A model is serialised once, by pydantic-core, to the text sent: given a dict, the
    resolver would walk it with its own encoder and then dump it again."""
    if isinstance(body, BaseModel):
        body = body.model_dump_json()
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def error_response(error: ServiceError) -> Response[Any]:
    return json_response(error.status, error.body(), error.headers)


INTERNAL_ERROR_BODY = {"error": {"code": "internal_error", "message": "the request could not be completed"}}
"""A 500's body: it tells the caller nothing of the cause (which is logged)."""


def log_misconfiguration(error: ConfigurationError) -> None:
    logger.error("the function is misconfigured", extra={"configuration_error": str(error)})


def _field_name(location: Sequence[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def readable_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic error entries as {field, message}: what a person needs to fix the request."""
    readable = []
    for entry in errors:
        message = str(entry.get("msg") or entry.get("type", "invalid value"))
        message = message.removeprefix("Value error, ")
        readable.append({"field": _field_name(entry.get("loc", ())), "message": message})
    return readable


def validation_failure(errors: Sequence[Any]) -> ServiceError:
    if any(entry.get("type") == "json_invalid" for entry in errors):
        return BadRequest("request body is not valid JSON")
    details = readable_errors(errors)
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in details)
    return ValidationFailed(f"invalid request: {summary}", details=details)


MAX_JSON_DEPTH = 20
"""Deepest JSON nesting a request body may have (details allow 5 levels below the body object)."""
MAX_JSON_INTEGER_DIGITS = 38
"""Longest integer literal parsed: DynamoDB stores at most 38 significant digits, and Python refuses to
convert integers of more than 4,300 digits at all."""
JSON_MEDIA_TYPE = "application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
"""A whole string (an unterminated one runs to the end, so every match succeeds: linear time) or a
bracket."""


def _raw_body(event: Mapping[str, Any]) -> bytes | ServiceError:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return BadRequest("the request body is not valid base64")


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``application/JSON; charset="UTF-8"`` → ("application/json", {"charset": "utf-8"})."""
    media_type, *parameters = content_type.split(";")
    options = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        options[name.strip().lower()] = value.strip().strip('"').lower()
    return media_type.strip().lower(), options


def body_refusal(event: Mapping[str, Any], max_bytes: int = MAX_BODY_BYTES) -> ServiceError | None:
    """Why a request body is refused before anything parses it, or None.

    The API speaks JSON only: any other body type, form encodings included, is 415 — they are the
    content types a cross-site HTML form can send without a CORS preflight. A request with no body
    needs no Content-Type; bodies of GET and DELETE requests are ignored. Invalid UTF-8 and nesting
    beyond MAX_JSON_DEPTH are 400.
    """
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "")).upper()
    if method not in BODY_METHODS:
        return None  # no route of these methods reads a body, so none is parsed
    raw = _raw_body(event)
    if isinstance(raw, ServiceError):
        return raw
    if len(raw) > max_bytes:
        return PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    if not raw:
        return None
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    media_type, options = _media_type(headers.get("content-type", ""))
    if media_type != JSON_MEDIA_TYPE or options.get("charset", "utf-8") != "utf-8":
        return UnsupportedMediaType(
            "send the body as application/json (UTF-8)"
            + (f"; got {media_type}" if media_type else "; the Content-Type header is missing")
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return BadRequest(f"the request body is not valid UTF-8 (byte {error.start})")
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        return BadRequest(f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    return None


def _json_content_type(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with its Content-Type spelled as the resolver's body parser expects (it compares
    case-sensitively; media types are case-insensitive), once body_refusal has accepted it."""
    headers = event.get("headers") or {}
    if "content-type" not in headers:
        return event
    return {**event, "headers": {**headers, "content-type": JSON_MEDIA_TYPE}}


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit``, found without parsing it (the
    parser recurses, so depth is checked first). Brackets inside strings do not count."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        if token[0] in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token[0] in ("]", "}"):
            depth -= 1
    return False


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        message = f"integers may have at most {MAX_JSON_INTEGER_DIGITS} digits"
        raise ValidationFailed(f"invalid request: {message}", details=[{"field": "body", "message": message}])
    return int(literal)


def _no_constant(name: str) -> Any:
    raise BadRequest(f"request body is not valid JSON: {name} is not a JSON value")


def parse_json_body(text: str) -> Any:
    """The request body as JSON (strict: no NaN/Infinity, bounded integers); 400 if malformed. Runs only
    on bodies `body_refusal` accepted, so the recursive parser never meets more than MAX_JSON_DEPTH."""
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


_PATH_VARIABLE = re.compile(r"\{(\w+)\+?\}")


def routing_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with ``rawPath`` rebuilt from the route API Gateway matched and its path parameters.

    HTTP APIs deliver ``rawPath`` percent-decoded (and cut at a decoded ``?``), so an id holding ``?``,
    ``#`` or a character outside the resolver's path pattern would miss its route; the parameters
    themselves arrive decoded and whole. Rebuilt with each value percent-encoded, the path always
    matches; the resolver decodes the values again (``_convert_matches_into_route_keys``).
    """
    _, _, template = str(event.get("routeKey", "")).partition(" ")
    parameters = event.get("pathParameters") or {}
    if not parameters or not _PATH_VARIABLE.search(template):
        return event
    path = _PATH_VARIABLE.sub(lambda variable: quote(parameters.get(variable[1], ""), safe=""), template)
    stage = (event.get("requestContext") or {}).get("stage", "$default")
    prefix = "" if stage == "$default" else f"/{stage}"
    return {**event, "rawPath": prefix + path}


class FeedbackResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver with pydantic validation and the service's error format."""

    def __init__(
        self,
        *,
        requires: Sequence[type[FunctionSettings]] = (),
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        """`requires`: the settings the function's routes read, checked at every invocation, so a
        misconfigured function fails at its first, whatever the route. `body_limits`: the routes (route
        keys, "POST /v1/feedback/batch") whose bodies may exceed MAX_BODY_BYTES, and their limit."""
        super().__init__(enable_validation=True, json_body_deserializer=parse_json_body)
        self._required_settings = tuple(requires)
        self._body_limits = dict(body_limits or {})
        self.exception_handler(ServiceError)(error_response)
        self.exception_handler(RequestValidationError)(self._request_invalid)
        self.exception_handler(ValidationError)(self._model_invalid)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported)
        self.exception_handler(ClientError)(self._aws_error)
        self.exception_handler(ConfigurationError)(self._misconfigured)
        self.not_found()(self._no_route)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            for kind in self._required_settings:
                load_settings(kind)
        except ConfigurationError as error:
            log_misconfiguration(error)
            return self._unrouted(HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR_BODY)
        limit = self._body_limits.get(str(event.get("routeKey", "")), MAX_BODY_BYTES)
        refusal = body_refusal(event, limit)
        if refusal is not None:
            return self._unrouted(refusal.status, refusal.body())
        return super().resolve(routing_event(_json_content_type(event)), context)

    def _unrouted(self, status: int, body: dict[str, Any]) -> dict[str, Any]:
        """A JSON answer given before routing (the resolver's own pipeline never runs)."""
        return {
            "statusCode": status,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": self._serializer(body),
            "isBase64Encoded": False,
        }

    def _convert_matches_into_route_keys(self, match: re.Match[str]) -> dict[str, str]:
        return {name: unquote(value) for name, value in match.groupdict().items()}

    @staticmethod
    def _request_invalid(error: RequestValidationError) -> Response[Any]:
        return error_response(validation_failure(error.errors()))

    @staticmethod
    def _model_invalid(error: ValidationError) -> Response[Any]:
        return error_response(validation_failure(error.errors()))

    @staticmethod
    def _unsupported(_: RequestUnsupportedContentType) -> Response[Any]:
        return error_response(UnsupportedMediaType("send the body as application/json"))

    @staticmethod
    def _no_route(_: NotFoundError) -> Response[Any]:
        return json_response(
            HTTPStatus.NOT_FOUND, {"error": {"code": "not_found", "message": "no such route"}}
        )

    @staticmethod
    def _aws_error(error: ClientError) -> Response[Any]:
        code = error.response.get("Error", {}).get("Code", "")
        if code in THROTTLING_CODES:
            logger.warning("throttled by AWS", extra={"aws_error": code})
            return json_response(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"error": {"code": "throttled", "message": "the service is busy; retry shortly"}},
                {"Retry-After": "1"},
            )
        logger.exception("AWS call failed", extra={"aws_error": code})
        return json_response(HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR_BODY)

    @staticmethod
    def _misconfigured(error: ConfigurationError) -> Response[Any]:
        log_misconfiguration(error)
        return json_response(HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR_BODY)
