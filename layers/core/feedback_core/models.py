"""Pydantic models of every request, response and stored record (their value types: `fields`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from annotated_types import Interval
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from feedback_core.fields import (
    DATE_SUMMARY,
    MAX_DETAILS_DEPTH,
    Cursor,
    DateOrDateTime,
    Identifier,
    Outcome,
    PathIdentifier,
    ProjectName,
    Scope,
    ShortText,
    TokenContext,
    check_storable,
    json_depth,
    json_size,
    storable_number,
    valid_unicode,
    whole,
)
from feedback_core.token_limits import MAX_TOKEN_LENGTH


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- requests --------------------------------------------------------------------------------------------


class FeedbackFields(StrictModel):
    """The feedback a write sets, shared by the token path and the API-key path. Fields left out keep their
    stored value; `null` clears one."""

    outcome: Outcome | None = None
    score: Annotated[int, Strict(), Interval(ge=-10, le=10), BeforeValidator(whole)] | None = None
    weight: Annotated[float, Field(ge=0, le=1), AfterValidator(storable_number)] | None = None
    comment: Annotated[str, AfterValidator(valid_unicode)] | None = Field(None, max_length=5000)
    details: dict[str, Any] | None = Field(None, description="JSON object, at most 8 KB and depth 5")
    tags: list[ShortText] | None = Field(None, max_length=10)
    source: ShortText | None = Field(None, description="Where the feedback came from, default 'web'")

    @field_validator("details")
    @classmethod
    def _details_depth(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            if json_depth(value) > MAX_DETAILS_DEPTH:
                raise ValueError(f"must be nested at most {MAX_DETAILS_DEPTH} levels deep")
            check_storable(value)
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
