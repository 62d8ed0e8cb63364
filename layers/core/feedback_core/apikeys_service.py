"""The ApiKeys table's store, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.apikeys import ApiKeyStore
from feedback_core.settings import get_settings


@lru_cache(maxsize=1)
def api_key_store() -> ApiKeyStore:
    return ApiKeyStore(aws.dynamodb(), get_settings().api_keys_table)


def reset() -> None:
    api_key_store.cache_clear()
