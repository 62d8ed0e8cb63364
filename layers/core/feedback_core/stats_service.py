"""The Stats table's store, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.settings import get_settings
from feedback_core.stats import StatsStore


@lru_cache(maxsize=1)
def stats_store() -> StatsStore:
    return StatsStore(aws.dynamodb(), get_settings().stats_table)


def reset() -> None:
    stats_store.cache_clear()
