"""The ApiKeys table's store, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.apikeys import ApiKeyStore
from feedback_core.settings import Settings, get_settings


def api_key_store() -> ApiKeyStore:
    return _api_key_store(get_settings())


@lru_cache(maxsize=8)
def _api_key_store(settings: Settings) -> ApiKeyStore:
    return ApiKeyStore(aws.dynamodb(), settings.api_keys_table)


def reset() -> None:
    _api_key_store.cache_clear()
