"""Writes functions/meta/openapi.json: one OpenAPI document merged from every API function's routes.

The handlers give the paths, request bodies and header parameters (Powertools builds them from the
pydantic models); this script adds what the handlers cannot say about themselves: the query parameters
their models validate, every status each operation answers with its body schema and headers, the
security scheme of each route, the rules the models enforce beyond JSON Schema, and examples.
Run `make openapi` after changing a route or a model; a test fails while the file is out of date, and
another while a route answers a status the document does not list (see tests/unit/test_openapi.py).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from feedback_core.errors import ServiceError
from feedback_core.fields import (
    MAX_CONTEXT_BYTES,
    MAX_DETAILS_BYTES,
    MAX_DETAILS_DEPTH,
    MAX_NUMBER_MAGNITUDE,
    MIN_NUMBER_MAGNITUDE,
    PATH_SEGMENT_PATTERN,
)
from feedback_core.models import (
    MAX_BATCH_ITEMS,
    BatchResult,
    ErasureResult,
    FeedbackPage,
    FeedbackRecord,
    ListQuery,
    PageQuery,
    TokenResponse,
)
from feedback_core.stats import MAX_DAYS, StatsQuery, StatsResponse

ROOT = Path(__file__).resolve().parents[1]
API_FUNCTIONS = ["issue_token", "submit_feedback", "query", "admin", "meta"]
TARGET = ROOT / "functions" / "meta" / "openapi.json"
SCHEMAS = "#/components/schemas/"

QUERY_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("get", "/v1/feedback"): ListQuery,
    ("get", "/v1/runs/{run_id}/feedback"): PageQuery,
    ("get", "/v1/stats"): StatsQuery,
}
RESPONSE_MODELS: list[type[BaseModel]] = [
    FeedbackRecord,
    FeedbackPage,
    TokenResponse,
    ErasureResult,
    StatsResponse,
    BatchResult,
]
SECURITY = {
    "issue_token": [{"apiKey": []}],
    "query": [{"apiKey": []}],
    "admin": [{"apiKey": []}],
    "submit_feedback": [{"feedbackToken": []}],
    "meta": [],
}

ERROR_CODES = {cls.status: cls.code for cls in [*ServiceError.__subclasses__(), ServiceError]} | {
    429: "too_many_updates | throttled"
}
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted: the work goes on with the next identical request",
    204: "No Content",
    304: "Not Modified: the If-None-Match header names the current ETag",
    400: "Malformed request: invalid JSON or UTF-8, JSON nested too deep, a bad cursor",
    401: "Missing, invalid or expired credential",
    403: "The API key lacks the scope, or the token is bound to another user or the record is owned",
    404: "No such record",
    409: "If-Match names another version, or the record is being written concurrently",
    413: "Request body over 32 KiB (a batch: 1 MiB), or details over 8 KB",
    415: "The request body is not application/json (UTF-8)",
    422: "Invalid field values; details name each field",
    429: "Too many versions of one record, or throttled; Retry-After says when to retry",
    414: "Request line over API Gateway's 10,240-byte limit",
    431: "Request line and headers over API Gateway's 10,240-byte limit",
}
GATEWAY_STATUSES = {401, 414, 429, 431}
"""Statuses API Gateway itself may answer, in its own format {"message": ...}: 401 when an API-key route
gets no Authorization header (the authorizer is not called), 403 on an API-key route when the header
cannot hold a key (the authorizer denies it), 429 when the stage is throttled, 414/431
when the request line or headers exceed HTTP API's 10,240 bytes (docs/LOCAL.md)."""
EVERY_OPERATION = [414, 429, 431]
"""What any operation may answer before a function runs."""

_RUN = "run-42"
_RECORD_EXAMPLE = {
    "feedback_id": "0b6f3f9e-8d1a-4c55-9d61-3f0f0f3f8b2a",
    "project": "my-app",
    "run_id": _RUN,
    "user_id": "user-7",
    "session_id": "session-3",
    "agent": "support-bot",
    "outcome": "positive",
    "score": 8,
    "weight": 1.0,
    "comment": "Spot on, thanks",
    "details": {"reason": "accurate"},
    "tags": ["billing"],
    "source": "web",
    "context": {"model": "large-2"},
    "created_at": "2026-11-23T08:00:00.123Z",
    "updated_at": "2026-11-23T08:01:10.456Z",
    "version": 2,
    "expires_at": 1803456000,
}
_BUCKET_EXAMPLE = {
    "start": "2026-11-23",
    "positive": 12,
    "negative": 3,
    "score_count": 9,
    "score_sum": 41.0,
    "score_weighted_mean": 4.56,
    "comments": 5,
}


