"""The HTTP layer every API function shares: resolver, JSON errors, readable validation messages."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
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
from feedback_core.observability import logger

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
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def error_response(error: ServiceError) -> Response[Any]:
    return json_response(error.status, error.body(), error.headers)


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


def _body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return len(base64.b64decode(body))
        except (binascii.Error, ValueError):
            return len(body)
    return len(body.encode())


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

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        self.exception_handler(ServiceError)(error_response)
        self.exception_handler(RequestValidationError)(self._request_invalid)
        self.exception_handler(ValidationError)(self._model_invalid)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported)
        self.exception_handler(ClientError)(self._aws_error)
        self.not_found()(self._no_route)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        if _body_size(event) > MAX_BODY_BYTES:
            error = PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
            return {
                "statusCode": error.status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": self._serializer(error.body()),
                "isBase64Encoded": False,
            }
        return super().resolve(routing_event(event), context)

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
        return json_response(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            {"error": {"code": "internal_error", "message": "the request could not be completed"}},
        )
