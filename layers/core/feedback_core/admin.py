"""The product team's deletions (API key with feedback:write): one record, or all of one user's."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from feedback_core.clock import Clock
from feedback_core.models import ErasureResult, FeedbackRecord, Principal
from feedback_core.observability import logger

if TYPE_CHECKING:
    from feedback_core.store import FeedbackStore


def remove(store: FeedbackStore, principal: Principal, run_id: str, user_id: str) -> FeedbackRecord:
    return store.remove(principal.project, run_id, user_id, "admin")


ERASURE_BUDGET_SECONDS = 20.0
"""How long one erasure request works: API Gateway gives an HTTP API integration at most 30 s
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html)."""
ERASURE_RESERVE_MS = 3000
"""Time kept back from the function's own timeout to answer."""


def erase_user(
    store: FeedbackStore,
    principal: Principal,
    user_id: str,
    remaining_ms: Callable[[], int],
    clock: Clock = time.monotonic,
) -> ErasureResult:
    """Erases a user's records for as long as one request may run; `complete` says whether any is left
    (the caller repeats the request until it is)."""
    started = clock()

    def out_of_time() -> bool:
        return clock() - started >= ERASURE_BUDGET_SECONDS or remaining_ms() < ERASURE_RESERVE_MS

    deleted, complete = store.erase_user(principal.project, user_id, out_of_time)
    logger.info("erased a user's feedback", extra={"deleted": deleted, "complete": complete})
    return ErasureResult(deleted=deleted, complete=complete)