@dataclass
class Success:
    status: int
    schema: dict[str, Any] | None = None
    example: Any = None
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass
class Operation:
    """What the handlers cannot say about one operation."""

    successes: list[Success]
    errors: list[int]
    description: str = ""
    request_example: Any = None


ETAG = {
    "ETag": {"required": True, "description": 'The record version: "<version>"', "schema": {"type": "string"}}
}
CACHED = {"Cache-Control": {"required": True, "schema": {"type": "string"}}}
STATIC_FILE = CACHED | {
    "ETag": {"required": True, "description": "The file's version", "schema": {"type": "string"}}
}
RECORD = {"$ref": SCHEMAS + "FeedbackRecord"}
PAGE = {"$ref": SCHEMAS + "FeedbackPage"}
TOKEN_ERRORS = [401, 403, 422, 429]
KEY_ERRORS = [401, 403, 422, 429]
BODY_ERRORS = [400, 413, 415, 422]
OWNED_RECORDS = (
    " A token with no user bound acts for the query parameter `user_id` (else `anonymous`), but never on a"
    " record written through a user-bound token (403)."
)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/v1/tokens"): Operation(
        [
            Success(
                201,
                {"$ref": SCHEMAS + "TokenResponse"},
                {"feedback_token": "eyJ...", "expires_at": "2026-11-24T08:00:00.000Z"},
            )
        ],
        sorted({*BODY_ERRORS, *KEY_ERRORS}),
        "Issues a feedback token bound to one run and optionally one user (scope `tokens:write`). The token's"
        " signed part must fit 4,096 bytes: very long non-ASCII ids or a large context are refused with 422.",
        {
            "run_id": _RUN,
            "user_id": "user-7",
            "session_id": "session-3",
            "agent": "support-bot",
            "ttl_seconds": 3600,
        },
    ),
    ("post", "/v1/feedback"): Operation(
        [
            Success(201, RECORD, _RECORD_EXAMPLE | {"version": 1}, ETAG),
            Success(200, RECORD, _RECORD_EXAMPLE, ETAG),
        ],
        sorted({*BODY_ERRORS, *TOKEN_ERRORS, 409}),
        "Creates (201) or changes (200) the caller's feedback on the token's run. At least one of `outcome`,"
        " `score` or `comment` must be given (not null). Fields left out keep their value; `null` clears one."
        ' `If-Match` makes the write conditional on a version (`"0"`: only if none exists yet). At most'
        " `MaxUpdatesPerRecord` versions per record (then 429)." + OWNED_RECORDS,
        {"outcome": "positive", "score": 8, "comment": "Spot on, thanks"},
    ),
    ("get", "/v1/feedback/me"): Operation(
        [Success(200, RECORD, _RECORD_EXAMPLE, ETAG)],
        sorted({*TOKEN_ERRORS, 404}),
        "The caller's current feedback on the token's run." + OWNED_RECORDS,
    ),
    ("delete", "/v1/feedback/me"): Operation(
        [Success(204)], sorted({*TOKEN_ERRORS, 404}), "Retracts the caller's feedback." + OWNED_RECORDS
    ),
    ("get", "/v1/feedback"): Operation(
        [Success(200, PAGE, {"items": [_RECORD_EXAMPLE], "next_cursor": None})],
        sorted({*KEY_ERRORS, 400}),
        "The project's feedback, newest first (scope `feedback:read`). Pass `next_cursor` back as `cursor`"
        " with the same filters; an edited cursor, or one from other filters, is 400.",
    ),
    ("get", "/v1/runs/{run_id}/feedback"): Operation(
        [Success(200, PAGE, {"items": [_RECORD_EXAMPLE], "next_cursor": None})],
        sorted({*KEY_ERRORS, 400}),
        "Every user's feedback on one run, by user id (scope `feedback:read`).",
    ),
    ("get", "/v1/runs/{run_id}/feedback/{user_id}"): Operation(
        [Success(200, RECORD, _RECORD_EXAMPLE)], sorted({*KEY_ERRORS, 404}), "One user's feedback on one run."
    ),
    ("delete", "/v1/runs/{run_id}/feedback/{user_id}"): Operation(
        [Success(204)],
        sorted({*KEY_ERRORS, 404}),
        "Removes one record (scope `feedback:write`); subscribers see a Retracted event with actor admin.",
    ),
    ("put", "/v1/runs/{run_id}/feedback/{user_id}"): Operation(
        [
            Success(201, RECORD, _RECORD_EXAMPLE | {"version": 1, "source": "backend"}, ETAG),
            Success(200, RECORD, _RECORD_EXAMPLE | {"source": "backend"}, ETAG),
        ],
        sorted({*BODY_ERRORS, *KEY_ERRORS, 409}),
        "Creates (201) or changes (200) one user's feedback on one run of the key's project (scope"
        " `feedback:write`), as POST /v1/feedback does for a token's holder: the same fields, limits,"
        " versions (`If-Match`, at most `MaxUpdatesPerRecord`, then 429), record and events. The session,"
        " agent and context a token would carry are fields; left out, they keep their stored values. `source`"
        " is `backend` unless given. The key may write any record of its project; a record written for a"
        " named user is that user's own (a token with no user bound gets 403 on it).",
        {"outcome": "positive", "score": 8, "comment": "Resolved on the phone", "agent": "support-bot"},
    ),
    ("post", "/v1/feedback/batch"): Operation(
        [
            Success(
                200,
                {"$ref": SCHEMAS + "BatchResult"},
                {
                    "results": [
                        {
                            "index": 0,
                            "status": "created",
                            "feedback_id": _RECORD_EXAMPLE["feedback_id"],
                            "version": 1,
                        },
                        {
                            "index": 1,
                            "status": "error",
                            "error": {
                                "code": "validation_error",
                                "message": "invalid request: score: Input should be less than or equal to 10",
                                "details": [
                                    {"field": "score", "message": "Input should be less than or equal to 10"}
                                ],
                            },
                        },
                    ],
                    "created": 1,
                    "updated": 0,
                    "failed": 1,
                },
            )
        ],
        sorted({*BODY_ERRORS, *KEY_ERRORS}),
        f"Writes 1 to {MAX_BATCH_ITEMS} records (scope `feedback:write`), each item as PUT"
        " /v1/runs/{run_id}/feedback/{user_id} would with its `run_id` and `user_id` fields. Always 200 once"
        " the request itself is valid: `results` holds one entry per item, in order, with `created`,"
        " `updated` or `error` (the error code and message of the matching single request; `throttled`,"
        " `conflict`, `internal_error` and `not_attempted` are worth retrying). Items are written in order,"
        " so a later item naming the same run and user updates what an earlier one wrote.",
        {
            "items": [
                {"run_id": _RUN, "user_id": "user-7", "outcome": "positive", "score": 8},
                {"run_id": "run-43", "user_id": "user-7", "outcome": "negative", "comment": "Wrong plan"},
            ]
        },
    ),
    ("delete", "/v1/users/{user_id}/feedback"): Operation(
        [
            Success(200, {"$ref": SCHEMAS + "ErasureResult"}, {"deleted": 3, "complete": True}),
            Success(202, {"$ref": SCHEMAS + "ErasureResult"}, {"deleted": 812, "complete": False}),
        ],
        KEY_ERRORS,
        "Erases every record of a named user in the project (scope `feedback:write`); `anonymous` is 422."
        " One request works for up to 20 s: 200 when nothing is left, else 202 with what it erased so far"
        " — repeat the request until it answers 200. Each erased record is one `Feedback Erased` event.",
    ),
    ("get", "/v1/stats"): Operation(
        [
            Success(
                200,
                {"$ref": SCHEMAS + "StatsResponse"},
                {"total": _BUCKET_EXAMPLE, "buckets": [_BUCKET_EXAMPLE]},
            )
        ],
        KEY_ERRORS,
        f"Exact counts and score means per UTC day of `created_at` (scope `feedback:read`), from `start` to"
        f" `end` inclusive (default: the last 30 days; at most {MAX_DAYS} days). Maintained from the table's"
        " stream: seconds behind the writes.",
    ),
    ("get", "/.well-known/jwks.json"): Operation(
        [Success(200, {"$ref": SCHEMAS + "JsonWebKeySet"}, headers=CACHED)],
        [],
        "Public keys that verify tokens.",
    ),
    ("get", "/v1/openapi.json"): Operation(
        [Success(200, {"type": "object"}, headers=CACHED)], [], "This document."
    ),
    ("get", "/v1/docs"): Operation(
        [Success(200, {"type": "string"}, media_type="text/html")], [], "Interactive API documentation."
    ),
    ("get", "/v1/widget.js"): Operation(
        [
            Success(200, {"type": "string"}, headers=STATIC_FILE, media_type="text/javascript"),
            Success(304, headers=STATIC_FILE),
        ],
        [],
        "The web widget: a script defining the custom element `<feedback-widget>` (docs/WIDGET.md)."
        " `?v=<version>` (the version in the widget's ETag) is cached for a year; without it, five"
        " minutes, then revalidated with If-None-Match.",
    ),
    ("get", "/v1/health"): Operation(
        [Success(200, {"$ref": SCHEMAS + "Health"}, {"status": "ok"})], [], "Liveness check."
    ),
}

