"""The product team's reads (API key with feedback:read): listings, one record, and the stats."""

from __future__ import annotations

from datetime import UTC, datetime

from feedback_core.cursor_service import cursor_codec
from feedback_core.models import FeedbackPage, FeedbackRecord, ListQuery, Principal
from feedback_core.stats import StatsQuery, StatsResponse
from feedback_core.stats_service import stats_store
from feedback_core.store_service import feedback_store


def list_feedback(principal: Principal, query: ListQuery) -> FeedbackPage:
    return feedback_store().list(principal.project, query, cursor_codec())


def list_run(principal: Principal, run_id: str, limit: int, cursor: str | None) -> FeedbackPage:
    return feedback_store().list_run(
        principal.project, run_id, limit=limit, cursor=cursor, codec=cursor_codec()
    )


def read_user_run(principal: Principal, run_id: str, user_id: str) -> FeedbackRecord | None:
    return feedback_store().get(principal.project, run_id, user_id)


def read_stats(principal: Principal, query: StatsQuery) -> StatsResponse:
    return stats_store().query(principal.project, query, datetime.now(UTC).date())
