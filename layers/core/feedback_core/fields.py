"""The value types the models' fields share: identifiers, bounded text, storable numbers and JSON,
dates, and the constants that name them."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from feedback_core.errors import ValidationFailed

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


def valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def _printable(value: str) -> str:
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    return valid_unicode(value)


def check_storable(value: Any) -> None:
    """Raises ValueError for JSON values DynamoDB cannot store: NaN, infinities, numbers beyond its
    range or precision, invalid Unicode, empty object keys."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        valid_unicode(value)
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
            valid_unicode(key)
            check_storable(item)
    elif isinstance(value, list):
        for item in value:
            check_storable(item)


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


def storable_number(value: float) -> float:
    check_storable(value)
    return value


def _small_object(limit: int) -> AfterValidator:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        if json_depth(value) > MAX_DETAILS_DEPTH:
            raise ValueError(f"must be nested at most {MAX_DETAILS_DEPTH} levels deep")
        check_storable(value)
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
