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
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from feedback_core.admin import ERASURE_BUDGET_SECONDS, ERASURE_RESERVE_MS
from feedback_core.clock import Clock
from feedback_core.errors import PayloadTooLarge, ServiceError
from feedback_core.fields import MAX_DETAILS_BYTES, TokenBinding
from feedback_core.http import THROTTLING_CODES, validation_failure
from feedback_core.models import (
    BackendFeedback,
    BatchFeedback,
    BatchItemResult,
    BatchResult,
    FeedbackRecord,
    ItemError,
    Principal,
)
from feedback_core.observability import logger

if TYPE_CHECKING:
    from feedback_core.store import FeedbackStore

BACKEND_BINDING: TokenBinding = "bound"
"""An API-key write claims a named user's record as a user-bound token's write does (see above)."""

THROTTLED = "throttled"
INTERNAL_ERROR = "internal_error"
NOT_ATTEMPTED = "not_attempted"
OUT_OF_TIME = "the request ran out of time before this item; send it again"
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
Gateway's 30 s (see `admin`). Items not started when it is spent fail as `not_attempted`."""
BATCH_RESERVE_MS = ERASURE_RESERVE_MS

BATCH_WORKERS = 8
"""How many of a batch's items the admin function writes at once. An item costs ~2 ms of this process's
CPU (validation, signing, JSON; measured on a full core against DynamoDB Local), which Python runs one
thread at a time: at the template's MemorySize (512 MB, ~0.3 of a vCPU) ~7 ms, against a DynamoDB round
trip of ~5-10 ms. Three writes in flight already keep that CPU busy; the rest cover slower answers (a tail
latency, a throttled write backing off) and a function given more memory. 8 stays under botocore's 10
pooled connections per client (no worker waits for one or opens its own), and a CPU-bound request
(~150 writes/s) stays far under a partition's 1,000 writes/s (a batch on one run shares its partition
key). Items naming one record never overlap (see `write_batch`)."""

RecordKey = tuple[str, str]
"""(run_id, user_id): the record an item writes, within the API key's project."""


def write_batch(
    store: FeedbackStore,
    principal: Principal,
    items: list[dict[str, Any]],
    remaining_ms: Callable[[], int] = lambda: BATCH_RESERVE_MS + 1,
    clock: Clock = time.monotonic,
    *,
    workers: int = 1,
) -> BatchResult:
    """Writes each item as `write` does, up to `workers` at once (the admin function's `BATCH_WORKERS`;
    one by one otherwise). Items start in the request's order; an item naming the same run and user as an
    earlier one waits for that one's write to end, then updates what it wrote. A failed item fails alone;
    so do the items not started when the request's time is spent (always the last ones).

    Only this thread starts items and reads the clock, so the budget is looked at once per item, in order,
    as the item starts. Workers log through the process's Logger (its keys are shared by every thread) and
    add no metrics: the caller counts the result (Powertools' Metrics is process-wide and not locked).
    With tracing on, their DynamoDB calls are traced under the function's segment (X-Ray's Lambda context
    keeps one per thread), not under the handler's subsegment."""
    started = clock()

    def out_of_time() -> bool:
        return clock() - started >= BATCH_BUDGET_SECONDS or remaining_ms() < BATCH_RESERVE_MS

    results: list[BatchItemResult | None] = [None] * len(items)
    writing: dict[Future[BatchItemResult], RecordKey] = {}

    def collect(return_when: str) -> None:
        finished, _ = wait(writing, return_when=return_when)
        for future in finished:
            del writing[future]
            result = future.result()  # an unexpected error fails the request, as it did one item at a time
            results[result.index] = result

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-write") as pool:
        for index, item in enumerate(items):
            parsed = _parse_item(index, item)
            if isinstance(parsed, BatchFeedback):
                key = (parsed.run_id, parsed.user_id)
                while len(writing) >= workers or key in writing.values():
                    collect(FIRST_COMPLETED)  # a free worker, and this record's earlier items written
            if out_of_time():
                break
            if isinstance(parsed, BatchFeedback):
                # in a copy of this context: the local stack gives each function its settings in one
                writing[pool.submit(copy_context().run, _write_item, store, principal, index, parsed)] = key
            else:
                results[index] = parsed
        collect(ALL_COMPLETED)
    answered = [
        result or _failed_as(index, NOT_ATTEMPTED, OUT_OF_TIME) for index, result in enumerate(results)
    ]
    counts = {
        status: sum(1 for result in answered if result.status == status) for status in ("created", "updated")
    }
    failed = len(answered) - counts["created"] - counts["updated"]
    if failed:
        logger.info("batch items failed", extra={"failed": failed, "items": len(answered)})
    return BatchResult(results=answered, created=counts["created"], updated=counts["updated"], failed=failed)


def _parse_item(index: int, item: dict[str, Any]) -> BatchFeedback | BatchItemResult:
    """The item, or its failed result when it is not one."""
    try:
        return BatchFeedback.model_validate(item)
    except ValidationError as error:
        return _failed(index, validation_failure(error.errors()))


def _write_item(
    store: FeedbackStore, principal: Principal, index: int, feedback: BatchFeedback
) -> BatchItemResult:
    try:
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
