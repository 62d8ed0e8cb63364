"""Token verification (cached KMS public keys) and issuing, built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.settings import get_settings
from feedback_core.tokens import PublicKeys, TokenIssuer, TokenVerifier


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


def reset() -> None:
    for factory in (token_issuer, public_keys, token_verifier):
        factory.cache_clear()
