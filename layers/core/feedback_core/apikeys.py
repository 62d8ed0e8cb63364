"""API keys: `fbk_` + 256 random bits; only the SHA-256 of a key is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from feedback_core.clock import Clock, iso_timestamp, system_clock
from feedback_core.dynamo import deserialize, refused_as, serialize
from feedback_core.errors import Conflict, NotFound
from feedback_core.fields import Scope
from feedback_core.models import ApiKey, Principal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX = "fbk_"
BEARER = "bearer "
KEY_SHAPE = re.compile(r"fbk_[A-Za-z0-9_-]{43}")
"""Every key `create` makes: the prefix and 256 random bits in unpadded base64url."""


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_secret(authorization: str | None) -> str | None:
    """The key in an `Authorization: Bearer fbk_...` header, or None if the header cannot hold one
    (checked by shape alone, so a malformed header never costs a lookup)."""
    if not authorization or authorization[: len(BEARER)].lower() != BEARER:
        return None
    secret = authorization[len(BEARER) :].strip()
    return secret if KEY_SHAPE.fullmatch(secret) else None


class ApiKeyStore:
    def __init__(self, client: DynamoDBClient, table_name: str, clock: Clock = system_clock) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def create(self, project: str, scopes: Iterable[Scope], name: str = "") -> tuple[str, ApiKey]:
        """Stores a new key and returns (secret, record); the secret is never stored and never shown again."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            key_hash=hash_key(secret),
            project=project,
            scopes=sorted(set(scopes)),
            name=name,
            created_at=iso_timestamp(self._clock()),
        )
        with refused_as(Conflict("an API key with this hash exists already")):
            self._client.put_item(
                TableName=self._table,
                Item=serialize(key.model_dump()),
                ConditionExpression="attribute_not_exists(key_hash)",
            )
        return secret, key

    def lookup(self, secret: str) -> ApiKey | None:
        response = self._client.get_item(TableName=self._table, Key=serialize({"key_hash": hash_key(secret)}))
        item = deserialize(response.get("Item", {}))
        return ApiKey.model_validate(item) if item else None

    def revoke(self, key_hash: str) -> None:
        with refused_as(NotFound("no such API key")):
            self._client.update_item(
                TableName=self._table,
                Key=serialize({"key_hash": key_hash}),
                UpdateExpression="SET revoked = :yes",
                ConditionExpression="attribute_exists(key_hash)",
                ExpressionAttributeValues=serialize({":yes": True}),
            )

    def authorize(self, authorization: str | None) -> Principal | None:
        """The caller behind an Authorization header, or None if the key is unknown, revoked or malformed."""
        secret = bearer_secret(authorization)
        key = self.lookup(secret) if secret else None
        if key is None or key.revoked:
            return None
        return Principal(project=key.project, scopes=frozenset(key.scopes), key_id=key.key_hash[:12])
