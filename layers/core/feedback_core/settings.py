"""Service settings, read once from the environment into one validated model."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the functions read. Names are the Lambda environment variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    feedback_table: str = Field("Feedback", alias="FEEDBACK_TABLE")
    api_keys_table: str = Field("ApiKeys", alias="API_KEYS_TABLE")
    stats_table: str = Field("Stats", alias="STATS_TABLE")

    token_key_id: str = Field("", alias="TOKEN_KEY_ID")
    """KMS key (id, ARN or alias) that signs new tokens; only the issuer needs it."""
    token_verify_key_ids: Annotated[tuple[str, ...], NoDecode] = Field((), alias="TOKEN_VERIFY_KEY_IDS")
    """KMS key ids whose tokens are accepted (the current key plus keys being rotated out)."""
    token_issuer: str = Field("feedback-service", alias="TOKEN_ISSUER")
    token_ttl_seconds: int = Field(86400, ge=1, le=7 * 86400, alias="TOKEN_TTL_SECONDS")
    signing_mode: Literal["kms"] = Field("kms", alias="SIGNING_MODE")
    """Only `kms` exists so far; `delegated` (DESIGN.md) is planned."""

    retention_days: int = Field(90, ge=0, alias="RETENTION_DAYS")
    time_index_shards: int = Field(4, ge=1, le=64, alias="TIME_INDEX_SHARDS")
    max_updates_per_record: int = Field(100, ge=1, alias="MAX_UPDATES_PER_RECORD")

    cursor_secret_arn: str = Field("", alias="CURSOR_SECRET_ARN")
    """Secrets Manager secret whose value signs pagination cursors."""

    event_bus_name: str = Field("", alias="EVENT_BUS_NAME")
    topic_arn: str = Field("", alias="TOPIC_ARN")
    event_detail: Literal["full", "summary"] = Field("full", alias="EVENT_DETAIL")

    @field_validator("token_verify_key_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def accepted_key_ids(self) -> frozenset[str]:
        """Key ids a token's `kid` may name: the allow-list, else the signing key itself."""
        ids = set(self.token_verify_key_ids)
        if not ids and self.token_key_id:
            ids.add(self.token_key_id)
        return frozenset(ids)


_function_environment: ContextVar[tuple[tuple[str, str], ...] | None] = ContextVar(
    "function_environment", default=None
)


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Settings (and the services built from them) come from ``variables`` instead of ``os.environ`` in
    this thread until the block ends: the local stack runs each function, concurrently, in one process
    with the environment the template gives that function."""
    token = _function_environment.set(tuple(sorted(variables.items())))
    try:
        yield
    finally:
        _function_environment.reset(token)


def get_settings() -> Settings:
    """The settings of this invocation's function; read on first use, never at import time."""
    variables = _function_environment.get()
    return _settings(tuple(os.environ.items()) if variables is None else variables)


@lru_cache(maxsize=16)
def _settings(variables: tuple[tuple[str, str], ...]) -> Settings:
    # model_validate reads only the given variables (BaseSettings' __init__ would add os.environ's).
    return Settings.model_validate(dict(variables))
