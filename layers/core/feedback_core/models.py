"""Pydantic models of every request, response and stored record."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self

from annotated_types import Interval
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from feedback_core.errors import ValidationFailed
from feedback_core.token_limits import MAX_TOKEN_LENGTH

Outcome = Literal["positive", "negative"]
Scope = Literal["tokens:write", "feedback:read", "feedback:write"]
ALL_SCOPES: tuple[Scope, ...] = ("tokens:write", "feedback:read", "feedback:write")

ANONYMOUS = "anonymous"
"""The user id shared by every caller whose token has no user and who names none."""

TokenBinding = Literal["bound", "unbound"]
"""Whether the feedback token acting on a record is bound to the record's user. What a bound token writes
becomes that user's own: a token with no user bound may no longer read, change or retract it."""

MAX_DETAILS_BYTES = 8 * 1024
MAX_DETAILS_DEPTH = 5
MAX_CONTEXT_BYTES = 1024


# DynamoDB numbers have at most 38 significant digits and a magnitude between 1e-130 and 1e126. One
# bound serves integers and decimals alike (JSON does not tell 1e40 from its 41 digits): below 1e38.
MAX_NUMBER_DIGITS = 38
MAX_NUMBER_MAGNITUDE = 1e38
MIN_NUMBER_MAGNITUDE = 1e-130
NUMBER_RULE = "numbers must be finite, below 1e38 in magnitude and, unless 0, at least 1e-130"


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def _printable(value: str) -> str:
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    return _unicode(value)


def _storable(value: Any) -> None:
    """Raises ValueError for JSON values DynamoDB cannot store: NaN, infinities, numbers beyond its
    range or precision, invalid Unicode, empty object keys."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        _unicode(value)
    elif isinstance(value, int):
        if abs(value) >= 10**MAX_NUMBER_DIGITS:
            raise ValueError(NUMBER_RULE)
    elif isinstance(value, float):
        if (
            not math.isfinite(value)
            or abs(value) >= MAX_NUMBER_MAGNITUDE
            or (value and abs(value) < MIN_NUMBER_MAGNITUDE)
        ):
            raise ValueError(NUMBER_RULE)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not key:
                raise ValueError("object keys must not be empty")
            _unicode(key)
            _storable(item)
    elif isinstance(value, list):
        for item in value:
            _storable(item)


PRINTABLE_PATTERN = "^[^\\u0000-\\u001f\\u007f]+$"
"""What `_printable` enforces, stated for the JSON Schema (the validator gives the clearer message)."""
PATH_SEGMENT_PATTERN = "^[^/\\u0000-\\u001f\\u007f]+$"


def _text_schema(max_length: int, pattern: str) -> WithJsonSchema:
    """The JSON Schema of a text type, stating the rules its validators enforce."""
    return WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern})


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, strip_whitespace=False),
    AfterValidator(_printable),
    _text_schema(256, PRINTABLE_PATTERN),
]
"""Session ids (and filters): any printable text up to 256 characters."""


def _no_slash(value: str) -> str:
    if "/" in value:
        raise ValueError("must not contain '/' (run and user ids appear in URL paths)")
    return value


PathIdentifier = Annotated[Identifier, AfterValidator(_no_slash), _text_schema(256, PATH_SEGMENT_PATTERN)]
"""Run and user ids: as ``Identifier`` but without ``/``, because they are path segments of
``/v1/runs/{run_id}/feedback/{user_id}`` and ``/v1/users/{user_id}/feedback``, and API Gateway HTTP
APIs cannot route an encoded slash (``%2F``) inside one segment."""
ShortText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_printable),
    _text_schema(64, PRINTABLE_PATTERN),
]
ProjectName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


def whole(value: Any) -> Any:
    """8.0 is the integer 8 in JSON (and in JSON Schema); 8.5, "8" and true are not integers (the
    fields using this are strict ints, with their bounds declared before it so the schema states them)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


