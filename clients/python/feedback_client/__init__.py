"""Python client of the feedback service: `FeedbackClient` (sync) and `AsyncFeedbackClient` (asyncio)."""

from feedback_client._core import API_KEY_ENV, ENDPOINT_ENV, NO_RETRY, RetryPolicy
from feedback_client.aio import AsyncFeedbackClient
from feedback_client.client import FeedbackClient
from feedback_client.errors import (
    ApiError,
    BadRequest,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    FeedbackError,
    Forbidden,
    InternalError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Throttled,
    TooManyUpdates,
    Unauthorized,
    UnexpectedResponse,
    UnsupportedMediaType,
    ValidationFailed,
)
from feedback_client.models import (
    BackendFeedback,
    Erasure,
    FeedbackPage,
    FeedbackRecord,
    ImportFailure,
    ImportReport,
    IssuedToken,
    Stats,
    StatsBucket,
)

__version__ = "0.1.0"

__all__ = [
    "API_KEY_ENV",
    "ENDPOINT_ENV",
    "NO_RETRY",
    "ApiError",
    "AsyncFeedbackClient",
    "BackendFeedback",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Erasure",
    "FeedbackClient",
    "FeedbackError",
    "FeedbackPage",
    "FeedbackRecord",
    "Forbidden",
    "ImportFailure",
    "ImportReport",
    "InternalError",
    "IssuedToken",
    "NotFound",
    "PayloadTooLarge",
    "RetryPolicy",
    "ServiceUnavailable",
    "Stats",
    "StatsBucket",
    "Throttled",
    "TooManyUpdates",
    "Unauthorized",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "ValidationFailed",
]
