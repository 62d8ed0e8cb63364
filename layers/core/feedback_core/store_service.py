"""The Feedback table's store, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.settings import Settings, get_settings
from feedback_core.store import FeedbackStore


def feedback_store() -> FeedbackStore:
    return _feedback_store(get_settings())


@lru_cache(maxsize=8)
def _feedback_store(settings: Settings) -> FeedbackStore:
    return FeedbackStore(
        aws.dynamodb(),
        settings.feedback_table,
        time_index_shards=settings.time_index_shards,
        retention_days=settings.retention_days,
        max_updates_per_record=settings.max_updates_per_record,
    )


def reset() -> None:
    _feedback_store.cache_clear()
