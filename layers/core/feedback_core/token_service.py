"""Token verification (cached KMS public keys) and issuing, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.settings import Settings, get_settings
from feedback_core.tokens import PublicKeys, TokenIssuer, TokenVerifier


def token_issuer() -> TokenIssuer:
    return _token_issuer(get_settings())


def token_verifier() -> TokenVerifier:
    return _token_verifier(get_settings())


def public_keys() -> PublicKeys:
    return _public_keys(get_settings().accepted_key_ids)


@lru_cache(maxsize=8)
def _token_issuer(settings: Settings) -> TokenIssuer:
    return TokenIssuer(aws.kms(), settings.token_key_id, settings.token_issuer, settings.token_ttl_seconds)


@lru_cache(maxsize=8)
def _public_keys(accepted_key_ids: frozenset[str]) -> PublicKeys:
    return PublicKeys(aws.kms(), accepted_key_ids)


@lru_cache(maxsize=8)
def _token_verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(_public_keys(settings.accepted_key_ids), settings.token_issuer)


def reset() -> None:
    for factory in (_token_issuer, _public_keys, _token_verifier):
        factory.cache_clear()
