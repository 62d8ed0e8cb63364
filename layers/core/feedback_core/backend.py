"""Feedback a backend writes with an API key (feedback:write): one user's record on one run, or a batch.

The write is the token path's: the same conditional UpdateItem (`FeedbackStore.submit`), so versioning,
the update cap, expiry and the record's shape (hence its events and stats) are the same. The differences:
the project comes from the key, the run and user from the request, and the session, agent and context a
token would carry are request fields (left out: kept as stored).

Ownership: an API key acts for its whole project. It may write any record of it, a record a user-bound
token wrote included, which stays that user's own. What it writes for a named user becomes that user's
own too, as if through a token bound to them: the backend vouches for the user, so a token with no user
bound may not change it afterwards (403). The shared `anonymous` record is never anyone's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from feedback_core.admin import ERASURE_BUDGET_SECONDS, ERASURE_RESERVE_MS
from feedback_core.clock import Clock
from feedback_core.errors import PayloadTooLarge, ServiceError
from feedback_core.http import THROTTLING_CODES, validation_failure
from feedback_core.models import (
    MAX_DETAILS_BYTES,
    BackendFeedback,
    BatchFeedback,
    BatchItemResult,
    BatchResult,
    FeedbackRecord,
    ItemError,
    Principal,
    TokenBinding,
)
from feedback_core.observability import logger

if TYPE_CHECKING:
    from feedback_core.store import FeedbackStore

BACKEND_BINDING: TokenBinding = "bound"
"""An API-key write claims a named user's record as a user-bound token's write does (see above)."""

THROTTLED = "throttled"
INTERNAL_ERROR = "internal_error"
NOT_ATTEMPTED = "not_attempted"
RETRYABLE_CODES = frozenset({THROTTLED, "conflict", INTERNAL_ERROR, NOT_ATTEMPTED})
"""Per-item error codes worth retrying as they are: the same item may succeed later."""


def write(
    store: FeedbackStore,
    principal: Principal,
    run_id: str,
    user_id: str,
    feedback: BackendFeedback,
    *,
    expected_version: int | None = None,
) -> tuple[FeedbackRecord, bool]:
    """Upserts one user's feedback on one run of the key's project. Returns (record, created)."""
    if feedback.details_size() > MAX_DETAILS_BYTES:
        raise PayloadTooLarge(f"details must be at most {MAX_DETAILS_BYTES} bytes as JSON")
    return store.submit(
        project=principal.project,
        run_id=run_id,
        user_id=user_id,
        fields=feedback.record_fields(),
        session_id=feedback.session_id,
        agent=feedback.agent,
        context=feedback.context,
        expected_version=expected_version,
        binding=BACKEND_BINDING,
        unchanged=feedback.unchanged_run_context(),
    )


BATCH_BUDGET_SECONDS = ERASURE_BUDGET_SECONDS
"""How long one batch request writes; the SDK's backoff on throttled writes could otherwise run past API
Gateway's 30 s (see `admin`). Items left when it is spent fail as `not_attempted`."""
BATCH_RESERVE_MS = ERASURE_RESERVE_MS


def write_batch(
    store: FeedbackStore,
    principal: Principal,
    items: list[dict[str, Any]],
    remaining_ms: Callable[[], int] = lambda: BATCH_RESERVE_MS + 1,
    clock: Clock = time.monotonic,
) -> BatchResult:
    """Writes each item as `write` does, in order, one after another: an item naming the same run and
    user as an earlier one updates what that one wrote. A failed item fails alone; so do the items left
    when the request's time is spent."""
    started = clock()

    def out_of_time() -> bool:
        return clock() - started >= BATCH_BUDGET_SECONDS or remaining_ms() < BATCH_RESERVE_MS

    results = [
        _failed_as(index, NOT_ATTEMPTED, "the request ran out of time before this item; send it again")
        if out_of_time()
        else _write_item(store, principal, index, item)
        for index, item in enumerate(items)
    ]
    counts = {
        status: sum(1 for result in results if result.status == status) for status in ("created", "updated")
    }
    failed = len(results) - counts["created"] - counts["updated"]
    if failed:
        logger.info("batch items failed", extra={"failed": failed, "items": len(results)})
    return BatchResult(results=results, created=counts["created"], updated=counts["updated"], failed=failed)


def _write_item(
    store: FeedbackStore, principal: Principal, index: int, item: dict[str, Any]
) -> BatchItemResult:
    try:
        feedback = BatchFeedback.model_validate(item)
        record, created = write(store, principal, feedback.run_id, feedback.user_id, feedback)
    except ValidationError as error:
        return _failed(index, validation_failure(error.errors()))
    except ServiceError as error:
        return _failed(index, error)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in THROTTLING_CODES:
            logger.warning("batch item throttled", extra={"aws_error": code, "index": index})
            return _failed_as(index, THROTTLED, "DynamoDB throttled this item's write; retry it shortly")
        logger.exception("batch item failed", extra={"aws_error": code, "index": index})
        return _failed_as(index, INTERNAL_ERROR, "this item could not be written; retry it")
    return BatchItemResult(
        index=index,
        status="created" if created else "updated",
        feedback_id=record.feedback_id,
        version=record.version,
    )


def _failed(index: int, error: ServiceError) -> BatchItemResult:
    details = [{str(k): str(v) for k, v in entry.items()} for entry in error.details or []] or None
    return BatchItemResult(
        index=index, status="error", error=ItemError(code=error.code, message=error.message, details=details)
    )


def _failed_as(index: int, code: str, message: str) -> BatchItemResult:
    return BatchItemResult(index=index, status="error", error=ItemError(code=code, message=message))