CURSOR_PATTERN = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"
Cursor = Annotated[
    str,
    StringConstraints(max_length=1024),
    WithJsonSchema({"type": "string", "maxLength": 1024, "pattern": CURSOR_PATTERN}),
]
"""An opaque `next_cursor` handed back; it is checked (400 if not genuine) when decoded."""


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value: a scalar is 0, {} or [] is 1."""
    if isinstance(value, dict):
        return 1 + max((json_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(item) for item in value), default=0)
    return 0


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _storable_number(value: float) -> float:
    _storable(value)
    return value


def _small_object(limit: int) -> AfterValidator:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        if json_depth(value) > MAX_DETAILS_DEPTH:
            raise ValueError(f"must be nested at most {MAX_DETAILS_DEPTH} levels deep")
        _storable(value)
        if json_size(value) > limit:
            raise ValueError(f"must be at most {limit} bytes as JSON")
        return value

    return AfterValidator(check)


TokenContext = Annotated[dict[str, Any], _small_object(MAX_CONTEXT_BYTES)]


# ---- dates: one rule for every query parameter that takes a date ------------------------------------------

EARLIEST_YEAR = 2000
LATEST_YEAR = 9999
DATE_MESSAGE = (
    "must be an ISO 8601 date (2026-11-23) or date-time with zone (2026-11-23T08:00:00Z), "
    f"in the years {EARLIEST_YEAR} to {LATEST_YEAR}"
)
DATE_PATTERN = (
    r"^[2-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
)
"""Calendar date, or date-time with its zone (Z or ±hh:mm): the rule `utc_moment` applies and the OpenAPI
document states. ASCII digits only, written out: `\\d` would also match other scripts' digits. Week
dates, ordinal dates, basic format, bare numbers and date-times without a zone do not match."""
_DATE = re.compile(DATE_PATTERN)
DATE_SUMMARY = "ISO 8601 date, or date-time with Z or ±hh:mm; years 2000 to 9999 (UTC)"


def _date_refusal() -> PydanticCustomError:
    return PydanticCustomError("date_or_date_time", DATE_MESSAGE)


def _parse_date_or_date_time(text: str) -> datetime:
    """The moment a DATE_PATTERN text names; a date alone is midnight UTC, beyond microseconds is dropped."""
    if not _DATE.fullmatch(text):
        raise _date_refusal()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:  # no such day, e.g. February 30th
        raise _date_refusal() from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_moment(value: Any) -> datetime:
    """The one date rule of every query parameter: an ISO 8601 calendar date (`2026-11-23`, midnight UTC)
    or date-time with seconds optional, a fraction of up to 9 digits and its zone (`2026-11-23T08:00Z`,
    `2026-11-23T09:00:00.5+01:00`), falling in the years 2000 to 9999 once in UTC. A date-time without a
    zone is refused rather than guessed. Returns the moment in UTC."""
    if isinstance(value, str):
        moment = _parse_date_or_date_time(value)
    elif isinstance(value, datetime):  # from Python callers; naive ones are theirs to mean UTC
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        raise _date_refusal()
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as error:  # past year 9999 once in UTC
        raise _date_refusal() from error
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise _date_refusal()
    return moment


DateOrDateTime = Annotated[
    datetime,
    BeforeValidator(utc_moment),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DATE_PATTERN,
            "description": DATE_SUMMARY,
            "examples": ["2026-11-23", "2026-11-23T08:00:00Z"],
        }
    ),
]
"""A date or moment in a query (start, end), validated by `utc_moment` and held as a UTC datetime."""


def window_refusal(message: str) -> ValidationFailed:
    """A start/end pair that cannot form a window, worded like every other query validation error."""
    return ValidationFailed(
        f"invalid request: start: {message}", details=[{"field": "start", "message": message}]
    )


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- requests --------------------------------------------------------------------------------------------


class FeedbackFields(StrictModel):
    """The feedback a write sets, shared by the token path and the API-key path. Fields left out keep their
    stored value; `null` clears one."""

    outcome: Outcome | None = None
    score: Annotated[int, Strict(), Interval(ge=-10, le=10), BeforeValidator(whole)] | None = None
    weight: Annotated[float, Field(ge=0, le=1), AfterValidator(_storable_number)] | None = None
    comment: Annotated[str, AfterValidator(_unicode)] | None = Field(None, max_length=5000)
    details: dict[str, Any] | None = Field(None, description="JSON object, at most 8 KB and depth 5")
    tags: list[ShortText] | None = Field(None, max_length=10)
    source: ShortText | None = Field(None, description="Where the feedback came from, default 'web'")

    @field_validator("details")
    @classmethod
    def _details_depth(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            if json_depth(value) > MAX_DETAILS_DEPTH:
                raise ValueError(f"must be nested at most {MAX_DETAILS_DEPTH} levels deep")
            _storable(value)
        return value

    @model_validator(mode="after")
    def _has_feedback(self) -> Self:
        if self.outcome is None and self.score is None and self.comment is None:
            raise ValueError("give at least one of outcome, score or comment")
        return self

    def details_size(self) -> int:
        return 0 if self.details is None else json_size(self.details)

    def record_fields(self) -> dict[str, Any]:
        """The record fields this request sets (value) or clears (None)."""
        fields = {"outcome", "score", "weight", "comment", "details", "tags", "source"}
        return {name: getattr(self, name) for name in self.model_fields_set & fields}


class FeedbackSubmission(FeedbackFields):
    """Body of POST /v1/feedback."""

    feedback_token: str | None = Field(
        None, max_length=MAX_TOKEN_LENGTH, description="Or header X-Feedback-Token"
    )
    user_id: PathIdentifier | None = Field(None, description="Only for tokens with no user bound")


BACKEND_SOURCE = "backend"
"""The `source` of a record written with an API key, unless the request names another."""
RUN_CONTEXT_FIELDS = ("session_id", "agent", "context")
"""What a token carries onto its records, and an API-key write states itself."""


class BackendFeedback(FeedbackFields):
    """Body of PUT /v1/runs/{run_id}/feedback/{user_id}: a backend writes one user's feedback with an API
    key. The session, agent and context a token would carry are fields here."""

    source: ShortText | None = Field(
        None,
        description=f"Where the feedback came from; every API-key write sets it, default '{BACKEND_SOURCE}'",
    )
    session_id: Identifier | None = None
    agent: ShortText | None = None
    context: TokenContext | None = Field(None, description="Small JSON object copied onto the record")

    def record_fields(self) -> dict[str, Any]:
        return super().record_fields() | {"source": self.source or BACKEND_SOURCE}

    def unchanged_run_context(self) -> frozenset[str]:
        """The run context fields this request leaves out, which keep their stored values."""
        return frozenset(RUN_CONTEXT_FIELDS) - self.model_fields_set


class BatchFeedback(BackendFeedback):
    """One item of POST /v1/feedback/batch: the record's run and user, and what PUT takes for them."""

    run_id: PathIdentifier
    user_id: PathIdentifier