ERROR_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable error code"},
                    "message": {"type": "string", "description": "What went wrong, for a person"},
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        },
                    },
                },
            }
        },
    },
    "GatewayError": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
        "description": "API Gateway's own error body, before any function runs",
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "JsonWebKeySet": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"type": "object", "required": ["kty", "kid"]}}},
    },
}
STORABLE_NUMBER = {
    "anyOf": [
        {"const": 0},
        {"type": "number", "minimum": MIN_NUMBER_MAGNITUDE, "exclusiveMaximum": MAX_NUMBER_MAGNITUDE},
        {"type": "number", "maximum": -MIN_NUMBER_MAGNITUDE, "exclusiveMinimum": -MAX_NUMBER_MAGNITUDE},
    ]
}
"""A number DynamoDB stores as given (models.NUMBER_RULE)."""


def _json_values(depth: int) -> dict[str, Any]:
    """`$defs` JsonObject1..depth and JsonValue0..depth-1: the JSON that `details` and `context` may hold,
    nested at most `depth` levels (an object is one level), no empty keys, storable numbers."""
    schemas: dict[str, Any] = {}
    for level in range(depth):
        scalars = [{"type": "null"}, {"type": "boolean"}, {"type": "string"}, STORABLE_NUMBER]
        if level:
            scalars += [
                {"type": "array", "items": {"$ref": f"{SCHEMAS}JsonValue{level - 1}"}},
                {"$ref": f"{SCHEMAS}JsonObject{level}"},
            ]
        schemas[f"JsonValue{level}"] = {"anyOf": scalars}
        schemas[f"JsonObject{level + 1}"] = {
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": {"$ref": f"{SCHEMAS}JsonValue{level}"},
        }
    return schemas


