"""The product team's reads (API key with feedback:read): listings, one record, and the stats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedback_core.cursor import CursorCodec
    from feedback_core.models import FeedbackPage, FeedbackRecord, ListQuery, Principal
    from feedback_core.stats import StatsQuery, StatsResponse, StatsStore
    from feedback_core.store import FeedbackStore


def list_feedback(
    store: FeedbackStore, codec: CursorCodec, principal: Principal, query: ListQuery
) -> FeedbackPage:
    return store.list(principal.project, query, codec)


def list_run(
    store: FeedbackStore,
    codec: CursorCodec,
    principal: Principal,
    run_id: str,
    *,
    limit: int,
    cursor: str | None,
) -> FeedbackPage:
    return store.list_run(principal.project, run_id, limit=limit, cursor=cursor, codec=codec)


def read_user_run(
    store: FeedbackStore, principal: Principal, run_id: str, user_id: str
) -> FeedbackRecord | None:
    return store.get(principal.project, run_id, user_id)


def read_stats(store: StatsStore, principal: Principal, query: StatsQuery) -> StatsResponse:
    return store.query(principal.project, query, datetime.now(UTC).date())
