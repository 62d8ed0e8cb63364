"""Builds the service objects from settings, once per process (clients, keys and secrets are cached)."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities import parameters

from feedback_core import aws
from feedback_core.apikeys import ApiKeyStore
from feedback_core.cursor import CursorCodec
from feedback_core.events import Publisher
from feedback_core.settings import get_settings
from feedback_core.stats import StatsStore
from feedback_core.store import FeedbackStore
from feedback_core.tokens import PublicKeys, TokenIssuer, TokenVerifier

CURSOR_SECRET_MAX_AGE_SECONDS = 3600


@lru_cache(maxsize=1)
def feedback_store() -> FeedbackStore:
    settings = get_settings()
    return FeedbackStore(
        aws.dynamodb(),
        settings.feedback_table,
        time_index_shards=settings.time_index_shards,
        retention_days=settings.retention_days,
        max_updates_per_record=settings.max_updates_per_record,
    )


@lru_cache(maxsize=1)
def api_key_store() -> ApiKeyStore:
    return ApiKeyStore(aws.dynamodb(), get_settings().api_keys_table)


@lru_cache(maxsize=1)
def token_issuer() -> TokenIssuer:
    settings = get_settings()
    return TokenIssuer(aws.kms(), settings.token_key_id, settings.token_issuer, settings.token_ttl_seconds)


@lru_cache(maxsize=1)
def public_keys() -> PublicKeys:
    return PublicKeys(aws.kms(), get_settings().accepted_key_ids)


@lru_cache(maxsize=1)
def token_verifier() -> TokenVerifier:
    return TokenVerifier(public_keys(), get_settings().token_issuer)


@lru_cache(maxsize=1)
def publisher() -> Publisher:
    settings = get_settings()
    return Publisher(aws.eventbridge(), aws.sns(), settings.event_bus_name, settings.topic_arn)


@lru_cache(maxsize=1)
def stats_store() -> StatsStore:
    return StatsStore(aws.dynamodb(), get_settings().stats_table)


def cursor_codec() -> CursorCodec:
    """Cursor signing key from Secrets Manager, cached by Powertools for an hour."""
    secret = parameters.get_secret(get_settings().cursor_secret_arn, max_age=CURSOR_SECRET_MAX_AGE_SECONDS)
    return CursorCodec(str(secret).encode())


def reset() -> None:
    """Forget every cached object (tests change settings and emulators between cases)."""
    get_settings.cache_clear()
    aws.reset_clients()
    factories = (
        feedback_store,
        api_key_store,
        token_issuer,
        public_keys,
        token_verifier,
        publisher,
        stats_store,
    )
    for factory in factories:
        factory.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
