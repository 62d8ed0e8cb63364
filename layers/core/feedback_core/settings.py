"""Service settings, one validated model per concern, so each function requires only the variables the
template gives it. Names are the Lambda environment variables; what a deployment must name (tables,
keys, secret, bus, topic) has no default, and a missing or invalid one is a ConfigurationError naming it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigurationError(Exception):
    """The function's environment lacks a variable it needs, or holds an invalid one."""


class FunctionSettings(BaseModel):
    """A plain pydantic model validated from the variables `load_settings` passes (os.environ's, or the
    function's own under `function_environment`): nothing else is read, and no settings library is
    imported at every cold start for it."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True)


class FeedbackTableSettings(FunctionSettings):
    feedback_table: str = Field(alias="FEEDBACK_TABLE", min_length=1, description="the Feedback table's name")
    time_index_shards: int = Field(4, ge=1, le=64, alias="TIME_INDEX_SHARDS")
    retention_days: int = Field(90, ge=0, alias="RETENTION_DAYS")
    max_updates_per_record: int = Field(100, ge=1, alias="MAX_UPDATES_PER_RECORD")


class StatsTableSettings(FunctionSettings):
    stats_table: str = Field(alias="STATS_TABLE", min_length=1, description="the Stats table's name")


class ApiKeysTableSettings(FunctionSettings):
    api_keys_table: str = Field(alias="API_KEYS_TABLE", min_length=1, description="the ApiKeys table's name")


class CursorSettings(FunctionSettings):
    cursor_secret_arn: str = Field(
        alias="CURSOR_SECRET_ARN",
        min_length=1,
        description="the Secrets Manager secret whose value signs pagination cursors",
    )


class VerifyKeySettings(FunctionSettings):
    token_verify_key_ids: tuple[str, ...] = Field(
        alias="TOKEN_VERIFY_KEY_IDS",
        min_length=1,
        description="comma-separated KMS key ids whose tokens are accepted: the current key plus keys "
        "being rotated out",
    )

    @field_validator("token_verify_key_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def accepted_key_ids(self) -> frozenset[str]:
        return frozenset(self.token_verify_key_ids)


class TokenIssuerSettings(FunctionSettings):
    token_issuer: str = Field(
        alias="TOKEN_ISSUER",
        min_length=1,
        max_length=128,  # a stack name; it fits every certificate KMS signs
        description="the `iss` of the tokens, the stack's name",
    )


class TokenLifetimeSettings(FunctionSettings):
    token_ttl_seconds: int = Field(86400, ge=1, le=7 * 86400, alias="TOKEN_TTL_SECONDS")
    """The longest token lifetime: the issuer refuses longer requests, verifiers longer tokens."""


class TokenVerifySettings(VerifyKeySettings, TokenIssuerSettings, TokenLifetimeSettings):
    pass


class TokenIssueSettings(TokenLifetimeSettings, TokenIssuerSettings):
    token_key_id: str = Field(
        alias="TOKEN_KEY_ID", min_length=1, description="the KMS key (id, ARN or alias) that signs new tokens"
    )
    signing_mode: Literal["kms", "delegated"] = Field("delegated", alias="SIGNING_MODE")
    """`kms`: one kms:Sign per token; `delegated`: one per certificate of an in-memory key (docs/TOKENS.md)"""


class EventSettings(FunctionSettings):
    event_bus_name: str = Field(
        alias="EVENT_BUS_NAME", min_length=1, description="the EventBridge bus events are published to"
    )
    topic_arn: str = Field(
        alias="TOPIC_ARN", min_length=1, description="the SNS topic events are published to"
    )
    event_detail: Literal["full", "summary"] = Field("full", alias="EVENT_DETAIL")


Kind = TypeVar("Kind", bound=FunctionSettings)

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


def load_settings(kind: type[Kind]) -> Kind:
    """The settings of this invocation's function; read on first use, never at import time (a
    misconfigured function fails at its first invocation, and at every one after)."""
    variables = _function_environment.get()
    return cast(Kind, _settings(kind, tuple(os.environ.items()) if variables is None else variables))


@lru_cache(maxsize=64)
def _settings(kind: type[FunctionSettings], variables: tuple[tuple[str, str], ...]) -> FunctionSettings:
    try:
        return kind.model_validate(dict(variables))
    except ValidationError as error:
        raise ConfigurationError(_explain(kind, error)) from None


def _explain(kind: type[FunctionSettings], error: ValidationError) -> str:
    """One sentence per faulty variable, e.g. "FEEDBACK_TABLE is not set (the Feedback table's name)"."""
    descriptions = {field.alias: field.description for field in kind.model_fields.values()}
    problems = []
    for entry in error.errors():
        name = str(entry["loc"][0]) if entry["loc"] else kind.__name__
        meaning = f" ({descriptions[name]})" if descriptions.get(name) else ""
        if entry["type"] == "missing" or entry.get("input") in ("", ()):
            problems.append(f"{name} is not set{meaning}")
        else:
            problems.append(f"{name} is invalid{meaning}: {entry['msg']}")
    return "; ".join(problems)