MAX_BATCH_ITEMS = 100


class FeedbackBatch(StrictModel):
    """Body of POST /v1/feedback/batch. Each item is validated on its own (an invalid one is a failed item
    of the result, not a refused request)."""

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Objects with run_id, user_id and the fields of PUT /v1/runs/{run_id}/feedback/{user_id}",
    )


class TokenRequest(StrictModel):
    """Body of POST /v1/tokens."""

    run_id: PathIdentifier
    user_id: PathIdentifier | None = None
    session_id: Identifier | None = None
    agent: ShortText | None = None
    context: TokenContext | None = Field(None, description="Small JSON object copied onto the record")
    ttl_seconds: Annotated[int, Strict(), Interval(ge=1), BeforeValidator(whole)] | None = None


class ListQuery(StrictModel):
    """Query string of GET /v1/feedback."""

    start: DateOrDateTime | None = Field(None, description=f"Earliest created_at, inclusive. {DATE_SUMMARY}")
    end: DateOrDateTime | None = Field(None, description=f"Latest created_at, exclusive. {DATE_SUMMARY}")
    outcome: Outcome | None = None
    session_id: Identifier | None = None
    user_id: Identifier | None = None
    agent: ShortText | None = None
    source: ShortText | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None


# ---- token -----------------------------------------------------------------------------------------------


class TokenClaims(BaseModel):
    """Verified claims of a feedback token."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: str
    aud: str
    sub: str = Field(min_length=1, description="run id")
    prj: str = Field(min_length=1, description="project")
    uid: str | None = None
    ses: str | None = None
    agt: str | None = None
    ctx: dict[str, Any] | None = None
    iat: int
    exp: int


# ---- responses and records -------------------------------------------------------------------------------


class TokenResponse(BaseModel):
    feedback_token: str
    expires_at: str


class FeedbackRecord(BaseModel):
    """One user's feedback on one run, as stored and as returned."""

    feedback_id: str
    project: str
    run_id: str
    user_id: str
    session_id: str | None = None
    agent: str | None = None
    outcome: Outcome | None = None
    score: int | None = None
    weight: float = 1.0
    comment: str | None = None
    details: dict[str, Any] | None = None
    tags: list[str] | None = None
    source: str = "web"
    context: dict[str, Any] | None = None
    created_at: str
    updated_at: str
    version: int
    expires_at: int | None = None


class ItemError(BaseModel):
    code: str = Field(description="Stable error code, as in the error body of the matching single request")
    message: str = Field(description="What went wrong, for a person")
    details: list[dict[str, str]] | None = Field(None, description="Per field, for validation errors")


BatchItemStatus = Literal["created", "updated", "error"]


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's position in the request, from 0")
    status: BatchItemStatus
    feedback_id: str | None = None
    version: int | None = None
    error: ItemError | None = None


class BatchResult(BaseModel):
    """Answer of POST /v1/feedback/batch: one result per item, in the request's order."""

    results: list[BatchItemResult]
    created: int
    updated: int
    failed: int


class FeedbackPage(BaseModel):
    items: list[FeedbackRecord]
    next_cursor: str | None = None


class ErasureResult(BaseModel):
    deleted: int = Field(description="Records erased by this request")
    complete: bool = Field(description="No record of the user is left; if false, repeat the request")


class ApiKey(BaseModel):
    """An API key as stored: only the SHA-256 of the secret is kept."""

    key_hash: str
    project: ProjectName
    scopes: list[Scope]
    name: str = ""
    created_at: str
    revoked: bool = False


class Principal(BaseModel):
    """Who is calling with an API key, as the authorizer resolved it."""

    project: str
    scopes: frozenset[str]
    key_id: str = ""


class PageQuery(StrictModel):
    """Query string of GET /v1/runs/{run_id}/feedback."""

    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None
