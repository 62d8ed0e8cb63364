"""One exception class per error code of the service, each carrying code, message and request id."""

from __future__ import annotations

from typing import Any


class FeedbackError(Exception):
    """Base class of every error the client raises."""

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if code is not None:
            self.code = code
        self.request_id = request_id
        self.details = details or []
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.status}" if self.status is not None else ""
        if where and self.request_id:
            where += f", request {self.request_id}"
        where += ")" if where else ""
        fields = "; ".join(
            f"{d.get('field')}: {d.get('message')}" for d in self.details if isinstance(d, dict)
        )
        return f"{self.code}: {self.message}{': ' + fields if fields else ''}{where}"


class ConnectionFailed(FeedbackError):
    """The service could not be reached (or did not answer in time), after the retries."""

    code = "connection_error"


class ConfigurationError(FeedbackError):
    """The client is missing its endpoint or API key."""

    code = "configuration_error"


class UnexpectedResponse(FeedbackError):
    """The service answered something that is not the documented shape."""

    code = "unexpected_response"


class ApiError(FeedbackError):
    """An error answer of the service (`{"error": {"code", "message", "details"?}}`)."""

    code = "api_error"


class BadRequest(ApiError):
    code = "bad_request"


class Unauthorized(ApiError):
    code = "unauthorized"


class Forbidden(ApiError):
    code = "forbidden"


class NotFound(ApiError):
    code = "not_found"


class Conflict(ApiError):
    code = "conflict"


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"


class ValidationFailed(ApiError):
    code = "validation_error"


class TooManyUpdates(ApiError):
    """429 on one record: it reached its cap of versions (a cap, not a rate: retrying does not help)."""

    code = "too_many_updates"


class Throttled(ApiError):
    """429 from throttling (retried by the client before it is raised)."""

    code = "throttled"


class ServiceUnavailable(ApiError):
    code = "service_unavailable"


class InternalError(ApiError):
    code = "internal_error"


ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    error.code: error
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        TooManyUpdates,
        Throttled,
        ServiceUnavailable,
        InternalError,
    )
}

# API Gateway answers some requests itself as `{"message": ...}`: the class then follows the status.
ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: Throttled,
    500: InternalError,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}


def error_from_response(
    status: int, body: Any, request_id: str | None, retry_after: float | None
) -> ApiError:
    """The exception for an error answer, whatever its shape (the service's, API Gateway's, or none)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = str(error["code"])
        message = str(error.get("message") or code)
        details = error.get("details") if isinstance(error.get("details"), list) else None
        cls = ERRORS_BY_CODE.get(code) or ERRORS_BY_STATUS.get(status, ApiError)
    else:
        cls = ERRORS_BY_STATUS.get(status, ApiError)
        code = cls.code
        message = (
            str(body.get("message")) if isinstance(body, dict) and body.get("message") else f"HTTP {status}"
        )
        details = None
    return cls(
        message, status=status, code=code, request_id=request_id, details=details, retry_after=retry_after
    )
