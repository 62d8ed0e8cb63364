"""What the sync and async clients share: configuration, the requests of each operation, the retry policy
and the reading of answers. Only the sending differs between them."""

from __future__ import annotations

import email.utils
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from feedback_client.errors import (
    ConfigurationError,
    ConnectionFailed,
    FeedbackError,
    TooManyUpdates,
    UnexpectedResponse,
    ValidationFailed,
    error_from_response,
)
from feedback_client.models import BackendFeedback, BatchAnswer, FeedbackValues, ImportFailure, Outcome

ENDPOINT_ENV = "FEEDBACK_ENDPOINT"
API_KEY_ENV = "FEEDBACK_API_KEY"
USER_AGENT = "feedback-client/0.1.0"
MAX_BATCH = 100  # the service's limit per POST /v1/feedback/batch
MAX_PAGE = 100
REQUEST_ID_HEADER = "apigw-requestid"
DEFAULT_TIMEOUT = 30.0  # API Gateway gives an integration at most 30 s: a longer wait means no answer

AnswerT = TypeVar("AnswerT", bound=BaseModel)
Credential = Literal["api_key", "token", "none"]
DateLike = date | datetime | str


@dataclass(frozen=True)
class ClientConfig:
    """Where the service is and how to reach it; arguments win over the environment."""

    endpoint: str
    api_key: str | None
    timeout: float

    @classmethod
    def resolve(cls, endpoint: str | None, api_key: str | None, timeout: float) -> ClientConfig:
        endpoint = endpoint or os.environ.get(ENDPOINT_ENV)
        if not endpoint:
            raise ConfigurationError(f"no endpoint: pass endpoint= or set {ENDPOINT_ENV}")
        return cls(endpoint.rstrip("/"), api_key or os.environ.get(API_KEY_ENV) or None, timeout)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on throttling (429, except a record's cap of versions), 502/503/504 and connection errors.

    The wait is the server's ``Retry-After`` when it sends one (capped by ``max_retry_after``), otherwise
    exponential backoff with full jitter: uniform in [0, min(max_delay, base_delay * 2**retry)].
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def retryable(self, error: FeedbackError) -> bool:
        if isinstance(error, TooManyUpdates):
            return False  # a cap per record, not a rate: waiting does not lift it
        return error.status is None or error.status in self.retry_statuses

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**retry))


NO_RETRY = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class Call:
    """One HTTP request of an operation and the statuses that mean success."""

    method: str
    path: str
    credential: Credential
    ok: tuple[int, ...] = (200,)
    params: Mapping[str, str] | None = None
    body: Any = None
    token: str | None = None

    def headers(self, config: ClientConfig) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.credential == "api_key":
            if not config.api_key:
                raise ConfigurationError(
                    f"this operation needs an API key: pass api_key= or set {API_KEY_ENV}"
                )
            headers["Authorization"] = f"Bearer {config.api_key}"
        elif self.credential == "token" and self.token:
            headers["X-Feedback-Token"] = self.token
        return headers


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def read_answer(call: Call, response: httpx.Response) -> Any:
    """The JSON of a successful answer (None when it has no body), else the matching exception."""
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = None
        if response.status_code in call.ok:
            raise UnexpectedResponse(
                f"{call.method} {call.path} answered {response.status_code} without JSON",
                status=response.status_code,
                request_id=response.headers.get(REQUEST_ID_HEADER),
            ) from None
    if response.status_code in call.ok:
        return body
    raise error_from_response(
        response.status_code,
        body,
        response.headers.get(REQUEST_ID_HEADER),
        retry_after_seconds(response.headers.get("Retry-After")),
    )


def connection_error(call: Call, error: httpx.TransportError) -> FeedbackError:
    kind = "timed out" if isinstance(error, httpx.TimeoutException) else "failed"
    return ConnectionFailed(f"{call.method} {call.path} {kind}: {error or type(error).__name__}")


def parsed(model: type[AnswerT], body: Any, call: Call) -> AnswerT:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise UnexpectedResponse(f"{call.method} {call.path}: unexpected answer: {error}") from error


# --------------------------------------------------------------------------------------- the requests


def segment(value: str) -> str:
    """One path segment, percent-encoded (ids may hold any printable character except '/')."""
    return quote(value, safe="")


def date_param(value: DateLike) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else value


def query(**values: Any) -> dict[str, str]:
    return {
        name: date_param(value) if isinstance(value, date) else str(value)
        for name, value in values.items()
        if value is not None
    }


def issue_token(
    run_id: str,
    *,
    user_id: str | None,
    session_id: str | None,
    agent: str | None,
    context: Mapping[str, Any] | None,
    ttl_seconds: int | None,
) -> Call:
    body = {
        "run_id": run_id,
        "user_id": user_id,
        "session_id": session_id,
        "agent": agent,
        "context": dict(context) if context is not None else None,
        "ttl_seconds": ttl_seconds,
    }
    return Call(
        "POST", "/v1/tokens", "api_key", (201,), body={k: v for k, v in body.items() if v is not None}
    )


def send_feedback(token: str, values: FeedbackValues, user_id: str | None) -> Call:
    body = values.body() | ({"user_id": user_id} if user_id is not None else {})
    return Call("POST", "/v1/feedback", "token", (200, 201), body=body, token=token)


def my_feedback(method: Literal["GET", "DELETE"], token: str, user_id: str | None) -> Call:
    ok = (200,) if method == "GET" else (204,)
    return Call(method, "/v1/feedback/me", "token", ok, params=query(user_id=user_id), token=token)


