"""The Stats table's store, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.settings import Settings, get_settings
from feedback_core.stats import StatsStore


def stats_store() -> StatsStore:
    return _stats_store(get_settings())


@lru_cache(maxsize=8)
def _stats_store(settings: Settings) -> StatsStore:
    return StatsStore(aws.dynamodb(), settings.stats_table)


def reset() -> None:
    _stats_store.cache_clear()
