"""Typed shapes of the service's requests and answers (pydantic v2).

Answers allow fields this version does not know yet, so a newer service does not break an older client;
requests forbid unknown fields, as the service does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["positive", "negative"]
Granularity = Literal["day", "total"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class IssuedToken(Answer):
    feedback_token: str
    expires_at: datetime


class FeedbackRecord(Answer):
    """One user's feedback on one run, as stored."""

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
    created_at: datetime
    updated_at: datetime
    version: int
    expires_at: int | None = None


class FeedbackPage(Answer):
    items: list[FeedbackRecord]
    next_cursor: str | None = None


class StatsBucket(Answer):
    start: str
    positive: int = 0
    negative: int = 0
    score_count: int = 0
    score_sum: float = 0
    score_weighted_mean: float | None = None
    comments: int = 0


class Stats(Answer):
    total: StatsBucket
    buckets: list[StatsBucket]


class Erasure(Answer):
    """What `erase_user` did: records erased over all its requests, and whether none is left."""

    deleted: int
    complete: bool


class BatchError(Answer):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class BatchResult(Answer):
    index: int
    status: Literal["created", "updated", "error"]
    feedback_id: str | None = None
    version: int | None = None
    error: BatchError | None = None


class BatchAnswer(Answer):
    results: list[BatchResult]
    created: int = 0
    updated: int = 0
    failed: int = 0


class FeedbackValues(BaseModel):
    """The values of a vote. Fields left as None are not sent, so they keep their stored value."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome | None = None
    score: int | None = None
    weight: float | None = None
    comment: str | None = None
    details: dict[str, Any] | None = None
    tags: list[str] | None = None
    source: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")


class BackendFeedback(FeedbackValues):
    """One record written by a backend (`record_feedback`, `import_feedback`)."""

    run_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    session_id: str | None = None
    agent: str | None = None
    context: dict[str, Any] | None = None


class ImportFailure(BaseModel):
    """One item that was not written: its position in the input, its ids and why."""

    index: int
    run_id: str | None
    user_id: str | None
    code: str
    message: str


class ImportReport(BaseModel):
    """The outcome of `import_feedback`: counts, and every failed item (the others were written)."""

    created: int = 0
    updated: int = 0
    failures: list[ImportFailure] = Field(default_factory=list)

    def add(self, created: int, updated: int, failures: list[ImportFailure]) -> None:
        """Adds one batch's result."""
        self.created += created
        self.updated += updated
        self.failures.extend(failures)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def written(self) -> int:
        return self.created + self.updated