def record_feedback(item: BackendFeedback) -> Call:
    path = f"/v1/runs/{segment(item.run_id)}/feedback/{segment(item.user_id)}"
    body = item.model_dump(exclude_none=True, exclude={"run_id", "user_id"}, mode="json")
    return Call("PUT", path, "api_key", (200, 201), body=body)


def batch(items: list[BackendFeedback]) -> Call:
    body = {"items": [item.model_dump(exclude_none=True, mode="json") for item in items]}
    return Call("POST", "/v1/feedback/batch", "api_key", (200,), body=body)


@dataclass(frozen=True)
class ListFilters:
    start: DateLike | None = None
    end: DateLike | None = None
    outcome: Outcome | None = None
    session_id: str | None = None
    user_id: str | None = None
    agent: str | None = None
    source: str | None = None


def list_page(filters: ListFilters, limit: int, cursor: str | None) -> Call:
    params = query(
        start=filters.start,
        end=filters.end,
        outcome=filters.outcome,
        session_id=filters.session_id,
        user_id=filters.user_id,
        agent=filters.agent,
        source=filters.source,
        limit=limit,
        cursor=cursor,
    )
    return Call("GET", "/v1/feedback", "api_key", params=params)


def run_page(run_id: str, limit: int, cursor: str | None) -> Call:
    return Call(
        "GET", f"/v1/runs/{segment(run_id)}/feedback", "api_key", params=query(limit=limit, cursor=cursor)
    )


def run_user(method: Literal["GET", "DELETE"], run_id: str, user_id: str) -> Call:
    ok = (200,) if method == "GET" else (204,)
    return Call(method, f"/v1/runs/{segment(run_id)}/feedback/{segment(user_id)}", "api_key", ok)


def stats(start: DateLike | None, end: DateLike | None, agent: str | None, granularity: str) -> Call:
    params = query(start=start, end=end, agent=agent, granularity=granularity)
    return Call("GET", "/v1/stats", "api_key", params=params)


def erase_user(user_id: str) -> Call:
    return Call("DELETE", f"/v1/users/{segment(user_id)}/feedback", "api_key", (200, 202))


# ------------------------------------------------------------------------------------- batch imports


@dataclass
class Chunk:
    """Consecutive input items sent in one batch request, with their positions in the input."""

    indexes: list[int]
    items: list[BackendFeedback]


def ids_of(item: Any) -> tuple[str | None, str | None]:
    if isinstance(item, BackendFeedback):
        return item.run_id, item.user_id
    if isinstance(item, Mapping):
        run_id, user_id = item.get("run_id"), item.get("user_id")
        return (str(run_id) if run_id is not None else None, str(user_id) if user_id is not None else None)
    return None, None


def chunks(
    items: Iterable[BackendFeedback | Mapping[str, Any]], size: int, rejected: list[ImportFailure]
) -> Iterator[Chunk]:
    """Batches of valid items; an item the service would refuse anyway is reported here, unsent."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    chunk = Chunk([], [])
    for index, raw in enumerate(items):
        try:
            item = raw if isinstance(raw, BackendFeedback) else BackendFeedback.model_validate(raw)
        except ValidationError as error:
            run_id, user_id = ids_of(raw)
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in error.errors()
            )
            rejected.append(
                ImportFailure(
                    index=index, run_id=run_id, user_id=user_id, code=ValidationFailed.code, message=message
                )
            )
            continue
        chunk.indexes.append(index)
        chunk.items.append(item)
        if len(chunk.items) == size:
            yield chunk
            chunk = Chunk([], [])
    if chunk.items:
        yield chunk


@dataclass(frozen=True)
class ChunkResult:
    """What the service did with one batch: how many it created and updated, and the items it refused."""

    created: int
    updated: int
    failures: list[ImportFailure]

    def counts(self) -> tuple[int, int, list[ImportFailure]]:
        return self.created, self.updated, self.failures

    @classmethod
    def answered(cls, chunk: Chunk, answer: BatchAnswer) -> ChunkResult:
        failures = []
        for result in answer.results:
            if result.status != "error":
                continue
            index = chunk.indexes[result.index] if 0 <= result.index < len(chunk.indexes) else -1
            item = chunk.items[result.index] if index >= 0 else None
            failures.append(
                ImportFailure(
                    index=index,
                    run_id=item.run_id if item else None,
                    user_id=item.user_id if item else None,
                    code=result.error.code if result.error else "error",
                    message=result.error.message if result.error else "refused by the service",
                )
            )
        created = sum(1 for result in answer.results if result.status == "created")
        updated = sum(1 for result in answer.results if result.status == "updated")
        return cls(created, updated, failures)

    @classmethod
    def failed(cls, chunk: Chunk, error: FeedbackError) -> ChunkResult:
        """Every item of a batch the service did not take as a whole."""
        failures = [
            ImportFailure(
                index=index, run_id=item.run_id, user_id=item.user_id, code=error.code, message=error.message
            )
            for index, item in zip(chunk.indexes, chunk.items, strict=True)
        ]
        return cls(0, 0, failures)


class Progress:
    """Reports processed items to a callback: the batches as they finish, and the items refused unsent."""

    def __init__(self, callback: Callable[[int], None] | None, rejected: list[ImportFailure]) -> None:
        self.callback = callback
        self.rejected = rejected
        self.rejected_reported = 0

    def advance(self, sent: int) -> None:
        newly_rejected = len(self.rejected) - self.rejected_reported
        self.rejected_reported = len(self.rejected)
        if self.callback and (sent or newly_rejected):
            self.callback(sent + newly_rejected)