def _nullable(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "description": description}


AT_LEAST_ONE = {
    "anyOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("outcome", "score", "comment")
    ]
}
HEADER_SCHEMAS = {
    "if-match": {
        "type": "string",
        "pattern": '^(W/)?("[0-9]{1,9}"|[0-9]{1,9})$',
        "description": 'The version the caller last saw, e.g. "3"; "0": only if no feedback exists yet',
    }
}
MAX_TOKEN_TTL = 604800
"""TokenTtlSeconds' MaxValue in template.yaml; the meta function serves the stack's own value."""


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"openapi_{name}", ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its `null` branch: a query string or header cannot carry null."""
    branches = [branch for branch in schema.get("anyOf", []) if branch.get("type") != "null"]
    if len(branches) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    return branches[0] | rest


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Query strings validated by a model in the handler, described as OpenAPI parameters."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _without_null(field)}
        for name, field in schema["properties"].items()
    ]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    schema = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": PATH_SEGMENT_PATTERN}
    return [{"name": name, "in": "path", "required": True, "schema": schema} for name in names]


def _error_response(status: int, key_route: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": SCHEMAS + "Error"}
    if status in (414, 431):
        schema = {"$ref": SCHEMAS + "GatewayError"}
    elif status in GATEWAY_STATUSES or (key_route and status == 403):
        schema = {"anyOf": [schema, {"$ref": SCHEMAS + "GatewayError"}]}
    response: dict[str, Any] = {
        "description": REASONS[status]
        + (f" (error code `{ERROR_CODES[status]}`)" if status in ERROR_CODES else ""),
        "content": {"application/json": {"schema": schema}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"required": False, "schema": {"type": "string"}}}
    return response


def _success_response(success: Success) -> dict[str, Any]:
    response: dict[str, Any] = {"description": REASONS[success.status]}
    if success.schema is not None:
        content: dict[str, Any] = {"schema": success.schema}
        if success.example is not None:
            content["example"] = success.example
        response["content"] = {success.media_type: content}
    if success.headers:
        response["headers"] = success.headers
    return response


def _describe(
    operation: dict[str, Any], path: str, method: str, security: list[dict[str, list[str]]]
) -> None:
    documented = OPERATIONS[(method, path)]
    operation["description"] = documented.description
    operation["security"] = security
    parameters = [
        parameter | {"schema": HEADER_SCHEMAS.get(parameter["name"]) or _without_null(parameter["schema"])}
        for parameter in operation.get("parameters", [])
        if parameter["in"] != "path"
        and parameter["name"] != "x-feedback-token"  # that is the security scheme
    ]
    operation["parameters"] = _path_parameters(path) + parameters
    if (method, path) in QUERY_MODELS:
        operation["parameters"] += _query_parameters(QUERY_MODELS[(method, path)])
    if not operation["parameters"]:
        del operation["parameters"]
    if documented.request_example is not None:
        operation["requestBody"]["content"]["application/json"]["example"] = documented.request_example
    operation["responses"] = {
        str(success.status): _success_response(success) for success in documented.successes
    } | {
        str(status): _error_response(status, security == SECURITY["query"])
        for status in sorted({*documented.errors, *EVERY_OPERATION})
    }


def build() -> dict[str, Any]:
    document: dict[str, Any] = {"paths": {}, "components": {"schemas": {}}}
    for name in API_FUNCTIONS:
        schema = json.loads(
            _load(name).app.get_openapi_json_schema(
                title="Feedback service API",
                version="1.0.0",
                description="Collect end-user feedback on AI responses. See docs/API.md.",
            )
        )
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if (method, path) not in OPERATIONS:
                    raise SystemExit(f"{method.upper()} {path} is not documented in {Path(__file__).name}")
                _describe(operation, path, method, SECURITY[name])
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))
        document |= {key: value for key, value in schema.items() if key not in ("paths", "components")}
    routes = {(method, path) for path, operations in document["paths"].items() for method in operations}
    if missing := set(OPERATIONS) - routes:
        raise SystemExit(f"documented operations without a route: {sorted(missing)}")
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    _, responses = models_json_schema(
        [(model, "serialization") for model in RESPONSE_MODELS], ref_template=SCHEMAS + "{model}"
    )
    schemas |= responses.get("$defs", {}) | ERROR_SCHEMAS
    schemas |= _json_values(MAX_DETAILS_DEPTH)
    object_ref = {"$ref": f"{SCHEMAS}JsonObject{MAX_DETAILS_DEPTH}"}
    for body in ("FeedbackSubmission", "BackendFeedback"):
        submission = schemas[body] = copy.deepcopy(schemas[body]) | AT_LEAST_ONE
        submission["properties"]["details"] = _nullable(
            object_ref,
            f"JSON object, at most {MAX_DETAILS_BYTES} bytes (else 413) and {MAX_DETAILS_DEPTH} levels deep",
        )
        submission["properties"]["weight"] = _nullable(
            {"anyOf": [{"const": 0}, {"type": "number", "minimum": MIN_NUMBER_MAGNITUDE, "maximum": 1}]},
            "How much this feedback counts in weighted means, 0..1 (default 1)",
        )
    for body in ("TokenRequest", "BackendFeedback"):
        schemas[body]["properties"]["context"] = _nullable(
            object_ref,
            f"JSON object copied onto the record, ≤ {MAX_CONTEXT_BYTES} bytes,"
            f" {MAX_DETAILS_DEPTH} levels deep",
        )
    ttl = schemas["TokenRequest"]["properties"]["ttl_seconds"]
    ttl["anyOf"][0]["maximum"] = MAX_TOKEN_TTL
    ttl["description"] = "Token lifetime in seconds, at most the stack's TokenTtlSeconds (default 86400)"
    document["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer fbk_..."},
        "feedbackToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Feedback-Token",
            "description": "The feedback token (POST /v1/feedback also takes the body field feedback_token)",
        },
    }
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)}", file=sys.stderr)
