"""The composition root: the objects the use cases receive (stores, token verifier and issuer, cursor
codec, event publisher), built from the settings of the current invocation once per settings value, so
clients, keys and secrets are reused across invocations. Handlers call it and pass what it returns.

Each factory imports its kind's modules on first call, so a function loads only what its routes use.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING

from feedback_core import aws
from feedback_core.observability import tracer
from feedback_core.settings import (
    ApiKeysTableSettings,
    CursorSettings,
    EventSettings,
    FeedbackTableSettings,
    StatsTableSettings,
    TokenIssueSettings,
    TokenVerifySettings,
    VerifyKeySettings,
    _settings,
    load_settings,
)

if TYPE_CHECKING:
    from feedback_core.apikeys import ApiKeyStore
    from feedback_core.cursor import CursorCodec
    from feedback_core.events import Publisher
    from feedback_core.stats import StatsStore
    from feedback_core.store import FeedbackStore
    from feedback_core.tokens import PublicKeys, TokenIssuer, TokenVerifier

CURSOR_SECRET_MAX_AGE_SECONDS = 3600
PARAMETERS_MODULE = "aws_lambda_powertools.utilities.parameters"
"""Powertools' parameters utility: heavy (AppConfig, boto3's resource layer), so only the cursor loads it."""


def feedback_store() -> FeedbackStore:
    return _feedback_store(load_settings(FeedbackTableSettings))


def stats_store() -> StatsStore:
    return _stats_store(load_settings(StatsTableSettings))


def api_key_store() -> ApiKeyStore:
    return _api_key_store(load_settings(ApiKeysTableSettings))


def cursor_codec() -> CursorCodec:
    """Cursor signing key from Secrets Manager, cached by Powertools for an hour."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 (see PARAMETERS_MODULE)

    from feedback_core.cursor import CursorCodec  # noqa: PLC0415 (loaded by the functions that list)

    secret_arn = load_settings(CursorSettings).cursor_secret_arn
    secret = parameters.get_secret(secret_arn, max_age=CURSOR_SECRET_MAX_AGE_SECONDS)
    return CursorCodec(str(secret).encode())


def token_verifier() -> TokenVerifier:
    return _token_verifier(load_settings(TokenVerifySettings))


def public_keys() -> PublicKeys:
    return _public_keys(load_settings(VerifyKeySettings).accepted_key_ids)


def token_issuer() -> TokenIssuer:
    return _token_issuer(load_settings(TokenIssueSettings))


def publisher() -> Publisher:
    return _publisher(load_settings(EventSettings))


@lru_cache(maxsize=8)
def _feedback_store(settings: FeedbackTableSettings) -> FeedbackStore:
    from feedback_core.store import FeedbackStore  # noqa: PLC0415 (loaded by the functions that use it)

    return FeedbackStore(
        aws.dynamodb(),
        settings.feedback_table,
        time_index_shards=settings.time_index_shards,
        retention_days=settings.retention_days,
        max_updates_per_record=settings.max_updates_per_record,
    )


@lru_cache(maxsize=8)
def _stats_store(settings: StatsTableSettings) -> StatsStore:
    from feedback_core.stats import StatsStore  # noqa: PLC0415 (loaded by the functions that use it)

    return StatsStore(aws.dynamodb(), settings.stats_table)


@lru_cache(maxsize=8)
def _api_key_store(settings: ApiKeysTableSettings) -> ApiKeyStore:
    from feedback_core.apikeys import ApiKeyStore  # noqa: PLC0415 (loaded by the functions that use it)

    return ApiKeyStore(aws.dynamodb(), settings.api_keys_table)


@lru_cache(maxsize=8)
def _public_keys(accepted_key_ids: frozenset[str]) -> PublicKeys:
    from feedback_core.tokens import PublicKeys  # noqa: PLC0415 (loaded by the functions that use it)

    return PublicKeys(aws.kms(), accepted_key_ids)


@lru_cache(maxsize=8)
def _token_verifier(settings: TokenVerifySettings) -> TokenVerifier:
    from feedback_core.tokens import TokenVerifier  # noqa: PLC0415 (loaded by the functions that use it)

    return TokenVerifier(
        _public_keys(settings.accepted_key_ids), settings.token_issuer, settings.token_ttl_seconds
    )


@lru_cache(maxsize=8)
def _token_issuer(settings: TokenIssueSettings) -> TokenIssuer:
    from feedback_core.tokens import (  # noqa: PLC0415 (loaded by the functions that use it)
        DelegatedTokenIssuer,
        TokenIssuer,
    )

    kind = DelegatedTokenIssuer if settings.signing_mode == "delegated" else TokenIssuer
    return kind(aws.kms(), settings.token_key_id, settings.token_issuer, settings.token_ttl_seconds)


@lru_cache(maxsize=8)
def _publisher(settings: EventSettings) -> Publisher:
    from feedback_core.events import Publisher  # noqa: PLC0415 (loaded by the functions that use it)

    return Publisher(aws.eventbridge(), aws.sns(), settings.event_bus_name, settings.topic_arn)


FACTORIES = (
    _settings,
    _feedback_store,
    _stats_store,
    _api_key_store,
    _public_keys,
    _token_verifier,
    _token_issuer,
    _publisher,
)


def reset() -> None:
    """Forget every cached object (tests change settings and emulators between cases). Powertools'
    parameters utility is cleared only if this process loaded it, and stays unloaded otherwise."""
    for factory in FACTORIES:
        factory.cache_clear()
    aws.reset_clients()
    tracer.forget()
    parameters = sys.modules.get(PARAMETERS_MODULE)
    if parameters is not None:
        parameters.clear_caches()
